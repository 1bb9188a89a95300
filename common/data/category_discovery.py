"""Category-discovery splits of a classification dataset.

Generalized category discovery (GCD; Vaze et al. 2022, arXiv:2201.02609)
trains on a split whose classes are divided into *old* classes, part of
whose examples are labelled, and *new* classes, never labelled; the model
must cluster the unlabelled examples of both. Novel class discovery (NCD)
is the case with every old-class example labelled. Continual GCD (Happy,
arXiv:2410.06535) adds stages of unlabelled data, each introducing new
classes, after a labelled stage 0, with no replay of earlier data.

A config opts in with `config.data.category_discovery =
category_discovery.default_config()` (a section absent from a config leaves
its fingerprint unchanged) and sets `kind = "gcd"`:

  old_classes        original label ids of the old classes; () takes the
                     first `num_old` ids (the SimGCD/GCD splits of CIFAR:
                     `range(5)`, `range(80)`).
  num_old            used when `old_classes` is ().
  labelled_fraction  fraction of the old classes' training examples that
                     are labelled, drawn uniformly without replacement
                     over all old-class examples (GCD's
                     `subsample_instances`, prop 0.5); `per_class = True`
                     draws it in each class (Happy's stage 0, prop 0.8).
  seed               the draw's seed (numpy).
  eval_on            "unlabelled_train": evaluate on the unlabelled part of
                     the training split (the papers' transductive protocol,
                     SimGCD `unlabelled_train_examples_test`); "test": the
                     eval split.

Labels are relabelled so the old classes are `0..num_old-1` (in the order
given) and the new classes follow in ascending original id, as the official
`target_transform_dict` does; batches carry `labelled` (bool `[b]`, True
where the label may be used) and `is_old` (bool `[b]`, ground truth, for
evaluation only). `stage_indices` builds the continual-GCD stages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common.data import subsets

KINDS = ("none", "gcd")
EVAL_ON = ("unlabelled_train", "test")


def default_config() -> mlc.ConfigDict:
  """The `data.category_discovery` section (kind "none": plain labels)."""
  return mlc.ConfigDict(dict(
      kind="none", old_classes=(), num_old=0, labelled_fraction=0.5,
      per_class=False, seed=0, eval_on="unlabelled_train"))


def check(cfg: mlc.ConfigDict) -> None:
  """Raises a one-line `ConfigError` for a section that cannot run."""
  p = "config.data.category_discovery"
  if cfg.kind not in KINDS:
    raise config_lib.ConfigError(
        f"{p}.kind={cfg.kind!r} is not allowed: expected one of {list(KINDS)}")
  if cfg.eval_on not in EVAL_ON:
    raise config_lib.ConfigError(
        f"{p}.eval_on={cfg.eval_on!r} is not allowed: expected one of "
        f"{list(EVAL_ON)}")
  frac = cfg.labelled_fraction
  if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (
      0.0 < frac <= 1.0):
    raise config_lib.ConfigError(
        f"{p}.labelled_fraction={frac!r} is not allowed: expected a number "
        "in (0, 1]")
  if cfg.kind == "gcd" and not tuple(cfg.old_classes) and cfg.num_old <= 0:
    raise config_lib.ConfigError(
        f"{p}: kind 'gcd' needs old_classes (label ids) or num_old > 0")


def class_order(num_classes: int, old_classes: Sequence[int] = (),
                num_old: int = 0) -> tuple[int, ...]:
  """Original ids in their new order: the old classes, then the others.

  Args:
    num_classes: K, the dataset's number of classes.
    old_classes: original ids of the old classes; () takes `range(num_old)`.
    num_old: number of old classes when `old_classes` is ().

  Returns:
    A permutation of `0..K-1`: new label j is original id `order[j]`.
  """
  old = (tuple(int(c) for c in old_classes) if tuple(old_classes)
         else tuple(range(num_old)))
  old = subsets.check_classes(old, num_classes, "category_discovery")
  if not 0 < len(old) < num_classes:
    raise config_lib.ConfigError(
        f"category discovery needs 1..{num_classes - 1} old classes of "
        f"{num_classes}, got {len(old)}")
  return old + tuple(c for c in range(num_classes) if c not in old)


def labelled_mask(labels: np.ndarray, num_old: int, fraction: float,
                  seed: int, per_class: bool = False) -> np.ndarray:
  """bool `[n]`: which examples are labelled (old classes only).

  Args:
    labels: int `[n]` labels in the new order (old classes `< num_old`).
    num_old: number of old classes.
    fraction: labelled fraction of the old-class examples.
    seed: numpy seed of the draw.
    per_class: draw `int(fraction * n_c)` in each old class (Happy) rather
      than `int(fraction * n_old)` over all old examples (GCD, SimGCD).
  """
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  mask = np.zeros(len(labels), bool)
  groups = ([np.flatnonzero(labels == c) for c in range(num_old)] if per_class
            else [np.flatnonzero(labels < num_old)])
  for pos in groups:
    mask[rng.choice(pos, int(fraction * len(pos)), replace=False)] = True
  return mask


class DiscoverySource:
  """A source relabelled in category-discovery order, with its masks.

  Same interface as `common.data.sources.ArraySource`; `get` returns
  `label` (new order), `labelled` and `is_old`. `positions` selects the
  examples of the wrapped source it exposes (all, or the unlabelled ones).

  Attributes:
    order: original ids in new-label order (`order[j]` is new label j).
    num_old: number of old classes.
    positions: int64 `[len(self)]` positions in the wrapped source.
    labels: int32 `[len(self)]` new labels.
    labelled: bool `[len(self)]`.
  """

  def __init__(self, source: Any, order: Sequence[int], num_old: int,
               labelled: np.ndarray | None = None,
               positions: np.ndarray | None = None):
    self._source = source
    self.order = tuple(order)
    self.num_old = num_old
    lut = np.empty(len(self.order), np.int32)
    lut[list(self.order)] = np.arange(len(self.order))
    all_new = lut[subsets.all_labels(source)]
    self.positions = (np.arange(len(source)) if positions is None
                      else np.asarray(positions, np.int64))
    self.labels = all_new[self.positions]
    self.labelled = (np.zeros(len(self.positions), bool) if labelled is None
                     else np.asarray(labelled, bool)[self.positions])
    self.info = dataclasses.replace(
        source.info, splits={source.split: len(self.positions)})

  def __len__(self) -> int:
    return len(self.positions)

  def __getattr__(self, name: str) -> Any:
    return getattr(self._source, name)

  @property
  def num_classes(self) -> int:
    return len(self.order)

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """`{"image", "label", "labelled", "is_old"}` at `indices`."""
    indices = np.asarray(indices, np.int64)
    batch = dict(self._source.get(self.positions[indices]))
    batch["label"] = self.labels[indices]
    batch["labelled"] = self.labelled[indices]
    batch["is_old"] = self.labels[indices] < self.num_old
    return batch


def apply(train: Any, evals: Any, cfg: mlc.ConfigDict) -> tuple[Any, Any]:
  """`(train, eval)` sources of a `data.category_discovery` section.

  The eval source is the unlabelled part of the training split
  (`eval_on="unlabelled_train"`) or the eval split, relabelled alike.
  """
  if cfg.kind == "none":
    return train, evals
  check(cfg)
  order = class_order(train.num_classes, tuple(cfg.old_classes), cfg.num_old)
  num_old = len(tuple(cfg.old_classes)) or cfg.num_old
  full = DiscoverySource(train, order, num_old)
  mask = labelled_mask(full.labels, num_old, cfg.labelled_fraction, cfg.seed,
                       cfg.per_class)
  train = DiscoverySource(train, order, num_old, labelled=mask)
  if cfg.eval_on == "unlabelled_train":
    evals = DiscoverySource(train._source, order, num_old,  # pylint: disable=protected-access
                            positions=np.flatnonzero(~mask))
  elif evals is not None:
    evals = DiscoverySource(evals, order, num_old)
  return train, evals


@dataclasses.dataclass(frozen=True)
class Stage:
  """One stage of continual GCD.

  Attributes:
    positions: int64 `[n_s]` training-split positions of the stage's data.
    labelled: bool `[n_s]` (all True in stage 0, all False after).
    seen_classes: new-order label ids seen up to this stage (old first).
    new_classes: the classes this stage introduces (stage 0: the old ones).
  """
  positions: np.ndarray
  labelled: np.ndarray
  seen_classes: tuple[int, ...]
  new_classes: tuple[int, ...]


def _draw(rng: np.random.Generator, pool: np.ndarray, n: int, what: str
          ) -> np.ndarray:
  if n > len(pool):
    raise ValueError(f"continual GCD asks {n} examples of {what}, which has "
                     f"{len(pool)}; lower the per-stage count")
  return np.sort(rng.choice(pool, n, replace=False))


def stage_indices(labels: np.ndarray, num_old: int, num_stages: int, *,
                  labelled_fraction: float = 0.8, old_per_stage: int,
                  novel_new_per_stage: int, novel_seen_per_stage: int,
                  seed: int = 0) -> list[Stage]:
  """The stages of continual GCD over a training split (Happy's protocol).

  Stage 0 holds `labelled_fraction` of each old class, labelled. Stage
  s = 1..S is unlabelled: `old_per_stage` examples of each old class drawn
  from the old examples stage 0 did not label, `novel_new_per_stage` of
  each class it introduces and `novel_seen_per_stage` of each class an
  earlier stage introduced. The `K - num_old` new classes are introduced in
  ascending label order, `(K - num_old) // S` per stage (the last stage
  takes the remainder). Each stage draws afresh (an example may recur in
  two stages, as in the official code); no stage repeats stage 0's
  labelled data (no replay). Happy-CGCD `data/cifar.py`
  (`get_cifar_100_datasets`): CIFAR-100 uses 0.8, 4 stages of 5 classes,
  counts 25 / 400 / 25 (`online_old_seen_num`, `online_novel_unseen_num`,
  `online_novel_seen_num`).

  Args:
    labels: int `[n]` new-order labels of the training split (old classes
      `< num_old`; e.g. `DiscoverySource.labels`).
    num_old: number of old classes.
    num_stages: S, the number of unlabelled stages.
    labelled_fraction: stage 0's labelled fraction of each old class.
    old_per_stage, novel_new_per_stage, novel_seen_per_stage: per-class
      example counts of a stage (see above).
    seed: numpy seed; stage s draws from `default_rng([seed, s])`.

  Returns:
    `[Stage] * (S + 1)`.
  """
  labels = np.asarray(labels)
  k = int(labels.max()) + 1
  if not 0 < num_old < k or num_stages < 1 or k - num_old < num_stages:
    raise ValueError(f"continual GCD needs 0 < num_old < K and 1 <= "
                     f"num_stages <= K - num_old; got num_old={num_old}, "
                     f"num_stages={num_stages}, K={k}")
  stage0 = np.flatnonzero(labelled_mask(labels, num_old, labelled_fraction,
                                        seed, per_class=True))
  unlabelled_old = np.setdiff1d(np.flatnonzero(labels < num_old), stage0)
  stages = [Stage(stage0, np.ones(len(stage0), bool),
                  tuple(range(num_old)), tuple(range(num_old)))]
  per = (k - num_old) // num_stages
  for s in range(1, num_stages + 1):
    rng = np.random.default_rng([seed, s])
    first = num_old + (s - 1) * per
    last = k if s == num_stages else first + per
    parts = [_draw(rng, unlabelled_old[labels[unlabelled_old] == c],
                   old_per_stage, f"old class {c}") for c in range(num_old)]
    for c in range(num_old, last):
      n = novel_new_per_stage if c >= first else novel_seen_per_stage
      parts.append(_draw(rng, np.flatnonzero(labels == c), n, f"class {c}"))
    pos = np.concatenate(parts)
    stages.append(Stage(pos, np.zeros(len(pos), bool), tuple(range(last)),
                        tuple(range(first, last))))
  return stages


def stage_source(source: Any, order: Sequence[int], num_old: int,
                 stage: Stage) -> DiscoverySource:
  """The training source of one stage (`source` is the raw split)."""
  full = np.zeros(len(source), bool)
  full[stage.positions] = stage.labelled
  return DiscoverySource(source, order, num_old, labelled=full,
                         positions=stage.positions)
