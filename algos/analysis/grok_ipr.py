"""Fourier localisation (IPR) of neurons, and pruning by it.

Doshi, Das, He, Gromov, "To grok or not to grok: Disentangling
generalization and memorization on corrupted algorithmic datasets"
(arXiv:2310.13061); official code d-doshi/Grokking
(`utils/data_processing.py`, `Notebooks/Grokking_with_label_corruption`).

A neuron k of the two-layer network `W act(U e_a + V e_b)` (common/models/
quad_mlp.py) that generalises on `a + b mod p` has periodic weights
`U_k, V_k, W_k ~ cos(2 pi sigma n / p + phase)`: their discrete Fourier
spectra sit on one frequency. The inverse participation ratio of a
spectrum `s` (magnitudes of the real FFT, K = p // 2 + 1 entries)

    IPR_r(s) = sum_i (s_i / ||s||_2) ** (2 r)

is 1 for a single frequency and K ** (1 - r) for a flat spectrum, so high
IPR marks generalising neurons and low IPR memorising ones. A neuron's IPR
is the mean over its U, V and W vectors (the official notebook's
`(ipr_U + ipr_V + ipr_W) / 3`). Pruning a neuron zeroes its column of the
first layer and its row of the second, keeping every shape.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
ORDERS = ("low_ipr", "high_ipr", "random")


def fourier_magnitudes(w: jax.Array) -> jax.Array:
  """`|rfft(w)|` along the last axis: `[..., p]` -> `[..., p // 2 + 1]`."""
  return jnp.abs(jnp.fft.rfft(jnp.asarray(w, jnp.float32), axis=-1))


def ipr(magnitudes: jax.Array, r: float = 2.0) -> jax.Array:
  """Inverse participation ratio `sum (s / ||s||)^(2r)` over the last axis.

  Args:
    magnitudes: `[..., K]` non-negative spectra.
    r: the power (the paper's r = 2).

  Returns:
    `[...]` values in `[K^(1-r), 1]`; 0 for an all-zero row (a pruned
    neuron).
  """
  s = jnp.asarray(magnitudes, jnp.float32)
  norm = jnp.sqrt(jnp.sum(s * s, axis=-1, keepdims=True))
  unit = s / jnp.where(norm > 0, norm, 1.0)
  return jnp.sum(unit ** (2 * r), axis=-1)


def neuron_weights(params: PyTree) -> dict[str, jax.Array]:
  """`{"U", "V", "W"}`, each `[N, p]`: neuron k's input weights of the
  first and second operand and its output weights (quad_mlp params)."""
  w1 = params["fc1"]["kernel"]          # [2p, N]
  w2 = params["fc2"]["kernel"]          # [N, p]
  p = w1.shape[0] // 2
  return {"U": w1[:p].T, "V": w1[p:].T, "W": w2}


def neuron_ipr(params: PyTree, r: float = 2.0) -> jax.Array:
  """`[N]` mean IPR of each neuron's U, V and W spectra."""
  per = [ipr(fourier_magnitudes(w), r) for w in
         neuron_weights(params).values()]
  return sum(per) / len(per)


def prune(params: PyTree, pruned: jax.Array) -> PyTree:
  """`params` with the neurons where `pruned` (bool `[N]`) is true removed
  (first-layer columns and second-layer rows zeroed; shapes kept)."""
  keep = 1.0 - jnp.asarray(pruned, jnp.float32)
  out = dict(params)
  out["fc1"] = {**params["fc1"], "kernel": params["fc1"]["kernel"]
                * keep[None, :].astype(params["fc1"]["kernel"].dtype)}
  out["fc2"] = {**params["fc2"], "kernel": params["fc2"]["kernel"]
                * keep[:, None].astype(params["fc2"]["kernel"].dtype)}
  return out


def prune_order(iprs: np.ndarray, order: str, seed: int = 0) -> np.ndarray:
  """Neuron ids in the order they are pruned: lowest IPR first
  (`low_ipr`, memorising first), highest first, or a random permutation
  (the control)."""
  iprs = np.asarray(iprs)
  if order == "low_ipr":
    return np.argsort(iprs, kind="stable")
  if order == "high_ipr":
    return np.argsort(-iprs, kind="stable")
  if order == "random":
    return np.random.default_rng(seed).permutation(len(iprs))
  raise ValueError(f"order={order!r}; allowed: {ORDERS}")


def subset_accuracies(logits: jax.Array, label: jax.Array,
                      true_label: jax.Array, corrupted: jax.Array,
                      num_train: int) -> dict[str, jax.Array]:
  """Accuracies (%) on the parts of a corrupted dataset.

  Args:
    logits: `[n, C]` over every example, training ones first.
    label: `[n]` the labels trained on (corrupted on some train rows).
    true_label: `[n]` the clean labels.
    corrupted: bool `[n]` rows whose training label is wrong.
    num_train: the first `num_train` rows are the training set.

  Returns:
    `train_acc` (vs training labels, the official "train acc"),
    `clean_train_acc`, `corrupted_train_acc` (vs the corrupted labels:
    memorisation), `corrupted_true_acc` (vs their true labels:
    generalisation on them), `test_acc`; NaN for an empty part.
  """
  pred = jnp.argmax(logits, axis=-1)
  train = jnp.arange(len(label)) < num_train
  hit, true_hit = pred == label, pred == true_label

  def acc(hits, where):
    return 100.0 * jnp.sum(hits & where) / jnp.sum(where)
  return {"train_acc": acc(hit, train),
          "clean_train_acc": acc(hit, train & ~corrupted),
          "corrupted_train_acc": acc(hit, train & corrupted),
          "corrupted_true_acc": acc(true_hit, train & corrupted),
          "test_acc": acc(true_hit, ~train)}


def pruning_curve(logits_fn: Callable[[PyTree], jax.Array], params: PyTree,
                  order: np.ndarray, counts: np.ndarray,
                  data: dict[str, Any]) -> dict[str, np.ndarray]:
  """Accuracies after pruning the first `c` neurons of `order`, per count.

  Args:
    logits_fn: params -> `[n, C]` logits on every example (eval mode).
    params: the trained quad_mlp params.
    order: `[N]` neuron ids, first pruned first (`prune_order`).
    counts: `[K]` numbers of neurons pruned.
    data: `label`, `true_label`, `corrupted` `[n]` and `num_train`.

  Returns:
    `subset_accuracies`' keys, each `[K]` (numpy).
  """
  rank = np.empty(len(order), np.int32)
  rank[np.asarray(order)] = np.arange(len(order))
  rank = jnp.asarray(rank)

  @jax.jit
  def one(count):
    logits = logits_fn(prune(params, rank < count))
    return subset_accuracies(logits, data["label"], data["true_label"],
                             data["corrupted"], data["num_train"])
  out = jax.lax.map(one, jnp.asarray(counts, jnp.int32))
  return {k: np.asarray(v) for k, v in out.items()}
