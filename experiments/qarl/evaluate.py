"""QARL evaluation: worst-case adversary, returns, robustness heat-maps.

As the official `AbstractExperiment.evaluate` (quantal-adversarial-rl
@ aae57b7): return against an adversary, without adversary, and over a grid
of two physical parameters without adversary (11 values each). The
official worst-case adversary is the trained one unless
`n_total_iterations_worst_adversary > 0`; we train a fresh rational SAC
adversary against every frozen protagonist
(`eval.robustness.worst_adversary_iterations`) because the no-adversary
baseline has no trained adversary to face, and report the return against
each run's own trained adversary as well.

`evaluate` is the RL evaluator "qarl_robustness" (`config.eval.name`);
`heatmaps` is the study's artifacts hook (`study.artifacts`), drawing the
grids every run reports as flat metrics `grid/<i>/<j>`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from common.envs import base as envs
from common.protocols import rl


def grid_axes(config, env) -> tuple[tuple[str, np.ndarray], ...]:
  """The two robustness axes: (parameter name, values `[n]`) each."""
  n = config.eval.robustness.grid_size
  return tuple((name, np.linspace(lo, hi, n))
               for name, lo, hi in env.robustness_axes)


def grid_params(config, env, nominal: dict[str, float]
                ) -> dict[str, jax.Array]:
  """Env params `[n * n]` over the grid (first axis major)."""
  (name_a, va), (name_b, vb) = grid_axes(config, env)
  aa, bb = np.meshgrid(va, vb, indexing="ij")
  params = {k: jnp.full((aa.size,), v, jnp.float32)
            for k, v in nominal.items()}
  params[name_a] = jnp.asarray(aa.ravel(), jnp.float32)
  params[name_b] = jnp.asarray(bb.ravel(), jnp.float32)
  return params


def train_worst_adversaries(s: rl.Setup, state: rl.State):
  """A fresh rational adversary per run, trained vs the frozen protagonist."""
  iters = s.config.eval.robustness.worst_adversary_iterations
  runs = state.runs
  if iters <= 0:
    return runs
  k = s.config.train.chunk_iterations
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed), 7)
                    for seed in s.seeds])
  zeros = jnp.zeros_like(s.hp.adversary_on)
  hp = s.hp._replace(adversary_on=zeros + 1.0, adv_alpha_from_obs=zeros,
                     prot_learns=zeros)
  runs = s.fns["reset_adversary"](runs, keys, hp)
  temps = jnp.zeros((s.n_runs, k, 2, s.config.agent.n_envs))
  for i in range(-(-iters // k)):
    # Iterations counted from 0: the fresh adversary's buffer starts empty.
    runs, _ = s.fns["train_chunk"](runs, hp, temps, jnp.int32(i * k))
  return runs


@rl.register_rl_evaluator("qarl_robustness")
def evaluate(s: rl.Setup, state: rl.State) -> dict[str, np.ndarray]:
  """Per-run `[R]` returns (see `rl.returns`), against the worst case, and
  over the robustness grid (its mean, worst cell and every cell)."""
  out = rl.returns(s, state)
  r = s.n_runs
  nominal = {k: jnp.full((1,), v, jnp.float32)
             for k, v in s.env_params.items()}
  worst = train_worst_adversaries(s, state)
  out["return_vs_worst_adversary"] = s.evaluate(
      worst, nominal, np.zeros(r), np.ones(r), s.config.eval.episodes)[:, 0]
  n = s.config.eval.robustness.grid_size
  grid = s.evaluate(state.runs, grid_params(s.config, s.env,
                                            s.env_params),
                    np.zeros(r), np.zeros(r),
                    s.config.eval.robustness.grid_episodes).reshape(r, n, n)
  out["grid_mean"] = grid.mean((1, 2))
  out["grid_worst"] = grid.min((1, 2))
  for i in range(n):
    for j in range(n):
      out[f"grid/{i}/{j}"] = grid[:, i, j]
  return out


def heatmaps(configs: dict[str, Any], workdir: str,
             runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`heatmaps.png`: per arm, the grid's mean and worst case over seeds."""
  config = next(iter(configs.values()))
  env = envs.make(config.env.name, horizon=config.env.horizon)
  axes = grid_axes(config, env)
  n = config.eval.robustness.grid_size
  grids = {arm: np.asarray([[[r.final[f"grid/{i}/{j}"] for j in range(n)]
                             for i in range(n)] for r in by_seed.values()])
           for arm, by_seed in runs.items()}
  path = os.path.join(workdir, "heatmaps.png")
  plot_heatmaps(grids, axes, path)
  return {"heatmaps": path}


def plot_heatmaps(grids: dict[str, np.ndarray], axes, path: str) -> None:
  """Rows: mean and worst case over seeds `[S, n, n]`; a column per arm."""
  stats = {a: (g.mean(0), g.min(0)) for a, g in grids.items()}
  lo = min(s[1].min() for s in stats.values())
  hi = max(s[0].max() for s in stats.values())
  (name_a, va), (name_b, vb) = axes
  fig, ax = plt.subplots(2, len(grids), figsize=(3.4 * len(grids), 6.4),
                         squeeze=False, constrained_layout=True)
  for j, arm in enumerate(grids):
    for i, (what, img) in enumerate(zip(("mean", "worst"), stats[arm])):
      im = ax[i, j].imshow(img.T, origin="lower", aspect="auto", vmin=lo,
                           vmax=hi, extent=(va[0], va[-1], vb[0], vb[-1]))
      ax[i, j].set_title(f"{arm}: {what} over seeds\n(grid mean "
                         f"{img.mean():.1f})", fontsize=9)
      ax[i, j].set_xlabel(name_a)
      ax[i, j].set_ylabel(name_b)
  fig.colorbar(im, ax=ax, shrink=0.8, label="return (no adversary)")
  fig.savefig(path, dpi=110)
  plt.close(fig)
