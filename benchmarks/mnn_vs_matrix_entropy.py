"""Matrix Nuclear-Norm vs Matrix Entropy: time per hidden-state matrix.

The paper (arXiv:2410.10672) reports MNN 8-24x faster than Matrix Entropy
(Cerebras-GPT 111M -> 6.7B, i.e. d = 768 -> 4096, whole-model inference
included). Here only the metric itself is timed, on a random `[T, d]`
matrix (T = 2048 by default, the paper's maximum length), both jitted:
`mnn_score` (centre, row-normalise, column norms, top-D sum: O(T d)) and
`matrix_entropy` with the symmetric eigensolver (`eigh`, what we use) and
with the SVD the official `cal_entropy` calls (`svd`); O(T d^2 + d^3).
Calls are interleaved in rounds in one process (`bench_lib
.time_interleaved`); /proc/loadavg is printed before and after. Ratios
depend on the CPU, its core count and the XLA version.

    python -m benchmarks.mnn_vs_matrix_entropy [--t=2048]
        [--dims=256,512,1024,2048,4096] [--svd_max_dim=2048] [--rounds=3]
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

from algos.analysis import matrix_nuclear_norm as mnn
from benchmarks import bench_lib


def _loadavg() -> str:
  try:
    with open("/proc/loadavg", encoding="utf-8") as f:
      return " ".join(f.read().split()[:3])
  except OSError:
    return "n/a"


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--t", type=int, default=2048)
  p.add_argument("--dims", default="256,512,1024,2048,4096")
  p.add_argument("--svd_max_dim", type=int, default=2048,
                 help="skip the (slow) SVD timing above this d")
  p.add_argument("--rounds", type=int, default=3)
  args = p.parse_args()
  print(f"device: {bench_lib.device_name()}; loadavg before: {_loadavg()}")
  print(f"\n| d | MNN (ms) | ME eigh (ms) | ME svd (ms) | eigh / MNN | "
        f"svd / MNN |\n|---|---|---|---|---|---|")
  for d in (int(x) for x in args.dims.split(",")):
    r = jnp.asarray(np.random.default_rng(d).normal(size=(args.t, d)),
                    jnp.float32)
    fns = {"mnn": functools.partial(jax.jit(mnn.mnn_score), r),
           "eigh": functools.partial(jax.jit(mnn.matrix_entropy), r)}
    if d <= args.svd_max_dim:
      fns["svd"] = functools.partial(
          jax.jit(functools.partial(mnn.matrix_entropy, method="svd")), r)
    got = bench_lib.time_interleaved(fns, steps=1 if d > 1024 else 3,
                                     rounds=args.rounds, warmup=1)
    ms = {k: v * 1e3 for k, v in got.items()}
    svd = ms.get("svd")
    svd_ms = "n/a" if svd is None else f"{svd:.1f}"
    svd_x = "n/a" if svd is None else f"{svd / ms['mnn']:.0f}x"
    print(f"| {d} | {ms['mnn']:.2f} | {ms['eigh']:.1f} | {svd_ms} | "
          f"{ms['eigh'] / ms['mnn']:.0f}x | {svd_x} |", flush=True)
  print(f"\nloadavg after: {_loadavg()}; T = {args.t}, float32, jitted")


if __name__ == "__main__":
  main()
