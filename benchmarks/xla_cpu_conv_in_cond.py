"""XLA:CPU: a convolution's vjp at top level vs inside `lax.cond` / a loop.

The profile behind EATA's CPU backward (experiments/eata/README.md,
Throughput): the same vjp of one 3x3 convolution `[b, 32, 32, c]` timed
at top level, as the true branch of `lax.cond` and as the body of a
one-trip `while_loop`, and the `dim_labels` of the convolutions in each
optimized HLO (inside the nested computations they are not rewritten to
the layouts of XLA:CPU's fast kernels; jax-ml/jax#12868).

    python -m benchmarks.xla_cpu_conv_in_cond [--batch=64 --channels=32]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import jax
import jax.numpy as jnp

from benchmarks import bench_lib


def _conv(x, w):
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _vjp(x, w):
  y, vjp = jax.vjp(_conv, x, w)
  return vjp(y)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--channels", type=int, default=32)
  p.add_argument("--repeats", type=int, default=3)
  args = p.parse_args()
  c = args.channels
  x = jnp.ones((args.batch, 32, 32, c))
  w = jnp.full((3, 3, c, c), 0.01)
  zeros = lambda: jax.tree.map(jnp.zeros_like, (x, w))

  def in_cond(x, w, pred):
    return jax.lax.cond(pred, lambda: _vjp(x, w), zeros)

  def in_loop(x, w, pred):
    return jax.lax.while_loop(
        lambda s: s[0] < pred.astype(jnp.int32),
        lambda s: (s[0] + 1, _vjp(x, w)), (jnp.int32(0), zeros()))[1]

  cases = {"top level": (_vjp, (x, w)),
           "lax.cond": (in_cond, (x, w, jnp.bool_(True))),
           "while_loop": (in_loop, (x, w, jnp.bool_(True)))}
  print(f"device: {bench_lib.device_name()}; vjp of a 3x3 conv "
        f"[{args.batch}, 32, 32, {c}]")
  for name, (fn, inputs) in cases.items():
    compiled = jax.jit(fn).lower(*inputs).compile()
    labels = sorted(set(re.findall(r"dim_labels=([\w>-]+)",
                                   compiled.as_text())))
    jax.block_until_ready(compiled(*inputs))
    times = []
    for _ in range(args.repeats):
      start = time.perf_counter()
      jax.block_until_ready(compiled(*inputs))
      times.append(time.perf_counter() - start)
    print(f"  {name:<11} {statistics.median(times) * 1e3:10.1f} ms   "
          f"conv dim_labels: {', '.join(labels)}")


if __name__ == "__main__":
  main()
