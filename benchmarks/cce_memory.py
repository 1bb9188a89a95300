"""Cut Cross-Entropy vs the naive loss: compiled memory and time of loss+grad.

Memory: `jax.jit(value_and_grad(mean nll)).lower(...).compile()
.memory_analysis().temp_size_in_bytes` (XLA's scratch buffers: everything
but the arguments and the outputs E, C, dE, dC), for the loss alone and for
loss+grad, naive (`algos.lm.losses` "naive": the `[N, V]` fp32 logits) vs
`algos.lm.cce.cce`, at the issue's shape (N=8192, D=512, V=131072, fp32) and
at Gemma 2 (2B)'s classifier-head shape (N=8192, D=2304, V=256000), the
paper's example, in fp32 and bf16. Compiling allocates nothing: the memory
rows cost seconds. On CPU the bf16 rows carry an XLA:CPU artifact: it has no
bf16 dot, upcasts dot operands to fp32 and hoists the upcast of the whole
classifier out of CCE's loop (+V x D x 4 bytes); devices with bf16 dots do
not.

Time: loss+grad of naive, CCE (the paper's recomputing backward, 4 matmuls)
and CCE `fused=True` (gradients in the forward pass, 3 matmuls, a
`[block_n, V]` tile), one call of each in turn per round in one process
(/proc/loadavg printed before and after), on random features (logits of std
1: nothing is filtered, the worst case for CCE's extra recompute) or on
`--data=peaked` ones (most of the vocabulary far below the argmax, as for a
trained LM). With `--official=PATH` (a checkout of apple/ml-cross-entropy),
also its CPU path in the same rounds, `impl="torch_compile"`
(`linear_cross_entropy`'s CCE kernels need Triton, i.e. a GPU; its
torch.compile function, which builds the `[N, V]` logits, is loaded from
the checkout without them), on the same arrays; without a checkout there,
a one-line message and no row.

    python -m benchmarks.cce_memory [--repeats=2] [--no-time] [--no-memory]
        [--data=random|peaked] [--n=8192 --v=131072]
        [--official=/path/to/ml-cross-entropy] [--out=results/memory.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from algos.lm import cce as cce_lib
from algos.lm import losses
from benchmarks import bench_lib

# name -> (N, D, V, dtype)
SHAPES = {"issue (fp32)": (8192, 512, 131072, "float32"),
          "Gemma 2 2B head (fp32)": (8192, 2304, 256000, "float32"),
          "Gemma 2 2B head (bf16)": (8192, 2304, 256000, "bfloat16")}


def _losses(block_n: int | None, block_v: int):
  """The timed losses; `block_n` None: each mode's default."""
  return {"naive": losses.get_loss("naive"),
          "cce": lambda e, c, y: cce_lib.cce(e, c, y, block_n=block_n,
                                             block_v=block_v),
          "cce fused": lambda e, c, y: cce_lib.cce(
              e, c, y, block_n=block_n, block_v=block_v, fused=True)}


def _compiled(loss, n, d, v, dtype, grad: bool):
  args = (jax.ShapeDtypeStruct((n, d), dtype),
          jax.ShapeDtypeStruct((v, d), dtype),
          jax.ShapeDtypeStruct((n,), jnp.int32))
  mean = lambda e, c, y: jnp.mean(loss(e, c, y))
  fn = jax.value_and_grad(mean, (0, 1)) if grad else mean
  return jax.jit(fn).lower(*args).compile()


def memory_rows(block_n: int | None, block_v: int) -> list[str]:
  rows = []
  for shape, (n, d, v, dtype) in SHAPES.items():
    for grad in (False, True):
      stats = {name: _compiled(fn, n, d, v, dtype, grad).memory_analysis()
               for name, fn in _losses(block_n, block_v).items()}
      mib = {k: m.temp_size_in_bytes / 2**20 for k, m in stats.items()}
      rows.append(f"| {shape} | {n} x {d}, V={v} | "
                  f"{'loss+grad' if grad else 'loss'} | "
                  f"{mib['naive']:,.1f} | {mib['cce']:,.2f} | "
                  f"{mib['naive'] / max(mib['cce'], 1e-6):,.0f}x | "
                  f"{mib['cce fused']:,.2f} | "
                  f"{mib['naive'] / max(mib['cce fused'], 1e-6):,.0f}x | "
                  f"{stats['cce'].output_size_in_bytes / 2**20:,.1f} |")
  return rows


