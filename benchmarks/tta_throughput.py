"""Test-time adaptation throughput: ours and the official PyTorch code.

Every method adapts the same randomly initialised model (default
WRN-16-2, RobustBench's CIFAR architecture, batch 64) on the same
generated stream through the TTA protocol's walk of the one train step
(`common.protocols.tta_loop.Adapter.walk`: a host loop of jitted steps on
CPU, one `lax.scan` elsewhere), timed in interleaved blocks
(`bench_lib.time_interleaved`). Printed side by side: images/s per method,
EATA/Tent step-time ratios at several selection rates (the entropy margin
is a traced number set to a quantile of the stream's entropies, so only
the selection changes; the redundancy filter is off), and CoTTA
gate-off/gate-on (the gate is a traced threshold: 0 never fires, 2 always
fires).

With `--official=<dir>` (a checkout of the official code, laid out as
`benchmarks/tta_official.py` says) the model is a RobustBench WRN whose
weights are converted for ours, and the official Tent, EATA (same
selection rates: its margin is set to the same quantile, redundancy filter
off, Fisher from the same 2 clean batches) and CoTTA (its 32 augmented
teacher passes always run; its augmentation, which needs an old
torchvision, replaced by a flip, so its gate-open rows lack the
augmentation cost ours pays) run in the same process on the same batches,
torch with `--torch_threads` threads, timed in the same interleaved
blocks; printed: official ms/batch and official/ours time ratios (> 1:
ours faster).

    python -m benchmarks.tta_throughput [--official=/path/to/official] \
        [--batch=64 --batches=2 --steps=1 --rounds=3]

Measurements and the profile finding: experiments/eata/README.md
(Throughput).
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import bench_lib
from benchmarks import tta_official
from common import models
from common.core import sharding
from common.data import preprocess as preprocess_lib
from common.data import streams as streams_lib
from common.protocols import tta
from common.protocols import tta_loop


_MEAN, _STD = {False: 0.5, True: 0.0}, {False: 0.5, True: 1.0}


def _config(args, method: str, method_cfg: dict):
  c = tta.base_config()
  c.experiment = "tta_throughput"
  c.model.name = args.model
  c.model.kwargs = _kwargs(args)
  # RobustBench's [0, 1] inputs with --official (the same as the peer's).
  c.data.update(mean=(_MEAN[bool(args.official)],), std=(_STD[bool(args.official)],))
  c.adapt.update(method=method, batch_size=args.batch)
  c.adapt.optim.update(name="adamw", learning_rate=1e-3)
  c.tta[method] = method_cfg
  c.lock()
  return c


def _kwargs(args):
  if args.model == "small_cnn":
    return {"widths": tuple(int(w) for w in args.widths.split(","))}
  if args.model == "wide_resnet":
    return {"depth": args.depth, "widen_factor": args.widen}
  return {}


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--model", default="wide_resnet")
  p.add_argument("--depth", type=int, default=16)
  p.add_argument("--widen", type=int, default=2)
  p.add_argument("--widths", default="8,16,32", help="small_cnn's")
  p.add_argument("--image", type=int, default=32)
  p.add_argument("--classes", type=int, default=10)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--batches", type=int, default=2, help="stream length")
  p.add_argument("--steps", type=int, default=1, help="calls per block")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--num_aug", type=int, default=32)
  p.add_argument("--official", default="",
                 help="checkout of the official code (tent/, eata/, "
                      "cotta/): run it beside ours")
  p.add_argument("--torch_threads", type=int, default=2)
  args = p.parse_args()

  shape = (args.image, args.image, 3)
  official = torch_model = None
  if args.official:
    if args.model != "wide_resnet":
      raise SystemExit("--official needs --model=wide_resnet (RobustBench's"
                       " architecture)")
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(args.torch_threads)
    official = tta_official.load(args.official)
    torch_model, source = tta_official.wrn_pair(
        official, args.depth, args.widen, args.classes)
    params, variables = source.params, source.model_state
  else:
    model = models.get_model(args.model, args.classes, **_kwargs(args))
    variables = dict(model.init(jax.random.PRNGKey(0),
                                jnp.zeros((1, *shape)), train=False))
    params = variables.pop("params")
    source = tta_loop.Source(args.model, _kwargs(args), params, variables,
                             args.classes, shape, {})
  model = models.get_model(args.model, args.classes, **_kwargs(args))
  mesh = sharding.make_mesh()
  rng = np.random.default_rng(0)
  stream = {"image": jax.device_put(
      rng.integers(0, 256, (args.batches, args.batch, *shape), np.uint8),
      streams_lib.stream_sharding(mesh))}

  def entropy(x):  # the source model's, test-batch BatchNorm
    logits = model.apply({"params": params, **variables},
                         (x / 255.0 - _MEAN[bool(args.official)])
                         / _STD[bool(args.official)], train=True,
                         mutable=["batch_stats"])[0]["logits"]
    return -jnp.sum(jax.nn.softmax(logits) * jax.nn.log_softmax(logits), -1)
  ent = np.asarray(jax.jit(jax.vmap(entropy))(
      stream["image"].astype(jnp.float32))).ravel()

  eata_cfg = dict(e_margin_factor=1.0, d_margin=1e6, fisher_alpha=1.0,
                  reweight=1.0, ma_momentum=0.9)
  cotta_cfg = dict(ema=0.999, restore_prob=0.01, gate=0.0,
                   num_aug=args.num_aug, loss="ce", hflip=True)
  cfgs = {"source": ("source", {}, {}), "bn_adapt": ("bn_adapt", {}, {}),
          "tent": ("tent", {}, {}),
          "ostta": ("ostta", dict(diversity_weight=0.0, select=1.0), {})}
  margins = {}
  for frac in (1.0, 0.5, 0.25, 0.0):
    # All selected: a margin just above the largest possible entropy,
    # log(classes). (A huge margin, e.g. 1e6, makes EATA's weight
    # 1 / exp(entropy - margin) overflow: the official code's parameters
    # become NaN after one step and it selects nothing from then on.)
    margin = (math.log(args.classes) + 0.5 if frac >= 1 else
              float(np.quantile(ent, frac)) if frac > 0 else -1.0)
    margins[frac] = margin
    cfgs[f"eata_sel{int(frac * 100)}"] = ("eata", eata_cfg,
                                          {"e_margin": margin})
  # The opt-in sub-batch backward (not EATA's update; algos/tta/eata.py).
  cfgs["eata_compact_sel50"] = ("eata_compact", dict(
      eata_cfg, capacity_buckets=(0.25, 0.5, 0.75)), {"e_margin": margins[0.5]})
  for name, gate in (("cotta_gate_off", 0.0), ("cotta_gate_on", 2.0)):
    cfgs[name] = ("cotta", cotta_cfg, {"gate": gate})

  adapters, fns = {}, {}
  for label, (name, cfg, hp_override) in cfgs.items():
    if name not in adapters:  # one compiled step per method
      config = _config(args, "eata" if name == "eata_compact" else name, cfg)
      extras = {"clean_batches": {"image": stream["image"][:2]},
                "preprocess": preprocess_lib.make(
                    tta_loop.adapt_config(config, source).data)}
      adapters[name] = tta_loop.Adapter(config, source, mesh, extras)
    adapter = adapters[name]
    hp = jax.tree.map(lambda v: v, adapter.setup.hparams)
    hp["method"] = {**hp["method"], **{k: jnp.float32(v)
                                       for k, v in hp_override.items()}}

    def fn(adapter=adapter, hp=hp):
      _, preds, metrics = adapter.walk(adapter.fresh(1), stream, hp)
      return preds, metrics
    fns[label] = fn

  rows = {}
  for label, fn in fns.items():  # selection rates actually reached
    _, metrics = fn()
    if "method/backward_rows" in metrics:
      rows[label] = (
          float(np.mean(metrics["method/backward_samples"])) / args.batch,
          float(np.mean(metrics["method/backward_rows"])) / args.batch)
  peers = {}
  if official is not None:
    peers = _official_fns(official, torch_model, stream, margins)
    fns.update({f"official_{k}": f for k, f in peers.items()})
  times = bench_lib.time_interleaved(fns, steps=args.steps,
                                     rounds=args.rounds, warmup=1)
  n = args.batches * args.batch
  print(f"device: {bench_lib.device_name()}; model {args.model} "
        f"{_kwargs(args)}, {shape} images, {args.classes} classes, batch "
        f"{args.batch}, {args.batches} batches per stream, CoTTA "
        f"{args.num_aug} augmentations, walk: "
        f"{next(iter(adapters.values())).loop}")
  print(f"  {'method':<19} {'ms/batch':>9} {'images/s':>9} "
        f"{'selected':>9} {'bwd rows':>9} {'official':>9} {'off/ours':>9}")
  for label, t in times.items():
    if label.startswith("official_"):
      continue
    sel, r = rows.get(label, (math.nan, math.nan))
    peer = times.get(f"official_{label}")
    cells = (f"{peer / args.batches * 1e3:9.2f} {peer / t:9.3f}"
             if peer is not None else f"{'-':>9} {'-':>9}")
    print(f"  {label:<19} {t / args.batches * 1e3:9.2f} {n / t:9.0f} "
          f"{sel:9.2f} {r:9.2f} {cells}")
  for frac in (100, 50, 25, 0):
    print(f"  ratio eata(sel {frac}%) / tent step time = "
          f"{times[f'eata_sel{frac}'] / times['tent']:.3f}")
  print(f"  ratio cotta gate-off / gate-on step time = "
        f"{times['cotta_gate_off'] / times['cotta_gate_on']:.3f}")


def _official_fns(official, torch_model, stream, margins):
  """label -> a zero-argument function walking the stream with the
  official code (one object per label, adapting on as the stream repeats,
  like ours)."""
  xs = [tta_official.to_torch(x)
        for x in np.asarray(jax.device_get(stream["image"]))]
  fishers = tta_official.eata_fishers(official, torch_model, xs[:2])
  models_ = {"tent": tta_official.tent_model(official, torch_model)}
  for frac, margin in margins.items():
    models_[f"eata_sel{int(frac * 100)}"] = tta_official.eata_model(
        official, torch_model, fishers, margin, 1e6, 1.0)
  flip = lambda x: x.flip(-1)
  for label, gate in (("cotta_gate_off", 0.0), ("cotta_gate_on", 2.0)):
    models_[label] = tta_official.cotta_model(
        official, torch_model, flip, gate, restore_prob=0.01)

  def walk(m):
    with tta_official.cpu_cuda_calls():
      for x in xs:
        out = m(x)
    return out.detach().numpy()
  return {k: (lambda m=m: walk(m)) for k, m in models_.items()}


if __name__ == "__main__":
  main()
