"""Activations by name: CRReLU identities and gradients, the zoo's
`activation` switch (ReLU default adds no parameters), the small ViT."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from common import models
from common.models import activations

X = jnp.linspace(-4.0, 4.0, 17)


def test_crrelu_formula_eps_zero_is_relu_and_gradients():
  f = jax.jit(activations.crrelu)
  np.testing.assert_array_equal(f(X, 0.0), jax.nn.relu(X))
  x = np.asarray(X, np.float64)
  expected = np.maximum(x, 0) + 0.3 * x * np.exp(-x ** 2 / 2)
  np.testing.assert_allclose(f(X, 0.3), expected, rtol=1e-6, atol=1e-7)
  # d/d eps = x exp(-x^2/2): the correction is bounded by exp(-1/2).
  g = jax.jit(jax.grad(lambda e: jnp.sum(activations.crrelu(X, e))))(0.1)
  np.testing.assert_allclose(g, np.sum(x * np.exp(-x ** 2 / 2)), atol=1e-5)
  check_grads(f, (X[X != 0], 0.2), order=1, modes=("rev",), atol=1e-2,
              rtol=1e-2)


def test_zoo_activation_switch_and_vit():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 1)),
                  jnp.float32)
  key = jax.random.PRNGKey(0)

  def build(name, **kw):
    model = models.get_model(name, num_classes=3, **kw)
    params = jax.jit(lambda k: model.init(k, x, train=False))(key)
    return model, params

  mlp_relu, p_relu = build("mlp", hidden_sizes=(4,))
  mlp_cr, p_cr = build("mlp", hidden_sizes=(4,), activation="crrelu")
  assert "act0" not in p_relu["params"]                  # relu: no params
  np.testing.assert_allclose(p_cr["params"]["act0"]["eps"], 0.01)
  # With eps = 0, CRReLU's network is the ReLU network.
  p_cr0 = jax.tree.map(lambda a: a, p_cr)
  p_cr0["params"]["act0"]["eps"] = jnp.zeros(())
  logits = jax.jit(lambda a, b: (
      mlp_cr.apply(a, x, train=False)["logits"],
      mlp_relu.apply(b, x, train=False)["logits"]))(p_cr0, p_relu)
  np.testing.assert_allclose(*logits, rtol=1e-6)
  vit, p_vit = build("vit", depth=1, dim=8, num_heads=2, patch_size=4,
                     activation="crrelu")
  out = jax.jit(lambda p: vit.apply(p, x, train=False))(p_vit)
  assert out["logits"].shape == (2, 3) and out["features"].shape == (2, 8)
  assert activations.eps_values(p_vit) == pytest.approx([0.01])
  with pytest.raises(ValueError, match="allowed"):
    build("mlp", hidden_sizes=(4,), activation="swishy")
