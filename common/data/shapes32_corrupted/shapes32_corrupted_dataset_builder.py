"""TFDS builder `shapes32_corrupted`: `shapes32` test images, corrupted.

The first `TEST_SIZE` (2,000) test images of `shapes32/c10` with the 15
CIFAR-10-C corruptions of `common.data.corruptions` at severities 1-5.
Config names are TFDS `cifar10_corrupted`'s
(`shapes32_corrupted/<corruption>_<severity>`, test split only; the
reference generator's aliases `glass_blur_<s>` and `elastic_transform_<s>`
give the same data as their TFDS names), so a TTA config switches streams
by the dataset name alone; its clean data is `shapes32/c10`. At batch 100
one severity is 20 adaptation steps per corruption, 300 per pass over the
15 corruptions (the digits stand-in has 6 and 90).

Each config is built on first use (`common.data.sources.open_split`) in
about a second; the corruption noise is seeded by the config's TFDS name
(`config_seed`), so every build is identical.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from common.data import corruptions
from common.data import digits_corrupted
from common.data import shapes32

TEST_SIZE = 2_000
CONFIG_NAMES = tuple(n for n in digits_corrupted.CONFIG_NAMES
                     if n != "clean")
parse_config_name = digits_corrupted.parse_config_name


def config_seed(name: str) -> int:
  """The corruption seed of a config, from its canonical (TFDS) name."""
  corruption, severity = parse_config_name(name)
  return zlib.crc32(f"shapes32_corrupted/{corruption}_{severity}".encode())


def corrupted_images(name: str) -> tuple[np.ndarray, np.ndarray]:
  """The images and labels of config `name`'s test split, in record order.

  Returns:
    (uint8 `[TEST_SIZE, 32, 32, 3]`, int64 `[TEST_SIZE]`).
  """
  corruption, severity = parse_config_name(name)
  clean, labels = shapes32.images("c10", "test", TEST_SIZE)
  return (corruptions.corrupt(clean, corruption, severity,
                              seed=config_seed(name)), labels)


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for `shapes32_corrupted` (see the module docstring)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Initial release (shapes32 1.0.0).",
                   "1.1.0": "On shapes32 1.1.0 (difficulty 0.2)."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name=name, description=(
              f"Corruption {parse_config_name(name)[0]}, severity "
              f"{parse_config_name(name)[1]} (test)."))
      for name in CONFIG_NAMES
  ]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return shapes32.image_info(
        self, 10, __doc__, homepage="https://github.com/hendrycks/robustness")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    return {"test": self._generate_examples()}

  def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (index, example) of this config's test split."""
    yield from shapes32.encode_examples(
        *corrupted_images(self.builder_config.name))
