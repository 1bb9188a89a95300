"""Mean squared error to one-hot targets: the loss of the grokking papers.

Gromov, "Grokking modular arithmetic" (arXiv:2301.02679) and Doshi et al.,
"To grok or not to grok" (arXiv:2310.13061) train with MSE on one-hot
labels (official d-doshi/Grokking, `utils/optimization.py`:
`nn.MSELoss()(scores, one_hot(Y))`, the mean over examples *and* classes).
Weight decay, the papers' regulariser, is the optimizer's (AdamW).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common.core import method as method_lib


def squared_error(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example `mean_c (logits_c - onehot(label)_c)^2`.

  Args:
    logits: `[b, C]`.
    labels: `[b]` int.

  Returns:
    `[b]` float32.
  """
  logits = logits.astype(jnp.float32)
  targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
  return jnp.mean((logits - targets) ** 2, axis=-1)


def loss(hparams, method_state, outputs, batch, params, rng):
  """torch's `MSELoss` on one-hot targets over the batch's valid rows."""
  del hparams, params, rng
  value = method_lib.masked_mean(
      squared_error(outputs["logits"], batch["label"]), batch["mask"])
  return value, {"mse": value}, method_state


METHOD = method_lib.Method(name="mse", init=method_lib.stateless_init,
                           loss=loss, hparams=method_lib.default_hparams)


@method_lib.register_method("mse")
def make(config: dict) -> method_lib.Method:
  del config  # no hyperparameters; one forward pass, done by the harness
  return METHOD
