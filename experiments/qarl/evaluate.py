"""QARL evaluation: worst-case adversary, returns, robustness heat-maps.

As the official `AbstractExperiment.evaluate` (quantal-adversarial-rl
@ aae57b7): return against an adversary, without adversary, and over a grid
of two physical parameters without adversary (11 values each). The
official worst-case adversary is the trained one unless
`n_total_iterations_worst_adversary > 0`; we train a fresh rational SAC
adversary against every frozen protagonist (`eval.worst_adversary_iterations`)
because the no-adversary baseline has no trained adversary to face, and
report the return against each run's own trained adversary as well.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from algos.rl import qarl


def grid_params(config, env) -> tuple[dict[str, jax.Array], tuple]:
  """Env params `[G]` over the 2-D robustness grid, and the axes."""
  n = config.eval.grid_size
  (name_a, lo_a, hi_a), (name_b, lo_b, hi_b) = env.robustness_axes
  va, vb = np.linspace(lo_a, hi_a, n), np.linspace(lo_b, hi_b, n)
  aa, bb = np.meshgrid(va, vb, indexing="ij")
  base = dict(config.env.params)
  params = {k: jnp.full((n * n,), v, jnp.float32) for k, v in base.items()}
  params[name_a] = jnp.asarray(aa.ravel(), jnp.float32)
  params[name_b] = jnp.asarray(bb.ravel(), jnp.float32)
  return params, ((name_a, va), (name_b, vb))


def train_worst_adversaries(trainer, state):
  """A fresh rational adversary per run, trained vs the frozen protagonist."""
  cfg = trainer.config
  iters = cfg.eval.worst_adversary_iterations
  runs = state.runs
  if iters <= 0:
    return runs
  k = cfg.rl.chunk_iterations
  keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), 7)
                    for s in trainer.plan.seeds])
  hp = trainer.hp._replace(
      adversary_on=jnp.ones_like(trainer.hp.adversary_on),
      adv_alpha_from_obs=jnp.zeros_like(trainer.hp.adversary_on),
      prot_learns=jnp.zeros_like(trainer.hp.adversary_on))
  runs = trainer.fns["reset_adversary"](runs, keys, hp)
  temps = jnp.zeros((trainer.n_runs, k, 2, cfg.rl.n_envs))
  for i in range(-(-iters // k)):
    # Iterations counted from 0: the fresh adversary's buffer starts empty.
    runs, _ = trainer._chunk(runs, hp, temps, jnp.int32(i * k))  # pylint: disable=protected-access
  return runs


def own_adversary_temperature(trainer, state) -> np.ndarray:
  """The temperature each run's adversary is evaluated at `[R]`."""
  q = trainer.config.qarl
  out = np.zeros(trainer.n_runs, np.float32)
  conc = np.asarray(state.conc)
  for r, method in enumerate(trainer.plan.methods):
    if method == "qarl_linear":
      out[r] = q.linear_target
    elif method == "qarl":
      out[r] = qarl.GammaCurriculum(rate=q.rate).mean(float(conc[r]))
  return out


def evaluate(trainer, state, worst_runs) -> dict[str, np.ndarray]:
  """Per-run metrics `[R]` and robustness grids `[R, n, n]`."""
  cfg, spec = trainer.config, trainer.spec
  episodes = cfg.eval.episodes
  key = jax.random.PRNGKey(cfg.eval.seed)

  def run_eval(runs, params, temps, on, eps):
    return np.asarray(trainer.fns["evaluate"](
        runs, params, jnp.asarray(temps, jnp.float32),
        jnp.asarray(on, jnp.float32), key, eps))

  nominal = {k: jnp.full((1,), v, jnp.float32)
             for k, v in cfg.env.params.items()}
  r = trainer.n_runs
  own_t = own_adversary_temperature(trainer, state)
  has_adv = np.asarray([m != "sac" for m in trainer.plan.methods])
  vs_own = run_eval(state.runs, nominal, own_t, has_adv.astype(np.float32),
                    episodes)[:, 0]
  vs_own = np.where(has_adv, vs_own, np.nan)
  vs_worst = run_eval(worst_runs, nominal, np.zeros(r), np.ones(r),
                      episodes)[:, 0]
  no_adv = run_eval(state.runs, nominal, np.zeros(r), np.zeros(r),
                    episodes)[:, 0]
  params, axes = grid_params(cfg, spec.env)
  n = cfg.eval.grid_size
  grid = run_eval(state.runs, params, np.zeros(r), np.zeros(r),
                  cfg.eval.grid_episodes).reshape(r, n, n)
  return dict(return_vs_own_adversary=vs_own,
              return_vs_worst_adversary=vs_worst,
              return_no_adversary=no_adv, grid_mean=grid.mean((1, 2)),
              grid_worst=grid.min((1, 2)), grid=grid, axes=axes,
              own_temperature=own_t)


def plot_heatmaps(labels: list[str], grids: dict[str, np.ndarray], axes,
                  path: str) -> None:
  """Rows: mean and worst case over seeds; one column per arm."""
  arms = list(dict.fromkeys(labels))
  stats = {a: (grids[a].mean(0), grids[a].min(0)) for a in arms}
  lo = min(s[1].min() for s in stats.values())
  hi = max(s[0].max() for s in stats.values())
  (name_a, va), (name_b, vb) = axes
  fig, ax = plt.subplots(2, len(arms), figsize=(3.2 * len(arms), 6.0),
                         squeeze=False)
  for j, arm in enumerate(arms):
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


def summarize(labels: list[str], per_run: dict[str, Any],
              metrics: list[str]) -> dict[str, dict[str, dict]]:
  out = {}
  for arm in dict.fromkeys(labels):
    idx = np.array([l == arm for l in labels])
    out[arm] = {}
    for m in metrics:
      v = np.asarray(per_run[m], np.float64)[idx]
      if np.all(np.isnan(v)):
        out[arm][m] = dict(mean=None, std=None)
        continue
      out[arm][m] = dict(mean=float(v.mean()),
                         std=float(v.std(ddof=1)) if len(v) > 1 else None)
  return out
