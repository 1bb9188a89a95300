"""Our sparsity-constrained OT solver vs POT's, same problems, side by side.

For each n, one n x n problem (2-D Gaussian clouds, squared-Euclidean cost
normalised by its max, gamma = 1, k = 5, semi-dual; both solvers L-BFGS; ours
tol=1e-6 on the gradient norm and ftol=1e-9, POT's defaults stopThr=1e-9
(scipy's ftol and gtol), numItermax=500). Reported: wall time (ours: median
of `--repeats` calls after compilation; POT: median of `--repeats` calls),
the time ratio, iterations, both semi-dual values scored by one float64
objective (ours, at each side's potentials), transport costs, max non-zeros
per column; and, for ours, the time of one L-BFGS iteration against one
memory pass over the cost matrix (the fused column max of f - C, the access
pattern of the top-k selection), both medians of `--repeats`.

    python -m benchmarks.sparse_ot_vs_pot [--sizes=100,300,1000,2000]
        [--repeats=3] [--dtype=float64|float32] [--only=ours|pot]

`/proc/loadavg` is printed before and after: timings on a shared machine are
upper bounds; the ratio is measured side by side in one process. POT's
iterations are O(n^2 log n) numpy on one core (n = 4000 takes ~10 minutes on
2 idle cores). `--only` runs one side (the other side's columns read "-").
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import ot

from algos.ot import sparse_ot
from benchmarks import bench_lib


def _problem(n: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  cost = ot.dist(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) + 1.0)
  return cost / cost.max()


def _loadavg() -> str:
  try:
    with open("/proc/loadavg") as f:
      return " ".join(f.read().split()[:3])
  except OSError:
    return "n/a"


def _median_time(fn, repeats):
  times, out = [], None
  for _ in range(repeats):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times), out


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sizes", default="100,300,1000,2000")
  p.add_argument("--k", type=int, default=5)
  p.add_argument("--gamma", type=float, default=1.0)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
  p.add_argument("--only", choices=("ours", "pot"), default=None,
                 help="run one side only")
  args = p.parse_args()
  jax.config.update("jax_enable_x64", True)   # the float64 scoring
  dtype = jnp.dtype(args.dtype)
  run_ours, run_pot = args.only in (None, "ours"), args.only in (None, "pot")
  print(f"device: {bench_lib.device_name()}; k = {args.k}, gamma = "
        f"{args.gamma}, semi-dual, ours in {args.dtype}; loadavg "
        f"{_loadavg()}")
  print("| n | ours (s) | POT (s) | POT / ours | iters ours / POT "
        "| semi-dual value ours / POT | <P,C> ours / POT "
        "| max nnz/col ours / POT | ours: ms / iteration | "
        "ms / memory pass |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for n in [int(s) for s in args.sizes.split(",")]:
    cost = _problem(n)
    w = np.full(n, 1.0 / n)
    c = jnp.asarray(cost, dtype)
    # Compiled ahead of time: the timed calls are solves only.
    solve = jax.jit(lambda c: sparse_ot.solve_cost_matrix(
        c, args.k, args.gamma)).lower(c).compile()
    score = jax.jit(lambda f: sparse_ot.semi_dual_objective(
        f, jnp.asarray(cost), jnp.asarray(w), jnp.asarray(w), args.gamma,
        args.k))
    ours = theirs = None
    cells = {"ours": ["-"] * 5, "pot": ["-"] * 5}
    if run_ours:
      ours, out = _median_time(lambda: solve(c), args.repeats)
      f = jnp.zeros((n,), dtype)
      colmax = jax.jit(lambda f, c: jnp.max(f[:, None] - c, axis=0))
      colmax(f, c).block_until_ready()
      mem, _ = _median_time(lambda: colmax(f, c), args.repeats)
      plan = np.asarray(out.plan)
      per_iter = ours / max(int(out.num_iters), 1)
      cells["ours"] = [
          f"{ours:.3f}", str(int(out.num_iters)),
          f"{float(score(jnp.asarray(out.f, jnp.float64))):.6f}",
          f"{(plan * cost).sum():.5f}", str(int((plan > 0).sum(0).max())),
          f"{per_iter * 1e3:.2f}", f"{mem * 1e3:.2f}"]
    if run_pot:
      # POT writes into its inputs: copies.
      theirs, (plan, log) = _median_time(
          lambda: ot.smooth.smooth_ot_semi_dual(
              w.copy(), w.copy(), cost.copy(), args.gamma,
              reg_type="sparsity_constrained", max_nz=args.k, log=True),
          args.repeats)
      cells["pot"] = [
          f"{theirs:.3f}", str(int(log["res"].nit)),
          f"{float(score(jnp.asarray(log['alpha']))):.6f}",
          f"{(plan * cost).sum():.5f}", str(int((plan > 0).sum(0).max()))]
    ratio = f"{theirs / ours:.1f}" if ours and theirs else "-"
    o, t = cells["ours"], cells["pot"]
    extra = o[5:] if len(o) > 5 else ["-", "-"]
    print(f"| {n} | {o[0]} | {t[0]} | {ratio} | {o[1]} / {t[1]} | "
          f"{o[2]} / {t[2]} | {o[3]} / {t[3]} | {o[4]} / {t[4]} | "
          f"{extra[0]} | {extra[1]} |", flush=True)
  print(f"loadavg at the end: {_loadavg()}")


if __name__ == "__main__":
  main()
