"""Over- or under-confident? Mean confidence against accuracy per run.

ECE is unsigned: it does not say on which side of the diagonal a model
sits. This restores each finished run of a ps_kd study (the newest
checkpoint in `<workdir>/<arm>/seed_<k>`), predicts the test split and the
training split, and prints a markdown table of error, mean confidence (max
softmax probability, %) and their gap `confidence - accuracy` (> 0:
over-confident), per run and as mean +- std over seeds.

    python -m experiments.ps_kd.confidence --variant=shapes32 \\
        --workdir=runs/ps_kd-shapes32 --data_dir=/tmp/tfds --arms=CE,PS-KD \\
        --seeds=0,1,2 [--write=experiments/ps_kd/results/shapes32_confidence.md]
"""

from __future__ import annotations

import argparse

import numpy as np

from common import config as config_lib
from common.core import sharding as sharding_lib
from common.eval import metrics as metrics_lib
from common.protocols import build
from common.protocols import supervised
from common.study import engine
from common.study import tables


def split_stats(setup, state, batches) -> dict[str, float]:
  """Error, mean confidence and their gap (%) over `batches`."""
  probs, labels = [], []
  for batch in batches:
    out = setup.eval_step(state, batch, setup.hparams)
    keep = (sharding_lib.gather_to_host(batch["mask"]).astype(bool)
            if "mask" in batch else slice(None))
    probs.append(metrics_lib.softmax(
        sharding_lib.gather_to_host(out["logits"]))[keep])
    labels.append(sharding_lib.gather_to_host(batch["label"])[keep])
  p, y = np.concatenate(probs), np.concatenate(labels)
  accuracy = 100.0 * np.mean(p.argmax(-1) == y)
  confidence = 100.0 * np.mean(p.max(-1))
  return {"error": 100.0 - accuracy, "confidence": confidence,
          "gap": confidence - accuracy}


def _mean_std(values) -> str:
  mean, std = tables.mean_std(list(values))
  return f"{mean:.2f}" if std is None else f"{mean:.2f} +- {std:.2f}"


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--variant", default="shapes32")
  p.add_argument("--workdir", required=True)
  p.add_argument("--data_dir", default="")
  p.add_argument("--arms", default="CE,PS-KD")
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--write", default="")
  args = p.parse_args()
  base = config_lib.apply_overrides(
      config_lib.load_config(f"experiments/ps_kd/config.py:{args.variant}"),
      {"data.data_dir": args.data_dir})
  seeds = [int(s) for s in args.seeds.split(",")]
  rows = ["| arm | seed | test error | test confidence | test gap | "
          "train error | train confidence | train gap |",
          "|---|---|---|---|---|---|---|---|"]
  per_arm = {}
  for arm, cfg in engine.arm_configs(base, args.arms.split(",")).items():
    for seed in seeds:
      c = config_lib.apply_overrides(cfg, {"seed": seed})
      setup, state = supervised.restore(c, f"{args.workdir}/{arm}/seed_{seed}")
      test = split_stats(setup, state, setup.eval_batches())
      # The training split, unaugmented, through the eval pipeline.
      train_setup = build.setup(config_lib.apply_overrides(
          c, {"data.eval_split": c.data.train_split}))
      train = split_stats(train_setup, state, train_setup.eval_batches())
      cells = [test["error"], test["confidence"], test["gap"],
               train["error"], train["confidence"], train["gap"]]
      per_arm.setdefault(arm, []).append(cells)
      rows.append(f"| {arm} | {seed} | " + " | ".join(
          f"{v:.2f}" for v in cells) + " |")
  for arm, values in per_arm.items():
    cols = np.array(values).T
    rows.append(f"| {arm} | mean +- std | " + " | ".join(
        _mean_std(col) for col in cols) + " |")
  text = "\n".join(rows) + "\n"
  print(text)
  if args.write:
    with open(args.write, "w") as f:
      f.write(text)


if __name__ == "__main__":
  main()
