"""Host-side (numpy/PIL) image operations used while reading datasets.

These run per example on the CPU before batching, for datasets whose images
have different sizes (e.g. imagenet2012). Random train-time augmentation of
such datasets (random-resized crops) is future work; on-device augmentation
of fixed-size batches lives in `common.data.augment`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_shorter_then_center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Resizes the shorter side to `size`, then center-crops to size x size.

  Deterministic, so it suits evaluation and fixed-size caching; the standard
  ImageNet eval resize-to-256-then-crop-224 is two calls' worth of this idea
  and is left to the caller.

  Args:
    image: uint8 [h, w, c] image, c in {1, 3, 4}.
    size: Output height and width.

  Returns:
    uint8 [size, size, c] image.
  """
  h, w, c = image.shape
  if (h, w) == (size, size):
    return image
  scale = size / min(h, w)
  # Rounding (not truncating) keeps the shorter side at exactly `size`.
  new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
  pil = Image.fromarray(image[..., 0] if c == 1 else image)
  # BICUBIC with PIL's built-in antialiasing when shrinking.
  pil = pil.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
  resized = np.asarray(pil, dtype=np.uint8)
  if c == 1:
    resized = resized[..., None]
  top = (new_h - size) // 2
  left = (new_w - size) // 2
  return resized[top:top + size, left:left + size]
