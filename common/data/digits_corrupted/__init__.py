"""In-repo TFDS dataset `digits_corrupted`: digits at 32x32 RGB with the
15 CIFAR-10-C corruptions, named like TFDS `cifar10_corrupted`.

Importing this package registers the builder with TFDS.
"""

from common.data.digits_corrupted.digits_corrupted_dataset_builder import Builder
from common.data.digits_corrupted.digits_corrupted_dataset_builder import CONFIG_NAMES
from common.data.digits_corrupted.digits_corrupted_dataset_builder import clean_images
from common.data.digits_corrupted.digits_corrupted_dataset_builder import config_seed
from common.data.digits_corrupted.digits_corrupted_dataset_builder import upsample

__all__ = ["Builder", "CONFIG_NAMES", "clean_images", "config_seed",
           "upsample"]
