"""Noisy image patches for self-supervised denoising (generator `noisy_patches`).

A batch holds aligned grey patches `noisy` and `clean`, float32
`[n, p, p, 1]` in [0, 1] (noisy values may leave it). The noisy images are
ONE fixed realisation of the noise per image (drawn once from
`noise_seed`), as in a real noisy data set: a self-supervised method sees
the same noisy pixels every time it crops them, never a fresh draw.

Images (`config.data.kwargs.images`):
* `"embedded"` (default): scikit-learn's two sample photographs
  (`load_sample_images`, 427x640, to grey), the left 3/4 of each for
  training and the right 1/4 held out; plus the 8x8 `load_digits` digits
  upsampled (bilinear) to the patch size, digits 0-1499 for training, the
  rest held out. A batch takes `digits_fraction` of its patches from the
  digits, the rest are random crops of the photographs.
* a directory of image files (`train_dir` / `eval_dir`, relative to
  `config.data.data_dir`): random crops of its images (BSD400 / BSD68,
  Set12, Kodak; full-scale configs).

Noise models (`noise`, `level`), as Noise2Score (arXiv:2106.07009, Sec. 4):
`gaussian`: y = x + (level/255) n; `poisson`: y = level * Poisson(x/level);
`gamma`: y = x * Gamma(shape=level, scale=1/level).
"""

from __future__ import annotations

import glob
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from common import config as config_lib
from common.data import procedural

NOISES = ("gaussian", "poisson", "gamma")
_TRAIN_COLUMNS = 480          # of the photographs' 640: the rest is held out
_TRAIN_DIGITS = 1500


def add_noise(clean: np.ndarray, noise: str, level: float,
              rng: np.random.Generator) -> np.ndarray:
  """One noisy realisation of `clean` (any shape, values in [0, 1])."""
  if noise == "gaussian":
    return clean + level / 255.0 * rng.standard_normal(clean.shape)
  if noise == "poisson":
    return level * rng.poisson(np.maximum(clean, 0.0) / level)
  if noise == "gamma":
    return clean * rng.gamma(level, 1.0 / level, clean.shape)
  raise ValueError(f"noise={noise!r}; allowed {NOISES}")


def _grey(rgb: np.ndarray) -> np.ndarray:
  """uint8 `[h, w, 3]` -> float `[h, w]` in [0, 1] (ITU-R 601 luma)."""
  return (rgb[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]) / 255.0


