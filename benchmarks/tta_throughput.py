"""Test-time adaptation throughput: images/s of every TTA method, one run.

Every method adapts the same randomly initialised model on the same
generated stream through the harness's jitted `lax.scan` (`common.adapt`),
timed in interleaved blocks (`bench_lib.time_interleaved`). Printed side by
side: images/s per method, EATA/Tent step-time ratios at several selection
rates (the entropy margin is a traced number set to a quantile of the
batch's entropies, so only the selection changes; the redundancy filter is
off), and CoTTA gate-off/gate-on (the gate is a traced threshold: 0 never
fires, 2 always fires).

    python -m benchmarks.tta_throughput [--batch=60 --steps=3 --rounds=5]
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from benchmarks import bench_lib
from common import adapt
from common import models


def _optim():
  return mlc.ConfigDict(dict(name="adamw", learning_rate=1e-3, momentum=0.9,
                             nesterov=False, b1=0.9, b2=0.999, eps=1e-8,
                             weight_decay=0.0))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--model", default="small_cnn")
  p.add_argument("--widths", default="8,16,32")
  p.add_argument("--image", type=int, default=32)
  p.add_argument("--classes", type=int, default=10)
  p.add_argument("--batch", type=int, default=60)
  p.add_argument("--batches", type=int, default=6, help="scan length")
  p.add_argument("--steps", type=int, default=2, help="calls per block")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--num_aug", type=int, default=32)
  args = p.parse_args()

  kwargs = ({"widths": tuple(int(w) for w in args.widths.split(","))}
            if args.model == "small_cnn" else {})
  model = models.get_model(args.model, args.classes, **kwargs)
  shape = (args.image, args.image, 3)
  variables = dict(model.init(jax.random.PRNGKey(0),
                              jnp.zeros((1, *shape)), train=False))
  params = variables.pop("params")
  rng = np.random.default_rng(0)
  stream = jnp.asarray(rng.integers(0, 256, (args.batches, args.batch,
                                             *shape), np.uint8))
  clean = stream[:2]

  # Entropy quantiles of the stream under the source model -> EATA margins.
  ent_fn = jax.jit(lambda x: -jnp.sum(
      jax.nn.softmax(model.apply({"params": params, **variables},
                                 (x / 255.0 - 0.5) / 0.5, train=True,
                                 mutable=["batch_stats"])[0]["logits"])
      * jax.nn.log_softmax(model.apply(
          {"params": params, **variables}, (x / 255.0 - 0.5) / 0.5,
          train=True, mutable=["batch_stats"])[0]["logits"]), -1))
  ent = np.concatenate([np.asarray(ent_fn(x.astype(jnp.float32)))
                        for x in stream])

  cfgs = {
      "source": ("source", {}, {}),
      "bn_adapt": ("bn_adapt", {}, {}),
      "tent": ("tent", {}, {}),
      "ostta": ("ostta", {}, {}),
  }
  for frac in (1.0, 0.5, 0.25, 0.0):
    margin = 1e6 if frac >= 1 else (float(np.quantile(ent, frac)) if frac > 0
                                    else -1.0)
    cfgs[f"eata_sel{int(frac * 100)}"] = (
        "eata", dict(e_margin_factor=1.0, d_margin=1e6, fisher_alpha=1.0,
                     capacity_buckets=(0.25, 0.5, 0.75)),
        {"e_margin": margin})
  for name, gate in (("cotta_gate_off", 0.0), ("cotta_gate_on", 2.0)):
    cfgs[name] = ("cotta", dict(ema=0.999, restore_prob=0.01, gate=gate,
                                num_aug=args.num_aug), {})

  fns = {}
  adapters = {}
  for label, (name, cfg, hp_override) in cfgs.items():
    key = (name, tuple(sorted((k, str(v)) for k, v in cfg.items()
                              if k in ("num_aug", "capacity_buckets"))))
    method = adapt.get_tta_method(name, cfg)
    if key not in adapters:
      adapters[key] = adapt.make_adapter(
          model, method, num_classes=args.classes, mean=(0.5,), std=(0.5,))
    adapter = adapters[key]
    hp = adapt.build_hparams(method, cfg, _optim(), args.classes)
    for k, v in hp_override.items():
      hp["method"][k] = jnp.float32(v)
    state = adapter.init(params, variables, jax.random.PRNGKey(1),
                         clean if name == "eata" else None)
    box = {"state0": state}

    def fn(adapter=adapter, box=box, hp=hp):
      _, preds, metrics = adapter.run(box["state0"], stream, hp)
      return preds, metrics
    fns[label] = fn

  rows = {}
  for label, fn in fns.items():  # selection rates actually reached
    _, metrics = fn()
    if "backward_rows" in metrics:
      rows[label] = (float(np.mean(metrics["backward_samples"])) / args.batch,
                     float(np.mean(metrics["backward_rows"])) / args.batch)
  times = bench_lib.time_interleaved(fns, steps=args.steps,
                                     rounds=args.rounds, warmup=1)
  n = args.batches * args.batch
  print(f"device: {bench_lib.device_name()}; model {args.model} {kwargs}, "
        f"{shape} images, {args.classes} classes, batch {args.batch}, "
        f"{args.batches} batches per scan, CoTTA {args.num_aug} "
        f"augmentations")
  print(f"  {'method':<16} {'ms/batch':>9} {'images/s':>9} "
        f"{'selected':>9} {'bwd rows':>9}")
  for label, t in times.items():
    sel, r = rows.get(label, (math.nan, math.nan))
    print(f"  {label:<16} {t / args.batches * 1e3:9.2f} {n / t:9.0f} "
          f"{sel:9.2f} {r:9.2f}")
  for frac in (100, 50, 25, 0):
    print(f"  ratio eata(sel {frac}%) / tent step time = "
          f"{times[f'eata_sel{frac}'] / times['tent']:.3f}")
  print(f"  ratio cotta gate-off / gate-on step time = "
        f"{times['cotta_gate_off'] / times['cotta_gate_on']:.3f}")


if __name__ == "__main__":
  main()
