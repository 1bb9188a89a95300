"""The RL protocol: the seeds of one arm as one jitted, vmapped program.

The purejaxrl shape: the learner (`config.agent.name`, a registered
`common.envs.interfaces.Learner`; `algos/rl/adversarial_sac.py` for QARL)
runs a whole chunk of training iterations (episodes, replay, SAC updates
through `common.core.train_step.optimizer_step`) as one `lax.scan` under
`jit`, and the seeds of an arm are a `vmap` of it (their numbers are traced,
so every arm of a study reuses one compilation). Between chunks the host
asks the curriculum (`config.curriculum.name`) for the temperatures of the
next episodes, gives it the returns, logs, and checkpoints.
`run_seeds(config, {seed: workdir})`:

* keeps each seed in its own workdir (`config.json`, `metrics.jsonl`,
  `checkpoints/`, `summary.json`), so the study engine caches, refuses and
  reports seeds one by one;
* refuses a workdir that holds a run of another config, seed included
  (`runs.check_same_config`), before anything is built;
* resumes from the newest iteration every seed has a checkpoint of
  (orbax, `train.checkpoint_every_chunks`, and at the end), after dropping
  the log records past it, so a resumed run logs each iteration once and
  ends with the bits of a straight run;
* on SIGTERM (`runs.Preemption`) saves after the running chunk and returns
  status "preempted"; a non-finite training metric raises
  `NonFiniteError` before its chunk is saved;
* evaluates the final state with `config.eval.name`, an RL evaluator
  (`@register_rl_evaluator`: `evaluate(setup, state) -> {name: [R]}`, one
  value per seed; NaN = not measured for that seed), and returns flat
  final metrics per seed.

XLA:CPU rounds a vmap of 5 runs differently from one of 20 (or of 1), and
RL training amplifies the last bit into other trajectories: a seed's
numbers are a function of its config and of the seeds it was vmapped with.
Each seed's workdir records that group (`group.json`); a run in progress
resumes only with its group, and rerunning a study's command reproduces its
numbers bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Mapping, Sequence

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import tqdm

from common import config as config_lib
from common import registry
from common.core import checkpoint as checkpoint_lib
from common.core import logging_utils
from common.envs import base as envs
from common.envs import interfaces
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised

# none (SAC) | rational (RARL: learned temperature) | quantal (QARL)
ADVERSARIES = ("none", "rational", "quantal")

GROUP = "group.json"  # the seeds a run was vmapped with

EVALUATORS = registry.Registry(
    "RL evaluator", ("common.protocols", "algos", "experiments"),
    "register_rl_evaluator")
register_rl_evaluator = EVALUATORS.register


def base_config() -> mlc.ConfigDict:
  """Every key the RL protocol reads, with defaults."""
  c = config_lib.core_config()
  c.protocol = "rl"
  c.study.metrics = ("return_no_adversary",)
  c.env = mlc.ConfigDict(dict(name="pendulum", horizon=200))
  c.env.params = mlc.ConfigDict()  # physics; unset ones: the env's default
  c.agent = mlc.ConfigDict(dict(
      name="adversarial_sac",  # a registered learner
      adversary="rational",   # one of ADVERSARIES
      hidden=(64, 64), n_envs=8, batch_size=128, buffer_size=50_000,
      updates_per_step=2,     # gradient steps per vectorised env step
      learning_starts=1_000,  # transitions in a buffer before its updates
      gamma=0.99, tau=0.005, lr_actor=1e-3, lr_critic=1e-3, lr_alpha=1e-3,
      init_log_alpha=0.0))
  # A registered curriculum; its numbers in `curriculum.<name>`.
  c.curriculum = mlc.ConfigDict(dict(name="none"))
  c.train = mlc.ConfigDict(dict(
      iterations=20,          # each: n_envs adversary + n_envs prot episodes
      chunk_iterations=1,     # iterations per jitted call
      checkpoint_every_chunks=4, keep_checkpoints=2))
  c.eval = mlc.ConfigDict(dict(name="returns", episodes=16, seed=12345))
  return c


RULES = {
    "env.horizon": config_lib.at_least(1, integer=True),
    "agent.adversary": config_lib.one_of(*ADVERSARIES),
    "agent.hidden": config_lib.each(config_lib.at_least(1, integer=True)),
    "agent.n_envs": config_lib.at_least(1, integer=True),
    "agent.batch_size": config_lib.at_least(1, integer=True),
    "agent.buffer_size": config_lib.at_least(1, integer=True),
    "agent.updates_per_step": config_lib.at_least(1, integer=True),
    "agent.learning_starts": config_lib.at_least(0, integer=True),
    "agent.gamma": config_lib.between(0.0, 1.0),
    "agent.tau": config_lib.between(0.0, 1.0),
    "agent.lr_actor": config_lib.at_least(0.0),
    "agent.lr_critic": config_lib.at_least(0.0),
    "agent.lr_alpha": config_lib.at_least(0.0),
    "agent.init_log_alpha": config_lib.between(-20.0, 20.0),
    "train.iterations": config_lib.at_least(1, integer=True),
    "train.chunk_iterations": config_lib.at_least(1, integer=True),
    "train.checkpoint_every_chunks": config_lib.at_least(1, integer=True),
    "train.keep_checkpoints": config_lib.at_least(1, integer=True),
    "eval.episodes": config_lib.at_least(1, integer=True),
    "eval.seed": config_lib.at_least(0, integer=True),
    "smoke.steps": config_lib.at_least(1, integer=True),
}


def _error(message: str) -> config_lib.ConfigError:
  return config_lib.ConfigError(message)


def validate(config: mlc.ConfigDict) -> None:
  """Declared ranges, then the cross-field checks."""
  config_lib.check_rules(config, RULES)
  a, t = config.agent, config.train
  if not a.hidden:
    raise _error("config.agent.hidden=() is not allowed: expected a "
                 "non-empty tuple of layer widths")
  if t.iterations % t.chunk_iterations:
    raise _error(f"config.train.iterations={t.iterations} is not a multiple "
                 f"of train.chunk_iterations={t.chunk_iterations}")
  if a.buffer_size % a.n_envs:
    raise _error(f"config.agent.buffer_size={a.buffer_size} is not a "
                 f"multiple of agent.n_envs={a.n_envs}")
  name = config.env.name
  if name not in envs.names():
    raise _error(f"config.env.name={name!r} is not allowed: expected one of "
                 f"{envs.names()}")
  if not name.startswith("brax_"):  # brax loads lazily, at build time
    envs.as_params(dict(config.env.params), envs.make(name).default_params())
  if a.name not in interfaces.LEARNERS:
    raise _error(f"config.agent.name={a.name!r} is not a registered RL "
                 f"learner; registered: {interfaces.LEARNERS.names()}")
  cur = config.curriculum.name
  if cur not in interfaces.CURRICULA:
    raise _error(f"config.curriculum.name={cur!r} is not a registered "
                 f"curriculum; registered: {interfaces.CURRICULA.names()}")
  if cur != "none" and cur not in config.curriculum:
    raise _error(f"config.curriculum has no section for {cur!r}; add "
                 f"config.curriculum.{cur} = ConfigDict(...) with its numbers")
  if (a.adversary == "quantal") != (cur != "none"):
    raise _error(
        f"config.agent.adversary={a.adversary!r} with config.curriculum.name"
        f"={cur!r}: a quantal adversary reads its temperature from the "
        "curriculum, and a curriculum sets only a quantal adversary's "
        "temperature (use both or neither)")
  interfaces.make_curriculum(config)  # the curriculum's own checks
  if config.eval.name not in EVALUATORS:
    raise _error(f"config.eval.name={config.eval.name!r} is not a registered "
                 f"RL evaluator; registered: {EVALUATORS.names()}")


# ------------------------------------------------------------------ setup
@flax.struct.dataclass
class State:
  """What a run resumes from; runs stacked on axis 0 `[R]` (none when
  saved per seed)."""
  step: jax.Array             # iterations done (int32 scalar)
  runs: Any                   # the learner's state
  curriculum: dict[str, Any]  # the curriculum's arrays


@dataclasses.dataclass
class Setup:
  """The compiled pieces of one group of seeds of one config."""
  config: mlc.ConfigDict
  seeds: list[int]
  learner: interfaces.Learner
  hp: Any                    # the learner's numbers, stacked `[R]`
  curriculum: interfaces.Curriculum
  env_params: dict[str, float]

  @property
  def fns(self) -> dict[str, Callable]:
    return self.learner.fns

  @property
  def env(self) -> Any:
    return self.learner.env

  @property
  def n_runs(self) -> int:
    return len(self.seeds)

  def init_state(self) -> State:
    keys = jnp.stack([jax.random.PRNGKey(s) for s in self.seeds])
    return State(step=jnp.zeros((), jnp.int32),
                 runs=self.fns["init"](keys, self.hp),
                 curriculum=self.curriculum.init(self.seeds))

  def abstract_seed_state(self) -> State:
    """Shapes of one seed's slice of the state (what a checkpoint holds)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype),
                        State(step=jnp.zeros((1,), jnp.int32),
                              runs=jax.eval_shape(self.init_state).runs,
                              curriculum=self.curriculum.init(self.seeds)))

  def evaluate(self, run_state: Any, env_params: dict[str, Any],
               temps: np.ndarray, adversary_on: np.ndarray, episodes: int
               ) -> np.ndarray:
    """`[R, G]` undiscounted protagonist returns (deterministic policies)
    for physics `env_params` (leaves `[G]`), each run at temperature
    `temps[r]` with its adversary's force times `adversary_on[r]`."""
    return np.asarray(self.fns["evaluate"](
        run_state, env_params, jnp.asarray(temps, jnp.float32),
        jnp.asarray(adversary_on, jnp.float32),
        jax.random.PRNGKey(self.config.eval.seed), episodes))


