"""Cross-entropy with optional label smoothing: the baseline of every table.

Label smoothing follows Szegedy et al., "Rethinking the Inception Architecture
for Computer Vision" (arXiv:1512.00567): targets `(1 - eps) * onehot + eps / C`.
With `label_smoothing = 0` this is plain cross-entropy.

Dense prediction: with per-pixel labels `[b, h, w]` and logits
`[b, h, w, C]` the loss is the mean over the valid pixels of the batch's
valid rows; labels outside `[0, C)` (the ignore value 255 of segmentation
masks) are ignored, as PyTorch's `ignore_index`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib


def soft_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-example cross-entropy with soft targets.

  Args:
    logits: `[b, C]`.
    targets: `[b, C]`, rows are probability distributions.

  Returns:
    `[b]` values of `-sum_c targets_c * log_softmax(logits)_c`.
  """
  return -jnp.sum(targets * jax.nn.log_softmax(logits.astype(jnp.float32)),
                  axis=-1)


def smoothed_targets(labels: jax.Array, num_classes: int,
                     label_smoothing: jax.Array) -> jax.Array:
  """`[b, ...]` int labels -> `[b, ..., C]` smoothed one-hot targets."""
  onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  return (1.0 - label_smoothing) * onehot + label_smoothing / num_classes


def loss(hparams, method_state, outputs, batch, params, rng):
  """Mean (label-smoothed) cross-entropy over the batch's valid rows (and
  valid pixels)."""
  del params, rng
  logits, labels, valid = outputs["logits"], batch["label"], batch["mask"]
  if labels.ndim > 1:  # per-pixel labels: drop ignored pixels
    valid = valid.reshape(valid.shape + (1,) * (labels.ndim - 1))
    valid = valid & (labels >= 0) & (labels < logits.shape[-1])
    labels = jnp.where(valid, labels, 0)
  targets = smoothed_targets(labels, logits.shape[-1],
                             hparams["label_smoothing"])
  per_example = soft_cross_entropy(logits, targets)
  value = method_lib.masked_mean(per_example, valid)
  return value, {"ce": value}, method_state


METHOD = method_lib.Method(
    name="cross_entropy",
    init=method_lib.stateless_init,
    loss=loss,
    hparams=method_lib.default_hparams,
    rules={"label_smoothing": config_lib.between(0.0, 1.0)},
)


@method_lib.register_method("cross_entropy")
def make(config: dict) -> method_lib.Method:
  del config  # a single forward pass, done by the harness
  return METHOD
