"""Where the sparsity-constrained OT solver's time goes, piece by piece.

Each jitted piece is compiled ahead of time and timed alone (median of
`--repeats` calls) on one n x n problem of `benchmarks.sparse_ot_vs_pot`
(k = 5, gamma = 1, semi-dual), in float32 and float64, side by side in one
process:

- the memory floor: one pass over the cost matrix (`jnp.sum`) and the fused
  column max of f - C (the access pattern of the top-k selection);
- the dense formulation the solver used to have: `lax.top_k` on the whole
  `[m, n]` transposed matrix, and the semi-dual value (and value + gradient
  by autodiff) written on it with the dense top-k simplex projection
  (`sparse_ot.sparse_simplex_projection`, a scatter back to `[m, n]`);
- ours: the blocked column selection (`_column_top_k`), the semi-dual value
  and value + gradient on the `[m, k]` selected entries;
- one L-BFGS iteration of the full solve (solve time / iterations).

    python -m benchmarks.sparse_ot_profile [--n=2000] [--k=5] [--repeats=5]

Printed: milliseconds per piece and each piece / one memory pass. The
measurements and the fix they led to: experiments/sparse_ot/README.md
(Solver speed).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from algos.ot import sparse_ot
from benchmarks import bench_lib
from benchmarks import sparse_ot_vs_pot


def _median_ms(compiled, args, repeats: int) -> float:
  jax.block_until_ready(compiled(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t)
  return 1e3 * statistics.median(times)


def _dense_semi_dual(f, cost, a, b, gamma, k):
  """The semi-dual value on the dense `[m, n]` matrix (the old layout).

  Same value as `sparse_ot.semi_dual_objective`; the projection keeps the k
  largest entries of each column with `lax.top_k` and scatters them back.
  """
  z = (f[:, None] - cost).T                            # [m, n]
  y = sparse_ot.sparse_simplex_projection(z / (gamma * b)[:, None], k)
  inner = jnp.sum(z * y, -1) - 0.5 * gamma * b * jnp.sum(y**2, -1)
  return jnp.dot(f, a) - jnp.dot(b, inner)


def _pieces(k: int, gamma: float):
  """name -> function of (f [n], cost [n, m], a [n], b [m])."""
  return {
      "one pass over the cost matrix (`jnp.sum`)":
          lambda f, c, a, b: jnp.sum(c),
      "fused column max of f - C":
          lambda f, c, a, b: jnp.max(f[:, None] - c, axis=0),
      "dense: `lax.top_k` of the `[m, n]` transposed matrix":
          lambda f, c, a, b: jax.lax.top_k((f[:, None] - c).T, k)[1],
      "dense: semi-dual value (top_k + scatter + dense sums)":
          lambda f, c, a, b: _dense_semi_dual(f, c, a, b, gamma, k),
      "dense: value and gradient (autodiff)":
          jax.value_and_grad(
              lambda f, c, a, b: _dense_semi_dual(f, c, a, b, gamma, k)),
      "ours: blocked column top-k (`_column_top_k`)":
          lambda f, c, a, b: sparse_ot._column_top_k(f, c, k),  # pylint: disable=protected-access
      "ours: semi-dual value on the `[m, k]` entries":
          lambda f, c, a, b: sparse_ot.semi_dual_objective(
              f, c, a, b, gamma, k),
      "ours: value and gradient (autodiff)":
          jax.value_and_grad(lambda f, c, a, b: sparse_ot.semi_dual_objective(
              f, c, a, b, gamma, k)),
  }


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--n", type=int, default=2000)
  p.add_argument("--k", type=int, default=5)
  p.add_argument("--gamma", type=float, default=1.0)
  p.add_argument("--repeats", type=int, default=5)
  args = p.parse_args()
  jax.config.update("jax_enable_x64", True)
  n, k = args.n, args.k
  cost_np = sparse_ot_vs_pot._problem(n)  # pylint: disable=protected-access
  dtypes = (jnp.float32, jnp.float64)
  print(f"device: {bench_lib.device_name()}; n = {n}, k = {k}, gamma = "
        f"{args.gamma}; median of {args.repeats} calls; loadavg "
        f"{sparse_ot_vs_pot._loadavg()}")  # pylint: disable=protected-access
  ms, iters = {}, {}
  for dtype in dtypes:
    c = jnp.asarray(cost_np, dtype)
    # Potentials at the solution: the selection sees the real spread of f.
    f = jnp.asarray(sparse_ot.solve_cost_matrix(c, k, args.gamma).f, dtype)
    w = jnp.full((n,), 1.0 / n, dtype)
    for name, fn in _pieces(k, args.gamma).items():
      compiled = jax.jit(fn).lower(f, c, w, w).compile()
      ms[name, dtype] = _median_ms(compiled, (f, c, w, w), args.repeats)
    solve = jax.jit(lambda c: sparse_ot.solve_cost_matrix(
        c, k, args.gamma)).lower(c).compile()
    t = _median_ms(solve, (c,), max(1, args.repeats // 2))
    iters[dtype] = int(solve(c).num_iters)
    ms["ours: one L-BFGS iteration (solve time / iterations)", dtype] = (
        t / max(iters[dtype], 1))
  names = list(dict.fromkeys(name for name, _ in ms))
  floor = {d: ms["fused column max of f - C", d] for d in dtypes}
  print("| piece | float32 ms | float64 ms | float32 / pass | "
        "float64 / pass |")
  print("|---|---|---|---|---|")
  for name in names:
    row = [f"{ms[name, d]:.2f}" for d in dtypes]
    row += [f"{ms[name, d] / floor[d]:.1f}" for d in dtypes]
    print(f"| {name} | " + " | ".join(row) + " |")
  print("L-BFGS iterations: " + ", ".join(
      f"{jnp.dtype(d).name} {i}" for d, i in iters.items()))
  print(f"loadavg at the end: {sparse_ot_vs_pot._loadavg()}")  # pylint: disable=protected-access


if __name__ == "__main__":
  main()
