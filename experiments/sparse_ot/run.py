"""Runner of the sparse-OT study: sparsity/cost trade-off and MoE routing.

`regjax run sparse_ot` dispatches here (`config.runner`). Two parts:

1. Trade-off on synthetic clouds (paper Sec. 6, Fig. "cost vs k"): for each
   seed, two 2-D Gaussian clouds (n = m), squared-Euclidean cost normalised
   by its max, gamma fixed; `algos.ot.sparse_ot.solve` (semi-dual) for every
   k in `tradeoff.ks`, vmapped over seeds. We record the largest number of
   non-zeros in a column (must be <= k), the transport cost <P, C>, and the
   exact OT (POT `emd2`) and quadratic-OT (k = n) costs it should lie
   between.
2. The motivating use: a small MoE on the embedded digits with top-k
   (token-choice, capacity-truncated) vs sparsity-constrained OT routing
   (`experiments/sparse_ot/moe.py`): test accuracy and load balance.

The MoE is a model with its own router, not a loss on the shared
classifier, and the shared model zoo (common/models) has no MoE; hence a
runner rather than `common.study`.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np
import ot as pot  # POT, only for the exact-OT reference line

from algos.ot import sparse_ot
from common import config as config_lib
from common.core import sharding as sharding_lib
from common.study import engine as study_lib
from experiments.sparse_ot import moe as moe_lib


def _clouds(seed: int, n: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 2))
  y = rng.normal(size=(n, 2)) * 0.7 + np.array([1.0, 0.5])
  cost = pot.dist(x, y)
  return cost / cost.max()


def _pot_semi_dual(cost: np.ndarray, k: int, gamma: float):
  """POT's semi-dual solution (the oracle): plan `[n, n]` and potentials."""
  n = cost.shape[0]
  w = np.full(n, 1.0 / n)
  # POT writes into its inputs: pass copies.
  plan, log = pot.smooth.smooth_ot_semi_dual(
      w.copy(), w.copy(), cost.copy(), gamma,
      reg_type="sparsity_constrained", max_nz=k, log=True)
  return plan, log["alpha"]


def run_tradeoff(cfg: mlc.ConfigDict, seeds: Sequence[int]) -> dict:
  """Cost and cardinality vs k, per seed; exact-OT and quadratic-OT lines.

  With `cfg.float64` the solves run in float64 (`jax.enable_x64` for this
  function only): in float32, L-BFGS's line search on the non-smooth
  semi-dual of a binding k (k = 2 here) evaluates the objective far from
  the optimum where round-off dominates, and can end at a bad iterate
  (README: semi-dual value -2.04 instead of 0.0606). POT's semi-dual
  (float64, SciPy L-BFGS-B) is solved on the same problems as the oracle.
  """
  n = cfg.n
  x64 = bool(cfg.float64)
  dtype = np.float64 if x64 else np.float32
  clouds = [_clouds(s, n) for s in seeds]
  rows = {}
  with jax.enable_x64(x64):
    costs = jnp.asarray(np.stack(clouds), dtype)
    gamma = jnp.asarray(cfg.gamma, dtype)
    uniform = jnp.full((n,), 1.0 / n, dtype)
    for k in list(cfg.ks) + [n]:
      solve = jax.jit(jax.vmap(lambda c, k=k: sparse_ot.solve_cost_matrix(
          c, k, gamma, max_iter=cfg.max_iter)))
      out = solve(costs)
      plan = np.asarray(out.plan)
      pot_plans, pot_values = [], []
      for cost in clouds:
        pot_plan, alpha = _pot_semi_dual(cost, k, cfg.gamma)
        pot_plans.append(pot_plan)
        pot_values.append(float(sparse_ot.semi_dual_objective(
            jnp.asarray(alpha, dtype), jnp.asarray(cost, dtype), uniform,
            uniform, gamma, k)))
      pot_plans = np.stack(pot_plans)
      rows[k] = {
          "transport_cost": np.asarray(out.transport_cost).tolist(),
          "max_nnz_per_column": np.count_nonzero(plan > 0, axis=1).max(
              -1).tolist(),
          "row_marginal_l1": np.abs(plan.sum(2) - 1.0 / n).sum(-1).tolist(),
          "grad_norm": np.asarray(out.grad_norm).tolist(),
          "semi_dual_value": np.asarray(out.dual_value).tolist(),
          "num_iters": np.asarray(out.num_iters).tolist(),
          "pot_semi_dual_value": pot_values,
          "pot_transport_cost": (pot_plans * np.stack(clouds)).sum(
              (1, 2)).tolist(),
          "pot_row_marginal_l1": np.abs(pot_plans.sum(2) - 1.0 / n).sum(
              -1).tolist(),
      }
  uniform = np.full(n, 1.0 / n)
  emd = [float(pot.emd2(uniform, uniform, c)) for c in clouds]
  return {"rows": {str(k): v for k, v in rows.items()}, "emd": emd,
          "quadratic": rows[n]["transport_cost"], "n": n,
          "gamma": cfg.gamma, "float64": x64}