def env_params(config: mlc.ConfigDict, env: Any) -> dict[str, float]:
  """The physics of `config`: `env.params` over the env's defaults."""
  return {k: float(v) for k, v in dict(env.default_params(),
                                       **config.env.params).items()}


def setup(config: mlc.ConfigDict, seeds: Sequence[int]) -> Setup:
  """Builds (or reuses the compilation of) the program of `seeds`."""
  learner = interfaces.make_learner(config)
  stacked = jax.tree.map(lambda x: jnp.stack([x] * len(seeds)),
                         learner.hparams)
  return Setup(config=config, seeds=[int(s) for s in seeds], learner=learner,
               hp=stacked, curriculum=interfaces.make_curriculum(config),
               env_params=env_params(config, learner.env))


def _seed_state(host_state: State, r: int) -> State:
  """Seed `r`'s slice of a state fetched to the host (numpy slicing: no
  per-leaf device programs to compile)."""
  take = lambda tree: jax.tree.map(lambda x: x[r], tree)
  return State(step=host_state.step, runs=take(host_state.runs),
               curriculum=take(host_state.curriculum))


def _common_step(ckpts: Mapping[int, checkpoint_lib.Checkpointer]
                 ) -> int | None:
  """The newest iteration every seed has a checkpoint of (a kill between
  two seeds' saves leaves one seed a chunk ahead)."""
  steps = [set(c.all_steps()) for c in ckpts.values()]
  common = set.intersection(*steps) if steps else set()
  if any(steps) and not common:
    logging.warning("the seeds' checkpoints share no iteration; starting "
                    "the group from scratch")
  return max(common) if common else None


