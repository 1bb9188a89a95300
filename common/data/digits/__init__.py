"""In-repo TFDS dataset `digits` (scikit-learn's 8x8 handwritten digits).

Importing this package registers the builder with TFDS under `digits`.
"""

from common.data.digits.digits_dataset_builder import Builder
from common.data.digits.digits_dataset_builder import split_indices
from common.data.digits.digits_dataset_builder import to_uint8

__all__ = ["Builder", "split_indices", "to_uint8"]
