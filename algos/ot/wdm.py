"""WDM / WPC: the Wasserstein dependency measure, beside CPC (InfoNCE).

Ozair, Lynch, Bengio, van den Oord, Levine, Sermanet. "Wasserstein
Dependency Measure for Representation Learning", NeurIPS 2019,
arXiv:1903.11780. No official code was released (none found).

The dependency measure is `I_W(X; Y) = W_1(p(x, y), p(x) p(y)) =
sup_{||f||_L <= 1} E_{p(x,y)} f - E_{p(x)p(y)} f`. Its practical estimator
("Wasserstein predictive coding", WPC) keeps CPC's contrastive form over a
batch of `b` pairs,

    L = -1/b sum_i [ f(x_i, y_i) - log sum_j exp f(x_i, y_j) ],

with the separable critic `f(x, y) = g(x)^T g(y)`, and constrains `f` to be
1-Lipschitz in its inputs with techniques from the GAN literature:

* gradient penalty (WGAN-GP, Gulrajani et al. 2017, the paper's preferred
  option): `lambda * E[(||grad_{(x, y~)} f(x, y~)|| - 1)^2]` at inputs
  interpolated between positive pairs `(x_i, y_i)` and negative ones
  `(x_i, y_pi(i))`, i.e. between samples of the joint and of the product of
  marginals (`one_sided=True` penalises only norms above 1);
* spectral normalisation (Miyato et al. 2018) as an option: every dense
  kernel of the encoder divided by its largest singular value (computed
  exactly by SVD here; small MLPs make that cheap), which bounds the
  encoder's Lipschitz constant by 1.

`lambda = 0` and no spectral normalisation is exactly CPC/InfoNCE. Nothing
here comes from ott-jax (it has no dependency estimators); this is plain JAX.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

EncodeFn = Callable[[jax.Array], jax.Array]   # [b, d_in] -> [b, d_z]


def infonce_loss(scores: jax.Array) -> jax.Array:
  """CPC loss from critic scores `[b, b]` (row i: x_i against every y_j).

  `log b - loss` is the InfoNCE lower bound on the mutual information.
  """
  return -jnp.mean(jnp.diagonal(jax.nn.log_softmax(scores, axis=1)))


def critic_scores(z_x: jax.Array, z_y: jax.Array) -> jax.Array:
  """Separable critic `f(x_i, y_j) = g(x_i)^T g(y_j)`: `[b, b]`."""
  return z_x @ z_y.T


def gradient_penalty(encode: EncodeFn, x: jax.Array, y: jax.Array,
                     rng: jax.Array, one_sided: bool = False) -> jax.Array:
  """WGAN-GP penalty of the critic on joint/product interpolates.

  Args:
    encode: `g`, `[b, d_in] -> [b, d_z]` (a closure over the parameters, so
      the penalty is differentiable with respect to them).
    x, y: `[b, d_in]` paired views.
    rng: picks the negative partner `pi(i)` and the mixing weights.
    one_sided: penalise `max(0, ||grad|| - 1)^2` only.

  Returns:
    Scalar `E[(||grad_{(x, y~)} f(x, y~)||_2 - 1)^2]`.
  """
  k_perm, k_mix = jax.random.split(rng)
  negatives = y[jax.random.permutation(k_perm, y.shape[0])]
  alpha = jax.random.uniform(k_mix, (y.shape[0],) + (1,) * (y.ndim - 1))
  y_mix = alpha * y + (1.0 - alpha) * negatives

  def f_sum(xx, yy):
    # Rows are independent, so the gradient of the sum is per-example.
    return jnp.sum(encode(xx) * encode(yy))

  gx, gy = jax.grad(f_sum, argnums=(0, 1))(x, y_mix)
  norms = jnp.sqrt(jnp.sum(gx.reshape(len(x), -1) ** 2, 1)
                   + jnp.sum(gy.reshape(len(x), -1) ** 2, 1) + 1e-12)
  excess = jnp.maximum(norms - 1.0, 0.0) if one_sided else norms - 1.0
  return jnp.mean(excess ** 2)


def wdm_loss(encode: EncodeFn, x: jax.Array, y: jax.Array, rng: jax.Array,
             gp_weight: jax.Array, one_sided: bool = False
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """WPC objective: InfoNCE + `gp_weight` * gradient penalty.

  `gp_weight` is traced (0 gives CPC without recompiling).
  """
  scores = critic_scores(encode(x), encode(y))
  nce = infonce_loss(scores)
  gp = gradient_penalty(encode, x, y, rng, one_sided)
  accuracy = jnp.mean(jnp.argmax(scores, axis=1) == jnp.arange(len(x)))
  return nce + gp_weight * gp, {
      "infonce": nce, "gradient_penalty": gp, "contrastive_acc": accuracy,
      "mi_lower_bound": jnp.log(float(len(x))) - nce}


class SpectralDense(nn.Module):
  """Dense layer whose kernel is divided by its spectral norm (exact SVD)."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    sigma = jnp.linalg.svd(kernel, compute_uv=False)[0]
    return x @ (kernel / jnp.maximum(sigma, 1e-6)) + bias


class Encoder(nn.Module):
  """MLP encoder `g`: `[b, d_in] -> [b, d_z]`."""
  hidden: Sequence[int] = (256, 256)
  out_dim: int = 64
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    dense = SpectralDense if self.spectral_norm else nn.Dense
    for width in self.hidden:
      x = nn.relu(dense(width)(x))
    return dense(self.out_dim)(x)