# ------------------------------------------------------------------- loop
def _check_finite(step: int, seeds: Sequence[int],
                  metrics: Mapping[str, np.ndarray]) -> None:
  for name, value in metrics.items():
    bad = ~np.isfinite(np.asarray(value).reshape(len(seeds), -1)).all(1)
    if bad.any():
      raise supervised.NonFiniteError(
          f"non-finite training metric {name!r} in the chunk ending at "
          f"iteration {step} (seeds {np.asarray(seeds)[bad].tolist()}). "
          "Lower the learning rates or check the environment.")


def _write_chunk(writers, step, temps, metrics, logs) -> None:
  for r, writer in enumerate(writers):
    scalars = {k: float(np.mean(v[r])) for k, v in metrics.items()}
    scalars["temperature"] = float(np.mean(temps[r]))
    writer.write(step, "train", scalars)
  for r, info in logs:
    writers[r].write(step, "curriculum", info)


def _truncate_log(path: str, step: int) -> None:
  """Drops the records past `step` and the evaluation (redone at the end):
  a resumed run logs each iteration once."""
  if os.path.exists(path):
    kept = [r for r in logging_utils.read_jsonl(path)
            if r["step"] <= step and r["split"] != "eval"]
    runs.atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))


def _restore(s: Setup, ckpts, dirs) -> State:
  """The group's state at the newest common checkpoint, or a fresh one;
  log records past it are dropped, a fresh start clears the logs."""
  step = _common_step(ckpts)
  if step is None:
    for seed, d in dirs.items():
      path = os.path.join(d, "metrics.jsonl")
      if jax.process_index() == 0:
        if os.path.exists(path):
          os.remove(path)
        runs.atomic_write(os.path.join(d, GROUP),
                          json.dumps({"seeds": s.seeds}))
    return s.init_state()
  abstract = s.abstract_seed_state()
  states = []
  for seed in s.seeds:
    states.append(ckpts[seed].restore_latest(abstract, step=step))
    if jax.process_index() == 0:
      _truncate_log(os.path.join(dirs[seed], "metrics.jsonl"), step)
  # Stacked on the host: restored arrays are committed to a device, fresh
  # ones are not, and jit would compile the chunk again for them.
  host_stack = lambda *x: np.stack([np.asarray(v) for v in x])
  return State(step=jnp.asarray(step, jnp.int32),
               runs=jax.tree.map(lambda *x: jnp.asarray(host_stack(*x)),
                                 *[st.runs for st in states]),
               curriculum=jax.tree.map(host_stack,
                                       *[st.curriculum for st in states]))


