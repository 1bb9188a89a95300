"""CA calibration against the official PyTorch code, on the CPU.

The official `Temperature_adaptive` (liuyvchi/Correctness-aware-calibration,
`src/cal_metrics/temperature_scaling_CA.py`) and its `set_temperature`
training loop run with our initial calibrator weights on the same logits,
labels and features: the temperatures and calibrated logits, the gradient of
its first Adam step (the CA loss with the official class-balancing weights)
and the weights after its 10 epochs (Adam 1e-4, one batch of <= 1000 rows
an epoch) must equal ours. The official code is not in this repo: the
tests read the checkout named by `REGJAX_OFFICIAL_CA_CALIB_DIR` (the
repository root, holding `src/`) and skip without it:

    REGJAX_OFFICIAL_CA_CALIB_DIR=/path/to/Correctness-aware-calibration \\
        JAX_PLATFORMS=cpu python -m pytest -q \\
        tests/algos/calibration/test_ca_calib_official_parity.py

Its `.cuda()` calls are turned into no-ops for the run.
"""

from __future__ import annotations

import importlib
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from algos.calibration import ca_calib

ENV = "REGJAX_OFFICIAL_CA_CALIB_DIR"
ROOT = os.environ.get(ENV, "")
_FILE = os.path.join(ROOT, "src", "cal_metrics", "temperature_scaling_CA.py")
pytestmark = pytest.mark.skipif(
    not (ROOT and os.path.exists(_FILE)),
    reason=f"official CA code: set {ENV} to a checkout holding {_FILE!r}")
torch = pytest.importorskip("torch")

N, C, K = 96, 10, 4


@pytest.fixture(scope="module")
def official():
  sys.path.insert(0, os.path.join(ROOT, "src"))
  try:
    yield importlib.import_module("cal_metrics.temperature_scaling_CA")
  finally:
    sys.path.remove(os.path.join(ROOT, "src"))


def _data():
  rng = np.random.default_rng(0)
  view_logits = (3.0 * rng.normal(size=(4, N, C))).astype(np.float32)
  labels = rng.integers(0, C, N)
  # About 60% right, so both weights are non-zero.
  right = rng.random(N) < 0.6
  labels[right] = np.argmax(view_logits[0][right], -1)
  return view_logits, labels


def _ours_to_torch(params, model):
  with torch.no_grad():
    for name, layer in (("embed", model.embed_layer[0]),
                        ("temperature", model.temperature_layer)):
      layer.weight.copy_(torch.tensor(np.asarray(params[name]["kernel"]).T))
      layer.bias.copy_(torch.tensor(np.asarray(params[name]["bias"])))


def _official_features(view_logits):
  """`temp_args` as `run_cal.py` builds it."""
  out = [torch.tensor(v) for v in view_logits]
  _, top1 = torch.topk(out[0], k=K, dim=-1)
  return torch.cat([torch.gather(torch.softmax(o, -1), 1, top1)
                    for o in out[1:]], dim=-1)


def _objective(params, logits, feats, correct):
  t = ca_calib.sample_temperature(params, feats, 0.1, 10.0)
  return ca_calib.ca_loss(logits / t[:, None], correct,
                          jnp.ones(len(correct), bool))


def test_calibrator_and_ca_training_match_the_official(official,
                                                       monkeypatch):
  monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
  monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
  view_logits, labels = _data()
  feats = np.asarray(ca_calib.consistency_features(view_logits, K))
  theirs_feats = _official_features(view_logits)
  np.testing.assert_allclose(feats, theirs_feats.numpy(), rtol=1e-6)

  params = ca_calib.init_calibrator(jax.random.PRNGKey(0), 3 * K, 5)
  model = official.Temperature_adaptive(input_dim=3 * K, feat_dim=5)
  _ours_to_torch(params, model)
  logits = torch.tensor(view_logits[0])
  cal, temp = model(logits, theirs_feats, return_temp=True)
  t = ca_calib.sample_temperature(params, jnp.asarray(feats), 0.1, 10.0)
  np.testing.assert_allclose(t, temp.detach().numpy(), rtol=1e-6)
  np.testing.assert_allclose(view_logits[0] / np.asarray(t)[:, None],
                             cal.detach().numpy(), rtol=1e-6)

  # Record the official first-step gradients, then train 10 epochs.
  grads = []

  class RecordingAdam(torch.optim.Adam):
    def step(self, closure=None):
      if not grads:
        grads.append({
            "embed": model.embed_layer[0].weight.grad.numpy().T.copy(),
            "temperature": model.temperature_layer.weight.grad.numpy().T
                           .copy()})
      return super().step(closure)

  class Optim:
    Adam = RecordingAdam
  monkeypatch.setattr(official, "optim", Optim)
  model.set_temperature(logits, theirs_feats, torch.tensor(labels))

  correct = jnp.asarray(np.argmax(view_logits[0], -1) == labels)
  args = (jnp.asarray(view_logits[0]), jnp.asarray(feats), correct)
  ours = jax.grad(_objective)(params, *args)
  for name in ("embed", "temperature"):
    np.testing.assert_allclose(ours[name]["kernel"], grads[0][name],
                               rtol=1e-4, atol=1e-7)
  tx = optax.adam(1e-4)   # torch's Adam defaults: betas .9/.999, eps 1e-8
  opt_state = tx.init(params)
  for _ in range(10):
    g = jax.grad(_objective)(params, *args)
    updates, opt_state = tx.update(g, opt_state)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(
      params["embed"]["kernel"],
      model.embed_layer[0].weight.detach().numpy().T, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(
      params["temperature"]["kernel"],
      model.temperature_layer.weight.detach().numpy().T, rtol=1e-5,
      atol=1e-7)
