"""TFDS builder `segshapes`: procedural 32x32 semantic segmentation.

Scenes are rendered by `common.data.segshapes.render` (see there)
deterministically from fixed per-split seeds, so every build is identical
and nothing is downloaded. Every record holds `image` (uint8 `[32, 32, 3]`),
`label` (a `LabeledImage`, uint8 `[32, 32, 1]`; `sources.ArraySource`
returns it as int32 `[32, 32]`) and `index` (the record's position).

Configs (`segshapes/<config>`):

  * `fewshot`: 21 classes (background + 20 objects = shape x texture),
    boundary pixels `IGNORE` = 255; 4,000 train / 1,000 test; the record's
    `main_class` is an object class it holds. PASCAL-5i-style folds:
    `fold_classes(fold)` (4 folds of 5 classes).
  * `domains`: 4 classes (background + 3 organs), volumes of `SLICES` = 8
    consecutive slices (the volume of record `i` is `i // SLICES`), no
    ignore value; splits `source_train` (1,600 slices), `source_test`
    (400) in the source modality, `target_train` (800: the unlabeled
    adaptation set) and `target_test` (400) in the target modality. One
    dataset, so a run can train on a source split and evaluate on a target
    split (the source-free protocol's "no adaptation" row).
"""

from __future__ import annotations

import dataclasses
import io
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from common.data import fewshot_episodes
from common.data.segshapes import render

NUM_FOLDS = 4


@dataclasses.dataclass
class SegShapesConfig(tfds.core.BuilderConfig):
  """Number of classes and split sizes, by split: (scene kind, size)."""
  num_classes: int = 21
  splits: tuple[tuple[str, str, int], ...] = ()


CONFIGS = {
    "fewshot": dict(num_classes=render.NUM_OBJECT_CLASSES + 1,
                    splits=(("train", "fewshot", 4_000),
                            ("test", "fewshot", 1_000))),
    "domains": dict(num_classes=render.ORGANS + 1,
                    splits=(("source_train", "source", 1_600),
                            ("source_test", "source", 400),
                            ("target_train", "target", 800),
                            ("target_test", "target", 400))),
}


def split_seed(config: str, split: str) -> int:
  """The seed of one split."""
  return zlib.crc32(f"segshapes/{config}/{split}".encode())


def fold_classes(fold: int) -> tuple[int, ...]:
  """The 5 novel classes of a PASCAL-5i-style fold (`1 + 5 fold ..`)."""
  return fewshot_episodes.fold_classes(render.NUM_OBJECT_CLASSES, NUM_FOLDS,
                                       fold)[1]


def scenes(config: str, split: str, num_examples: int | None = None
           ) -> dict[str, np.ndarray]:
  """The arrays of one split in record order (see `render.render_split`)."""
  splits = {name: (kind, size) for name, kind, size in
            CONFIGS.get(config, {}).get("splits", ())}
  if split not in splits:
    allowed = {c: [s[0] for s in v["splits"]] for c, v in CONFIGS.items()}
    raise ValueError(f"segshapes has configs and splits {allowed}, got "
                     f"{config!r}/{split!r}")
  kind, size = splits[split]
  n = size if num_examples is None else min(num_examples, size)
  return render.render_split(kind, split_seed(config, split), n)


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for `segshapes` (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      SegShapesConfig(name=name, description=(
          f"{spec['num_classes']} classes, splits "
          + ", ".join(f"{s} ({n:,})" for s, _, n in spec["splits"])), **spec)
      for name, spec in CONFIGS.items()
  ]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    # ArrayRecord gives random access without TensorFlow (as `digits`).
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    features = {
        "image": tfds.features.Image(shape=(render.SIZE, render.SIZE, 3),
                                     dtype=np.uint8),
        "label": tfds.features.LabeledImage(
            labels=cfg.num_classes, shape=(render.SIZE, render.SIZE, 1)),
        "index": np.int64,
    }
    if cfg.name == "fewshot":
      features["main_class"] = np.int64
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=("image", "label"),
        disable_shuffling=True)  # record position == index

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split)
            for split, _, _ in self.builder_config.splits}

  def _generate_examples(
      self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (index, example) of one split of this config."""
    arrays = scenes(self.builder_config.name, split)
    for i in range(len(arrays["image"])):
      example = {"image": _png(arrays["image"][i]),
                 "label": _png(arrays["label"][i]), "index": i}
      if "main_class" in arrays:
        example["main_class"] = int(arrays["main_class"][i])
      yield i, example
