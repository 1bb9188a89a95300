"""InfoMEC and DCI on synthetic sources with known answers."""

from __future__ import annotations

import numpy as np

from common.eval import metrics_disentanglement as md


def _grid_sources():
  """A full factorial grid of 3 sources (3 x 4 x 5 = 60 rows) x 8 reps, so
  distinct sources are exactly independent."""
  mesh = np.meshgrid(np.arange(3), np.arange(4), np.arange(5),
                     indexing="ij")
  s = np.stack([m.reshape(-1) for m in mesh], axis=1)
  return np.tile(s, (8, 1))


def test_perfectly_disentangled_discrete_code_scores_one():
  s = _grid_sources()
  # One latent per source, relabelled (a bijection) and in shuffled order.
  z = np.stack([(s[:, 2] * 7) % 5, 2 - s[:, 0], s[:, 1] + 10], axis=1)
  r = md.infomec(s, z, discrete=True)
  np.testing.assert_allclose(r["nmi"][[2, 0, 1], [0, 1, 2]], 1.0, atol=1e-9)
  for key in ("infom", "infoc"):
    np.testing.assert_allclose(r[key], 1.0, atol=1e-9)
  assert r["infoe"] > 0.99
  # An extra constant latent is pruned and changes nothing.
  r2 = md.infomec(s, np.concatenate([z, np.zeros((len(z), 1))], 1), True)
  assert r2["active"].tolist() == [True, True, True, False]
  np.testing.assert_allclose(r2["infom"], 1.0, atol=1e-9)


def test_random_discrete_code_scores_near_zero():
  rng = np.random.default_rng(0)
  s = np.tile(_grid_sources(), (10, 1))            # 4,800 rows
  z = rng.integers(0, 10, size=(len(s), 6))
  r = md.infomec(s, z, discrete=True)
  assert r["nmi"].max() < 0.03
  assert r["infoe"] < 0.05
  assert r["infom"] < 0.25 and r["infoc"] < 0.25   # plug-in MI bias only


def test_continuous_code_estimators():
  rng = np.random.default_rng(1)
  s = np.tile(_grid_sources(), (5, 1))
  z = np.stack([3.0 * s[:, 1], -s[:, 0], 0.5 * s[:, 2]], 1)
  z = z + 0.01 * rng.normal(size=z.shape)
  r = md.infomec(s, z, discrete=False)
  assert r["infom"] > 0.9 and r["infoc"] > 0.9 and r["infoe"] > 0.95
  noise = md.infomec(s, rng.normal(size=(len(s), 3)), discrete=False)
  # InfoM/InfoC of pure noise are ratios of near-zero k-NN estimates (ill
  # posed); the NMI itself and InfoE are near zero.
  assert noise["nmi"].max() < 0.05 and noise["infoe"] < 0.05


def test_dci_perfect_and_random():
  rng = np.random.default_rng(2)
  s = np.tile(_grid_sources(), (5, 1))
  perfect = md.dci(s, s[:, [2, 0, 1]].astype(float)
                   + 0.01 * rng.normal(size=s.shape))
  assert perfect["dci_d"] > 0.8 and perfect["dci_c"] > 0.8
  assert perfect["dci_i"] > 0.95
  noise = md.dci(s, rng.normal(size=(len(s), 6)))
  assert noise["dci_d"] < 0.3 and noise["dci_i"] < 0.5


def test_reconstruction_metrics_and_bad_input():
  logits = np.array([[0.0, 100.0]])
  r = md.reconstruction_metrics(logits, np.array([[0.5, 1.0]]))
  np.testing.assert_allclose(r["mse"], 0.0, atol=1e-12)
  np.testing.assert_allclose(r["bce"], np.log(2) / 2, rtol=1e-6)
  try:
    md.infomec(np.zeros(5), np.zeros((5, 2)), True)
  except ValueError as e:
    assert "[n, n_s]" in str(e)
  else:
    raise AssertionError("expected ValueError")
