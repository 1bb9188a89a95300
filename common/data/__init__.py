"""Data pipeline: TFDS splits without TensorFlow, deterministic batching.

Typical use:
  source = open_split("cifar10", "train", data_dir)
  it = TrainIterator(source, global_batch_size=128, seed=0, start_step=step)
  batch = next(it)  # numpy: image, label, index, epoch, mask
  images = augment.augment(rng, batch["image"], crop_padding=4, flip=True)
  x = normalize(images, mean, std)
"""

# `augment` here is the module (call `augment.augment(...)`): binding the
# function to the same name would shadow the module, and the repo imports
# modules, e.g. `from common.data import augment as augment_lib`.
from common.data import augment
from common.data.augment import normalize
from common.data.augment import random_crop
from common.data.augment import random_flip_left_right
from common.data.loader import TrainIterator
from common.data.loader import eval_batches
from common.data.loader import steps_per_epoch
from common.data.loader import train_batch_indices

# `sources` pulls in tensorflow_datasets; it is imported on first use, so the
# train step (augment) and the loader work where TFDS is not installed, e.g.
# when benchmarking the step on generated batches on an accelerator host.
_FROM_SOURCES = ("ArraySource", "DatasetInfo", "DatasetNotFoundError",
                 "IN_REPO_BUILDERS", "open_split")


def __getattr__(name):
  if name in _FROM_SOURCES:
    from common.data import sources  # pylint: disable=g-import-not-at-top
    return getattr(sources, name)
  raise AttributeError(f"module 'common.data' has no attribute {name!r}")


__all__ = [
    "ArraySource",
    "DatasetInfo",
    "DatasetNotFoundError",
    "IN_REPO_BUILDERS",
    "TrainIterator",
    "augment",
    "eval_batches",
    "normalize",
    "open_split",
    "random_crop",
    "random_flip_left_right",
    "steps_per_epoch",
    "train_batch_indices",
]
