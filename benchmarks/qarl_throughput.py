"""Env steps/s of our jitted SAC loop vs rejax's SAC, same task and sizes.

Both train SAC on Pendulum-v1 dynamics (our `common.envs.pendulum` with the
adversary switched off is gymnax's Pendulum-v1 step, tested in
tests/common/envs) with the same networks (2 x `--hidden` ReLU MLPs, twin
critics), `--n_envs` parallel environments, `--updates` gradient steps of
batch `--batch` per vectorised env step, and the same replay capacity and
warm-up. Ours is the full two-player loop of the RL protocol (SAC arm: the
adversary acts with zero force; only one agent updates per step, so the
number of gradient steps per env step is the same as rejax's). Both are run
for `--seeds` seeds vmapped, compiled first, then timed in alternating
rounds; the ratio is of median env steps/s.

rejax is an optional benchmark dependency (`pip install rejax`).

    python -m benchmarks.qarl_throughput --seeds=1,4 --rounds=3
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.protocols import rl


def ours(args, n_seeds: int):
  config = config_lib.load_config("experiments/qarl/config.py:pendulum")
  config = config_lib.apply_overrides(config, {
      "agent.hidden": (args.hidden, args.hidden),
      "agent.n_envs": args.n_envs, "agent.batch_size": args.batch,
      "agent.updates_per_step": args.updates,
      "agent.buffer_size": args.buffer, "agent.learning_starts": args.fill,
      "agent.adversary": "none", "train.chunk_iterations": 1})
  s = rl.setup(config, list(range(n_seeds)))
  box = {"runs": s.init_state().runs, "it": 0}
  temps = jnp.zeros((n_seeds, 1, 2, args.n_envs))
  # One iteration: two episodes of 200 steps on every env.
  steps = 2 * s.env.horizon * args.n_envs * n_seeds

  def go():
    box["runs"], m = s.fns["train_chunk"](box["runs"], s.hp, temps,
                                          jnp.int32(box["it"]))
    box["it"] += 1
    jax.block_until_ready(m)
  return go, steps


class _DoneStep:
  """gymnax's step returns (obs, state, r, terminated, truncated, info);
  rejax 0.1.3 unpacks the older (obs, state, r, done, info)."""

  def __init__(self, env):
    self._env = env

  def __getattr__(self, name):
    if name == "_env":   # during copy.deepcopy, before __init__ ran
      raise AttributeError(name)
    return getattr(self._env, name)

  def step(self, key, state, action, params=None):
    out = self._env.step(key, state, action, params)
    if len(out) == 5:
      return out
    obs, state, r, terminated, truncated, info = out
    return obs, state, r, jnp.logical_or(terminated, truncated), info


def rejax_sac(args, n_seeds: int, steps_per_call: int):
  try:
    import gymnax  # pylint: disable=g-import-not-at-top
    import rejax  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit("the rejax comparison needs `pip install rejax` "
                     "(an optional benchmark dependency)") from e
  env, env_params = gymnax.make("Pendulum-v1")
  # Same number of env steps per timed call as ours (per seed).
  total = steps_per_call // n_seeds
  algo = rejax.SAC.create(
      env=_DoneStep(env), env_params=env_params, num_envs=args.n_envs, num_epochs=args.updates,
      batch_size=args.batch, buffer_size=args.buffer, fill_buffer=args.fill,
      total_timesteps=total, eval_freq=total, skip_initial_evaluation=True,
      learning_rate=1e-3, polyak=0.995,
      hidden_layer_sizes=(args.hidden, args.hidden))
  # Time training only: rejax evaluates 128 episodes per call by default.
  algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
  # Every call continues from the previous state, so the buffer is past
  # its warm-up for the timed calls, as ours.
  train = jax.jit(jax.vmap(lambda ts: algo.train(train_state=ts)))
  keys = jax.random.split(jax.random.PRNGKey(0), n_seeds)
  box = {"ts": jax.vmap(algo.init_state)(keys)}

  def go():
    box["ts"], _ = train(box["ts"])
    jax.block_until_ready(box["ts"])
  return go, total * n_seeds


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--seeds", default="1,4")
  p.add_argument("--hidden", type=int, default=64)
  p.add_argument("--n_envs", type=int, default=8)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--updates", type=int, default=2)
  p.add_argument("--buffer", type=int, default=50_000)
  p.add_argument("--fill", type=int, default=1_000)
  p.add_argument("--rounds", type=int, default=3)
  args = p.parse_args()
  print(f"device: {jax.devices()[0].device_kind}; Pendulum-v1, MLP 2x"
        f"{args.hidden}, {args.n_envs} envs, {args.updates} updates of "
        f"batch {args.batch} per vectorised step")
  for n in [int(s) for s in args.seeds.split(",")]:
    fns = {}
    fns["ours"], steps = ours(args, n)
    fns["rejax"], steps_r = rejax_sac(args, n, steps)
    counts = {"ours": steps, "rejax": steps_r}
    t0 = time.time()
    for f in fns.values():   # compile + warm-up (fills the buffers)
      f()
      f()
    compile_s = time.time() - t0
    times = {k: [] for k in fns}
    for _ in range(args.rounds):
      for k, f in fns.items():
        t = time.time()
        f()
        times[k].append(time.time() - t)
    rate = {k: counts[k] / statistics.median(v) for k, v in times.items()}
    print(f"seeds vmapped: {n} (compile + warm-up {compile_s:.0f} s)")
    for k in fns:
      print(f"  {k:<6} {rate[k]:10,.0f} env steps/s "
            f"(median of {args.rounds} calls of {counts[k]} steps)")
    print(f"  ratio ours / rejax: {rate['ours'] / rate['rejax']:.2f}")


if __name__ == "__main__":
  main()