def _embedded(patch: int) -> tuple[list[np.ndarray], list[np.ndarray],
                                   np.ndarray, np.ndarray]:
  """(train photos, held-out photos, train digits, held-out digits)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  photos = [_grey(im) for im in datasets.load_sample_images().images]
  digits = datasets.load_digits().images / 16.0              # [1797, 8, 8]
  digits = np.clip(ndimage.zoom(digits, (1, patch / 8, patch / 8), order=1),
                   0.0, 1.0)
  return ([p[:, :_TRAIN_COLUMNS] for p in photos],
          [p[:, _TRAIN_COLUMNS:] for p in photos],
          digits[:_TRAIN_DIGITS], digits[_TRAIN_DIGITS:])


def _folder(path: str) -> list[np.ndarray]:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  files = sorted(f for ext in ("png", "jpg", "jpeg", "bmp", "tif", "npy")
                 for f in glob.glob(os.path.join(path, f"*.{ext}")))
  if not files:
    raise FileNotFoundError(f"noisy_patches: no images (png/jpg/bmp/tif/npy) in "
                     f"{path!r}; put the data set there or set "
                     "config.data.data_dir")
  out = []
  for f in files:
    im = (np.load(f) if f.endswith(".npy")
          else np.asarray(Image.open(f).convert("RGB")))
    out.append(_grey(im) if im.ndim == 3 else im / (255.0 if im.max() > 1
                                                    else 1.0))
  return out


def _cropper(canvases: list[np.ndarray], noise: str, level: float,
             seed: int, patch: int):
  """`crop(rng, n) -> (noisy, clean)` random crops of padded canvases."""
  rng = np.random.default_rng(seed)
  h = max(c.shape[0] for c in canvases)
  w = max(c.shape[1] for c in canvases)
  if min(min(c.shape) for c in canvases) < patch:
    raise ValueError(f"noisy_patches: an image is smaller than patch={patch}")
  clean = np.zeros((len(canvases), h, w), np.float32)
  noisy = np.zeros_like(clean)
  for i, c in enumerate(canvases):
    clean[i, :c.shape[0], :c.shape[1]] = c
    noisy[i, :c.shape[0], :c.shape[1]] = add_noise(c, noise, level, rng)
  limits = np.array([[c.shape[0] - patch + 1, c.shape[1] - patch + 1]
                     for c in canvases], np.int32)
  both = jnp.asarray(np.stack([noisy, clean], -1))           # [k, h, w, 2]
  limits = jnp.asarray(limits)

  def crop(key, n):
    k_img, k_y, k_x = jax.random.split(key, 3)
    idx = jax.random.randint(k_img, (n,), 0, len(canvases))
    y0 = jax.random.randint(k_y, (n,), 0, limits[idx, 0])
    x0 = jax.random.randint(k_x, (n,), 0, limits[idx, 1])
    cut = jax.vmap(lambda i, y, x: jax.lax.dynamic_slice(
        both[i], (y, x, 0), (patch, patch, 2)))(idx, y0, x0)
    return cut[..., :1], cut[..., 1:]
  return crop


def _bank(images: np.ndarray, noise: str, level: float, seed: int):
  """`draw(rng, n) -> (noisy, clean)` whole images of a fixed bank."""
  noisy = add_noise(images, noise, level, np.random.default_rng(seed))
  both = jnp.asarray(np.stack([noisy, images], -1).astype(np.float32))

  def draw(key, n):
    cut = both[jax.random.randint(key, (n,), 0, len(images))]
    return cut[..., :1], cut[..., 1:]
  return draw


RULES = {
    "noise": config_lib.one_of(*NOISES),
    "level": config_lib.greater_than(0.0),
    "patch": config_lib.at_least(8, integer=True),
    "digits_fraction": config_lib.between(0.0, 1.0),
}


@procedural.register_generator("noisy_patches")
def noisy_patches(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, dict(
      images="embedded", train_dir="", eval_dir="", noise="gaussian",
      level=25.0, noise_seed=0, patch=32, digits_fraction=0.5,
      epoch_size=4096, eval_examples=512), RULES)
  noise, level, patch = kw["noise"], float(kw["level"]), int(kw["patch"])
  seed = int(kw["noise_seed"])
  if kw["images"] == "embedded":
    train_photos, eval_photos, train_digits, eval_digits = _embedded(patch)
    frac = float(kw["digits_fraction"])
    sources = [(_cropper(train_photos, noise, level, seed, patch),
                _bank(train_digits, noise, level, seed + 1)),
               (_cropper(eval_photos, noise, level, seed + 2, patch),
                _bank(eval_digits, noise, level, seed + 3))]
  elif kw["images"] == "folder":
    # Read on first use (inside the first trace), so that a config whose
    # data are elsewhere still validates.
    root, frac, loaded = config.data.data_dir, 0.0, []

    def lazy(i):
      def crop(key, n):
        if not loaded:
          loaded.extend(_cropper(_folder(os.path.join(root, kw[k])), noise,
                                 level, seed + 2 * j, patch)
                        for j, k in enumerate(("train_dir", "eval_dir")))
        return loaded[i](key, n)
      return crop
    sources = [(lazy(0), None), (lazy(1), None)]
  else:
    raise config_lib.ConfigError(
        f"config.data.kwargs.images={kw['images']!r}; allowed 'embedded' "
        "(scikit-learn's photographs and digits) or 'folder' (train_dir / "
        "eval_dir under config.data.data_dir)")

  def sampler(crop, bank):
    def sample(key, n):
      n_bank = int(round(n * frac)) if bank is not None else 0
      k_crop, k_bank = jax.random.split(key)
      noisy, clean = crop(k_crop, n - n_bank)
      if n_bank:
        bn, bc = bank(k_bank, n_bank)
        noisy, clean = (jnp.concatenate([noisy, bn]),
                        jnp.concatenate([clean, bc]))
      return {"noisy": noisy, "clean": clean, "mask": jnp.ones((n,), bool)}
    return sample

  sample = sampler(*sources[0])
  shape = jax.ShapeDtypeStruct((1, patch, patch, 1), jnp.float32)
  example = {"noisy": shape, "clean": shape,
             "mask": jax.ShapeDtypeStruct((1,), jnp.bool_)}
  return procedural.Generator(
      sample=sample, example=example, num_classes=0,
      epoch_size=int(kw["epoch_size"]), eval_sample=sampler(*sources[1]),
      eval_examples=int(kw["eval_examples"]))
