"""The information-plane MLP (12-10-7-5-4-3-2) with its layers' activity.

Shwartz-Ziv & Tishby's network as the official code of Chelombiev et al.
(ICLR 2019, ivansche/adaptive_estimators @584a428, `idnns/networks/
model.py`) builds it: Dense layers with kernels drawn from a normal
truncated at 2 std of std `he / sqrt(fan_in)` (`he` = 1 for tanh, 2 for
ReLU, ELU and softplus; the output layer too), zero biases, the activation
after every hidden layer, a linear output. Besides "logits" and "features"
(the last hidden layer) it returns "hidden" `[b, sum(hidden_sizes)]`: every
hidden layer's activity side by side, for the information-plane evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

ACTIVATIONS = {"tanh": jnp.tanh, "relu": nn.relu, "elu": nn.elu,
               "softplus": nn.softplus}


def he_factor(activation: str) -> float:
  """The official init's `he`: 1 for tanh, 2 otherwise."""
  return 1.0 if activation == "tanh" else 2.0


@registry.register_model("info_mlp")
class InfoMLP(nn.Module):
  """`x -> (Dense -> act) per hidden size -> Dense(num_classes)`.

  Attributes:
    num_classes: output logits (2 for the 12-bit task).
    hidden_sizes: widths of the hidden layers.
    activation: one of `ACTIVATIONS`.
    dtype: computation dtype.
  """

  num_classes: int
  hidden_sizes: Sequence[int] = (10, 7, 5, 4, 3)
  activation: str = "tanh"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`x` `[b, d]` -> {"logits" `[b, C]`, "features" `[b, last]`,
    "hidden" `[b, sum(hidden_sizes)]`}."""
    del train
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"model.kwargs.activation={self.activation!r}; "
                       f"allowed: {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[self.activation]
    he = he_factor(self.activation)
    h = jnp.reshape(x, (x.shape[0], -1)).astype(self.dtype)
    layers = []
    widths = list(self.hidden_sizes) + [self.num_classes]
    for i, width in enumerate(widths):
      init = nn.initializers.truncated_normal(he / float(h.shape[-1]) ** 0.5)
      last = i == len(widths) - 1
      h = nn.Dense(width, dtype=self.dtype, kernel_init=init,
                   name="head" if last else f"dense{i}")(h)
      if not last:
        h = act(h)
        layers.append(h)
    return {"logits": h.astype(jnp.float32), "features": layers[-1],
            "hidden": jnp.concatenate(layers, axis=-1)}
