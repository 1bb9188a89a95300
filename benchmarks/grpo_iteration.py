"""GRPO: rollout tokens/s and one RL iteration split into sampling and update.

One iteration of the `lm_rl` protocol is one jitted train step: sample G
completions for each of B prompts (`common.models.rollout.sample_groups`,
the KV-cache sampler), score them, group advantages, then the clipped
policy loss, its gradient and the optimizer update (`algos/rl/grpo.py`).
This times, interleaved in one process, for the sampler with the KV cache
and without it (`use_cache=False`: every decoding step reruns the whole
prefix):

* the jitted sampler alone (new tokens per second, B * G * N / time);
* the whole iteration (the harness's train step);
* the update = iteration - sampling (the training forward + backward on
  the [B*G, P+N] rollout, the optimizer step, scoring).

Random weights (rows stop only at a sampled eos, ~1/V per token, so
nearly every row runs all N steps: the worst case for the cache-less
sampler is the same work as a trained model's longest row).

    python -m benchmarks.grpo_iteration [--size=tiny --prompts=8 --group=8
        --new=48 --rounds=3]
    python -m benchmarks.grpo_iteration --size=qwen2_0.5b --vocab=151936 \\
        --prompts=16 --group=8 --new=256 --dtype=bfloat16     # GPU
"""

from __future__ import annotations

import argparse

import jax

from benchmarks import bench_lib
from common.data import tokenizers
from common.models import rollout as rollout_lib
from common.protocols import build
from common.protocols import lm_rl


def make_config(args: argparse.Namespace, use_cache: bool):
  c = lm_rl.base_config()
  c.experiment = "grpo_bench"
  c.data.kwargs = dict(size="tiny", prompt_len=args.prompt,
                       vocab_size=args.vocab)
  c.model.dtype = args.dtype
  c.model.kwargs = dict(size=args.size, max_len=args.prompt + args.new)
  c.method.grpo = dict(group_size=args.group, max_new_tokens=args.new,
                       use_cache=use_cache)
  c.train.batch_size = args.prompts
  c.lock()
  return c


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", default="tiny")
  p.add_argument("--vocab", type=int, default=0, help="0: the tokenizer's")
  p.add_argument("--dtype", default="float32")
  p.add_argument("--prompts", type=int, default=8)
  p.add_argument("--group", type=int, default=8)
  p.add_argument("--prompt", type=int, default=16)
  p.add_argument("--new", type=int, default=48)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--steps", type=int, default=2)
  args = p.parse_args()

  fns, rows = {}, args.prompts * args.group
  for cache in (True, False):
    s = build.setup(make_config(args, cache))
    holder = {"state": s.init_state()}
    prompts = s.generator.sample(jax.random.PRNGKey(0), args.prompts)
    name = "cache" if cache else "no cache"

    def sample(s=s, holder=holder, prompts=prompts, cache=cache):
      return jax.jit(lambda params, key: rollout_lib.sample_groups(
          s.model, params, prompts["prompt"], prompts["prompt_length"], key,
          group_size=args.group, max_new_tokens=args.new,
          eos_id=tokenizers.ByteTokenizer.eos_id,
          use_cache=cache)["tokens"])

    sampler = sample()
    fns[f"sample ({name})"] = (
        lambda sampler=sampler, holder=holder:
        sampler(holder["state"].params, jax.random.PRNGKey(1)))

    def iteration(s=s, holder=holder):
      holder["state"], metrics, _ = s.train_step(holder["state"], {},
                                                 s.hparams)
      return metrics["loss"]
    fns[f"iteration ({name})"] = iteration

  with open("/proc/loadavg", encoding="utf-8") as f:
    load = f.read().strip()
  times = bench_lib.time_interleaved(fns, steps=args.steps,
                                     rounds=args.rounds, warmup=1)
  print(f"device: {bench_lib.device_name()}; model {args.size}, "
        f"{args.dtype}, B={args.prompts} prompts x G={args.group}, prompt "
        f"{args.prompt}, N={args.new} new tokens; load before: {load}")
  print("| KV cache | sampling s | rollout tokens/s | iteration s | "
        "update s (iteration - sampling) | sampling share |")
  print("|---|---|---|---|---|---|")
  for name in ("cache", "no cache"):
    ts, ti = times[f"sample ({name})"], times[f"iteration ({name})"]
    print(f"| {name} | {ts:.3f} | {rows * args.new / ts:.0f} | {ti:.3f} | "
          f"{ti - ts:.3f} | {ts / ti:.0%} |")
  with open("/proc/loadavg", encoding="utf-8") as f:
    print(f"load after: {f.read().strip()}")


if __name__ == "__main__":
  main()