def _plot_tradeoff(result: dict, path: str) -> None:
  ks = [int(k) for k in result["rows"]]
  cost = np.array([result["rows"][str(k)]["transport_cost"] for k in ks])
  nnz = np.array([result["rows"][str(k)]["max_nnz_per_column"] for k in ks])
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
  ax = axes[0]
  ax.errorbar(ks, cost.mean(1), yerr=cost.std(1), marker="o",
              label="sparsity-constrained OT")
  ax.axhline(np.mean(result["emd"]), color="k", ls="--", label="exact OT")
  ax.axhline(np.mean(result["quadratic"]), color="r", ls=":",
             label="quadratic OT (k = n)")
  ax.set_xscale("log")
  ax.set_xlabel("k (max non-zeros per column)")
  ax.set_ylabel("<P, C>")
  ax.legend(fontsize=8)
  ax = axes[1]
  ax.plot(ks, nnz.max(1), marker="o", label="max over seeds")
  ax.plot(ks, ks, "k--", label="k")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("k")
  ax.set_ylabel("max non-zeros in a column")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def validate(config: mlc.ConfigDict) -> None:
  t = config.tradeoff
  if any(k < 1 or k > t.n for k in t.ks):
    raise ValueError(f"tradeoff.ks={t.ks} must lie in [1, n={t.n}]")
  if t.gamma <= 0 or config.moe.gamma <= 0:
    raise ValueError("tradeoff.gamma and moe.gamma must be > 0")
  for arm in config.moe.routers:
    if arm not in ("topk", "sparse_ot"):
      raise ValueError(f"moe.routers has {arm!r}; allowed: 'topk', "
                       f"'sparse_ot'")
  sharding_lib.check_batch_size(config.moe.batch_size, "moe.batch_size")


