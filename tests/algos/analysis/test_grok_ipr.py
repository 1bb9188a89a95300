"""IPR identities, pruning, the quadratic MLP and MSE of grok_corrupted."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.analysis import grok_ipr
from algos.baselines import mse
from common import models

P, N = 11, 16


def test_ipr_of_one_fourier_mode_is_one_and_of_a_flat_spectrum_is_1_over_k():
  n = np.arange(P)
  for k in range(1, P // 2 + 1):   # cos(2 pi k n / p + phase): one frequency
    w = np.cos(2 * np.pi * k * n / P + 0.3)
    np.testing.assert_allclose(grok_ipr.ipr(grok_ipr.fourier_magnitudes(w)),
                               1.0, atol=1e-5)
  k_bins = P // 2 + 1
  delta = np.eye(P)[0]        # a delta in position: flat spectrum
  for r in (2.0, 3.0):
    np.testing.assert_allclose(
        grok_ipr.ipr(grok_ipr.fourier_magnitudes(delta), r),
        k_bins ** (1 - r), rtol=1e-5)
  assert grok_ipr.ipr(np.zeros((1, k_bins)))[0] == 0.0   # a pruned neuron


def _model_and_params(norm="none"):
  model = models.get_model("quad_mlp", P, width=N, norm=norm)
  x = jnp.asarray([[1, 2], [3, 4]], jnp.int32)
  variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
  return model, variables


def test_gather_equals_the_one_hot_product_and_init_is_official():
  model, variables = _model_and_params()
  a, b = np.meshgrid(np.arange(P), np.arange(P))
  x = np.stack([a.ravel(), b.ravel()], 1).astype(np.int32)
  onehot = np.concatenate([np.eye(P)[x[:, 0]], np.eye(P)[x[:, 1]]], 1)
  out_int = model.apply(variables, x, train=False)["logits"]
  out_hot = model.apply(variables, onehot.astype(np.float32),
                        train=False)["logits"]
  np.testing.assert_allclose(out_int, out_hot, rtol=1e-5, atol=1e-6)
  neuron = grok_ipr.neuron_weights(variables["params"])
  assert {k: v.shape for k, v in neuron.items()} == {k: (N, P) for k in "UVW"}
  std = float(np.std(variables["params"]["fc1"]["kernel"]))
  assert abs(std / (0.5 / (2 * N) ** (1 / 3)) - 1) < 0.15
  # the network is W (U e_a + V e_b)^2, neuron by neuron
  h = neuron["U"][:, x[:, 0]] + neuron["V"][:, x[:, 1]]
  np.testing.assert_allclose(out_int, (h ** 2).T @ neuron["W"], rtol=1e-4,
                             atol=1e-6)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_pruning_keeps_shapes_and_removes_exactly_the_neurons(norm):
  model, variables = _model_and_params(norm)
  params = variables["params"]
  pruned_mask = np.arange(N) % 3 == 0
  pruned = grok_ipr.prune(params, pruned_mask)
  assert jax.tree.map(jnp.shape, pruned) == jax.tree.map(jnp.shape, params)
  w = grok_ipr.neuron_weights(pruned)
  for v in w.values():
    assert not np.any(v[pruned_mask]) and np.all(np.any(v[~pruned_mask], 1))
  # the pruned network's logits: only the kept neurons contribute
  x = jnp.asarray([[5, 7], [0, 3]], jnp.int32)
  feats = model.apply({**variables, "params": params}, x,
                      train=False)["features"]
  want = feats[:, ~pruned_mask] @ params["fc2"]["kernel"][~pruned_mask]
  got = model.apply({**variables, "params": pruned}, x, train=False)
  np.testing.assert_allclose(got["logits"], want, rtol=1e-4, atol=1e-6)


def test_subset_accuracies_and_the_pruning_curve_ends():
  logits = jnp.eye(4)[jnp.asarray([0, 1, 2, 3, 0, 1])] * 5.0
  label = jnp.asarray([0, 1, 3, 3, 0, 2])
  true = jnp.asarray([0, 1, 2, 2, 0, 1])
  corrupted = label != true
  acc = grok_ipr.subset_accuracies(logits, label, true, corrupted, 4)
  # train rows 0-3: rows 2, 3 corrupted; pred = [0, 1, 2, 3]
  assert float(acc["train_acc"]) == 75.0
  assert float(acc["clean_train_acc"]) == 100.0
  assert float(acc["corrupted_train_acc"]) == 50.0
  assert float(acc["corrupted_true_acc"]) == 50.0
  assert float(acc["test_acc"]) == 100.0
  model, variables = _model_and_params()
  d = {"label": np.arange(6) % P, "true_label": np.arange(6) % P,
       "corrupted": np.zeros(6, bool), "num_train": 3}
  x = jnp.asarray(np.stack([np.arange(6), np.arange(6)], 1), jnp.int32)
  fn = lambda p: model.apply({"params": p}, x, train=False)["logits"]
  order = grok_ipr.prune_order(np.arange(N), "low_ipr")
  np.testing.assert_array_equal(order, np.arange(N))
  curve = grok_ipr.pruning_curve(fn, variables["params"], order,
                                 np.asarray([0, N]), d)
  full = grok_ipr.subset_accuracies(fn(variables["params"]), d["label"],
                                    d["true_label"], d["corrupted"], 3)
  assert curve["test_acc"][0] == float(full["test_acc"])
  assert curve["train_acc"][1] == 100.0 / 3   # all-zero logits predict 0


def test_mse_is_torch_mse_loss_on_one_hot_targets_over_valid_rows():
  # torch's F.mse_loss(scores, one_hot(y)) (the official loss) is the mean
  # over every element of the valid rows
  logits = np.random.default_rng(0).normal(size=(6, P)).astype(np.float32)
  labels = np.arange(6) % P
  want = np.mean((logits[:4] - np.eye(P)[labels[:4]]) ** 2)
  mask = np.arange(6) < 4
  value, _, _ = mse.loss({}, {}, {"logits": logits},
                         {"label": labels, "mask": mask}, None, None)
  np.testing.assert_allclose(value, want, rtol=1e-6)
