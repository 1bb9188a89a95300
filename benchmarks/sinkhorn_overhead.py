"""Sinkhorn through our Monge-gap paths vs ott-jax called directly.

`algos.ot.monge_gap.fitting_loss` / `monge_gap` / `map_loss` are thin
wrappers of ott-jax's `sinkdiv` and `monge_gap_from_samples`; this checks
they add no overhead: each pair is jitted and timed interleaved (value and
gradient w.r.t. the mapped points, n x n clouds). Target: ratios ~1.00.

    python -m benchmarks.sinkhorn_overhead [--n=512] [--steps=10 --rounds=5]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from ott.neural.methods import monge_gap as ott_monge_gap
from ott.tools import sinkhorn_divergence

from algos.ot import monge_gap
from benchmarks import bench_lib


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--n", type=int, default=512)
  p.add_argument("--epsilon", type=float, default=0.01)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--rounds", type=int, default=5)
  args = p.parse_args()
  kx, ky = jax.random.split(jax.random.PRNGKey(0))
  x = jax.random.normal(kx, (args.n, 2))
  y = jax.random.normal(ky, (args.n, 2)) * 1.3 + 1.0
  eps = jnp.float32(args.epsilon)

  def ott_fit(z):
    return sinkhorn_divergence.sinkdiv(z, y, epsilon=eps,
                                       relative_epsilon="mean")[0]

  def ott_gap(z):
    return ott_monge_gap.monge_gap_from_samples(x, z, epsilon=eps,
                                                relative_epsilon="mean")

  pairs = {
      "fitting_loss": (lambda z: monge_gap.fitting_loss(z, y, eps), ott_fit),
      "monge_gap": (lambda z: monge_gap.monge_gap(x, z, eps), ott_gap),
      "map_loss (lambda=1)": (
          lambda z: monge_gap.map_loss(
              {"lambda_monge_gap": 1.0, "epsilon_fit": eps,
               "epsilon_gap": eps}, lambda _: z, x, y)[0],
          lambda z: ott_fit(z) + ott_gap(z)),
  }
  z = x + 0.5
  print(f"device: {bench_lib.device_name()}; n = {args.n}, relative epsilon "
        f"{args.epsilon}, value and gradient")
  print("| path | ours (ms) | ott-jax direct (ms) | ours / ott |")
  print("|---|---|---|---|")
  for name, (ours, theirs) in pairs.items():
    fo = jax.jit(jax.value_and_grad(ours))
    ft = jax.jit(jax.value_and_grad(theirs))
    times = bench_lib.time_interleaved(
        {"ours": lambda: fo(z), "ott": lambda: ft(z)}, steps=args.steps,
        rounds=args.rounds)
    print(f"| {name} | {1e3 * times['ours']:.2f} | {1e3 * times['ott']:.2f} "
          f"| {times['ours'] / times['ott']:.3f} |", flush=True)


if __name__ == "__main__":
  main()
