"""In-repo TFDS dataset `digits_corrupted`: digits at 32x32 RGB with the
15 CIFAR-10-C corruptions, named like TFDS `cifar10_corrupted`.

Importing this package registers the builder with TFDS.
"""

from common.data.digits_corrupted import digits_corrupted_dataset_builder as _b

Builder = _b.Builder
CONFIG_NAMES = _b.CONFIG_NAMES
clean_images = _b.clean_images
config_seed = _b.config_seed
parse_config_name = _b.parse_config_name
upsample = _b.upsample

__all__ = ["Builder", "CONFIG_NAMES", "clean_images", "config_seed",
           "parse_config_name", "upsample"]
