"""Modular-arithmetic datasets with a fraction of corrupted training labels.

The task of Doshi et al., "To grok or not to grok: Disentangling
generalization and memorization on corrupted algorithmic datasets"
(arXiv:2310.13061; official d-doshi/Grokking, `utils/datasets.py`): all
`p * p` pairs `(a, b)` with label `a op b mod p` are shuffled, the first
`train_fraction` of them train and the rest test; the first `corruption`
fraction of the training examples get random labels. The clean labels stay
in every batch (`true_label`), so accuracy on the corrupted examples can be
measured against the label they were trained on (memorisation) and against
the true one (generalisation).

`modular_dataset(...)` is a pure function of its arguments (numpy
generator seeded with `seed`). The generator `modular` serves it to the
harness (`config.data.source = "generator"`, `input_key = "x"`,
`preprocess = "none"`): a step's batch is the whole training set when
`train.batch_size >= num_train` (full-batch gradient descent, as the
official code; rows beyond `num_train` are padding with `mask = False`),
otherwise a uniformly drawn subset of that size (mini-batches). Settings in
`config.data.kwargs`: `p`, `operation` (`add`, `sub`, `mul`; the official
code has `add` and `mul`), `train_fraction`, `corruption`, `relabel`
(`uniform`: a label drawn from all p classes, the official rule, so about
1/p of the relabelled examples keep their true label; `other`: one of the
p - 1 wrong labels, so exactly `corruption` of the training set is wrong)
and `data_seed` (-1: the run's seed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from common import config as config_lib
from common.data import procedural

OPERATIONS = ("add", "sub", "mul")
RELABEL = ("uniform", "other")
DEFAULTS = dict(p=97, operation="add", train_fraction=0.5, corruption=0.0,
                relabel="uniform", data_seed=-1)
RULES = {
    "p": config_lib.at_least(2, integer=True),
    "operation": config_lib.one_of(*OPERATIONS),
    "train_fraction": config_lib.Rule(
        "a number in (0, 1)", lambda v: isinstance(v, float) and 0 < v < 1),
    "corruption": config_lib.Rule(
        "a number in [0, 1)", lambda v: isinstance(v, (int, float))
        and 0 <= v < 1),
    "relabel": config_lib.one_of(*RELABEL),
    "data_seed": config_lib.at_least(-1, integer=True),
}


@dataclasses.dataclass(frozen=True)
class ModularData:
  """All `p * p` examples in their shuffled order (train first).

  Attributes:
    p: the modulus (number of input tokens per operand and of classes).
    x: int32 `[p*p, 2]` operand pairs `(a, b)`.
    true_label: int32 `[p*p]` `a op b mod p`.
    label: int32 `[p*p]` the labels trained on: `true_label` except on the
      relabelled training examples.
    corrupted: bool `[p*p]` `label != true_label` (training examples only).
    num_train: the first `num_train` examples train, the rest test.
    num_relabelled: training examples whose label was redrawn (the first
      `int(corruption * num_train)`).
  """
  p: int
  x: np.ndarray
  true_label: np.ndarray
  label: np.ndarray
  corrupted: np.ndarray
  num_train: int
  num_relabelled: int

  def split(self, name: str) -> dict[str, np.ndarray]:
    """`{"x", "label", "true_label", "corrupted"}` of "train" or "test"."""
    if name not in ("train", "test"):
      raise ValueError(f"split {name!r}; allowed: 'train', 'test'")
    part = (slice(0, self.num_train) if name == "train"
            else slice(self.num_train, None))
    return {"x": self.x[part], "label": self.label[part],
            "true_label": self.true_label[part],
            "corrupted": self.corrupted[part]}


def apply_operation(a: np.ndarray, b: np.ndarray, p: int,
                    operation: str) -> np.ndarray:
  """`a op b mod p` element-wise (int arrays of one shape)."""
  if operation == "add":
    return (a + b) % p
  if operation == "sub":
    return (a - b) % p
  if operation == "mul":
    return (a * b) % p
  raise ValueError(f"operation {operation!r}; allowed: {OPERATIONS}")


def modular_dataset(p: int = 97, operation: str = "add",
                    train_fraction: float = 0.5, corruption: float = 0.0,
                    seed: int = 0, relabel: str = "uniform") -> ModularData:
  """The shuffled `a op b mod p` dataset with corrupted training labels.

  Args:
    p: modulus, >= 2.
    operation: one of `OPERATIONS`.
    train_fraction: in (0, 1); `int(train_fraction * p * p)` examples train
      (the official `int(frac * total_size)`).
    corruption: in [0, 1); `int(corruption * num_train)` training labels are
      redrawn (the official `int(noise_level * train_size)`).
    seed: seeds the shuffle and the new labels.
    relabel: `uniform` (any of the p labels, the official rule) or `other`
      (one of the p - 1 wrong ones).

  Returns:
    The dataset (see `ModularData`).
  """
  if operation not in OPERATIONS:
    raise ValueError(f"operation={operation!r}; allowed: {OPERATIONS}")
  if relabel not in RELABEL:
    raise ValueError(f"relabel={relabel!r}; allowed: {RELABEL}")
  if not 0.0 < train_fraction < 1.0:
    raise ValueError(f"train_fraction={train_fraction}; allowed: (0, 1)")
  if not 0.0 <= corruption < 1.0:
    raise ValueError(f"corruption={corruption}; allowed: [0, 1)")
  if p < 2:
    raise ValueError(f"p={p}; allowed: an integer >= 2")
  rng = np.random.default_rng(seed)
  a, b = np.divmod(rng.permutation(p * p), p)
  x = np.stack([a, b], axis=1).astype(np.int32)
  true_label = apply_operation(a, b, p, operation).astype(np.int32)
  num_train = int(train_fraction * p * p)
  num_relabelled = int(corruption * num_train)
  label = true_label.copy()
  if relabel == "uniform":
    new = rng.integers(0, p, num_relabelled)
  else:  # a uniformly drawn wrong label
    new = (true_label[:num_relabelled]
           + rng.integers(1, p, num_relabelled)) % p
  label[:num_relabelled] = new
  return ModularData(p=p, x=x, true_label=true_label, label=label,
                     corrupted=label != true_label, num_train=num_train,
                     num_relabelled=num_relabelled)


def settings(config: Any) -> dict[str, Any]:
  """The generator's checked settings (`config.data.kwargs` over defaults)."""
  return procedural.settings(config, DEFAULTS, RULES)


def dataset_from_config(config: Any) -> ModularData:
  """The run's dataset: `config.data.kwargs`, seeded by `data_seed` (or
  `config.seed` when it is -1)."""
  kw = settings(config)
  seed = config.seed if kw["data_seed"] < 0 else kw["data_seed"]
  return modular_dataset(kw["p"], kw["operation"], kw["train_fraction"],
                         kw["corruption"], seed, kw["relabel"])


def _draw(split: dict[str, np.ndarray]):
  return procedural.split_sampler(split, with_index=True)


@procedural.register_generator("modular")
def make(config: Any) -> procedural.Generator:
  """Batches `{"x" [b, 2], "label", "true_label", "corrupted", "mask",
  "index" [b]}` of the run's modular dataset (see the module docstring)."""
  data = dataset_from_config(config)
  sample = _draw(data.split("train"))
  # A full batch padded past num_train is one step per epoch.
  batch = config.train.batch_size if "train" in config else 0
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=data.p, epoch_size=max(data.num_train, batch),
      eval_sample=_draw(data.split("test")),
      eval_examples=data.p * data.p - data.num_train)
