"""The LM train step through the harness vs a minimal hand-written LM step.

Same transformer, same packed token batch (two documents per row, segment
masks and positions), same optimizer (AdamW b2 0.95, weight decay 0.1 on
matrices, global-norm clipping 1, constant learning rate), same masked
next-token cross-entropy. The harness adds: the method (Method v2, the
`naive` per-token loss on features @ unembedding, perplexity and bits
metrics), stateless rng (fold_in/split), traced hyperparameters and the
schedule written into optax's state, donation and shardings. Both timed
side by side, alternating blocks (`bench_lib.time_interleaved`).
Target: ratio <= 1.02.

    python -m benchmarks.lm_overhead [--size=small --batch=16 --seq_len=256]
    python -m benchmarks.lm_overhead --size=gpt2_124m --batch=32 \\
        --seq_len=1024 --dtype=bfloat16      # on an accelerator: MFU too
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import bench_lib
from common import config as config_lib
from common.models import transformer as transformer_lib
from common.protocols import build

# Dense bf16 peak TFLOP/s by device kind, for MFU (public spec sheets).
_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0,
                "TPU v4": 275.0, "TPU v5 lite": 197.0, "TPU v5p": 459.0}


def _args() -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", default="small")
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--seq_len", type=int, default=128)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--rounds", type=int, default=10)
  return p.parse_args()


def token_batch(batch: int, seq_len: int, vocab: int, seed: int = 0
                ) -> dict[str, np.ndarray]:
  """Random packed rows: two documents per row, like the text loader's."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, vocab - 3, (batch, seq_len + 1)).astype(np.int32)
  cut = seq_len // 3
  t = np.arange(seq_len)
  segment = np.broadcast_to(np.where(t < cut, 1, 2), (batch, seq_len))
  return {
      "tokens": tokens[:, :-1], "targets": tokens[:, 1:],
      "segment_ids": segment.astype(np.int32),
      "positions": np.broadcast_to(np.where(t < cut, t, t - cut),
                                   (batch, seq_len)).astype(np.int32),
      "loss_mask": np.ones((batch, seq_len), np.float32),
      "target_bytes": np.ones((batch, seq_len), np.int32),
      "index": np.arange(batch, dtype=np.int32),
      "epoch": np.zeros(batch, np.int32), "mask": np.ones(batch, bool)}


def harness_setup(args: argparse.Namespace, vocab: int) -> build.Setup:
  config = config_lib.apply_overrides(
      config_lib.load_config("experiments/lm_common.py:stdlib_tiny"), {
          "model.kwargs.size": args.size, "model.kwargs.max_len":
          args.seq_len, "model.dtype": args.dtype,
          "data.kwargs.seq_len": args.seq_len,
          "train.batch_size": args.batch, "schedule.name": "constant",
          "schedule.warmup_epochs": 0.0})
  run = build.run_info(config, 1000 * args.batch, vocab)
  example = {"tokens": jax.ShapeDtypeStruct((1, args.seq_len), np.int32)}
  return build.build(config, run, example)


def main():
  args = _args()
  vocab = 259   # the byte tokenizer's
  s = harness_setup(args, vocab)
  c = s.config.optim
  tx = optax.chain(
      optax.clip_by_global_norm(c.clip_grad_norm),
      optax.adamw(s.config.schedule.learning_rate, b1=c.b1, b2=c.b2,
                  eps=c.eps, weight_decay=c.weight_decay,
                  mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)))
  model = s.model

  def minimal_step(params, opt_state, batch):
    def loss_fn(p):
      logits = model.apply({"params": p}, batch["tokens"],
                           segment_ids=batch["segment_ids"],
                           positions=batch["positions"])["logits"]
      nll = optax.softmax_cross_entropy_with_integer_labels(
          logits.astype(jnp.float32), batch["targets"])
      mask = batch["loss_mask"]
      return jnp.sum(nll * mask) / jnp.sum(mask)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  batch_np = token_batch(args.batch, args.seq_len, vocab)
  batch = bench_lib.device_batch(s, batch_np)
  minimal = jax.jit(minimal_step, donate_argnums=(0, 1))
  state = s.init_state()
  ref = [jax.tree.map(jnp.copy, state.params)]
  ref.append(tx.init(ref[0]))

  def minimal_fn():
    ref[0], ref[1], loss = minimal(ref[0], ref[1], batch)
    return loss

  times = bench_lib.time_interleaved(
      {"minimal optax step": minimal_fn,
       "harness step": bench_lib.stepper(s, batch_np)},
      steps=args.steps, rounds=args.rounds)
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  cfg = model.config
  tokens = args.batch * args.seq_len
  # 6 N per token for the weights, 12 L T d for attention scores/values.
  flops = tokens * (6 * n_params + 12 * cfg.num_layers * args.seq_len
                    * cfg.d_model)
  kind = jax.devices()[0].device_kind
  peak = next((v for k, v in _PEAK_TFLOPS.items() if k in kind), None)
  print(f"device: {bench_lib.device_name()}; transformer {args.size} "
        f"({n_params / 1e6:.2f}M params), batch {args.batch} x "
        f"{args.seq_len} tokens, {args.dtype}")
  for name, t in times.items():
    mfu = (f"  MFU {flops / t / (peak * 1e12):6.1%}" if peak else "")
    print(f"  {name:<20} {t * 1e3:9.3f} ms/step  {tokens / t:12,.0f} "
          f"tokens/s{mfu}")
  ratio = times["harness step"] / times["minimal optax step"]
  print(f"  ratio harness / minimal = {ratio:.3f}  (target <= 1.02)")
  with open("/proc/loadavg", encoding="utf-8") as f:
    print(f"  /proc/loadavg: {f.read().strip()}")


if __name__ == "__main__":
  main()
