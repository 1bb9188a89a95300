"""LoRA / PiSSA / SORSA as a params transform (`common.models.peft`).

Parity with the official code (Gunale0926/SORSA `sorsalib/src/sorsa/
layer.py`, `loralib/layer.py`) runs when `REGJAX_OFFICIAL_SORSA_DIR` points
at a checkout of it (torch CPU).
"""

from __future__ import annotations

import functools
import importlib.util
import os

import jax
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from common.models import peft

_TARGETS = ("attn/(q|v)/kernel", "mlp/down/kernel")


class _Block(nn.Module):
  @nn.compact
  def __call__(self, x):
    h = nn.Dense(12, name="q")(x) * nn.Dense(12, name="v")(x)
    return nn.Dense(16, name="down")(jnp.tanh(h))


class _Net(nn.Module):
  """Nested Dense layers, named like a transformer's."""
  @nn.compact
  def __call__(self, x):
    x = x + _Block(name="attn")(x)
    return nn.Dense(8, name="head")(x + _Block(name="mlp")(x))


@functools.cache
def _model_and_params():
  model = _Net()
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
  params = model.init(jax.random.PRNGKey(0), x)["params"]
  return model, params, x


def _perturb(tree, seed):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree.unflatten(treedef, [
      x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def test_init_equals_base_and_merged_equals_unmerged():
  model, params, x = _model_and_params()
  scale = peft.scale_of(3, 6.0)

  @jax.jit
  def outputs(params):
    """Per kind: (step-0 merged, merged after a change, unmerged after it)."""
    base = model.apply({"params": params}, x)
    out = {}
    for kind in peft.KINDS:
      pp = peft.init_adapters(params, _TARGETS, kind, 3,
                              jax.random.PRNGKey(2), alpha=6.0)
      start = model.apply({"params": peft.merge(pp, scale)}, x)
      pp = {"base": pp["base"], "adapters": _perturb(pp["adapters"], 3)}
      merged = model.apply({"params": peft.merge(pp, scale)}, x)
      out[kind] = (start, merged, peft.apply_unmerged(model, pp, x,
                                                      scale=scale))
    return base, out

  base, out = outputs(params)
  for kind, (start, merged, unmerged) in out.items():
    # Step 0: the adapted model is the pretrained one (LoRA's B = 0; the
    # residual plus the principal part for PiSSA / SORSA).
    np.testing.assert_allclose(start, base, atol=2e-5, err_msg=kind)
    # After a change of the adapters: the merged checkpoint computes what
    # the separate adapter branch computes.
    assert float(jnp.max(jnp.abs(merged - base))) > 1e-3, kind
    np.testing.assert_allclose(merged, unmerged, atol=2e-5, err_msg=kind)
  # Only the adapters train, and the plain structure comes back.
  pp = jax.eval_shape(lambda p: peft.init_adapters(
      p, _TARGETS, "sorsa", 3, jax.random.PRNGKey(0)), params)
  mask = peft.trainable_mask(pp)
  assert all(jax.tree.leaves(mask["adapters"]))
  assert not any(jax.tree.leaves(mask["base"]))
  assert len(jax.tree.leaves(mask["adapters"])) == 9
  assert (jax.tree.structure(jax.eval_shape(peft.merge, pp))
          == jax.tree.structure(params))


def test_sorsa_init_is_the_principal_svd_and_regulariser_gradient():
  _, params, _ = _model_and_params()
  pp = peft.init_adapters(params, ("mlp/down/kernel",), "sorsa", 4,
                          jax.random.PRNGKey(0))
  ad = pp["adapters"]["mlp"]["down"]["kernel"]
  w = params["mlp"]["down"]["kernel"]
  s = np.linalg.svd(np.asarray(w), compute_uv=False)
  np.testing.assert_allclose(ad["S"], s[:4], rtol=1e-5)
  assert float(peft.orthonormality(pp["adapters"])) < 1e-5
  # Off the orthonormal point the regulariser (a mean of Frobenius norms)
  # is smooth: its gradient matches finite differences.
  moved = _perturb(pp["adapters"], 5)
  check_grads(peft.orthonormality, (moved,), order=1, modes=("rev",),
              atol=2e-2, rtol=2e-2)
  # At the exact orthonormal point the gradient is 0, not NaN (torch).
  eye = {"U": jnp.eye(6, 2), "S": jnp.ones(2), "Vt": jnp.eye(2, 5)}
  grad = jax.grad(peft.orthonormality)({"k": {"kernel": eye}})
  assert all(bool(jnp.all(g == 0)) for g in jax.tree.leaves(grad))


def test_bad_inputs_are_one_line_errors():
  _, params, _ = _model_and_params()
  key = jax.random.PRNGKey(0)
  cases = [((("attn/q/kernel",), "sorsa", 13), "rank 13 for a 16x12"),
           ((("nothing_here",), "lora", 2), "matches no kernel"),
           ((("bias",), "lora", 2), "matches no kernel"),
           ((("attn/q/kernel",), "dora", 2), "allowed ('lora'"),
           (((), "lora", 2), "non-empty list")]
  for (targets, kind, rank), message in cases:
    with pytest.raises(peft.PeftError, match=message.replace("(", r"\(")) as e:
      peft.init_adapters(params, targets, kind, rank, key)
    assert "\n" not in str(e.value)


def _load(path, name):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.skipif(not os.environ.get("REGJAX_OFFICIAL_SORSA_DIR"),
                    reason="set REGJAX_OFFICIAL_SORSA_DIR to a checkout of "
                    "Gunale0926/SORSA for the parity test")
def test_init_and_regulariser_equal_the_official_code():
  torch = pytest.importorskip("torch")
  root = os.environ["REGJAX_OFFICIAL_SORSA_DIR"]
  sorsa = _load(os.path.join(root, "sorsalib/src/sorsa/layer.py"),
                "official_sorsa_layer")
  lora = _load(os.path.join(root, "loralib/layer.py"), "official_lora_layer")
  rng = np.random.default_rng(0)
  weight = rng.normal(size=(12, 20)).astype(np.float32)  # torch [out, in]
  kernel = {"lin": {"kernel": jnp.asarray(weight.T)}}      # flax [in, out]
  r = 5
  # SORSA init.
  layer = sorsa.Linear(20, 12, r=r)
  layer.weight.data = torch.tensor(weight)
  layer.sorsa_init()
  ours = peft.init_adapters(kernel, ("lin",), "sorsa", r,
                            jax.random.PRNGKey(0))
  ad = ours["adapters"]["lin"]["kernel"]
  # Singular vectors are defined up to a shared sign per triplet.
  sign = np.sign(np.sum(np.asarray(ad["U"]) * layer.sorsa_A.detach().numpy().T,
                        axis=0))
  np.testing.assert_allclose(ad["S"], layer.sorsa_S.detach().numpy(),
                             rtol=1e-5)
  np.testing.assert_allclose(np.asarray(ad["U"]) * sign,
                             layer.sorsa_A.detach().numpy().T, atol=1e-5)
  np.testing.assert_allclose(np.asarray(ad["Vt"]) * sign[:, None],
                             layer.sorsa_B.detach().numpy().T, atol=1e-5)
  np.testing.assert_allclose(ours["base"]["lin"]["kernel"],
                             layer.weight.detach().numpy().T, atol=1e-5)
  # PiSSA init (the official loralib): residual and product.
  player = lora.Linear(20, 12, r=r)
  player.weight.data = torch.tensor(weight)
  player.pissa_init(None, None)
  pissa = peft.init_adapters(kernel, ("lin",), "pissa", r,
                             jax.random.PRNGKey(0))
  pa = pissa["adapters"]["lin"]["kernel"]
  np.testing.assert_allclose(pissa["base"]["lin"]["kernel"],
                             player.weight.detach().numpy().T, atol=1e-5)
  np.testing.assert_allclose(
      np.asarray(pa["A"] @ pa["B"]),
      (player.lora_B @ player.lora_A).detach().numpy().T, atol=1e-5)
  # The regulariser and its gradient on moved matrices.
  moved = rng.normal(size=(20, r)).astype(np.float32) * 0.3
  moved_v = rng.normal(size=(r, 12)).astype(np.float32) * 0.3
  layer.sorsa_A.data = torch.tensor(moved.T.copy())
  layer.sorsa_B.data = torch.tensor(moved_v.T.copy())
  ortho = sorsa.calc_ortho(torch.nn.ModuleDict({"l": layer}))
  ortho.backward()
  tree = {"lin": {"kernel": {"U": jnp.asarray(moved), "S": ad["S"],
                             "Vt": jnp.asarray(moved_v)}}}
  value, grad = jax.value_and_grad(peft.orthonormality)(tree)
  np.testing.assert_allclose(value, ortho.item(), rtol=1e-5)
  g = grad["lin"]["kernel"]
  np.testing.assert_allclose(g["U"], layer.sorsa_A.grad.numpy().T,
                             atol=1e-5)
  np.testing.assert_allclose(g["Vt"], layer.sorsa_B.grad.numpy().T,
                             atol=1e-5)
