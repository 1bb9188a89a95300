"""The sparsity / cost trade-off of sparse OT against POT (no training).

Paper Sec. 6 ("cost vs k"): one run is one seed and one k
(`config.tradeoff.k`): two 2-D Gaussian clouds (n = m), squared-Euclidean
cost normalised by its max, gamma fixed, solved by
`algos.ot.sparse_ot.solve_cost_matrix` (semi-dual). Recorded: the largest
number of non-zeros in a column (must be <= k), the transport cost
<P, C>, the row-marginal error, the semi-dual value, and the same for POT's
semi-dual (`ot.smooth`, the authors' solver and our oracle) on the same
problem, its potentials scored with our objective; the exact OT cost
(`ot.emd2`) that k = 1 must equal and every k must lie above.

With `tradeoff.float64` the solves run in float64 (`jax.enable_x64` for
this function only): in float32, L-BFGS's line search on the non-smooth
semi-dual of a binding k (k = 2 here) evaluates the objective far from the
optimum where round-off dominates and can end at a bad iterate (README).

Registered as the analysis "sparse_ot_tradeoff" (`common.protocols.
analysis`); `artifacts` draws the cost-vs-k figure of a study.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np
import ot as pot

from algos.ot import sparse_ot
from common import config as config_lib
from common.protocols import analysis

RULES = {
    "tradeoff.n": config_lib.at_least(2, integer=True),
    "tradeoff.k": config_lib.at_least(1, integer=True),
    "tradeoff.gamma": config_lib.greater_than(0.0),
    "tradeoff.max_iter": config_lib.at_least(1, integer=True),
    "tradeoff.ftol": config_lib.at_least(0.0),
}


def clouds(seed: int, n: int) -> np.ndarray:
  """The normalised `[n, n]` cost between the seed's two 2-D clouds."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 2))
  y = rng.normal(size=(n, 2)) * 0.7 + np.array([1.0, 0.5])
  cost = pot.dist(x, y)
  return cost / cost.max()


@functools.partial(jax.jit, static_argnums=(1, 3, 4))
def _solve(cost, k, gamma, max_iter, ftol):
  return sparse_ot.solve_cost_matrix(cost, k, gamma, max_iter=max_iter,
                                     ftol=ftol)


def _pot_semi_dual(cost: np.ndarray, k: int, gamma: float):
  """POT's semi-dual solution (the oracle): plan `[n, n]` and potentials."""
  n = cost.shape[0]
  w = np.full(n, 1.0 / n)
  # POT writes into its inputs: pass copies.
  plan, log = pot.smooth.smooth_ot_semi_dual(
      w.copy(), w.copy(), cost.copy(), gamma,
      reg_type="sparsity_constrained", max_nz=k, log=True)
  return plan, log["alpha"]


def run(config: mlc.ConfigDict) -> dict[str, float]:
  """The metrics of one (seed, k): ours, POT's and the exact OT cost."""
  t = config.tradeoff
  n, k = t.n, t.k
  cost = clouds(config.seed, n)
  uniform = np.full(n, 1.0 / n)
  with jax.enable_x64(bool(t.float64)):
    dtype = jnp.float64 if t.float64 else jnp.float32
    gamma = jnp.asarray(t.gamma, dtype)
    out = jax.device_get(_solve(jnp.asarray(cost, dtype), k, gamma,
                                t.max_iter, float(t.get("ftol", 1e-9))))
    pot_plan, alpha = _pot_semi_dual(cost, k, t.gamma)
    w = jnp.asarray(uniform, dtype)
    pot_value = sparse_ot.semi_dual_objective(
        jnp.asarray(alpha, dtype), jnp.asarray(cost, dtype), w, w, gamma, k)
  plan = np.asarray(out.plan)
  return {
      "max_nnz_per_column": int(np.count_nonzero(plan > 0, axis=0).max()),
      "transport_cost": float(out.transport_cost),
      "row_marginal_l1": float(np.abs(plan.sum(1) - 1.0 / n).sum()),
      "semi_dual_value": float(out.dual_value),
      "grad_norm": float(out.grad_norm),
      "num_iters": int(out.num_iters),
      "pot_transport_cost": float((pot_plan * cost).sum()),
      "pot_row_marginal_l1": float(np.abs(pot_plan.sum(1) - 1.0 / n).sum()),
      "pot_semi_dual_value": float(pot_value),
      "emd_transport_cost": float(pot.emd2(uniform, uniform, cost)),
  }


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)
  t = config.tradeoff
  if t.k > t.n:
    raise config_lib.ConfigError(
        f"config.tradeoff.k={t.k} is not allowed: expected an int in "
        f"[1, tradeoff.n={t.n}] (k = n is quadratically-regularised OT)")


@analysis.register_analysis("sparse_ot_tradeoff")
def make() -> analysis.Analysis:
  return analysis.Analysis(
      run=run, validate=validate,
      smoke={"tradeoff.n": 6, "tradeoff.k": 2, "tradeoff.max_iter": 50})


def artifacts(configs: dict[str, mlc.ConfigDict], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`tradeoff.png`: <P, C> vs k against exact and quadratic OT, and the
  largest column cardinality vs k."""
  ks = sorted((configs[a].tradeoff.k, a) for a in runs)
  finals = lambda a, m: np.array([r.final[m] for r in runs[a].values()])
  cost = [finals(a, "transport_cost") for _, a in ks]
  nnz = [finals(a, "max_nnz_per_column").max() for _, a in ks]
  kv = [k for k, _ in ks]
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  ax = axes[0]
  ax.errorbar(kv, [c.mean() for c in cost], yerr=[c.std() for c in cost],
              marker="o", label="sparsity-constrained OT")
  ax.axhline(finals(ks[0][1], "emd_transport_cost").mean(), color="k",
             ls="--", label="exact OT")
  n = configs[ks[0][1]].tradeoff.n
  if kv[-1] >= n:
    ax.axhline(cost[-1].mean(), color="r", ls=":",
               label="quadratic OT (k = n)")
  ax.set_xscale("log")
  ax.set_xlabel("k (max non-zeros per column)")
  ax.set_ylabel("<P, C>")
  ax.legend(fontsize=8)
  ax = axes[1]
  ax.plot(kv, nnz, marker="o", label="max over seeds")
  ax.plot(kv, kv, "k--", label="k")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("k")
  ax.set_ylabel("max non-zeros in a column")
  ax.legend(fontsize=8)
  fig.tight_layout()
  path = os.path.join(workdir, "tradeoff.png")
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return {"plot": path}
