"""Our sparsity-constrained OT solver vs POT's, same problems, side by side.

For each n, one n x n problem (2-D Gaussian clouds, squared-Euclidean cost
normalised by its max, gamma = 1, k = 5, semi-dual; both solvers L-BFGS, our
tolerance 1e-6 on the gradient norm, POT's defaults stopThr=1e-9,
numItermax=500). Reported: wall time (ours: median of `--repeats` calls after
compilation; POT: median of `--repeats` calls), the time ratio, and the
results side by side (semi-dual value, transport cost, max non-zeros per
column).

    python -m benchmarks.sparse_ot_vs_pot [--sizes=100,250,500,1000] [--repeats=3]
        [--only=ours|pot]

POT's iterations are O(n^2 log n) numpy on one core; on 2 shared CPU cores we
stop at n = 1000 by default (n = 4000 takes minutes per call there); pass
--sizes=...,4000 on a bigger machine. `--only` runs one side, so that each
side of a large n can be run under its own `timeout`; the other side's
columns then read "-".
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


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sizes", default="100,250,500,1000")
  p.add_argument("--k", type=int, default=5)
  p.add_argument("--gamma", type=float, default=1.0)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--only", choices=("ours", "pot"), default=None,
                 help="run one side only")
  args = p.parse_args()
  run_ours, run_pot = args.only in (None, "ours"), args.only in (None, "pot")
  regul = ot.smooth.SparsityConstrained(args.k, args.gamma)
  print(f"device: {bench_lib.device_name()}; k = {args.k}, gamma = "
        f"{args.gamma}, semi-dual")
  print("| n | ours (s) | POT (s) | POT / ours | semi-dual value ours / POT "
        "| <P,C> ours / POT | max nnz/col ours / POT | iters ours |")
  print("|---|---|---|---|---|---|---|---|")
  for n in [int(s) for s in args.sizes.split(",")]:
    cost = _problem(n)
    w = np.full(n, 1.0 / n)
    c32 = jnp.asarray(cost, jnp.float32)
    # Compiled ahead of time: the timed calls are solves only.
    solve = jax.jit(lambda c: sparse_ot.solve_cost_matrix(
        c, args.k, args.gamma)).lower(c32).compile()
    ours, out = [], None
    for _ in range(args.repeats if run_ours else 0):
      t = time.perf_counter()
      out = jax.block_until_ready(solve(c32))
      ours.append(time.perf_counter() - t)
    theirs, plan = [], None
    for _ in range(args.repeats if run_pot else 0):
      t = time.perf_counter()
      # POT writes into its inputs: copies.
      plan, log = ot.smooth.smooth_ot_semi_dual(
          w.copy(), w.copy(), cost.copy(), args.gamma,
          reg_type="sparsity_constrained", max_nz=args.k, log=True)
      theirs.append(time.perf_counter() - t)
    ours_cells = pot_cells = ["-"] * 4
    if out is not None:
      ours_cells = [f"{statistics.median(ours):.3f}",
                    f"{float(out.dual_value):.5f}",
                    f"{float(out.transport_cost):.5f}",
                    str(int((np.asarray(out.plan) > 0).sum(0).max()))]
    if plan is not None:
      pot_value = ot.smooth.semi_dual_obj_grad(log["alpha"], w, w,
                                               cost.copy(), regul)[0]
      pot_cells = [f"{statistics.median(theirs):.3f}", f"{pot_value:.5f}",
                   f"{(plan * cost).sum():.5f}",
                   str(int((plan > 0).sum(0).max()))]
    ratio = (f"{statistics.median(theirs) / statistics.median(ours):.2f}"
             if ours and theirs else "-")
    iters = str(int(out.num_iters)) if out is not None else "-"
    print(f"| {n} | {ours_cells[0]} | {pot_cells[0]} | {ratio} | "
          f"{ours_cells[1]} / {pot_cells[1]} | "
          f"{ours_cells[2]} / {pot_cells[2]} | "
          f"{ours_cells[3]} / {pot_cells[3]} | {iters} |", flush=True)


if __name__ == "__main__":
  main()
