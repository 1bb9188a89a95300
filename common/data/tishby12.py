"""The 12-bit task of Shwartz-Ziv & Tishby (arXiv:1703.00810), in-repo.

All 4096 binary inputs `x in {0, 1}^12` (row `i` is the binary expansion of
`i`, most significant bit first, as the `F` matrix of `var_u.mat`) with the
labels of Tishby's `var_u.mat` (`y`), as mirrored in the official code of
Chelombiev, Houghton & O'Donnell, "Adaptive Estimators Show Information
Compression in Deep Neural Networks" (ICLR 2019; ivansche/adaptive_estimators
@584a428, `data/var_u.mat`, MIT licence). The labels come from a spherically
symmetric function of 12 points on a sphere, thresholded so that p(y=1) is
about 1/2; the function itself is not published, so the 4096 labels ship
here as 512 packed bytes (`LABELS_HEX`, `np.packbits` of `y`). They depend
mostly on the number of ones (0-4 ones: y = 0, 8-12 ones: y = 1; 5, 6, 7
ones: 7.6%, 57.6%, 92.4% y = 1), tested. p(y = 1) = 0.5171.

The official code reads the one-hot label as `[y, 1 - y]`, so its class 0
is y = 1; we keep `label = y` (class indices swap, nothing else changes).
It trains on the first 80% of the rows in this order (no shuffle,
`utils.data_shuffle`) and tests on the rest; `split="official"` does the
same, `split="shuffled"` (default) draws a seeded permutation first, so
the test set is not the inputs with the most leading ones.

The generator `tishby12` serves the training rows to the harness
(`data.source = "generator"`, `input_key = "x"`, `preprocess = "none"`):
the whole training set (full batch, padded with `mask = False`) when
`train.batch_size >= num_train`, else a uniformly drawn subset.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from common import config as config_lib
from common.data import procedural

NUM_BITS = 12
NUM_INPUTS = 4096
SPLITS = ("shuffled", "official")
LABELS_HEX = (
    "0000000000000003000000030001173f000000010001051f0000011705175f7f"
    "0000000300000017000001330013177f000000030007073f0000013f15177f7f"
    "000000030000010f000000170007177f0001000f050f0f7f0007073f175f7fff"
    "0003003f0007033f0013033f003f3fff001f073f077f0fff003f073f5f7f7fff"
    "0000000000000007000000130101177f000000070505175f00001517555f7f7f"
    "000000130000003f001311331113777f0017003f155f5f7f1517153f555f7f7f"
    "000000070007050f0000003f05075f7f051f077f5f5f5fff155f5f7f5f5fffff"
    "013f037f057f0fff117f33ff557f7fff5fff7fff7fffffff7fff7fffffffffff"
    "0000000100000117000111371117777f000000030105171f0111173757577fff"
    "000100330013133f1133337f17777fff001300331517173f1133777f77777fff"
    "000000030000013f0013133f15177f7f0007000f050f5f7f1517173f5f5f7fff"
    "0037133f003f133f137f33ff777f7fff177f17ff5f7f5fff777f77ff7f7f7fff"
    "00000013000015171111177755777f7f0115151755555f5f555577777f7fffff"
    "1137137f1577777f777777ff7777ffff577f777f7f7f7f7f77ff77ffffffffff"
    "0017003f1517153f1577777f55777f7f577f5f7f5fff5fff7f7f7f7fffffffff"
    "77ff7fff7fff7fff7fffffffffffffffffffffffffffffffffffffffffffffff")
DEFAULTS = dict(train_fraction=0.8, split="shuffled", data_seed=-1)
RULES = {
    "train_fraction": config_lib.Rule(
        "a number in (0, 1)", lambda v: isinstance(v, float) and 0 < v < 1),
    "split": config_lib.one_of(*SPLITS),
    "data_seed": config_lib.at_least(-1, integer=True),
}


def inputs() -> np.ndarray:
  """float32 `[4096, 12]`: row i is the binary expansion of i (MSB first)."""
  i = np.arange(NUM_INPUTS)[:, None]
  return ((i >> np.arange(NUM_BITS - 1, -1, -1)) & 1).astype(np.float32)


def labels() -> np.ndarray:
  """int32 `[4096]`: Tishby's labels y of the inputs' rows."""
  packed = np.frombuffer(bytes.fromhex("".join(LABELS_HEX)), np.uint8)
  return np.unpackbits(packed)[:NUM_INPUTS].astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Tishby12:
  """The 4096 examples in training order (train first).

  Attributes:
    x: float32 `[4096, 12]`.
    label: int32 `[4096]`.
    index: int32 `[4096]` the input's number (its row in `inputs()`): the
      identity of X for the information measures.
    num_train: the first `num_train` rows train, the rest test.
  """
  x: np.ndarray
  label: np.ndarray
  index: np.ndarray
  num_train: int

  def split(self, name: str) -> dict[str, np.ndarray]:
    """`{"x", "label"}` of "train" or "test"."""
    if name not in ("train", "test"):
      raise ValueError(f"split {name!r}; allowed: 'train', 'test'")
    part = (slice(0, self.num_train) if name == "train"
            else slice(self.num_train, None))
    return {"x": self.x[part], "label": self.label[part]}


def tishby12_dataset(train_fraction: float = 0.8, split: str = "shuffled",
                     seed: int = 0) -> Tishby12:
  """The 12-bit task with `round(train_fraction * 4096)` training rows.

  Args:
    train_fraction: in (0, 1) (the official code's `np.rint(80 * 4096 /
      100)` = 3277 rows at 0.8).
    split: "shuffled" (a permutation seeded by `seed`) or "official" (the
      rows in input order).
    seed: seeds the permutation.
  """
  if split not in SPLITS:
    raise ValueError(f"split={split!r}; allowed: {SPLITS}")
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction={train_fraction}; allowed: (0, 1)")
  order = (np.random.default_rng(seed).permutation(NUM_INPUTS)
           if split == "shuffled" else np.arange(NUM_INPUTS))
  return Tishby12(x=inputs()[order], label=labels()[order],
                  index=order.astype(np.int32),
                  num_train=int(np.rint(train_fraction * NUM_INPUTS)))


def dataset_from_config(config: Any) -> Tishby12:
  """The run's dataset (`config.data.kwargs`; `data_seed` -1: the run's)."""
  kw = procedural.settings(config, DEFAULTS, RULES)
  seed = config.seed if kw["data_seed"] < 0 else kw["data_seed"]
  return tishby12_dataset(kw["train_fraction"], kw["split"], seed)


def _draw(split: dict[str, np.ndarray]):
  return procedural.split_sampler(split, with_index=False)


@procedural.register_generator("tishby12")
def make(config: Any) -> procedural.Generator:
  """Batches `{"x" [b, 12], "label", "mask" [b]}` of the training rows."""
  data = dataset_from_config(config)
  sample = _draw(data.split("train"))
  batch = config.train.batch_size if "train" in config else 0
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=2,
      epoch_size=max(data.num_train, batch),
      eval_sample=_draw(data.split("test")),
      eval_examples=NUM_INPUTS - data.num_train)