def problem(n, d, v, kind, seed=0):
  """fp32 `(features, classifier, targets)` as numpy arrays."""
  rng = np.random.default_rng(seed)
  classifier = rng.standard_normal((v, d), np.float32)
  if kind == "random":
    features = rng.standard_normal((n, d), np.float32) / np.float32(
        np.sqrt(d))
    return features, classifier, rng.integers(0, v, n).astype(np.int32)
  # peaked: 1% frequent tokens carry the targets; the rest sit 15 nats
  # lower (a unigram prior in feature 0); each feature points at one
  # frequent token (right 70% of the time).
  classifier *= np.sqrt(d) / np.linalg.norm(classifier, axis=1, keepdims=True)
  frequent = rng.choice(v, max(v // 100, 1), replace=False)
  predicted = frequent[rng.integers(0, len(frequent), n)]
  targets = np.where(rng.random(n) < 0.7, predicted,
                     frequent[rng.integers(0, len(frequent), n)])
  features = 8.0 * classifier[predicted] / np.sqrt(d)
  classifier[:, 0] = -2.0
  classifier[frequent, 0] = 1.0
  features[:, 0] = 5.0
  return (features.astype(np.float32), classifier.astype(np.float32),
          targets.astype(np.int32))


def official_step(path: str):
  """apple/ml-cross-entropy's torch.compile linear cross-entropy, loaded
  from the checkout at `path` (registering the package without running
  its `__init__`, which imports the Triton kernels)."""
  pkg = types.ModuleType("cut_cross_entropy")
  pkg.__path__ = [os.path.join(path, "cut_cross_entropy")]
  sys.modules["cut_cross_entropy"] = pkg
  from cut_cross_entropy import torch_compile  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  def run(e, c, y):
    e = torch.from_numpy(e).requires_grad_()
    c = torch.from_numpy(c).requires_grad_()
    loss, _ = torch_compile.torch_compile_linear_cross_entropy(
        e, c, torch.from_numpy(y).long())
    loss.backward()
    return float(loss.detach())
  return run


def _load() -> str:
  return " ".join(open("/proc/loadavg").read().split()[:3])


def _official(path: str | None):
  """The official step, or None (with the reason printed)."""
  if not path:
    return None
  if not os.path.isdir(os.path.join(path, "cut_cross_entropy")):
    print(f"--official={path}: no cut_cross_entropy/ there (expected a "
          "checkout of apple/ml-cross-entropy); skipping it", flush=True)
    return None
  try:
    return official_step(path)
  except ImportError as err:   # torch missing, or a changed checkout
    print(f"--official={path}: cannot import its torch_compile path "
          f"({err}); skipping it", flush=True)
    return None


def time_rows(args) -> list[str]:
  """Loss+grad of naive, CCE (the paper's recomputing backward), CCE fused
  and, with `--official`, the official CPU path, called in turn (one call of
  each per round) in this process."""
  n, d, v = args.n, 512, args.v
  e, c, y = problem(n, d, v, args.data)
  arrays = [jnp.asarray(a) for a in (e, c, y)]
  fns = {}
  for name, loss in _losses(args.block_n, args.block_v).items():
    step = jax.jit(jax.value_and_grad(
        lambda e, c, y, loss=loss: jnp.mean(loss(e, c, y)), (0, 1)))
    step = step.lower(*arrays).compile()
    fns[name] = lambda step=step: step(*arrays)
  official = _official(args.official)
  if official is not None:
    try:
      official(e, c, y)   # torch.compile compiles here
      fns["official torch_compile (CPU)"] = lambda: official(e, c, y)
    except Exception as err:  # pylint: disable=broad-except
      print(f"--official: its CPU path failed ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}); skipping it", flush=True)
  needed = None
  if args.data == "peaked":   # random logits: nothing below 2^-28 to skip
    needed = float(cce_lib.needed_tile_fraction(
        *arrays, block_n=args.block_n or cce_lib.BLOCK_N,
        block_v=args.block_v))
  load_before = _load()
  # Compiled ahead of time: no warm-up call (each costs minutes here).
  seconds = bench_lib.time_interleaved(fns, steps=1, rounds=args.repeats,
                                       warmup=0)
  load_after = _load()
  rows = [f"| {name} | {1e3 * s:,.0f} | {s / seconds['naive']:.2f} |"
          for name, s in seconds.items()]
  head = (f"Loss+grad time, N={n}, D={d}, V={v}, fp32, `{args.data}` data, "
          f"median of {args.repeats} round(s) of one call each in turn, "
          f"{bench_lib.device_name()}, torch threads "
          f"{_torch_threads() if official else '-'}, /proc/loadavg "
          f"{load_before} before and {load_after} after the timed calls"
          + ("" if needed is None else f"; CCE ran the gradient matmuls of "
             f"{100 * needed:.0f}% of its tiles") + ".\n\n"
          "| loss | ms per loss+grad | / naive |\n|---|---|---|")
  print(head + "\n" + "\n".join(rows), flush=True)
  return [head] + rows


def _torch_threads() -> int:
  import torch  # pylint: disable=g-import-not-at-top
  return torch.get_num_threads()


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--block_n", type=int, default=None,
                 help="tokens per tile (default: BLOCK_N, FUSED_BLOCK_N)")
  p.add_argument("--block_v", type=int, default=cce_lib.BLOCK_V)
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--n", type=int, default=SHAPES["issue (fp32)"][0],
                 help="tokens of the timed problem")
  p.add_argument("--v", type=int, default=SHAPES["issue (fp32)"][2],
                 help="vocabulary of the timed problem")
  p.add_argument("--no-memory", dest="memory", action="store_false")
  p.add_argument("--data", choices=("random", "peaked"), default="random")
  p.add_argument("--no-time", dest="time", action="store_false")
  p.add_argument("--official", default=None,
                 help="path of an apple/ml-cross-entropy checkout")
  p.add_argument("--out", default=None, help="also write the tables here")
  args = p.parse_args()
  lines = []
  if args.memory:
    lines = ["Compiled temporary memory (XLA temp buffers, MiB; the outputs "
             "-- loss, dE, dC -- are not temporaries and are the same for "
             "all), block_n="
             f"{args.block_n or f'{cce_lib.BLOCK_N} (fused {cce_lib.FUSED_BLOCK_N})'}"
             f", block_v={args.block_v}, JAX {jax.__version__}, "
             f"{bench_lib.device_name()}.", "",
             "| shape | N x D, V | computes | naive (MiB) | CCE (MiB) | "
             "naive / CCE | CCE fused (MiB) | naive / fused | outputs (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += memory_rows(args.block_n, args.block_v)
    print("\n".join(lines), flush=True)
  if args.time:
    lines += ([""] if lines else []) + time_rows(args)
  if args.out:
    with open(args.out, "w") as f:
      f.write("Command: `python -m benchmarks.cce_memory " +
              " ".join(sys.argv[1:]) + "`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
  main()
