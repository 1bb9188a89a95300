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

On the harness: the objective is the Method v2 `wdm` (its `apply` encodes
both views of the step's batch, scores them with the critic and adds the
penalty; `gp_weight` is traced), the encoder the model `wdm_encoder`.
The contrastive scores couple every pair of the batch, so the loss is that
of the global batch on any number of devices; `train.micro_batches > 1`
would make it a mean of per-micro-batch InfoNCE losses (fewer negatives).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib
from common.models import registry as model_registry

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


@model_registry.register_model("wdm_encoder")
class Encoder(nn.Module):
  """MLP encoder `g`: `[b, d_in] -> {"features": [b, d_z]}`.

  `num_classes` is the model registry's first argument; the encoder has no
  classifier head and ignores it.
  """
  num_classes: int = 0
  hidden: Sequence[int] = (256, 256)
  out_dim: int = 64
  spectral_norm: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    del train   # no dropout or BatchNorm
    dense = SpectralDense if self.spectral_norm else nn.Dense
    x = x.astype(self.dtype)
    for width in self.hidden:
      x = nn.relu(dense(width)(x))
    return {"features": dense(self.out_dim)(x).astype(jnp.float32)}


@method_lib.register_method("wdm")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """WPC (`gp_weight > 0`) or CPC (`gp_weight = 0`) on two-view batches.

  Args:
    method_config: `gp_weight` (>= 0, traced) and `one_sided` (static).
      The batch holds the first view as the model input (`ctx.inputs`) and
      the second, already in model-input form, under "y" `[b, d_in]`.

  Returns:
    The Method: `apply` = InfoNCE of the separable critic on the batch +
    `gp_weight` x the gradient penalty of that critic.
  """
  one_sided = bool(method_config.get("one_sided", False))

  def hparams(cfg, run):
    del run
    return {"gp_weight": float(cfg.get("gp_weight", 10.0))}

  def apply(hp, ctx, params, method_state, batch, rng):
    encode = lambda v: ctx.forward(params, v)[0]["features"]
    loss, metrics = wdm_loss(encode, ctx.inputs, batch["y"], rng,
                             hp["gp_weight"], one_sided)
    return loss, method_lib.StepAux(metrics, ctx.model_state, method_state)

  return method_lib.Method(
      name="wdm", hparams=hparams, apply=apply,
      rules={"gp_weight": config_lib.at_least(0.0)})