def _save(s: Setup, ckpts, state: State) -> None:
  host = jax.device_get(state)
  for r, seed in enumerate(s.seeds):
    ckpts[seed].save(_seed_state(host, r))


def train(s: Setup, dirs: Mapping[int, str], ckpts,
          preemption: runs.Preemption, *,
          hooks: Sequence[Callable[[int], None]] = (),
          show_progress: bool = True, desc: str = ""
          ) -> tuple[State, str]:
  """Trains the group from its checkpoints to `train.iterations`.

  Returns:
    The final (or, once SIGTERM came, the saved) state and "finished" or
    "preempted".
  """
  t = s.config.train
  k, n = t.chunk_iterations, s.config.agent.n_envs
  every = t.checkpoint_every_chunks * k
  state = _restore(s, ckpts, dirs)
  step = int(state.step)
  writers = [logging_utils.MetricWriter(dirs[seed], tensorboard=False)
             for seed in s.seeds]
  # Default label: the study engine's `<study>/<arm>/seed_<k>` layout.
  arm = os.path.basename(os.path.dirname(os.path.abspath(dirs[s.seeds[0]])))
  bar = tqdm.tqdm(total=t.iterations, initial=step, unit="it",
                  desc=desc or f"{s.config.experiment} {arm} {s.seeds}",
                  dynamic_ncols=True, disable=not show_progress)
  status = "finished"
  try:
    stop = preemption.agreed(step)  # all hosts stop at the same chunk
    while step < t.iterations and not stop:
      temps = s.curriculum.temperatures(state.curriculum, s.seeds, step, k, n)
      new_runs, metrics = s.fns["train_chunk"](
          state.runs, s.hp, jnp.asarray(temps), jnp.int32(step))
      metrics = jax.device_get(metrics)
      step += k
      _check_finite(step, s.seeds, metrics)
      cur, logs = s.curriculum.after_chunk(state.curriculum, s.seeds, temps,
                                           metrics["disc_return"])
      state = State(step=jnp.asarray(step, jnp.int32), runs=new_runs,
                    curriculum=cur)
      _write_chunk(writers, step, temps, metrics, logs)
      bar.update(k)
      bar.set_postfix(ret=f"{float(np.mean(metrics['return'])):.1f}",
                      refresh=False)
      for hook in hooks:
        hook(step)
      stop = preemption.agreed(step)
      if step % every == 0 or step == t.iterations or stop:
        _save(s, ckpts, state)
    if stop and step < t.iterations:
      status = "preempted"
      logging.warning("SIGTERM: stopped at iteration %d of seeds %s "
                      "(saved); exiting", step, s.seeds)
  finally:
    bar.close()
    for writer in writers:
      writer.close()
  return state, status


