"""TFDS builder `digits_corrupted`: a CIFAR-10-C stand-in built in seconds.

scikit-learn's 8x8 digits (the `digits` dataset's split: 1,437 train / 360
test) are upsampled bilinearly to 32x32, replicated to 3 channels, and
corrupted with the 15 CIFAR-10-C corruptions of `common.data.corruptions`.
Config names are TFDS `cifar10_corrupted`'s, so a config switches between
the two by its dataset name alone:

  * `digits_corrupted/clean`: `train` and `test`, uncorrupted.
  * `digits_corrupted/<corruption>_<severity>`: `test` only (the 360 test
    images corrupted), for the 15 TFDS names (`frosted_glass_blur`,
    `elastic`, ...) and the reference generator's aliases `glass_blur_<s>`
    and `elastic_transform_<s>` (identical data to their TFDS names).

Each config is built on first use (`common.data.sources.open_split`); the
corruption noise is seeded by the config's TFDS name (`config_seed`), so
every build of a config is identical.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from common.data import corruptions
from common.data import digits

IMAGE_SIZE = 32

_DESCRIPTION = """\
scikit-learn's 8x8 handwritten digits (the in-repo `digits` dataset, same
stratified 1,437/360 train/test split and order) upsampled bilinearly to
32x32 (half-pixel centres, edge clamped, rounded), replicated to RGB and
corrupted with the 15 CIFAR-10-C corruptions at severities 1-5 (Hendrycks &
Dietterich 2019; parameters of the CIFAR-10-C generator), with a procedural
frost texture in place of the frost photographs. `index` is the example's
position within its split (the same test image has the same index in every
config).
"""

_CITATION = """\
@inproceedings{hendrycks2019benchmarking,
  title = {Benchmarking Neural Network Robustness to Common Corruptions and
           Perturbations},
  author = {Hendrycks, Dan and Dietterich, Thomas},
  booktitle = {International Conference on Learning Representations},
  year = {2019},
}
"""


def _config_names() -> list[str]:
  names = ["clean"]
  for corruption in (*corruptions.BENCHMARK_CORRUPTIONS, *corruptions.ALIASES):
    names += [f"{corruption}_{s}" for s in corruptions.SEVERITIES]
  return names


CONFIG_NAMES: tuple[str, ...] = tuple(_config_names())


def parse_config_name(name: str) -> tuple[str | None, int]:
  """`"elastic_transform_3"` -> `("elastic", 3)`; `"clean"` -> `(None, 0)`."""
  if name == "clean":
    return None, 0
  corruption, _, severity = name.rpartition("_")
  return corruptions.canonical_name(corruption), int(severity)


def config_seed(name: str) -> int:
  """The corruption seed of a config, from its canonical (TFDS) name."""
  corruption, severity = parse_config_name(name)
  return zlib.crc32(f"digits_corrupted/{corruption}_{severity}".encode())


def upsample(images: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
  """Bilinear upsampling of grey `[n, h, w]` uint8 to RGB `[n, size, size, 3]`.

  Sample `j` of the output reads input coordinate `(j + 0.5) * h / size -
  0.5` (half-pixel centres, clamped to the edge), like PIL / TF bilinear
  resizing without antialiasing; results are rounded to uint8.
  """
  x = np.asarray(images, np.float64)
  for axis in (1, 2):
    n_in = x.shape[axis]
    coord = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
    lo = np.floor(coord).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (coord - lo).reshape([-1 if a == axis else 1 for a in range(3)])
    x = (np.take(x, lo, axis=axis) * (1 - frac)
         + np.take(x, hi, axis=axis) * frac)
  grey = np.clip(np.round(x), 0, 255).astype(np.uint8)
  return np.repeat(grey[..., None], 3, axis=-1)


def clean_images(split: str) -> tuple[np.ndarray, np.ndarray]:
  """The clean 32x32 RGB images and labels of one split, in split order.

  Returns:
    (uint8 `[n, 32, 32, 3]`, int64 `[n]`).
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  data = datasets.load_digits()
  indices = digits.split_indices()[split]
  return (upsample(digits.to_uint8(data.images[indices])),
          data.target[indices].astype(np.int64))


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for `digits_corrupted` (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name=name,
          description=("Clean digits (train and test)." if name == "clean"
                       else f"Corruption {parse_config_name(name)[0]}, "
                            f"severity {parse_config_name(name)[1]} (test)."))
      for name in CONFIG_NAMES
  ]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    # ArrayRecord gives random access without TensorFlow (as `digits`).
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(
                shape=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
            "index": np.int64,
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/hendrycks/robustness",
        citation=_CITATION,
        disable_shuffling=True,  # record position == index
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    splits = ("train", "test") if self.builder_config.name == "clean" else (
        "test",)
    return {split: self._generate_examples(split) for split in splits}

  def _generate_examples(
      self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (index, example) of one split of this config."""
    images, labels = clean_images(split)
    name = self.builder_config.name
    corruption, severity = parse_config_name(name)
    if corruption is not None:
      images = corruptions.corrupt(images, corruption, severity,
                                   seed=config_seed(name))
    for position, (image, label) in enumerate(zip(images, labels)):
      buffer = io.BytesIO()  # PNG via PIL: TFDS would call TensorFlow
      Image.fromarray(image).save(buffer, format="PNG")
      yield position, {"image": buffer.getvalue(), "label": int(label),
                       "index": position}
