"""GAN evaluation: class share of samples and Frechet distance to real data.

The measuring classifier is fixed and needs no training loop: 512 random
ReLU features of the 8x8 image (`relu(x W + b)`, W and b drawn from a fixed
seed) with a ridge-regression readout fitted in closed form on the real
training digits (`common.data.gan_images`); 98.3% test accuracy on the
digits test split (`tests/common/eval/test_gan_eval.py` checks > 97%).
Images of any size are average-pooled to 8x8 first.

The Frechet distance (FID's formula, `common.eval.frechet`) is computed on
the classifier's features projected onto their top `FD_DIMS` principal
components of the real training digits (1,437 images fit a 512-d
covariance poorly), against all real training digits (`frechet`) and against
those of every class but k (`frechet_without_<k>`: the reference of an
unlearning run that removed class k).

Evaluator `gan` (`config.eval.name = "gan"`): the run's generator samples
the eval split's latents (`data.kwargs.eval_examples` of them, the same for
every evaluation of a seed).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from common.core import sharding as sharding_lib
from common.data import gan_images
from common.eval import evaluators
from common.eval import frechet

NUM_FEATURES = 512
FD_DIMS = 64
_RIDGE = 1.0


def pool8(images: np.ndarray) -> np.ndarray:
  """`[n, s, s, c]` images (s a multiple of 8) -> `[n, 64]` grey 8x8."""
  x = np.asarray(images, np.float32).mean(-1)
  n, s = x.shape[0], x.shape[1]
  f = s // 8
  return x.reshape(n, 8, f, 8, f).mean((2, 4)).reshape(n, 64)


class DigitClassifier:
  """Random-feature ridge classifier of digits, fitted in closed form."""

  def __init__(self, seed: int = 0):
    rng = np.random.default_rng(seed)
    self.w = rng.normal(0.0, 1.0 / 8.0, (64, NUM_FEATURES))
    self.b = rng.normal(0.0, 0.5, (NUM_FEATURES,))
    x, y = gan_images.real_images("train")
    feats = self.features(x)
    gram = feats.T @ feats + _RIDGE * len(feats) / NUM_FEATURES * np.eye(
        NUM_FEATURES)
    self.readout = np.linalg.solve(gram, feats.T @ np.eye(10)[y])
    self.train_labels = y
    # PCA of the real training features: the Frechet distance's space.
    self.mean = feats.mean(0)
    _, vecs = np.linalg.eigh(np.cov(feats, rowvar=False))
    self.basis = vecs[:, ::-1][:, :FD_DIMS]              # [512, FD_DIMS]
    self.train_embedding = self.embed_features(feats)

  def features(self, images: np.ndarray) -> np.ndarray:
    """`[n, s, s, c]` images in [-1, 1] -> `[n, 512]` ReLU features."""
    return np.maximum(pool8(images) @ self.w + self.b, 0.0)

  def embed_features(self, feats: np.ndarray) -> np.ndarray:
    return (feats - self.mean) @ self.basis

  def embed(self, images: np.ndarray) -> np.ndarray:
    """`[n, FD_DIMS]`: the Frechet distance's features."""
    return self.embed_features(self.features(images))

  def predict(self, images: np.ndarray) -> np.ndarray:
    """Predicted digits `[n]` of `[n, s, s, c]` images in [-1, 1]."""
    return np.argmax(self.features(images) @ self.readout, axis=1)


@functools.lru_cache(maxsize=None)
def classifier() -> DigitClassifier:
  return DigitClassifier()


def sample_metrics(images: np.ndarray) -> dict[str, float]:
  """Class shares and Frechet distances of generated `[n, s, s, c]`."""
  clf = classifier()
  pred = clf.predict(images)
  emb = clf.embed(images)
  out = {f"class_share/{k}": float(np.mean(pred == k)) for k in range(10)}
  out["frechet"] = frechet.frechet_distance_of(emb, clf.train_embedding)
  for k in range(10):
    ref = clf.train_embedding[clf.train_labels != k]
    out[f"frechet_without_{k}"] = frechet.frechet_distance_of(emb, ref)
  return out


def generated_images(setup: Any, state: Any) -> np.ndarray:
  """The run's samples `[n, s, s, c]` of the eval split's latents."""
  out = []
  for batch in setup.eval_batches():
    imgs = setup.eval_step(state, batch, setup.hparams,
                           output_keys=("images",))["images"]
    out.append(sharding_lib.gather_to_host(imgs))
  return np.concatenate(out)


@evaluators.register_evaluator("gan")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  return sample_metrics(generated_images(setup, state))