def _saved_group(workdir: str) -> list[int] | None:
  path = os.path.join(workdir, GROUP)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    return [int(x) for x in json.load(f)["seeds"]]


def _groups(todo: Mapping[int, str], workdirs: Mapping[int, str],
            ckpts: Mapping[int, checkpoint_lib.Checkpointer]
            ) -> list[list[int]]:
  """The groups to run: a seed with checkpoints resumes with the seeds it
  was trained with (XLA rounds vmaps of different widths differently, so
  another group would continue it in another program and mix two runs);
  the seeds without any start together."""
  saved = {}
  for seed in todo:
    if ckpts[seed].latest_step() is None:
      continue
    group = _saved_group(todo[seed])
    if group is None:
      raise runs.WorkdirError(
          f"{todo[seed]} holds checkpoints but no {GROUP}, so nothing shows "
          "which seeds it was trained with. Use a new --workdir.")
    missing = sorted(set(group) - set(workdirs))
    if missing:
      raise runs.WorkdirError(
          f"seed {seed} in {todo[seed]} was trained together with seeds "
          f"{group} (one vmapped program); resuming it without seeds "
          f"{missing} would continue it in another compiled program, which "
          "rounds differently, and mix two runs. Rerun with all of "
          f"--seeds={','.join(map(str, group))}, or use a new --workdir.")
    saved[seed] = tuple(group)
  groups = list(dict.fromkeys(saved.values()))
  fresh = [s for s in todo if s not in saved
           and not any(s in g for g in groups)]
  return [list(g) for g in groups] + ([fresh] if fresh else [])


def run_seeds(config: mlc.ConfigDict, workdirs: Mapping[int, str], *,
              show_progress: bool = True, desc: str = "",
              hooks: Sequence[Callable[[int], None]] = ()
              ) -> dict[int, RunResult]:
  """Trains and evaluates the seeds `workdirs` of `config` together.

  Args:
    config: a locked RL config (its `seed` is replaced by each seed).
    workdirs: seed -> that seed's workdir.
    show_progress: a tqdm bar over iterations.
    desc: the bar's label.
    hooks: called with the iterations done after each chunk.

  Returns:
    seed -> its result. Finished seeds of the same config are read back
    from their `summary.json`; unfinished ones resume in the groups they
    were trained in (a finished member of such a group is evaluated again
    with it, from its final checkpoint, to the same numbers).
  """
  validate(config)
  configs = {s: config_lib.apply_overrides(config, {"seed": s})
             for s in workdirs}
  results = {}
  for seed, d in workdirs.items():
    os.makedirs(d, exist_ok=True)
    cached = runs.cached_result(d, configs[seed])
    if cached is not None:
      results[seed] = cached
  todo = {s: d for s, d in workdirs.items() if s not in results}
  if not todo:
    return results
  ckpts = {s: checkpoint_lib.Checkpointer(d, config.train.keep_checkpoints)
           for s, d in workdirs.items()}
  try:
    for seed, d in todo.items():
      runs.check_same_config(d, configs[seed],
                             ckpts[seed].latest_step() is not None)
    groups = _groups(todo, workdirs, ckpts)
    # SIGTERM during an evaluation lets it finish (it is short and the
    # trained state is saved); a group after a preempted one waits.
    with runs.Preemption(config.train.chunk_iterations) as preemption:
      for group in groups:
        if preemption.requested:
          results.update({s: RunResult("preempted", workdirs[s], 0, {}, [],
                                       0.0) for s in group})
          continue
        results.update(_run_group(
            config, {s: configs[s] for s in group},
            {s: workdirs[s] for s in group}, {s: ckpts[s] for s in group},
            preemption, hooks=hooks, show_progress=show_progress,
            desc=desc))
  finally:
    for ckpt in ckpts.values():
      ckpt.close()
  return {s: results[s] for s in workdirs}


