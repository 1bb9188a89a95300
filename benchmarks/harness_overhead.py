"""(a) The harness's train step vs a minimal hand-written jitted optax step.

Same model, same batch, same optimizer (SGD 0.1, Nesterov 0.9, wd 5e-4,
cross-entropy, no augmentation). The harness adds: stateless rng
(fold_in/split), traced hyperparameters and the step-indexed schedule written
into optax's state, donation and shardings (and, with
`train.log_norms=True`, the global gradient and parameter norms, measured
as a third variant).
Target: ratio <= 1.05 (aim 1.02).

    python -m benchmarks.harness_overhead [--model=small_cnn --batch=128]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from benchmarks import bench_lib

def main():
  args = bench_lib.parser(__doc__, "small_cnn", "digits", 15).parse_args()
  shape, classes, n = bench_lib.SHAPES[args.data]
  overrides = bench_lib.overrides(args, **{
      "method.name": "cross_entropy", "data.crop_padding": 0,
      "data.flip": False, "schedule.name": "constant"})
  s = bench_lib.build_setup(bench_lib.BASE_CONFIG, overrides, n, classes,
                            shape)
  s_norms = bench_lib.build_setup(bench_lib.BASE_CONFIG,
                                  {**overrides, "train.log_norms": True}, n,
                                  classes, shape)
  batch_np = bench_lib.generated_batch(args.batch, shape, classes, n)
  batch = bench_lib.device_batch(s, batch_np)
  tx = optax.chain(optax.add_decayed_weights(5e-4),
                   optax.sgd(0.1, momentum=0.9, nesterov=True))
  model = s.model

  def minimal_step(params, model_state, opt_state, batch):
    images = (batch["image"].astype(jnp.float32) / 255.0 - 0.5) / 0.5
    def loss_fn(p):
      out, new_ms = model.apply({"params": p, **model_state}, images,
                                train=True, mutable=list(model_state))
      loss = optax.softmax_cross_entropy_with_integer_labels(
          out["logits"], batch["label"]).mean()
      return loss, new_ms
    (loss, new_ms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_ms, opt_state, loss

  minimal = jax.jit(minimal_step, donate_argnums=(0, 1, 2))
  state = s.init_state()
  ref = [state.params, state.model_state, tx.init(state.params)]

  def minimal_fn():
    ref[0], ref[1], ref[2], loss = minimal(ref[0], ref[1], ref[2], batch)
    return loss

  times = bench_lib.time_interleaved(
      {"minimal optax step": minimal_fn,
       "harness step": bench_lib.stepper(s, batch_np),
       "harness + norms": bench_lib.stepper(s_norms, batch_np)},
      steps=args.steps, rounds=args.rounds)
  print(f"device: {bench_lib.device_name()}; model {args.model}, "
        f"{args.data} shapes, batch {args.batch}, {args.dtype}")
  for name, t in times.items():
    print(f"  {name:<20} {t * 1e3:8.3f} ms/step  "
          f"{args.batch / t:10,.0f} images/s")
  base = times["minimal optax step"]
  print(f"  ratio harness / minimal = {times['harness step'] / base:.3f}  "
        f"(target <= 1.05)")
  print(f"  ratio harness with train.log_norms=True / minimal = "
        f"{times['harness + norms'] / base:.3f}")


if __name__ == "__main__":
  main()
