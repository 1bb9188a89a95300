"""TFDS builder `shapes32`: procedural 32x32 RGB shape classification.

A CIFAR-sized stand-in for the embedded digits, meant to leave a small CNN
with clearly non-zero error (digits: 0.5 %) and enough test images for
error differences of a tenth of a point to be visible (10,000, against
digits' 360). Images are rendered by
`common.data.shapes32.render` (one textured shape over a textured
background, clutter, occlusion, noise; see there), deterministically from
fixed per-split seeds, so every build is identical and nothing is
downloaded.

Configs (`shapes32/<config>`), all at difficulty `DIFFICULTY`:

  * `c10`: 10 classes (the shape), 20,000 train / 10,000 test.
  * `c100`: 100 classes (shape x texture), 50,000 train / 10,000 test.
  * `mini`: `c10`'s first 1,000 train and 1,000 test images (the same
    pixels), built in about two seconds for tests.

Labels are balanced within every chunk of 1,000 images. The corrupted test
streams are `shapes32_corrupted` (see there).

Calibration. `DIFFICULTY` is 0.2 (objects rotated up to 36 degrees, up
to two clutter shapes, occluded 20 % of the time, a hue cue of std 0.5
class spacings): with the CPU recipe of experiments/shapes32_recipe.py
(6-layer ResNet, first 3,000 training images, 30 epochs, 1,380 SGD steps)
cross-entropy fits the training set and ends at 21.5 +- 1.0 % test error,
over-confident (ECE-15 8.0 +- 0.6 %; mean confidence above accuracy by
about 8 points), 3 seeds: the regime calibration and TTA papers study
(commands and numbers in experiments/ps_kd/README.md, `shapes32`). In a
one-seed scratch probe of the same recipe (not in this repository),
difficulty 0 left under 10 % error and 0.3 about 30 %. The
small CNN (8/16/32) under-fits every setting within a few CPU minutes
(difficulty 0: 43 % error after 368 steps).
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

from common.data.shapes32 import render

# Changing it (or the renderer) changes the data: bump VERSION.
DIFFICULTY = 0.2


@dataclasses.dataclass
class Shapes32Config(tfds.core.BuilderConfig):
  """One class count and split sizes (examples per split)."""
  num_classes: int = 10
  train_size: int = 30_000
  test_size: int = 10_000


CONFIGS = {
    "c10": dict(num_classes=10, train_size=20_000, test_size=10_000),
    "c100": dict(num_classes=100, train_size=50_000, test_size=10_000),
    "mini": dict(num_classes=10, train_size=1_000, test_size=1_000),
}


def split_seed(num_classes: int, split: str) -> int:
  """The seed of one split (shared by `c10` and `mini`)."""
  return zlib.crc32(f"shapes32/c{num_classes}/{split}".encode())


def images(config: str, split: str, num_examples: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
  """The images and labels of one split, in record order.

  Args:
    config: a key of `CONFIGS`.
    split: `train` or `test`.
    num_examples: the first this many (default: the whole split).

  Returns:
    (uint8 `[n, 32, 32, 3]`, int64 `[n]`).
  """
  if config not in CONFIGS or split not in ("train", "test"):
    raise ValueError(f"shapes32 has configs {sorted(CONFIGS)} and splits "
                     f"train/test, got {config!r}/{split!r}")
  spec = CONFIGS[config]
  size = spec[f"{split}_size"]
  n = size if num_examples is None else min(num_examples, size)
  return render.render_split(split_seed(spec["num_classes"], split), n,
                             spec["num_classes"], DIFFICULTY)


def encode_examples(pixels: np.ndarray, labels: np.ndarray
                    ) -> Iterator[tuple[int, dict[str, Any]]]:
  """(index, example) records with PNG images (PIL: TFDS would call TF)."""
  for position, (image, label) in enumerate(zip(pixels, labels)):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    yield position, {"image": buffer.getvalue(), "label": int(label),
                     "index": position}


def image_info(builder: tfds.core.DatasetBuilder, num_classes: int,
               description: str, **kwargs: Any) -> tfds.core.DatasetInfo:
  """The features of both shapes32 builders: 32x32 RGB PNG, label, index."""
  return tfds.core.DatasetInfo(
      builder=builder,
      description=description,
      features=tfds.features.FeaturesDict({
          "image": tfds.features.Image(
              shape=(render.SIZE, render.SIZE, 3), dtype=np.uint8),
          "label": tfds.features.ClassLabel(num_classes=num_classes),
          "index": np.int64,
      }),
      supervised_keys=("image", "label"),
      disable_shuffling=True,  # record position == index
      **kwargs)


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for `shapes32` (see the module docstring)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Initial release (difficulty 0).",
                   "1.1.0": "Difficulty 0.2 (the calibrated default)."}
  BUILDER_CONFIGS = [
      Shapes32Config(name=name, description=(
          f"{spec['num_classes']} classes, {spec['train_size']:,} train / "
          f"{spec['test_size']:,} test."), **spec)
      for name, spec in CONFIGS.items()
  ]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    # ArrayRecord gives random access without TensorFlow (as `digits`).
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return image_info(self, self.builder_config.num_classes, __doc__)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split)
            for split in ("train", "test")}

  def _generate_examples(
      self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (index, example) of one split of this config."""
    yield from encode_examples(*images(self.builder_config.name, split))
