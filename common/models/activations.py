"""Activation functions chosen by name, for every model of the zoo.

A model with an `activation: str` attribute builds `Activation(name)` where
it used to call `nn.relu`; parameter-free activations create no parameters,
so `activation="relu"` (the default everywhere) leaves a model's params and
numbers exactly as before.

Names (`ACTIVATIONS`):
  relu, gelu (exact erf form, as torch.nn.GELU), gelu_tanh (its tanh
  approximation, flax's default), silu, elu, leaky_relu (slope 0.01),
  crrelu (learnable, below).

CRReLU, "Correction Regularized ReLU", from "A Method on Searching Better
Activation Functions" (Sun, Wu, Xia, Chang, Dong, Yuan, Chang, Wang,
NeurIPS 2024, arXiv:2405.12954; OpenReview 7TZYM6Hm9p). No official code in
our index. `crrelu(x) = relu(x) + eps * x * exp(-x**2 / 2)` with one
learnable scalar `eps` per activation layer, initialised to 0.01 (the form
and the initial value as in the paper's arXiv HTML abstract page and a
third-party torch module we read; the paper's derivation section was not
readable offline). `eps = 0` is ReLU exactly.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu", "elu", "leaky_relu",
               "crrelu")
CRRELU_EPS_INIT = 0.01


def crrelu(x: jax.Array, eps: jax.Array) -> jax.Array:
  """`relu(x) + eps * x * exp(-x^2 / 2)`, elementwise (any shape)."""
  return jax.nn.relu(x) + eps * x * jnp.exp(-0.5 * jnp.square(x))


def check_activation(name: str) -> str:
  if name not in ACTIVATIONS:
    raise ValueError(f"activation={name!r}; allowed {ACTIVATIONS}")
  return name


class Activation(nn.Module):
  """The activation `name`; `crrelu` owns a learnable scalar `eps`.

  Attributes:
    name_: one of `ACTIVATIONS` (flax reserves `name`).
    param_dtype: dtype of `eps`.
  """

  name_: str = "relu"
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[...]` -> `[...]`, same dtype."""
    kind = check_activation(self.name_)
    if kind == "relu":
      return nn.relu(x)
    if kind == "gelu":
      return nn.gelu(x, approximate=False)
    if kind == "gelu_tanh":
      return nn.gelu(x, approximate=True)
    if kind == "silu":
      return nn.silu(x)
    if kind == "elu":
      return nn.elu(x)
    if kind == "leaky_relu":
      return nn.leaky_relu(x, 0.01)
    eps = self.param("eps", nn.initializers.constant(CRRELU_EPS_INIT), (),
                     self.param_dtype)
    return crrelu(x, eps.astype(x.dtype))


def act(name: str, index: int | str, param_dtype: Any = jnp.float32
        ) -> Activation:
  """`Activation(name)` named `act<index>` inside a compact module."""
  return Activation(check_activation(name), param_dtype,
                    name=f"act{index}")


def eps_values(params: Any) -> list[float]:
  """Every CRReLU `eps` in a params pytree (host floats, path order)."""
  out = []
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if str(getattr(path[-1], "key", "")) == "eps":
      out.append(float(leaf))
  return out
