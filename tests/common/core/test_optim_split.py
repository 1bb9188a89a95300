"""`adamw_split`: QLAE's optimizer groups (decayed weights, plain Adam)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from common import models
from common.core import optim


def _params():
  model = models.get_model("autoencoder", 0, image_shape=(8, 8, 1),
                           latent="quantized", num_latents=3, num_values=4,
                           hidden_sizes=(16,))
  return model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)),
                    train=False)["params"]


def test_each_parameter_is_in_the_right_group():
  params = _params()
  labels = optim.split_param_labels(params, ("bias", "codebook"))
  assert labels["codebook"] == "plain"
  for name, layer in params.items():
    if name == "codebook":
      continue
    assert labels[name]["kernel"] == "decayed", name
    assert labels[name]["bias"] == "plain", name
  flat = jax.tree_util.tree_leaves(labels)
  assert flat.count("plain") == 1 + sum(1 for k in params if k != "codebook")


def test_first_step_decays_only_weights_and_hyperparams_are_traced():
  params = _params()
  grads = jax.tree.map(lambda p: jnp.full_like(p, 3.0), params)
  tx = optim.make_optimizer("adamw_split", plain_param_names=("bias", "codebook"))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(params, wd):
    state = optim.set_hyperparams(tx.init(params), {
        "learning_rate": 1e-2, "weight_decay": wd, "clip_value": 1.0})
    updates, _ = tx.update(grads, state, params)
    return updates

  for wd in (0.0, 0.1, 0.5):
    updates = step(params, jnp.float32(wd))
    labels = optim.split_param_labels(params, ("bias", "codebook"))

    def check(u, p, label):
      # Adam's first step is lr * sign(g) (clipping does not change a
      # sign); AdamW adds lr * wd * p on the decayed group only.
      decay = wd if label == "decayed" else 0.0
      np.testing.assert_allclose(u, -1e-2 * (1.0 + decay * p), rtol=1e-4,
                                 atol=1e-7)
    jax.tree.map(check, updates, params, labels)


def test_clipping_is_element_wise_on_weights_only():
  params = {"dense": {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}}
  tx = optim.make_optimizer("adamw_split", plain_param_names=("bias", "codebook"))
  state = optim.set_hyperparams(tx.init(params), {
      "learning_rate": 1.0, "weight_decay": 0.0, "clip_value": 1.0})
  first = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
  _, state = tx.update(first, state, params)
  big = {"dense": {"kernel": jnp.full((2, 2), 100.0),
                   "bias": jnp.full(2, 100.0)}}
  updates, _ = tx.update(big, state, params)
  # Second Adam step; the kernel saw g = 1 then clip(100) = 1, the bias 1
  # then 100: different normalised updates.
  reference = optax.adam(1.0)
  r_state = reference.init(jnp.zeros(1))
  _, r_state = reference.update(jnp.ones(1), r_state)
  clipped, _ = reference.update(jnp.ones(1), r_state)
  r_state2 = reference.init(jnp.zeros(1))
  _, r_state2 = reference.update(jnp.ones(1), r_state2)
  unclipped, _ = reference.update(jnp.full(1, 100.0), r_state2)
  np.testing.assert_allclose(updates["dense"]["kernel"], clipped[0],
                             rtol=1e-5)
  np.testing.assert_allclose(updates["dense"]["bias"], unclipped[0],
                             rtol=1e-5)


def test_adamw_split_rejects_other_clipping_and_masks():
  with pytest.raises(ValueError, match="clip_value"):
    optim.make_optimizer("adamw_split", clip_grad_norm=True)
  with pytest.raises(ValueError, match="weight_decay_mask"):
    optim.make_optimizer("adamw_split", weight_decay_mask="kernels")
