"""Synthetic label noise on a training split (`config.data.label_noise`).

The noisy labels are a pure function of (noise config, clean labels, and
for `instance` the images): the same config gives the same corrupted
examples on every machine and device count. A noisy source returns both
labels, so a run trains on `label` (noisy) while evaluators read
`clean_label` (memorisation curves: `common.eval.memorisation`).

Kinds (`rate` in [0, 1)):
  symmetric       a fraction `rate` of the examples, chosen uniformly, gets
                  a label drawn uniformly from all K classes (so it may keep
                  its class: realised corruption rate * (K-1)/K). This is
                  the ELR / Co-teaching code's rule (ELR data_loader/
                  cifar10.py `symmetric_noise`).
  symmetric_flip  a fraction `rate` gets a uniformly drawn *other* class
                  (realised corruption exactly `rate`).
  asymmetric      within each class c with map[c] != c, a fraction `rate`
                  of its examples is relabelled map[c] (the ELR code flips
                  exactly ceil(rate * n_c) per class for CIFAR-10; we take
                  round(rate * n_c) for every map).
  instance        Xia et al. 2020 ("Part-dependent label noise", NeurIPS;
                  their instance-dependent generator): per example a flip
                  rate q ~ N(rate, 0.1^2) truncated to [0, 1]; per class a
                  projection W_y ~ N(0, 1) of shape [d, K]; the label is
                  drawn from q * softmax(x W_y without class y) + (1-q) e_y,
                  with x the image in [0, 1] flattened and L2-normalised
                  (our choice: keeps the softmax from saturating at any
                  resolution).

Asymmetric maps (`map` name or an explicit `permutation` of the classes):
  cifar10   truck->automobile, bird->airplane, deer->horse, cat<->dog
            (9->1, 2->0, 4->7, 3<->5; ELR / Patrini et al. 2017).
  cifar100  each class to the next within its block of 5 consecutive ids,
            cyclically (the ELR code's "superclass" blocks are consecutive
            ids, build_for_cifar100).
  mnist     2->7, 3->8, 5<->6, 7->1 (Patrini et al. 2017): for `digits`.
  shapes32  ellipse->circle, pentagon->square, crescent->half_disc,
            star<->cross (1->0, 4->3, 8->9, 5<->6): same structure as
            cifar10 (three one-way flips to a look-alike, one swap).
  next      c -> c+1 mod K (a permutation of all classes).
"""

from __future__ import annotations

from typing import Any

import ml_collections as mlc
import numpy as np

from common import config as config_lib

KINDS = ("none", "symmetric", "symmetric_flip", "asymmetric", "instance")
_FIXED_MAPS = {
    "cifar10": (10, {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}),
    "mnist": (10, {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}),
    "shapes32": (10, {1: 0, 4: 3, 8: 9, 5: 6, 6: 5}),
}
MAPS = ("cifar10", "cifar100", "mnist", "shapes32", "next")
_INSTANCE_STD = 0.1  # Xia et al. 2020's flip-rate spread
_CHUNK = 4096        # examples per image read (instance noise)


def default_config() -> mlc.ConfigDict:
  """The `data.label_noise` section (kind "none": the clean labels)."""
  return mlc.ConfigDict(dict(kind="none", rate=0.0, seed=0, map="",
                             permutation=()))


