"""Opening TFDS splits as random-access numpy sources, without TensorFlow.

`open_split` reads prepared TFDS datasets through the data source API
(ArrayRecord files), never through tf.data. Datasets whose builders live in
this repo (`IN_REPO_BUILDERS`) are prepared on first use; any other dataset
must have been prepared beforehand (see `DatasetNotFoundError`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from common.data import digits
from common.data import digits_corrupted
from common.data import dsprites_gen
from common.data import image_ops
from common.data import segshapes
from common.data import shapes32
from common.data import shapes32_corrupted
from common.data import subsets
from common.data.text import arithmetic
from common.data.text import stdlib_corpus

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # Not POSIX: builds are then not guarded against races.
  fcntl = None

# Builders whose code lives in this repo, by TFDS base name. They are
# prepared into data_dir on first use, so they need no separate `tfds build`.
IN_REPO_BUILDERS: dict[str, type[tfds.core.DatasetBuilder]] = {
    "digits": digits.Builder,
    "digits_corrupted": digits_corrupted.Builder,
    "dsprites_gen": dsprites_gen.Builder,
    "python_stdlib": stdlib_corpus.PythonStdlib,
    "arithmetic": arithmetic.Arithmetic,
    "segshapes": segshapes.Builder,
    "shapes32": shapes32.Builder,
    "shapes32_corrupted": shapes32_corrupted.Builder,
}

# Splits whose decoded images fit under this many bytes are read into memory
# once; bigger ones are decoded batch by batch.
DEFAULT_MATERIALIZE_MAX_BYTES = 2 * 1024**3

# Records per read while materialising; bounds the size of transient lists.
_READ_CHUNK = 1024


class DatasetNotFoundError(FileNotFoundError):
  """A dataset (or split) is not prepared in a readable form in data_dir."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the training harness needs to know about a dataset.

  Attributes:
    name: TFDS name as passed to `open_split` (may include config/version).
    splits: Number of examples of every prepared split, by split name.
    num_classes: Number of label classes, or None if the label is not a
      `ClassLabel`.
    image_shape: (h, w, c) of the images returned by `ArraySource.get`, or
      None when the images have variable size.
  """

  name: str
  splits: dict[str, int]
  num_classes: int | None
  image_shape: tuple[int, int, int] | None


def default_data_dir() -> str:
  """Returns `$TFDS_DATA_DIR`, or `~/tensorflow_datasets` if unset."""
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
      "~/tensorflow_datasets"
  )


def _base_name(name: str) -> str:
  """`"cifar10_corrupted/gaussian_noise_5:1.0.0"` -> `"cifar10_corrupted"`."""
  return re.split(r"[/:]", name, maxsplit=1)[0]


@contextlib.contextmanager
def _build_lock(data_dir: str, base_name: str) -> Iterator[None]:
  """Serialises builds of one dataset across processes sharing data_dir.

  TFDS already writes into an `incomplete.*` folder and renames it at the
  end, so readers never see half a dataset; the lock stops two processes
  from both building and then colliding on that rename.

  Args:
    data_dir: Root data folder.
    base_name: Dataset name without config or version.

  Yields:
    Nothing; the lock is held while the context is open.
  """
  if fcntl is None or "://" in data_dir:  # No flock on remote filesystems.
    yield
    return
  os.makedirs(data_dir, exist_ok=True)
  path = os.path.join(data_dir, f".{base_name}.build.lock")
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepare_in_repo(name: str, data_dir: str) -> bool:
  """Prepares an in-repo dataset into data_dir unless it already is.

  Args:
    name: TFDS name whose base name is a key of `IN_REPO_BUILDERS`.
    data_dir: Root data folder.

  Returns:
    True if this call built the dataset, False if it was already prepared.
  """
  if _base_name(name) not in IN_REPO_BUILDERS:
    raise ValueError(f"{name!r} is not an in-repo dataset: "
                     f"{sorted(IN_REPO_BUILDERS)}")
  with _build_lock(data_dir, _base_name(name)):
    # Constructed under the lock: a builder reads dataset_info.json when it
    # is created, so one made before another process finished is stale.
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
      return False
    builder.download_and_prepare()
    return True


def _not_prepared_message(
    name: str, split: str, data_dir: str, looked_in: str, manual: str | None
) -> str:
  """How to prepare a TFDS dataset elsewhere and bring it here."""
  lines = [
      f"Dataset {name!r} (split {split!r}) is not prepared in data_dir "
      f"{data_dir!r} (looked in {looked_in!r}).",
      "This code reads TFDS ArrayRecord files and cannot download or build "
      "catalogue datasets itself. To prepare it:",
      "  1. On a machine with internet access and TensorFlow:",
      "       pip install tensorflow tensorflow-datasets",
  ]
  if manual:
    lines.append(
        f"     {name} needs a manual download first: put the files in "
        f"<dir>/downloads/manual/ ({' '.join(manual.split())})"
    )
  lines += [
      f"  2. tfds build {name} --data_dir=<dir> --file_format=array_record",
      f"  3. Copy <dir>/{_base_name(name)} into {data_dir!r} here, or pass "
      "that folder with --data_dir / --config.data.data_dir.",
  ]
  return "\n".join(lines)


def _check_split(split: str, available: Sequence[str], name: str) -> None:
  """Raises ValueError unless every split named in `split` exists.

  Args:
    split: A TFDS split expression, e.g. `train`, `train[:10%]+test`.
    available: Split names of the prepared dataset.
    name: Dataset name, for the message.
  """
  for part in split.split("+"):
    base = part.split("[", 1)[0].strip()
    if base not in available:
      raise ValueError(
          f"Unknown split {base!r} for dataset {name!r}; available splits: "
          f"{sorted(available)}"
      )


def open_split(
    name: str,
    split: str,
    data_dir: str | None = None,
    *,
    image_size: int | None = None,
    materialize_max_bytes: int = DEFAULT_MATERIALIZE_MAX_BYTES,
    image_key: str | None = None,
    label_key: str | None = None,
    classes: Sequence[int] = (),
) -> ArraySource | subsets.ClassSubset:
  """Opens one split of a prepared (or in-repo) TFDS dataset.

  Args:
    name: TFDS name, optionally with config and version, e.g. `cifar10`,
      `cifar10_corrupted/gaussian_noise_5`, `digits`.
    split: Split name or TFDS split expression, e.g. `train`, `test`.
    data_dir: Root data folder; defaults to `default_data_dir()`.
    image_size: If set, every image is resized on the host (shorter side to
      `image_size`, then center-cropped to a square). Needed to batch
      variable-size datasets such as imagenet2012.
    materialize_max_bytes: Splits whose decoded images are estimated below
      this size are decoded into memory once.
    image_key: Feature holding the image; defaults to the first supervised
      key, else `image`.
    label_key: Feature holding the label; defaults to the second supervised
      key, else `label`.
    classes: Label ids to keep (`config.data.classes`), relabelled
      `0..len(classes)-1` in the given order; empty keeps every class.

  Returns:
    An `ArraySource` over the split, or a `subsets.ClassSubset` of it when
    `classes` is given (same interface, `num_classes == len(classes)`).

  Raises:
    DatasetNotFoundError: the dataset is not prepared as ArrayRecord files.
    ValueError: `split` names a split the dataset does not have, or
      `classes` has ids outside the dataset's classes.
  """
  data_dir = os.fspath(data_dir or default_data_dir())
  if _base_name(name) in IN_REPO_BUILDERS:
    prepare_in_repo(name, data_dir)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DatasetNotFoundError(
        f"Dataset {name!r} (split {split!r}) is neither a known TFDS dataset "
        f"nor prepared in data_dir {data_dir!r}: {e}".splitlines()[0]
    ) from e
  if not builder.is_prepared():
    raise DatasetNotFoundError(_not_prepared_message(
        name, split, data_dir, os.fspath(builder.data_dir),
        getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)))
  _check_split(split, list(builder.info.splits.keys()), name)
  try:
    data_source = builder.as_data_source(split=split)
  except NotImplementedError as e:
    # Raised for TFRecord-only datasets: those need tf.data to read.
    raise DatasetNotFoundError(
        f"Dataset {name!r} in {os.fspath(builder.data_dir)!r} is prepared "
        f"as {builder.info.file_format.value}, which has no random access. "
        "Rebuild it with `tfds build ... --file_format=array_record`, or on "
        "a machine with TensorFlow run `tfds convert_format "
        f"--dataset_version_dir={os.fspath(builder.data_dir)} "
        "--out_file_format=array_record`."
    ) from e
  source = ArraySource(
      data_source,
      builder.info,
      name=name,
      split=split,
      image_size=image_size,
      materialize_max_bytes=materialize_max_bytes,
      image_key=image_key,
      label_key=label_key,
  )
  return subsets.select_classes(source, classes)


class ArraySource:
  """Random access to one split as `{"image": uint8, "label": int32}` batches.

  Labels are int32 `[b]` class ids, or `[b, h, w]` per-pixel class maps when
  the label feature is an image (`tfds.features.LabeledImage`: its channel
  axis is dropped; `num_classes` is the feature's).

  Small splits are decoded into numpy arrays once (`materialized`); larger
  ones are read and decoded per call to `get`. Any object with `__len__` and
  `get(indices)` like this one can feed `common.data.loader`.
  """

  def __init__(
      self,
      data_source: Any,
      tfds_info: tfds.core.DatasetInfo,
      *,
      name: str,
      split: str,
      image_size: int | None = None,
      materialize_max_bytes: int = DEFAULT_MATERIALIZE_MAX_BYTES,
      image_key: str | None = None,
      label_key: str | None = None,
  ):
    """Wraps a TFDS data source; see `open_split` for the arguments.

    Args:
      data_source: TFDS random-access data source of the split.
      tfds_info: The dataset's TFDS info (features, splits).
      name: Dataset name, for `info` and messages.
      split: Split expression the source reads.
      image_size: Optional host resize (shorter side, then center crop).
      materialize_max_bytes: Decode into memory below this estimated size.
      image_key: Image feature; default: first supervised key.
      label_key: Label feature; default: second supervised key.
    """
    supervised = tfds_info.supervised_keys or ("image", "label")
    self._image_key = image_key or supervised[0]
    self._label_key = label_key or supervised[1]
    features = tfds_info.features
    for key in (self._image_key, self._label_key):
      if key not in features:
        raise ValueError(f"Dataset {name!r} has no feature {key!r}; "
                         f"features: {sorted(features)}; pass image_key / "
                         "label_key.")
    image_feature = features[self._image_key]
    if image_feature.np_dtype != np.uint8:
      raise ValueError(f"Only uint8 images are supported, {name!r} has "
                       f"{image_feature.np_dtype}.")
    self._source = data_source
    self._image_size = image_size
    self.features = features
    self.split = split

    shape = tuple(image_feature.shape)
    if image_size is not None:
      shape = (image_size, image_size, shape[-1])
    image_shape = shape if all(d is not None for d in shape) else None
    label_feature = features[self._label_key]
    self.info = DatasetInfo(
        name=name,
        splits={k: v.num_examples for k, v in tfds_info.splits.items()},
        num_classes=getattr(label_feature, "num_classes", None),
        image_shape=image_shape,
    )

    self._images = self._labels = None
    if image_shape is not None and len(self):
      nbytes = len(self) * int(np.prod(image_shape))
      if nbytes < materialize_max_bytes:
        everything = np.arange(len(self))
        parts = [self._read(everything[i:i + _READ_CHUNK])
                 for i in range(0, len(self), _READ_CHUNK)]
        self._images = np.concatenate([p["image"] for p in parts])
        self._labels = np.concatenate([p["label"] for p in parts])
        self._source = None  # Everything needed is in memory now.

  def __len__(self) -> int:
    if self._labels is not None:
      return len(self._labels)
    return len(self._source)

  @property
  def materialized(self) -> bool:
    """Whether the split is held in memory as decoded arrays."""
    return self._labels is not None

  @property
  def num_classes(self) -> int | None:
    return self.info.num_classes

  @property
  def image_shape(self) -> tuple[int, int, int] | None:
    return self.info.image_shape

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Returns the examples at `indices`.

    Args:
      indices: int [b] positions within the split (repeats allowed).

    Returns:
      {"image": uint8 [b, h, w, c], "label": int32 [b]}.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if self._labels is not None:
      return {"image": self._images[indices], "label": self._labels[indices]}
    return self._read(indices)

  def _read(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Reads and decodes records from the data source."""
    keys = [int(i) for i in indices]
    if not keys and self.image_shape is not None:
      return {"image": np.zeros((0, *self.image_shape), np.uint8),
              "label": np.zeros((0,), np.int32)}
    if hasattr(self._source, "__getitems__"):
      records = self._source.__getitems__(keys)
    else:
      records = [self._source[i] for i in keys]
    images = []
    for record in records:
      image = np.asarray(record[self._image_key])
      if self._image_size is not None:
        image = image_ops.resize_shorter_then_center_crop(
            image, self._image_size)
      images.append(image)
    if len({im.shape for im in images}) > 1:
      raise ValueError(
          f"{self.info.name!r} has images of different sizes; pass "
          "image_size to open_split so they can be batched.")
    labels = np.asarray([record[self._label_key] for record in records],
                        dtype=np.int32)
    if labels.ndim == 4 and labels.shape[-1] == 1:  # per-pixel label maps
      labels = labels[..., 0]
    return {
        "image": np.stack(images).astype(np.uint8, copy=False),
        "label": labels.reshape(len(keys), *labels.shape[1:]),
    }