def _run_group(config, configs, dirs, ckpts, preemption, *, hooks,
               show_progress, desc) -> dict[int, RunResult]:
  """One vmapped group: train (resuming), evaluate, write summaries."""
  t_start = time.time()
  for seed, d in dirs.items():
    runs.write_config(d, configs[seed])
  s = setup(config, list(dirs))
  state, status = train(s, dirs, ckpts, preemption, hooks=hooks,
                        show_progress=show_progress, desc=desc)
  finals = (final_metrics(s, state) if status == "finished"
            else {seed: {} for seed in dirs})
  results = {}
  for seed, d in dirs.items():
    if status == "finished":
      writer = logging_utils.MetricWriter(d, tensorboard=False)
      writer.write(config.train.iterations, "eval", finals[seed])
      writer.close()
    result = RunResult(status=status, workdir=d, steps=int(state.step),
                       final=finals[seed], history=runs.eval_history(d),
                       seconds=time.time() - t_start)
    if status == "finished":
      runs.write_summary(d, configs[seed], result)
    results[seed] = result
  return results


def final_metrics(s: Setup, state: State) -> dict[int, dict[str, float]]:
  """Per seed: the evaluator's numbers and the curriculum's description
  (`curriculum/<name>`); NaN entries (not measured) are left out."""
  values = {k: np.asarray(v) for k, v in
            EVALUATORS.get(s.config.eval.name)(s, state).items()}
  values.update({f"curriculum/{k}": np.asarray(v) for k, v in
                 s.curriculum.describe(state.curriculum).items()})
  return {seed: {k: float(v[r]) for k, v in values.items()
                 if np.isfinite(v[r])}
          for r, seed in enumerate(s.seeds)}


@register_rl_evaluator("returns")
def returns(s: Setup, state: State) -> dict[str, np.ndarray]:
  """Deterministic policies at the config's physics, `eval.episodes`
  episodes from the same starts for every run: the protagonist's return
  without adversary, and against its own adversary at the curriculum's
  final temperature (NaN for runs without an adversary)."""
  nominal = {k: jnp.full((1,), v, jnp.float32)
             for k, v in s.env_params.items()}
  r, episodes = s.n_runs, s.config.eval.episodes
  has_adv = np.full((r,), s.config.agent.adversary != "none")
  own_t = s.curriculum.eval_temperature(state.curriculum, r)
  vs_own = s.evaluate(state.runs, nominal, own_t,
                      has_adv.astype(np.float32), episodes)[:, 0]
  no_adv = s.evaluate(state.runs, nominal, np.zeros(r), np.zeros(r),
                      episodes)[:, 0]
  return {"return_no_adversary": no_adv,
          "return_vs_own_adversary": np.where(has_adv, vs_own, np.nan),
          "own_temperature": np.where(has_adv, own_t, np.nan)}


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """One seed (`config.seed`) alone; see `run_seeds`."""
  return run_seeds(config, {config.seed: workdir},
                   show_progress=show_progress, desc=desc)[config.seed]


SMOKE_OVERRIDES = {
    "env.horizon": 8, "agent.hidden": (16,), "agent.n_envs": 2,
    "agent.batch_size": 8, "agent.buffer_size": 256,
    "agent.learning_starts": 8, "agent.updates_per_step": 1,
    "train.chunk_iterations": 1, "eval.episodes": 1}


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`smoke.steps` tiny iterations of two seeds vmapped together (as a study
  runs them) and the evaluation; raises if a run does not finish or a
  final number is not finite."""
  config = config_lib.apply_overrides(
      config, dict(SMOKE_OVERRIDES, **{"train.iterations": config.smoke.steps}))
  seeds = (config.seed, config.seed + 1)
  results = run_seeds(config, {s: os.path.join(workdir, f"seed_{s}")
                               for s in seeds}, show_progress=False)
  for seed, result in results.items():
    if result.status != "finished" or result.steps != config.smoke.steps:
      raise AssertionError(f"smoke run of seed {seed} ended {result.status} "
                           f"after {result.steps} iterations")
    if not result.final or not all(np.isfinite(list(result.final.values()))):
      raise AssertionError(f"smoke run's final metrics: {result.final}")


@register_protocol("rl")
def protocol() -> Protocol:
  return Protocol(name="rl", base_config=base_config, validate=validate,
                  run=run, smoke=smoke, run_seeds=run_seeds)
