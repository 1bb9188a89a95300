"""WRN-16-2 forward and backward: plain XLA:CPU vs PyTorch, no harness.

Separates the backend from our TTA step: the same RobustBench WRN-16-2
(weights converted as in `benchmarks.tta_throughput`), batch 64 of 32x32x3,
train-mode BatchNorm, the entropy loss of Tent; timed as a plain
`jax.jit` function and as plain torch (`--torch_threads` threads), side by
side in one process (interleaved rounds, median). Three programs each:
forward only, gradient w.r.t. the BatchNorm affine parameters only (Tent's
and EATA's backward: input gradients through every convolution, no weight
gradients), gradient w.r.t. all parameters.

    python -m benchmarks.wrn_backend_vs_torch --official=/path/official \
        [--rounds=7] [--torch_threads=2]

`--official` is the checkout `benchmarks/tta_official.py` describes (its
RobustBench WRN). Printed: ms per call and torch / ours (> 1: ours faster).
Measurements: experiments/eata/README.md (Throughput).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import bench_lib
from benchmarks import tta_official
from common import models


def _entropy(logits):
  return -jnp.mean(jnp.sum(jax.nn.softmax(logits)
                           * jax.nn.log_softmax(logits), -1))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official", required=True)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--rounds", type=int, default=7)
  p.add_argument("--torch_threads", type=int, default=2)
  args = p.parse_args()
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.torch_threads)
  torch_model, source = tta_official.wrn_pair(
      tta_official.load(args.official), 16, 2, 10)
  torch_model.train()
  model = models.get_model("wide_resnet", 10, depth=16, widen_factor=2)
  images = np.random.default_rng(0).normal(
      size=(args.batch, 32, 32, 3)).astype(np.float32)
  x, x_torch = jnp.asarray(images), torch.from_numpy(
      images.transpose(0, 3, 1, 2).copy())
  params, state = source.params, source.model_state

  def loss(p):
    out, _ = model.apply({"params": p, **state}, x, train=True,
                         mutable=["batch_stats"])
    return _entropy(out["logits"])

  def bn_loss(bn, rest):
    return loss(jax.tree.map(lambda a, b: a if b is None else b, rest, bn,
                             is_leaf=lambda t: t is None))

  is_bn = jax.tree_util.tree_map_with_path(
      lambda path, _: any("bn" in str(k).lower() or "norm" in str(k).lower()
                          for k in path), params)
  bn = jax.tree.map(lambda a, m: a if m else None, params, is_bn)
  ours = {
      "forward": jax.jit(loss).lower(params).compile(),
      "grad, BatchNorm affine only (Tent)": jax.jit(jax.grad(bn_loss)).lower(
          bn, params).compile(),
      "grad, all parameters": jax.jit(jax.grad(loss)).lower(params).compile(),
  }
  ours_args = {"forward": (params,),
               "grad, BatchNorm affine only (Tent)": (bn, params),
               "grad, all parameters": (params,)}
  bn_params = [q for n, m in torch_model.named_modules()
               if isinstance(m, torch.nn.BatchNorm2d) for q in m.parameters()]

  def torch_call(kind):
    for q in torch_model.parameters():
      q.requires_grad_(kind == "grad, all parameters")
    if kind.startswith("grad, BatchNorm"):
      for q in bn_params:
        q.requires_grad_(True)
    with torch.set_grad_enabled(kind != "forward"):
      logits = torch_model(x_torch)
      value = -(logits.softmax(1) * logits.log_softmax(1)).sum(1).mean()
      if kind != "forward":
        torch_model.zero_grad(set_to_none=True)
        value.backward()
    return value

  times = {(k, side): [] for k in ours for side in ("ours", "torch")}
  for k in ours:  # warm-up
    jax.block_until_ready(ours[k](*ours_args[k]))
    torch_call(k)
  for _ in range(args.rounds):
    for k in ours:
      t = time.perf_counter()
      jax.block_until_ready(ours[k](*ours_args[k]))
      times[k, "ours"].append(time.perf_counter() - t)
      t = time.perf_counter()
      torch_call(k)
      times[k, "torch"].append(time.perf_counter() - t)
  ms = {key: 1e3 * statistics.median(v) for key, v in times.items()}
  with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
  print(f"device: {bench_lib.device_name()}; WRN-16-2, batch {args.batch}, "
        f"torch {torch.__version__} with {args.torch_threads} threads, "
        f"jax {jax.__version__}; median of {args.rounds} rounds; loadavg "
        f"at the end {load}")
  print("| program | ours (XLA:CPU) ms | torch ms | torch / ours |")
  print("|---|---|---|---|")
  for k in ours:
    print(f"| {k} | {ms[k, 'ours']:.1f} | {ms[k, 'torch']:.1f} | "
          f"{ms[k, 'torch'] / ms[k, 'ours']:.2f} |")


if __name__ == "__main__":
  main()
