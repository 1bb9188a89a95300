"""Two-player zero-sum SAC, the whole loop under jit (purejaxrl shape).

The training loop of QARL and its baselines (Reddi et al., ICLR 2024,
arXiv:2311.01642; official code AryamanReddi99/quantal-adversarial-rl,
`src/experiments/mujoco_experiments/*_experiment.py`): per iteration, every
parallel environment plays one episode in which only the adversary learns,
then one in which only the protagonist learns (the official code trains the
adversary for 5 episodes, then the protagonist for 5). Both agents are SAC;
each keeps its own replay buffer of the episodes in which it learns. Each
episode has its own adversary temperature, appended to the observation of
both agents (as the official `StateVariableConcatenation`).

The adversary's entropy temperature is either learned (RARL: ordinary SAC
with automatic tuning) or, for QARL, read per sample from the last
observation coordinate, as `adaptive_temp_sac.py` sets
`log_alpha = log(state[:, -1])`. Which one is a traced flag
(`HParams.adv_alpha_from_obs`), and the adversary's force is multiplied by
the traced `HParams.adversary_on` (0 = plain SAC, no adversary), so all
methods and seeds of a study are one `vmap` of one compiled program.

`train_chunk(state, hp, temps)` runs `temps.shape[0]` iterations with a
`lax.scan`; the host (curriculum, checkpoints, logs: the RL protocol,
`common/protocols/rl.py`) runs between chunks. All functions take one run;
`compiled(spec)` vmaps them over runs, and `make(config)` is the registered
learner "adversarial_sac" (`config.agent`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from algos.rl import sac
from common.core import train_step
from common.envs import base
from common.envs import interfaces


@dataclasses.dataclass(frozen=True)
class Spec:
  """Static structure of a run (changing it recompiles)."""
  env: Any                      # a common.envs TwoPlayerEnv
  hidden: Sequence[int] = (64, 64)
  n_envs: int = 8
  batch_size: int = 128
  buffer_size: int = 100_000
  updates_per_step: int = 1     # gradient steps per vectorised env step
  learning_starts: int = 1_000  # transitions in a buffer before its updates

  @property
  def aug_obs_dim(self) -> int:  # env observation + temperature
    return self.env.obs_dim + 1


class HParams(NamedTuple):
  """Traced numbers (vmappable over runs; never recompile)."""
  gamma: jax.Array
  tau: jax.Array
  lr_actor: jax.Array
  lr_critic: jax.Array
  lr_alpha: jax.Array
  init_log_alpha: jax.Array
  adversary_on: jax.Array        # 1: the adversary's force acts; 0: SAC
  adv_alpha_from_obs: jax.Array  # 1: QARL temperature; 0: learned (RARL)
  prot_learns: jax.Array         # 0 freezes the protagonist (worst case)
  env_params: base.Params        # training physics


class Agent(NamedTuple):
  actor: Any
  critic: Any
  target: Any
  log_alpha: jax.Array
  actor_opt: Any
  critic_opt: Any
  alpha_opt: Any


class Buffer(NamedTuple):
  """A ring buffer. Its write position is not stored: every run of a
  study writes the same number of transitions, so the position is a
  function of the (unbatched) iteration and step, and writes stay in-place
  `dynamic_update_slice`s under `vmap` (a batched position would turn them
  into scatters that copy the buffer every step)."""
  obs: jax.Array       # [C, d+1] (with temperature)
  action: jax.Array    # [C, a]
  reward: jax.Array    # [C] this agent's reward
  next_obs: jax.Array  # [C, d+1]
  done: jax.Array      # [C] absorbing


class RunState(NamedTuple):
  prot: Agent
  adv: Agent
  prot_buffer: Buffer
  adv_buffer: Buffer
  rng: jax.Array
  iteration: jax.Array


def _adam(learning_rate):
  return optax.chain(optax.scale_by_adam(),
                     optax.scale_by_learning_rate(learning_rate))


# Adam (optax defaults) with the learning rate injected: `optimizer_step`
# writes each learner's traced rate into the state before the update.
_ADAM = optax.inject_hyperparams(_adam)(learning_rate=0.0)


def _nets(spec: Spec, action_dim: int):
  return (sac.TanhGaussianActor(tuple(spec.hidden), action_dim),
          sac.DoubleCritic(tuple(spec.hidden)))


def init_agent(spec: Spec, key: jax.Array, action_dim: int,
               init_log_alpha: jax.Array) -> Agent:
  actor, critic = _nets(spec, action_dim)
  k1, k2 = jax.random.split(key)
  obs = jnp.zeros((1, spec.aug_obs_dim))
  actor_p = actor.init(k1, obs)
  critic_p = critic.init(k2, obs, jnp.zeros((1, action_dim)))
  log_alpha = jnp.asarray(init_log_alpha, jnp.float32)
  return Agent(actor_p, critic_p, critic_p, log_alpha, _ADAM.init(actor_p),
               _ADAM.init(critic_p), _ADAM.init(log_alpha))


def init_buffer(spec: Spec, action_dim: int) -> Buffer:
  c, d = spec.buffer_size, spec.aug_obs_dim
  z = jnp.zeros
  return Buffer(z((c, d)), z((c, action_dim)), z((c,)), z((c, d)), z((c,)))


def init(spec: Spec, key: jax.Array, hp: HParams) -> RunState:
  """A fresh run: both agents, empty buffers."""
  kp, ka, kr = jax.random.split(key, 3)
  env = spec.env
  return RunState(
      init_agent(spec, kp, env.prot_action_dim, hp.init_log_alpha),
      init_agent(spec, ka, env.adv_action_dim, hp.init_log_alpha),
      init_buffer(spec, env.prot_action_dim),
      init_buffer(spec, env.adv_action_dim), kr, jnp.zeros((), jnp.int32))


def reset_adversary(spec: Spec, state: RunState, key: jax.Array,
                    hp: HParams) -> RunState:
  """A fresh adversary and buffer (to train a worst case post hoc)."""
  return state._replace(
      adv=init_agent(spec, key, spec.env.adv_action_dim, hp.init_log_alpha),
      adv_buffer=init_buffer(spec, spec.env.adv_action_dim))


def _insert(buf: Buffer, pos: jax.Array, obs, action, reward, next_obs,
            done) -> Buffer:
  """Writes `[N, ...]` transitions at row `pos` (unbatched, N | C)."""
  new = Buffer(obs, action, reward, next_obs, done)
  return jax.tree.map(
      lambda b, x: jax.lax.dynamic_update_slice_in_dim(b, x, pos, axis=0),
      buf, new)


def _adam_step(params, opt_state, grads, lr):
  """One Adam step at the traced rate `lr`, through the repo's one optimizer
  update (`params - lr * adam(grads)`, as before the port, bit for bit)."""
  hparams = {"schedule": {"learning_rate": lr, "warmup_steps": 0.0},
             "optim": {}}
  params, opt_state, _ = train_step.optimizer_step(
      _ADAM, "constant", hparams, jnp.zeros((), jnp.int32), params,
      opt_state, grads)
  return params, opt_state


def sac_update(spec: Spec, agent: Agent, batch: Buffer, key: jax.Array,
               hp: HParams, alpha_from_obs: jax.Array,
               action_dim: int) -> tuple[Agent, dict[str, jax.Array]]:
  """One SAC step: critic, actor, temperature, Polyak target.

  `alpha_from_obs` (traced 0/1) picks the temperature of each sample: its
  observation's last coordinate (QARL adversary) or exp(log_alpha).
  """
  actor, critic = _nets(spec, action_dim)
  k_next, k_pi = jax.random.split(key)
  learned = jnp.exp(agent.log_alpha)
  alpha = jnp.where(alpha_from_obs > 0, batch.obs[:, -1], learned)
  next_alpha = jnp.where(alpha_from_obs > 0, batch.next_obs[:, -1], learned)

  mean, log_std = actor.apply(agent.actor, batch.next_obs)
  next_a, next_logp = sac.tanh_gaussian_sample(k_next, mean, log_std)
  next_q = critic.apply(agent.target, batch.next_obs, next_a)
  target = sac.soft_target(batch.reward, batch.done, next_q, next_logp,
                           next_alpha, hp.gamma)
  c_loss, c_grad = jax.value_and_grad(
      lambda p: sac.critic_loss(critic.apply(p, batch.obs, batch.action),
                                target))(agent.critic)
  critic_p, critic_opt = _adam_step(agent.critic, agent.critic_opt, c_grad,
                                    hp.lr_critic)

  def pi_loss(p):
    m, s = actor.apply(p, batch.obs)
    a, logp = sac.tanh_gaussian_sample(k_pi, m, s)
    return sac.actor_loss(logp, critic.apply(critic_p, batch.obs, a),
                          alpha), logp
  (a_loss, logp), a_grad = jax.value_and_grad(pi_loss, has_aux=True)(
      agent.actor)
  actor_p, actor_opt = _adam_step(agent.actor, agent.actor_opt, a_grad,
                                  hp.lr_actor)
  t_loss, t_grad = jax.value_and_grad(sac.temperature_loss)(
      agent.log_alpha, logp, -float(action_dim))
  log_alpha, alpha_opt = _adam_step(agent.log_alpha, agent.alpha_opt, t_grad,
                                    hp.lr_alpha)
  new = Agent(actor_p, critic_p, sac.polyak(agent.target, critic_p, hp.tau),
              log_alpha, actor_opt, critic_opt, alpha_opt)
  return new, dict(critic_loss=c_loss, actor_loss=a_loss,
                   alpha=jnp.mean(alpha), entropy=-jnp.mean(logp))


def _maybe_update(spec, agent, buf, size, key, hp, alpha_from_obs,
                  action_dim, learns):
  """`updates_per_step` updates once the buffer holds `learning_starts`."""
  def one(carry, k):
    ag = carry
    kb, ku = jax.random.split(k)
    idx = jax.random.randint(kb, (spec.batch_size,), 0, jnp.maximum(size, 1))
    batch = jax.tree.map(lambda x: x[idx], buf)
    new, info = sac_update(spec, ag, batch, ku, hp, alpha_from_obs,
                           action_dim)
    ready = (size >= spec.learning_starts) & (learns > 0)
    new = jax.tree.map(lambda n, o: jnp.where(ready, n, o), new, ag)
    return new, info
  agent, info = jax.lax.scan(one, agent,
                             jax.random.split(key, spec.updates_per_step))
  return agent, jax.tree.map(jnp.mean, info)


def act(spec: Spec, params, obs: jax.Array, key: jax.Array | None,
        action_dim: int) -> jax.Array:
  """Policy action `[N, a]` in [-1, 1]; deterministic when key is None."""
  actor, _ = _nets(spec, action_dim)
  mean, log_std = actor.apply(params, obs)
  if key is None:
    return jnp.tanh(mean)
  return sac.tanh_gaussian_sample(key, mean, log_std)[0]


def _augment(obs: jax.Array, temps: jax.Array) -> jax.Array:
  return jnp.concatenate([obs, temps[:, None]], axis=-1)


def run_phase(spec: Spec, state: RunState, hp: HParams, temps: jax.Array,
              learner: str, iteration: jax.Array
              ) -> tuple[RunState, dict[str, jax.Array]]:
  """One episode on each of the `n_envs` envs; only `learner` learns.

  Args:
    temps: `[n_envs]` adversary temperature of each episode.
    learner: "prot" or "adv" (static).
    iteration: unbatched iteration index (the learner's buffer has
      received `iteration * horizon * n_envs` transitions before).

  Returns:
    The new state and `{"disc_return", "return"}` of the protagonist per
    episode `[n_envs]` plus mean losses.
  """
  env, n = spec.env, spec.n_envs
  rng, k_reset, k_loop = jax.random.split(state.rng, 3)
  env_state = jax.vmap(env.reset, in_axes=(0, None))(
      jax.random.split(k_reset, n), hp.env_params)
  learns_prot = learner == "prot"
  dims = (env.prot_action_dim, env.adv_action_dim)

  def body(carry, xs):
    st, env_st = carry
    t, key = xs
    written = (iteration * env.horizon + t.astype(jnp.int32)) * n
    pos = written % spec.buffer_size
    size = jnp.minimum(written + n, spec.buffer_size)
    k_p, k_a, k_u = jax.random.split(key, 3)
    obs = _augment(jax.vmap(env.observe)(env_st), temps)
    a_p = act(spec, st.prot.actor, obs, k_p, dims[0])
    a_a = act(spec, st.adv.actor, obs, k_a, dims[1])
    env_st, reward, done = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        env_st, a_p, a_a * hp.adversary_on, hp.env_params)
    next_obs = _augment(jax.vmap(env.observe)(env_st), temps)
    if learns_prot:
      buf = _insert(st.prot_buffer, pos, obs, a_p, reward, next_obs, done)
      agent, info = _maybe_update(spec, st.prot, buf, size, k_u, hp,
                                  jnp.zeros(()), dims[0], hp.prot_learns)
      st = st._replace(prot=agent, prot_buffer=buf)
    else:
      buf = _insert(st.adv_buffer, pos, obs, a_a, -reward, next_obs, done)
      agent, info = _maybe_update(spec, st.adv, buf, size, k_u, hp,
                                  hp.adv_alpha_from_obs, dims[1],
                                  jnp.ones(()))
      st = st._replace(adv=agent, adv_buffer=buf)
    return (st, env_st), (reward * hp.gamma ** t, reward, info)

  xs = (jnp.arange(env.horizon, dtype=jnp.float32),
        jax.random.split(k_loop, env.horizon))
  (state, _), (disc, rew, info) = jax.lax.scan(body, (state, env_state), xs)
  metrics = dict(disc_return=disc.sum(0), **{"return": rew.sum(0)})
  metrics.update({k: v.mean() for k, v in info.items()})
  return state._replace(rng=rng), metrics


def train_chunk(spec: Spec, state: RunState, hp: HParams, temps: jax.Array,
                start: jax.Array, phases: tuple[str, ...] = ("adv", "prot")):
  """`temps.shape[0]` iterations of the given phases.

  Args:
    temps: `[K, len(phases), n_envs]` adversary temperatures per episode.
    start: index of the first iteration, the same for every run (not
      vmapped): buffers are written at positions derived from it.

  Returns:
    The state and metrics stacked over iterations, with per-episode
    protagonist returns `[K, len(phases), n_envs]`.
  """
  def iteration(st, xs):
    temps_k, it = xs
    out = []
    for i, learner in enumerate(phases):
      st, m = run_phase(spec, st, hp, temps_k[i], learner, it)
      out.append(m)
    st = st._replace(iteration=st.iteration + 1)
    return st, jax.tree.map(lambda *x: jnp.stack(x), *out)
  its = start + jnp.arange(temps.shape[0], dtype=jnp.int32)
  return jax.lax.scan(iteration, state, (temps, its))


def evaluate(spec: Spec, state: RunState, env_params: base.Params,
             temp: jax.Array, adversary_on: jax.Array, key: jax.Array,
             episodes: int = 1) -> jax.Array:
  """Undiscounted protagonist return per parameter setting, `[G]`.

  Deterministic policies (tanh of the mean) for both agents, as evaluation.

  Args:
    env_params: each leaf `[G]` (one physics per grid point).
    temp: the temperature written into the observations.
    adversary_on: 0 evaluates without adversary (robustness grids).
    episodes: episodes per grid point (random starts differ).
  """
  env = spec.env
  g = jax.tree.leaves(env_params)[0].shape[0]
  params = jax.tree.map(lambda x: jnp.repeat(x, episodes), env_params)
  m = g * episodes
  env_state = jax.vmap(env.reset)(jax.random.split(key, m), params)
  temps = jnp.full((m,), temp, jnp.float32)
  dims = (env.prot_action_dim, env.adv_action_dim)

  def body(env_st, _):
    obs = _augment(jax.vmap(env.observe)(env_st), temps)
    a_p = act(spec, state.prot.actor, obs, None, dims[0])
    a_a = act(spec, state.adv.actor, obs, None, dims[1]) * adversary_on
    env_st, reward, _ = jax.vmap(env.step)(env_st, a_p, a_a, params)
    return env_st, reward

  _, rewards = jax.lax.scan(body, env_state, None, length=env.horizon)
  return rewards.sum(0).reshape(g, episodes).mean(1)


@functools.lru_cache(maxsize=16)
def compiled(spec: Spec) -> dict[str, Any]:
  """Jitted, run-vmapped entry points of `spec`, shared by every caller
  in the process (a `Spec` is hashable: one compilation per structure)."""
  return dict(
      init=jax.jit(jax.vmap(lambda k, h: init(spec, k, h))),
      train_chunk=jax.jit(
          jax.vmap(lambda s, h, t, i: train_chunk(spec, s, h, t, i),
                   in_axes=(0, 0, 0, None)),
          donate_argnums=0),
      reset_adversary=jax.jit(jax.vmap(
          lambda s, k, h: reset_adversary(spec, s, k, h))),
      evaluate=jax.jit(
          jax.vmap(lambda st, p, t, o, k, e: evaluate(spec, st, p, t, o, k, e),
                   in_axes=(0, None, 0, 0, None, None)),
          static_argnums=5))


# agent.adversary -> (force on, temperature read from the observation)
ADVERSARIES = {"none": (0.0, 0.0), "rational": (1.0, 0.0),
               "quantal": (1.0, 1.0)}


@interfaces.register_learner("adversarial_sac")
def make(config) -> interfaces.Learner:
  """The learner of an RL config: `agent.adversary` none (SAC), rational
  (RARL) or quantal (temperature from the observation, QARL)."""
  a = config.agent
  env = base.make(config.env.name, horizon=config.env.horizon)
  spec = Spec(env=env, hidden=tuple(a.hidden), n_envs=a.n_envs,
              batch_size=a.batch_size, buffer_size=a.buffer_size,
              updates_per_step=a.updates_per_step,
              learning_starts=a.learning_starts)
  on, from_obs = ADVERSARIES[a.adversary]
  f = lambda x: jnp.asarray(x, jnp.float32)
  hp = HParams(
      gamma=f(a.gamma), tau=f(a.tau), lr_actor=f(a.lr_actor),
      lr_critic=f(a.lr_critic), lr_alpha=f(a.lr_alpha),
      init_log_alpha=f(a.init_log_alpha), adversary_on=f(on),
      adv_alpha_from_obs=f(from_obs), prot_learns=f(1.0),
      env_params=base.as_params(dict(config.env.params),
                                env.default_params()))
  return interfaces.Learner(env=env, hparams=hp, fns=compiled(spec),
                            spec=spec)
