"""TFDS builder for scikit-learn's bundled 8x8 handwritten digits.

The data ships inside scikit-learn (`sklearn.datasets.load_digits`), so the
dataset can be prepared on a machine with no internet access and no
TensorFlow. It is the repo's smallest real image dataset and is used for fast
end-to-end tests of the training harness.

Images are stored as PNG (encoded with PIL, because TFDS would otherwise call
`tf.image.encode_png`) in ArrayRecord files, which the TFDS data source API
reads with random access and without TensorFlow.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

_DESCRIPTION = """\
The 1,797 8x8 grey-scale handwritten digits bundled with scikit-learn
(`sklearn.datasets.load_digits`), a copy of the test part of the UCI "Optical
Recognition of Handwritten Digits" data set. Pixel counts 0..16 are mapped to
uint8 0..255 with round(v * 255 / 16). The train/test splits are a fixed
stratified 80/20 split (scikit-learn `train_test_split`, random_state=0), each
sorted by the original scikit-learn index; `index` is the example's position
within its split and equals its record position in the files.
"""

_CITATION = """\
@misc{alpaydin1998optical,
  author = {Alpaydin, E. and Kaynak, C.},
  title = {Optical Recognition of Handwritten Digits},
  year = {1998},
  howpublished = {UCI Machine Learning Repository},
  doi = {10.24432/C50P49},
}
"""

_HOMEPAGE = (
    "https://archive.ics.uci.edu/dataset/80/"
    "optical+recognition+of+handwritten+digits"
)

# Fixed split parameters; changing them changes the data and needs a new
# dataset version.
_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


# scikit-learn is imported lazily: it is only needed while preparing the data,
# and importing this module (which registers the builder) should stay cheap.
def _load_sklearn_digits() -> Any:
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  return datasets.load_digits()


def _sklearn_train_test_split(*args: Any, **kwargs: Any) -> list[Any]:
  from sklearn import model_selection  # pylint: disable=g-import-not-at-top
  return model_selection.train_test_split(*args, **kwargs)


def to_uint8(counts: np.ndarray) -> np.ndarray:
  """Maps scikit-learn's pixel counts 0..16 to uint8 0..255.

  Args:
    counts: [..., 8, 8] float or int array with integer values in 0..16.

  Returns:
    uint8 array of the same shape, round(v * 255 / 16) with halves rounded
    up (in integer arithmetic, so exact; only v = 8 hits a half: 127.5 -> 128).
  """
  v = np.asarray(counts).astype(np.int64)
  return ((v * 255 + 8) // 16).astype(np.uint8)


def split_indices() -> dict[str, np.ndarray]:
  """Returns the sorted scikit-learn indices of each split.

  Returns:
    {"train": int64 [1437], "test": int64 [360]}.
  """
  y = _load_sklearn_digits().target
  train, test = _sklearn_train_test_split(
      np.arange(len(y)),
      test_size=_TEST_FRACTION,
      stratify=y,
      random_state=_SPLIT_SEED,
  )
  return {"train": np.sort(train), "test": np.sort(test)}


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for the scikit-learn digits dataset (name: `digits`)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: stratified 80/20 train/test split of the "
               "1,797 scikit-learn digits, with a per-split `index`.",
  }

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    # Only ArrayRecord gives random access without TensorFlow, so it is the
    # default even when the dataset is built by `tfds build` or
    # `tfds.data_source`.
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
            "index": np.int64,
        }),
        supervised_keys=("image", "label"),
        homepage=_HOMEPAGE,
        citation=_CITATION,
        # Records keep the generation order, so `index` == record position
        # and a run's batches do not depend on TFDS's key hashing.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    return {
        split: self._generate_examples(indices)
        for split, indices in split_indices().items()
    }

  def _generate_examples(
      self, indices: np.ndarray
  ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields (key, example) for the given sorted scikit-learn indices."""
    digits = _load_sklearn_digits()
    images = to_uint8(digits.images)  # [1797, 8, 8]
    for position, sk_index in enumerate(indices):
      # Encode to PNG ourselves: given an array, TFDS would use TensorFlow.
      buffer = io.BytesIO()
      Image.fromarray(images[sk_index]).save(buffer, format="PNG")
      yield position, {
          "image": buffer.getvalue(),
          "label": int(digits.target[sk_index]),
          "index": position,
      }