def check(cfg: mlc.ConfigDict, num_classes: int | None = None) -> None:
  """Raises a one-line `ConfigError` for a noise config that cannot run.

  Args:
    cfg: the `data.label_noise` section.
    num_classes: the dataset's K when known (checks the map against it).
  """
  p = "config.data.label_noise"
  if cfg.kind not in KINDS:
    raise config_lib.ConfigError(
        f"{p}.kind={cfg.kind!r} is not allowed: expected one of {list(KINDS)}")
  rate = cfg.rate
  if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (
      0.0 <= rate < 1.0):
    raise config_lib.ConfigError(
        f"{p}.rate={rate!r} is not allowed: expected a number in [0, 1)")
  if cfg.kind == "none" and rate:
    raise config_lib.ConfigError(
        f"{p}.rate={rate} needs a kind: {p}.kind is one of {list(KINDS[1:])}")
  if cfg.kind == "asymmetric":
    if bool(cfg.map) == bool(cfg.permutation):
      raise config_lib.ConfigError(
          f"{p}: asymmetric noise needs exactly one of map (one of "
          f"{list(MAPS)}) or permutation (a permutation of 0..K-1); got "
          f"map={cfg.map!r}, permutation={tuple(cfg.permutation)!r}")
    if cfg.map and cfg.map not in MAPS:
      raise config_lib.ConfigError(
          f"{p}.map={cfg.map!r} is not allowed: expected one of {list(MAPS)}")
    perm = tuple(cfg.permutation)
    if perm and sorted(perm) != list(range(len(perm))):
      raise config_lib.ConfigError(
          f"{p}.permutation={perm!r} is not a permutation of the classes: "
          f"expected each of 0..{len(perm) - 1} exactly once")
    if num_classes is not None:
      flip_map(cfg, num_classes)
  elif cfg.map or cfg.permutation:
    raise config_lib.ConfigError(
        f"{p}.map / permutation only apply to kind 'asymmetric', not "
        f"{cfg.kind!r}")


def flip_map(cfg: mlc.ConfigDict, num_classes: int) -> np.ndarray:
  """int64 `[K]`: the class each class flips to (itself if never flipped)."""
  k = num_classes
  p = "config.data.label_noise"
  if cfg.permutation:
    perm = np.asarray(tuple(cfg.permutation), np.int64)
    if len(perm) != k:
      raise config_lib.ConfigError(
          f"{p}.permutation has {len(perm)} entries; the dataset has {k} "
          f"classes: expected a permutation of 0..{k - 1}")
    return perm
  target = np.arange(k)
  if cfg.map == "next":
    return (target + 1) % k
  if cfg.map == "cifar100":
    if k % 5:
      raise config_lib.ConfigError(
          f"{p}.map='cifar100' needs a class count divisible by 5, got {k}")
    return target - target % 5 + (target + 1) % 5
  need, pairs = _FIXED_MAPS[cfg.map]
  if k != need:
    raise config_lib.ConfigError(
        f"{p}.map={cfg.map!r} is for {need} classes; the dataset has {k}: "
        f"use map 'next' or 'cifar100', or a permutation")
  for src, dst in pairs.items():
    target[src] = dst
  return target


def transition_matrix(cfg: mlc.ConfigDict, num_classes: int) -> np.ndarray:
  """float64 `[K, K]`: P(noisy = j | clean = i) the config aims at.

  For `instance` it is the mean over examples, which depends on the
  images; this returns only its diagonal target (1 - rate) and spreads
  the rest evenly, as a reference.
  """
  k, r = num_classes, float(cfg.rate)
  eye = np.eye(k)
  if cfg.kind == "none":
    return eye
  if cfg.kind == "symmetric":
    return (1 - r) * eye + r / k
  if cfg.kind in ("symmetric_flip", "instance"):
    return (1 - r) * eye + r / (k - 1) * (1 - eye)
  flips = flip_map(cfg, k)
  t = eye.copy()
  moved = flips != np.arange(k)
  t[moved] *= 1 - r
  t[np.flatnonzero(moved), flips[moved]] += r
  return t


def _count(rate: float, n: int) -> int:
  return int(np.floor(rate * n + 0.5))


def noisy_labels(cfg: mlc.ConfigDict, clean: np.ndarray, num_classes: int,
                 images: Any = None) -> np.ndarray:
  """The noisy labels of a split: a pure function of its arguments.

  Args:
    cfg: the `data.label_noise` section.
    clean: int `[n]` clean labels in [0, K).
    num_classes: K.
    images: for `instance` only: a callable `indices -> uint8 [b, h, w, c]`
      (or an array `[n, h, w, c]`).

  Returns:
    int32 `[n]` noisy labels.
  """
  check(cfg, num_classes)
  clean = np.asarray(clean, np.int64)
  n, k, rate = len(clean), num_classes, float(cfg.rate)
  kind_id = KINDS.index(cfg.kind)
  rng = np.random.default_rng([int(cfg.seed), kind_id, n, k])
  noisy = clean.copy()
  if cfg.kind in ("symmetric", "symmetric_flip"):
    chosen = rng.permutation(n)[:_count(rate, n)]
    if cfg.kind == "symmetric":
      noisy[chosen] = rng.integers(0, k, len(chosen))
    else:
      noisy[chosen] = (clean[chosen] + rng.integers(1, k, len(chosen))) % k
  elif cfg.kind == "asymmetric":
    flips = flip_map(cfg, k)
    for c in np.flatnonzero(flips != np.arange(k)):
      members = np.flatnonzero(clean == c)
      chosen = rng.permutation(members)[:_count(rate, len(members))]
      noisy[chosen] = flips[c]
  elif cfg.kind == "instance":
    if images is None:
      raise ValueError("instance-dependent label noise needs the images")
    noisy = _instance_labels(rng, clean, k, rate, images)
  return noisy.astype(np.int32)


