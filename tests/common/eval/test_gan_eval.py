"""Frechet distance vs closed forms; the GAN evaluator's classifier."""

import numpy as np

from common.data import gan_images
from common.eval import frechet
from common.eval import gan_eval


def test_frechet_distance_of_commuting_gaussians_is_the_closed_form():
  """Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2."""
  rng = np.random.default_rng(0)
  mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
  s1, s2 = rng.uniform(0.1, 2.0, 5), rng.uniform(0.1, 2.0, 5)
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  got = frechet.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
  np.testing.assert_allclose(got, want, rtol=1e-8)


def test_frechet_distance_of_full_covariances():
  """A rotated pair: W2^2 is invariant to a common rotation, and equals the
  diagonal closed form in the rotated frame; zero for a Gaussian and
  itself."""
  rng = np.random.default_rng(1)
  q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
  s1, s2 = rng.uniform(0.2, 3.0, 4), rng.uniform(0.2, 3.0, 4)
  mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
  got = frechet.frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2,
                                 q @ np.diag(s2) @ q.T)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  a = rng.normal(size=(4, 4))
  cov = a @ a.T + np.eye(4)
  assert abs(frechet.frechet_distance(mu1, cov, mu1, cov)) < 1e-8
  # From samples: the fitted Gaussians' distance.
  x = rng.normal(size=(4000, 3))
  y = rng.normal(size=(4000, 3)) * 2.0 + 1.0
  np.testing.assert_allclose(frechet.frechet_distance_of(x, y),
                             3 * 1.0 + 3 * (2.0 - 1.0) ** 2, rtol=0.1)


def test_digit_classifier_and_sample_metrics_on_real_digits():
  clf = gan_eval.classifier()
  x, y = gan_images.real_images("test")
  assert np.mean(clf.predict(x) == y) > 0.97
  # Upsampled images are pooled back to 8x8: the same predictions.
  x16, _ = gan_images.real_images("test", image_size=16)
  assert np.mean(clf.predict(x16) == clf.predict(x)) > 0.97
  m = gan_eval.sample_metrics(x[y != 3])
  assert m["class_share/3"] < 0.02
  assert abs(sum(m[f"class_share/{k}"] for k in range(10)) - 1.0) < 1e-6
  assert m["frechet_without_3"] < m["frechet"]