def _fmt(values: list[float], digits: int = 3) -> str:
  mean, std = study_lib._mean_std(values)  # pylint: disable=protected-access
  return f"{mean:.{digits}f}" + (f" +- {std:.{digits}f}" if std is not None
                                 else "")


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str = ""):
  """Both parts over `seeds`; tables, JSON and the trade-off plot."""
  validate(config)
  os.makedirs(workdir, exist_ok=True)
  start = time.time()
  tradeoff = run_tradeoff(config.tradeoff, seeds)
  tradeoff_seconds = time.time() - start
  plot = os.path.join(workdir, "tradeoff.png")
  _plot_tradeoff(tradeoff, plot)
  routers = [r for r in config.moe.routers if not arms or r in arms]
  data = moe_lib.load_digits()
  moe_runs = {}
  for router in routers:
    moe_runs[router] = []
    for seed in seeds:
      print(f"[sparse_ot] MoE {router} seed {seed}", flush=True)
      moe_runs[router].append(moe_lib.train_and_eval(router, seed,
                                                     config.moe, data))
  t = config.tradeoff
  lines = [
      f"Trade-off: {t.n} x {t.n} 2-D clouds, gamma = {t.gamma}, semi-dual "
      f"({'float64' if t.float64 else 'float32'}, at most {t.max_iter} "
      f"L-BFGS iterations), mean +- std over seeds {list(seeds)} "
      f"({tradeoff_seconds:.0f} s); POT's semi-dual (float64) on the same "
      f"problems as the oracle, its value scored with our objective.", "",
      "| k | max nnz / column (max over seeds) | <P, C> | row-marginal L1 "
      "error | semi-dual value | POT: <P, C> | POT: row-marginal L1 error "
      "| POT: semi-dual value |", "|---|---|---|---|---|---|---|---|"]
  for k, row in tradeoff["rows"].items():
    lines.append(f"| {k}{' (= n)' if int(k) == t.n else ''} | "
                 f"{max(row['max_nnz_per_column'])} | "
                 f"{_fmt(row['transport_cost'], 5)} | "
                 f"{_fmt(row['row_marginal_l1'])} | "
                 f"{_fmt(row['semi_dual_value'], 5)} | "
                 f"{_fmt(row['pot_transport_cost'], 5)} | "
                 f"{_fmt(row['pot_row_marginal_l1'])} | "
                 f"{_fmt(row['pot_semi_dual_value'], 5)} |")
  lines.append(f"| exact OT (POT emd2) | - | {_fmt(tradeoff['emd'], 5)} | 0 "
               f"| - | - | - | - |")
  m = config.moe
  lines += ["", f"MoE on digits: {m.num_experts} experts, 4 patch tokens per "
            f"image, batch {m.batch_size} ({4 * m.batch_size} tokens), "
            f"capacity factor {m.capacity_factor}, {m.steps} Adam steps; "
            f"test set routed in batches of {m.batch_size}; mean +- std over "
            f"seeds {list(seeds)}.", "",
            "| router | test accuracy (%) | tokens dropped (%) | load CV "
            "| max tokens / expert (capacity) | train s |",
            "|---|---|---|---|---|---|"]
  summary = {"tradeoff": tradeoff, "moe": {}}
  for router, runs in moe_runs.items():
    col = lambda key: [r[key] for r in runs]  # pylint: disable=cell-var-from-loop
    summary["moe"][router] = {
        key: dict(zip(("mean", "std"), study_lib._mean_std(col(key))))  # pylint: disable=protected-access
        for key in runs[0]}
    lines.append(f"| {router} | {_fmt(col('accuracy'))} | "
                 f"{_fmt(col('dropped'))} | {_fmt(col('load_cv'))} | "
                 f"{max(col('max_tokens_per_expert')):g} "
                 f"({runs[0]['capacity']:g}) | "
                 f"{_fmt(col('train_seconds'))} |")
  table = "\n".join(lines)
  return study_lib.write_results(workdir, table, seeds, summary, config,
                                 command, extra_paths={"plot": plot},
                                 moe_runs=moe_runs)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A tiny study through `run_study`: table, JSON and plot are written.

  6 x 6 trade-off with k in {1, 2} (cardinality <= k checked), and 2 MoE
  steps per router with 4 experts of width 8 and batch 16 (finite accuracy
  checked). The sizes do not depend on the variant (the variant's own
  config is still validated), so the smoke of a second variant reuses the
  first one's compilations from the persistent cache.
  """
  validate(config)
  small = config_lib.apply_overrides(config, {
      "tradeoff.n": 6, "tradeoff.ks": (1, 2), "tradeoff.max_iter": 50,
      "moe.steps": 2, "moe.batch_size": 16, "moe.num_experts": 4,
      "moe.width": 8})
  result = run_study(small, workdir, seeds=[0], command="smoke")
  rows = result.summary["tradeoff"]["rows"]
  for k in ("1", "2"):
    if max(rows[k]["max_nnz_per_column"]) > int(k):
      raise AssertionError(f"smoke: more than k={k} non-zeros per column")
  for router, stats in result.summary["moe"].items():
    if not np.isfinite(stats["accuracy"]["mean"]):
      raise AssertionError(f"smoke: MoE {router} gave {stats}")
  for path in result.paths.values():
    if not os.path.exists(path):
      raise AssertionError(f"smoke: {path} was not written")
