"""The AnyLoss paper's MLP for tabular binary classification.

Han, Moniz, Chawla, arXiv:2405.14745; the authors' notebooks
(doheonhan/anyloss, "4-22 ... MLP" and "4-40 ... MLP"; anyloss_extension,
"[Hyper_EXP]_Tabular") build it in Keras as

    Dense(hidden_node, kernel_initializer=he_normal) -> BatchNormalization()
    -> Activation("sigmoid") -> Dense(1, activation="sigmoid")

with `hidden_node = 2`. With two classes ours ends, like it, in one unit
`z` (Keras's `glorot_uniform` kernel, zero bias) and returns the logits
`[0, z]`, so softmax(logits)[1] = sigmoid(z) is the Keras output exactly
and the harness's classification metrics and cross-entropy (= BCE) apply
unchanged. The initial spread of sigmoid(z) matters for AnyLoss: an
example whose p is far from 0.5 gets almost no gradient through the
amplified sigmoid (L = 73). BatchNorm uses Keras's defaults (momentum
0.99, epsilon 1e-3). Other class counts end in a plain Dense(C).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry


@registry.register_model("anyloss_mlp")
class AnyLossMLP(nn.Module):
  """Dense(hidden) -> BatchNorm -> sigmoid -> Dense(num_classes).

  Attributes:
    num_classes: output logits (2 for AnyLoss).
    hidden: width of the hidden layer (the paper's `hidden_node`).
    dtype: computation dtype.
  """

  num_classes: int
  hidden: int = 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`x` `[b, d]` -> {"logits" `[b, C]`, "features" `[b, hidden]`}."""
    h = jnp.reshape(x, (x.shape[0], -1)).astype(self.dtype)
    h = nn.Dense(self.hidden, dtype=self.dtype,
                 kernel_init=nn.initializers.he_normal(), name="dense0")(h)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.99,
                     epsilon=1e-3, dtype=self.dtype, name="bn0")(h)
    h = nn.sigmoid(h)
    if self.num_classes == 2:
      z = nn.Dense(1, dtype=self.dtype,
                   kernel_init=nn.initializers.glorot_uniform(),
                   name="head")(h)
      logits = jnp.concatenate([jnp.zeros_like(z), z], axis=-1)
    else:
      logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(h)
    return {"logits": logits.astype(jnp.float32), "features": h}
