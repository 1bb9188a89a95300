"""Dense layers with a reparameterised kernel: weight and spectral norm.

The PI-friendly alternatives to LayerNorm of Jha & Reagen, "Entropy-Guided
Attention for Private LLMs" (arXiv:2501.03489): the FFN linears of a
normalisation-free (softmax-only) transformer keep their weights' scale in
check instead of the activations'. Used by `layers_lm.Mlp` when
`TransformerConfig.ffn_norm` is "weight" or "spectral".

* weight norm (Salimans & Kingma 2016, torch's `weight_norm(dim=0)` on a
  Linear): `W[:, j] = g_j * V[:, j] / ||V[:, j]||`, the gain `g` [out]
  initialised to the initial column norms (so the layer starts equal to a
  plain one);
* spectral norm (Miyato et al. 2018): `W = V / sigma_max(V)`; sigma from an
  exact SVD of the stopped kernel, `sigma = u^T V v` with `u, v` its top
  singular vectors held constant, which is the gradient of torch's
  `spectral_norm` at its power-iteration fixed point (no state to carry).

Parameters: `kernel` [in, out] (the direction `V`) and, for weight norm,
`gain` [out].
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ("none", "weight", "spectral")


def spectral_normalize(v: jax.Array) -> jax.Array:
  """`v / sigma_max(v)` for `v` [in, out], u and v of the SVD held fixed."""
  u, _, vt = jnp.linalg.svd(jax.lax.stop_gradient(v.astype(jnp.float32)),
                            full_matrices=False)
  sigma = u[:, 0] @ v.astype(jnp.float32) @ vt[0]
  return (v / sigma.astype(v.dtype))


def weight_normalize(v: jax.Array, gain: jax.Array) -> jax.Array:
  """`gain * v / ||v||` column-wise (`v` [in, out], `gain` [out])."""
  norm = jnp.sqrt(jnp.sum(jnp.square(v.astype(jnp.float32)), axis=0))
  return v * (gain / norm).astype(v.dtype)


class NormalizedDense(nn.Module):
  """A bias-free Dense whose kernel is weight- or spectrally normalised.

  Attributes:
    features: output width.
    norm: "weight" or "spectral".
    dtype: compute dtype; param_dtype: parameter dtype.
    kernel_init: initialiser of the direction `V`.
  """
  features: int
  norm: str
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.norm not in NORMS[1:]:
      raise ValueError(f"NormalizedDense norm={self.norm!r}; allowed: "
                       f"{NORMS[1:]}")
    v = self.param("kernel", self.kernel_init,
                   (x.shape[-1], self.features), self.param_dtype)
    if self.norm == "weight":
      gain = self.param(
          "gain", lambda _, v0: jnp.sqrt(jnp.sum(jnp.square(v0), axis=0)),
          v)
      w = weight_normalize(v, gain)
    else:
      w = spectral_normalize(v)
    return jnp.dot(x.astype(self.dtype), w.astype(self.dtype))
