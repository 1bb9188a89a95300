"""In-repo TFDS dataset `shapes32` (procedural 32x32 RGB shapes).

Importing this package registers the builder with TFDS (configs `c10`,
`c100`, `mini`).
"""

from common.data.shapes32 import render
from common.data.shapes32.shapes32_dataset_builder import Builder
from common.data.shapes32.shapes32_dataset_builder import CONFIGS
from common.data.shapes32.shapes32_dataset_builder import DIFFICULTY
from common.data.shapes32.shapes32_dataset_builder import encode_examples
from common.data.shapes32.shapes32_dataset_builder import image_info
from common.data.shapes32.shapes32_dataset_builder import images
from common.data.shapes32.shapes32_dataset_builder import split_seed

__all__ = ["Builder", "CONFIGS", "DIFFICULTY", "encode_examples",
           "image_info", "images", "render", "split_seed"]