def _truncated_normal(rng: np.random.Generator, mean: float, std: float,
                      n: int) -> np.ndarray:
  """`[n]` draws of N(mean, std^2) restricted to [0, 1] (by rejection)."""
  out = np.empty(0)
  while len(out) < n:
    draw = rng.normal(mean, std, 2 * (n - len(out)) + 16)
    out = np.concatenate([out, draw[(draw >= 0) & (draw <= 1)]])
  return out[:n]


def _instance_labels(rng: np.random.Generator, clean: np.ndarray, k: int,
                     rate: float, images: Any) -> np.ndarray:
  """Xia et al. 2020's instance-dependent labels (see the module doc)."""
  n = len(clean)
  read = images if callable(images) else (lambda idx: images[idx])
  flip_rate = _truncated_normal(rng, rate, _INSTANCE_STD, n)
  u = rng.random(n)
  d = np.asarray(read(np.zeros(1, np.int64))).size
  noisy = clean.copy()
  for c in range(k):
    # Drawn for every class in class order: deterministic given (seed, K, d).
    w = rng.standard_normal((d, k)).astype(np.float32)
    members = np.flatnonzero(clean == c)
    for start in range(0, len(members), _CHUNK):
      idx = members[start:start + _CHUNK]
      x = np.asarray(read(idx), np.float32).reshape(len(idx), -1) / 255.0
      x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
      logits = (x @ w).astype(np.float64)
      logits[:, c] = -np.inf
      probs = np.exp(logits - logits.max(1, keepdims=True))
      probs *= (flip_rate[idx] / probs.sum(1))[:, None]
      probs[:, c] = 1.0 - flip_rate[idx]
      cdf = np.cumsum(probs, axis=1)
      noisy[idx] = np.minimum((cdf < (u[idx] * cdf[:, -1])[:, None]).sum(1),
                              k - 1)
  return noisy


class NoisyLabelSource:
  """A training source whose `label` is noisy; `clean_label` is the truth.

  Same interface as the wrapped source (`__len__`, `get`, `info`,
  `num_classes`, `image_shape`, ...); `get` adds `clean_label`.

  Attributes:
    labels: int32 `[n]` the noisy labels.
    clean_labels: int32 `[n]` the source's labels.
    corrupted: bool `[n]` where they differ.
  """

  def __init__(self, source: Any, labels: np.ndarray,
               clean_labels: np.ndarray):
    self._source = source
    self.labels = np.asarray(labels, np.int32)
    self.clean_labels = np.asarray(clean_labels, np.int32)
    self.corrupted = self.labels != self.clean_labels

  def __len__(self) -> int:
    return len(self.labels)

  def __getattr__(self, name: str) -> Any:
    if name.startswith("_"):
      raise AttributeError(name)
    return getattr(self._source, name)

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The source's examples with `label` noisy and `clean_label` true."""
    batch = dict(self._source.get(indices))
    indices = np.asarray(indices, np.int64)
    batch["clean_label"] = self.clean_labels[indices]
    batch["label"] = self.labels[indices]
    return batch


def apply(source: Any, cfg: mlc.ConfigDict) -> Any:
  """`source` with the config's label noise (itself for kind "none")."""
  if cfg.kind == "none":
    return source
  from common.data import subsets  # pylint: disable=g-import-not-at-top
  k = source.num_classes
  if k is None:
    raise config_lib.ConfigError(
        "config.data.label_noise needs a dataset with a class label")
  clean = subsets.all_labels(source)
  images = None
  if cfg.kind == "instance":
    images = lambda idx: source.get(idx)["image"]
  return NoisyLabelSource(source, noisy_labels(cfg, clean, k, images), clean)
