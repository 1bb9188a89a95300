"""In-repo TFDS dataset `shapes32_corrupted`: `shapes32/c10` test images
with the 15 CIFAR-10-C corruptions, named like TFDS `cifar10_corrupted`.

Importing this package registers the builder with TFDS.
"""

from common.data.shapes32_corrupted import (
    shapes32_corrupted_dataset_builder as _b)

Builder = _b.Builder
CONFIG_NAMES = _b.CONFIG_NAMES
TEST_SIZE = _b.TEST_SIZE
config_seed = _b.config_seed
corrupted_images = _b.corrupted_images

__all__ = ["Builder", "CONFIG_NAMES", "TEST_SIZE", "config_seed",
           "corrupted_images"]
