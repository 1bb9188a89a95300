"""The "input" baseline: the ridge probe on raw pixels.

The paper's probing plots draw the probe accuracy of the raw input as a
reference line; this prints (and with `--write`, stores) the same for the
study's data, with the probe of `common/eval/linear_probe.py` on pixels in
[0, 1].

  python -m experiments.random_teachers.pixel_probe \
      --write=experiments/random_teachers/results/pixel_probe.md
"""

from __future__ import annotations

import argparse

import numpy as np

from common.data import sources
from common.eval import linear_probe

COMMAND = ("python -m experiments.random_teachers.pixel_probe "
           "--write=experiments/random_teachers/results/pixel_probe.md")
# (dataset, probe training split, probe test split) of the variants.
DATA = (("digits", "train", "test"),
        ("shapes32/c10", "train[:3000]", "test"))


def pixel_probe(name: str, train_split: str, test_split: str) -> float:
  train = sources.open_split(name, train_split)
  test = sources.open_split(name, test_split)
  a, b = train.get(np.arange(len(train))), test.get(np.arange(len(test)))
  return linear_probe.probe_accuracy(a["image"] / 255.0, a["label"],
                                     b["image"] / 255.0, b["label"],
                                     train.num_classes)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--write", default="")
  args = parser.parse_args()
  lines = [f"Command: `{COMMAND}`", "",
           "| data | probe train | probe test | pixel probe acc (%) |",
           "|---|---|---|---|"]
  for name, tr, te in DATA:
    lines.append(f"| {name} | {tr} | {te} | "
                 f"{pixel_probe(name, tr, te):.1f} |")
  text = "\n".join(lines) + "\n"
  print(text)
  if args.write:
    with open(args.write, "w") as f:
      f.write(text)


if __name__ == "__main__":
  main()
