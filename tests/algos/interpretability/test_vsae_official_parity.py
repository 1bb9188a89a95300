"""Parity of the vSAE loss and gradients with the credited PyTorch code.

ZachData/SPAR-Variational-Sparse-Autoencoders (not confirmed official),
`dictionary_learning/trainers/vsae_topk.py`: `VSAETopKTrainer.loss` with
learned variance (`var_flag=1`), the non-"april" mode (the encoder sees
`x - b_dec`, as ours), KL over all latents with its warm-up, and AuxK.
Skipped unless `REGJAX_OFFICIAL_VSAE_DIR` points at a checkout:

    git --git-dir=<mirror> archive HEAD dictionary_learning | tar -x -C DIR
    REGJAX_OFFICIAL_VSAE_DIR=DIR pytest tests/algos/interpretability/\
test_vsae_official_parity.py

The sampling noise is fed to both (torch's `randn_like` patched to return
it); it is non-negative so that the credited code's "fired" test
(`sum over the batch > 0`) and ours (`any non-zero`) agree.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.interpretability import vsae
from algos.interpretability import vsae_method

OFFICIAL = os.environ.get("REGJAX_OFFICIAL_VSAE_DIR", "")
pytestmark = pytest.mark.skipif(
    not OFFICIAL, reason="set REGJAX_OFFICIAL_VSAE_DIR to a checkout of "
    "ZachData/SPAR-Variational-Sparse-Autoencoders to run the parity test")

D, M, K, B, STEP, STEPS, BETA, ALPHA = 8, 64, 4, 4, 50, 1000, 3.0, 0.25


def _official_module():
  torch = pytest.importorskip("torch")
  pytest.importorskip("einops")
  root = os.path.join(OFFICIAL, "dictionary_learning")
  # The package's __init__ imports nnsight and every trainer: load only
  # the modules vsae_topk.py needs.
  for name, path in (("dictionary_learning", root),
                     ("dictionary_learning.trainers",
                      os.path.join(root, "trainers"))):
    if name not in sys.modules:
      module = types.ModuleType(name)
      module.__path__ = [path]
      sys.modules[name] = module
  return torch, importlib.import_module(
      "dictionary_learning.trainers.vsae_topk")


def test_loss_and_gradients_match_the_credited_code():
  torch, v = _official_module()
  model = vsae.TopKSAE(dict_size=M, k=K, variance="learned")
  x = 2.0 * jax.random.normal(jax.random.PRNGKey(0), (B, D))
  params = model.init(jax.random.PRNGKey(1), x)["params"]
  params = dict(params, b_enc=0.1 * jax.random.normal(
      jax.random.PRNGKey(2), (M,)), b_dec=0.1 * jnp.ones(D))
  noise = jnp.abs(jax.random.normal(jax.random.PRNGKey(3), (B, M)))

  hp = {"auxk_alpha": ALPHA, "dead_window": float(B), "beta": BETA,
        "kl_warmup_steps": 0.1 * STEPS}

  def objective(p):
    out = vsae.encode(p, x, K, noise, "learned")
    out["recon"] = vsae.decode(p, out["features"])
    loss, metrics, _ = vsae_method.sae_objective(
        hp, out, x, vsae.decoder_rows(p), jnp.zeros(M, jnp.int32),
        jnp.float32(STEP), aux_k=D // 2, variational=True)
    return loss, metrics

  (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(params)
  assert metrics["auxk"] > 0   # some latents are dead: AuxK is compared

  cfg = v.VSAETopKConfig(activation_dim=D, dict_size=M, k=K, var_flag=1,
                         use_april_update_mode=False, dtype=torch.float32,
                         device=torch.device("cpu"))
  train_cfg = v.VSAETopKTrainingConfig(steps=STEPS, kl_coeff=BETA,
                                       auxk_alpha=ALPHA,
                                       dead_feature_threshold=B)
  trainer = v.VSAETopKTrainer(model_config=cfg, training_config=train_cfg,
                              seed=0)
  ae = trainer.ae
  t = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731
  with torch.no_grad():
    ae.encoder.weight.copy_(t(params["w_enc"]).T)
    ae.encoder.bias.copy_(t(params["b_enc"]))
    ae.decoder.weight.copy_(t(vsae.decoder_rows(params)).T)
    ae.bias.copy_(t(params["b_dec"]))
    ae.var_encoder.weight.copy_(t(params["w_var"]).T)
    ae.var_encoder.bias.copy_(t(params["b_var"]))
  eps = t(noise)
  with mock.patch.object(v.torch, "randn_like", lambda _: eps):
    official = trainer.loss(t(x), step=STEP)
  official.backward()

  np.testing.assert_allclose(float(official), float(loss), rtol=1e-5)
  got = lambda a: np.asarray(a.grad.detach())  # noqa: E731
  np.testing.assert_allclose(got(ae.encoder.weight).T, grads["w_enc"],
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got(ae.encoder.bias), grads["b_enc"],
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got(ae.bias), grads["b_dec"], rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(got(ae.var_encoder.weight).T, grads["w_var"],
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got(ae.var_encoder.bias), grads["b_var"],
                             rtol=1e-4, atol=1e-5)
  # Ours differentiates through the unit-norm reparameterisation: the
  # credited code's decoder gradient without its component along each row.
  g = got(ae.decoder.weight).T
  rows = np.asarray(vsae.decoder_rows(params))
  projected = g - np.sum(g * rows, -1, keepdims=True) * rows
  np.testing.assert_allclose(projected, grads["w_dec"], rtol=1e-4, atol=1e-5)
