"""How far the opt-in sub-batch backward moves EATA's update.

EATA's update (the default, `capacity_buckets=()`) back-propagates the
masked loss through the whole batch; the opt-in compacted backward
re-forwards a sub-batch, so its BatchNorm statistics, and so its gradient,
are the sub-batch's. This adapts the study's source models (trained by the
digits_c study, reused from `<workdir>/source_models`) on the first
`--steps` batches of each corruption stream with both and prints, per seed,
the relative deviation of the adapted BatchNorm parameters
`|theta_compact - theta_official| / |theta_official - theta_0|`
(median and max over the corruptions).

    python -m experiments.eata.compact_deviation --workdir=runs/eata \\
        --data_dir=/tmp/tta_tfds --seeds=0,1,2 [--steps=6]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from common import config as config_lib
from common.core import sharding
from common.data import preprocess as preprocess_lib
from common.protocols import tta
from common.protocols import tta_loop

ARMS = {"official": (), "compact (0.25, 0.5, 0.75)": (0.25, 0.5, 0.75),
        "compact (0.5,)": (0.5,)}


def _flat_bn(params, trainable) -> np.ndarray:
  return np.concatenate([np.ravel(p) for p, m in zip(
      jax.tree.leaves(params), jax.tree.leaves(trainable)) if m])


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", default="runs/eata")
  p.add_argument("--data_dir", default="")
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--steps", type=int, default=6)
  args = p.parse_args()
  base = config_lib.load_config("experiments/eata/config.py:digits_c")
  mesh = sharding.make_mesh()
  print("| seed | arm | median deviation | max deviation | selected |")
  print("|---|---|---|---|---|")
  for seed in [int(s) for s in args.seeds.split(",")]:
    cfg = config_lib.apply_overrides(base, {
        "seed": seed, "adapt.method": "eata",
        "data.data_dir": args.data_dir})
    source = tta.source_model(cfg, f"{args.workdir}/eata/seed_{seed}")
    streams, _, init = tta.open_streams(cfg, mesh)
    extras = {"clean_batches": init, "preprocess": preprocess_lib.make(
        tta_loop.adapt_config(cfg, source).data)}
    final, selected = {}, {}
    for arm, buckets in ARMS.items():
      c = config_lib.apply_overrides(
          cfg, {"tta.eata.capacity_buckets": buckets})
      adapter = tta_loop.Adapter(c, source, mesh, extras)
      theta0 = _flat_bn(adapter.state0.params, adapter.setup.parts.trainable)
      for name, stream in streams.items():
        batches = jax.tree.map(lambda x: x[:args.steps],
                               stream.stacked()[0])
        state, _, metrics = adapter.walk(adapter.fresh(0), batches)
        final[arm, name] = _flat_bn(state.params,
                                    adapter.setup.parts.trainable) - theta0
        selected[arm, name] = float(np.mean(
            metrics["method/backward_samples"])) / c.adapt.batch_size
    for arm in list(ARMS)[1:]:
      dev = [np.linalg.norm(final[arm, n] - final["official", n])
             / np.linalg.norm(final["official", n]) for n in streams]
      sel = np.mean([selected[arm, n] for n in streams])
      print(f"| {seed} | {arm} | {np.median(dev):.1%} | {np.max(dev):.1%} "
            f"| {sel:.0%} |")


if __name__ == "__main__":
  main()
