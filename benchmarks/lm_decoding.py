"""Decoding tokens/s with the KV cache vs recomputing the whole sequence.

`common.models.decoding.generate(use_cache=True)` runs one token per step
through the cache; `use_cache=False` reruns the full forward on the
`[B, P+N]` buffer each step. Both are jitted and timed interleaved in one
process (greedy, so both produce the same tokens, which is checked). The
expected factor is the ratio of their forward FLOPs per step (analytic:
the uncached step processes P+N tokens, the cached one 1 token attending
P+N cached keys); on a CPU the cached step's small matmuls run below peak,
so the measured factor is smaller than the FLOPs ratio.

    python -m benchmarks.lm_decoding [--size=small --batch=4 --prompt=16
        --new=256 --rounds=3]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import bench_lib
from common.models import decoding
from common.models import transformer as tm


def step_flops(c: tm.TransformerConfig, tokens: int, keys: int) -> float:
  """Forward FLOPs of one decoding step: `tokens` queries per row, each
  attending `keys` keys (masked keys are computed too)."""
  hd = c.head_size
  proj = c.d_model * hd * (2 * c.num_heads + 2 * c.kv_heads)
  ffn = c.d_model * c.d_ff * (3 if c.ffn == "swiglu" else 2)
  per_token = 2 * (c.num_layers * (proj + ffn) + c.d_model * c.vocab_size)
  attention = 4 * c.num_layers * c.num_heads * hd * keys
  return tokens * (per_token + attention)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", default="small", choices=list(tm.TRANSFORMER_SIZES))
  p.add_argument("--vocab", type=int, default=0, help="0: the preset's")
  p.add_argument("--dtype", default="float32")
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--prompt", type=int, default=16)
  p.add_argument("--new", type=int, default=256)
  p.add_argument("--rounds", type=int, default=3)
  args = p.parse_args()
  fields = {"dtype": args.dtype, "max_len": max(
      args.prompt + args.new, tm.TRANSFORMER_SIZES[args.size].max_len)}
  if args.vocab:
    fields["vocab_size"] = args.vocab
  config = tm.config_from_kwargs(args.size, **fields)
  model = tm.Transformer(config)
  params = jax.jit(model.init)(jax.random.PRNGKey(0),
                               jnp.zeros((1, 1), jnp.int32))["params"]
  prompt = jax.random.randint(jax.random.PRNGKey(1), (args.batch, args.prompt),
                              0, config.vocab_size)
  lengths = jnp.full((args.batch,), args.prompt)

  def run(use_cache):
    return lambda: decoding.generate(
        model, params, prompt, lengths, jax.random.PRNGKey(2),
        max_new_tokens=args.new, greedy=True, use_cache=use_cache)["tokens"]

  fns = {"cache": run(True), "no cache": run(False)}
  same = np.array_equal(fns["cache"](), fns["no cache"]())
  with open("/proc/loadavg") as f:
    load = f.read().strip()
  times = bench_lib.time_interleaved(fns, steps=1, rounds=args.rounds,
                                     warmup=1)
  total = args.prompt + args.new
  flops_ratio = step_flops(config, total, total) / step_flops(config, 1, total)
  new_tokens = args.batch * args.new
  print(f"device: {bench_lib.device_name()}; model {args.size} "
        f"({tm.num_params(config) / 1e6:.1f}M params, {args.dtype}), batch "
        f"{args.batch}, prompt {args.prompt}, {args.new} new tokens, greedy; "
        f"same tokens: {same}; load before: {load}")
  print("| decoding | s per call | new tokens/s |")
  print("|---|---|---|")
  for name, t in times.items():
    print(f"| {name} | {t:.3f} | {new_tokens / t:.0f} |")
  print(f"cache speed-up: {times['no cache'] / times['cache']:.1f}x "
        f"(FLOPs ratio per step {flops_ratio:.0f}x)")
  with open("/proc/loadavg") as f:
    print(f"load after: {f.read().strip()}")


if __name__ == "__main__":
  main()
