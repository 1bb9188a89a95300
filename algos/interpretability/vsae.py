"""TopK sparse autoencoder and the variational TopK SAE (vSAE).

Paper: Analysis of Variational Sparse Autoencoders, Baker & Li, 2025,
arXiv:2509.22994. Code credited to it (not confirmed official):
https://github.com/ZachData/SPAR-Variational-Sparse-Autoencoders
(`dictionary_learning/trainers/vsae_topk.py`, `vsae_topk_masked_kl.py`;
read, not copied). The TopK SAE is Gao et al., "Scaling and evaluating
sparse autoencoders", arXiv:2406.04093 (openai/sparse_autoencoder).

TopK SAE, `x [b, d] -> f [b, m]`, `m` dictionary latents:

  pre = (x - b_dec) W_enc + b_enc,   mu = ReLU(pre),
  f = TopK_k(mu),   x_hat = f W_dec + b_dec,
  L = ||x - x_hat||^2 (summed over d, mean over b) + alpha * L_auxk.

vSAE (the paper's TopK vSAE): a second linear encoder gives
`log sigma^2 = (x - b_dec) W_var + b_var` (clamped to [-6, 2] as the credited
code); in training `z = mu + sigma * eps`, `eps ~ N(0, I)` (evaluation:
`z = mu`); the TopK keeps the `k` latents of largest `|z|` with their signed
values; `L = recon + beta * w(t) * KL + alpha * L_auxk`, with
`KL = sum_j KL(N(mu_j, sigma_j^2) || N(0, 1))` over all `m` latents
(`kl_on="all"`, the credited `vsae_topk.py`) or over the `k` selected ones
(`kl_on="selected"`, its `vsae_topk_masked_kl.py`), and a linear KL warm-up
`w(t) = min(1, t / kl_warmup_steps)`. `variance="unit"` fixes sigma = 1
(the authors' blog post: "variance is always set to 1");
`variance="fixed"` is the credited code's default (`var_flag=0`): no
sampling at all, `z = mu`, and the KL of a unit-variance posterior,
`sum_j mu_j^2 / 2` (an L2 penalty on the pre-TopK latents).

Decoder rows have unit norm (Gao et al.; dictionary_learning's TopK SAE)
as a reparameterisation, `W_dec = V / ||V||_row`, so the one train step
needs no post-update projection; the gradient w.r.t. `V` is orthogonal to
`V` (Gao et al. remove that component by hand). `L_auxk` (Gao et al.):
the `aux_k` largest `|z|` among dead latents (no activation for
`dead_window` examples, counted in `method_state`) reconstruct the detached
residual `x - x_hat` through `W_dec`, normalised by the residual's variance.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib
from common.models import registry as model_registry

VARIANCES = ("none", "learned", "unit", "fixed")
KL_ON = ("all", "selected")
LOG_VAR_RANGE = (-6.0, 2.0)


def topk_mask(scores: jax.Array, k: int) -> jax.Array:
  """Bool `[b, m]`: exactly `k` True per row, at the `k` largest scores."""
  _, idx = jax.lax.top_k(scores, k)
  return jnp.any(jax.nn.one_hot(idx, scores.shape[-1], dtype=bool), axis=-2)


def gaussian_kl(mu: jax.Array, log_var: jax.Array) -> jax.Array:
  """Elementwise `KL(N(mu, exp(log_var)) || N(0, 1))`, shape of `mu`."""
  return 0.5 * (mu ** 2 + jnp.exp(log_var) - 1.0 - log_var)


def decoder_rows(params: Any, normalize: bool = True) -> jax.Array:
  """`[m, d]` decoder rows (unit norm when `normalize`)."""
  v = params["w_dec"]
  if not normalize:
    return v
  return v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def encode(params: Any, x: jax.Array, k: int, noise: jax.Array | None = None,
           variance: str = "none") -> dict[str, jax.Array]:
  """Latents of `x [b, d]`.

  Args:
    params: `w_enc [d, m]`, `b_enc [m]`, `b_dec [d]`, and `w_var [d, m]`,
      `b_var [m]` for `variance="learned"`.
    x: inputs `[b, d]`.
    k: latents kept per example.
    noise: `eps [b, m]` of the reparameterisation; None (or
      `variance` "none" / "fixed"): no sampling, `z = mu`.
    variance: one of `VARIANCES`.

  Returns:
    "mu", "z" (pre-TopK latents), "selected" (bool), "features" (the
    sparse code `f`) `[b, m]`; "log_var" `[b, m]` unless `variance="none"`.
  """
  centred = x - params["b_dec"]
  mu = jax.nn.relu(centred @ params["w_enc"] + params["b_enc"])
  out = {"mu": mu}
  z = mu
  if variance != "none":
    if variance == "learned":
      log_var = jnp.clip(centred @ params["w_var"] + params["b_var"],
                         *LOG_VAR_RANGE)
    else:
      log_var = jnp.zeros_like(mu)
    out["log_var"] = log_var
    if noise is not None and variance != "fixed":
      z = mu + jnp.exp(0.5 * log_var) * noise
  selected = topk_mask(jnp.abs(z), k)
  out.update(z=z, selected=selected, features=jnp.where(selected, z, 0.0))
  return out


def decode(params: Any, f: jax.Array, normalize: bool = True) -> jax.Array:
  """`f [b, m] -> x_hat [b, d]`."""
  return f @ decoder_rows(params, normalize) + params["b_dec"]


class TopKSAE(nn.Module):
  """`{"recon": [b, d], "features": [b, m], "mu", "z", "selected",
  "log_var"}` of `x [b, d]`; see the module docstring.

  Initialisation (Gao et al.; the credited code): decoder rows random unit
  vectors, encoder their transpose (tied at init), zero biases, `b_var =
  log_var_init` with a small random `w_var`. Samples `eps` with the
  "dropout" rng in training for `variance` "learned" and "unit".
  """
  num_classes: int = 0
  dict_size: int = 512
  k: int = 8
  variance: str = "none"
  normalize_decoder: bool = True
  log_var_init: float = -2.0
  dtype: Any = jnp.float32   # the zoo's contract; the SAE computes in f32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    if self.variance not in VARIANCES:
      raise ValueError(f"topk_sae: variance={self.variance!r}; allowed: "
                       f"{VARIANCES}")
    if not 1 <= self.k <= self.dict_size:
      raise ValueError(f"topk_sae: k={self.k} must be in [1, dict_size="
                       f"{self.dict_size}]")
    d, m = x.shape[-1], self.dict_size

    def init_dec(key, shape):
      v = jax.random.normal(key, shape)
      return v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    w_dec = self.param("w_dec", init_dec, (m, d))
    params = {
        "w_dec": w_dec,
        "w_enc": self.param("w_enc", lambda _: w_dec.T),
        "b_enc": self.param("b_enc", nn.initializers.zeros, (m,)),
        "b_dec": self.param("b_dec", nn.initializers.zeros, (d,)),
    }
    if self.variance == "learned":
      params["w_var"] = self.param(
          "w_var", nn.initializers.variance_scaling(0.1, "fan_in", "uniform"),
          (d, m))
      params["b_var"] = self.param(
          "b_var", nn.initializers.constant(self.log_var_init), (m,))
    x = x.astype(jnp.float32)
    noise = None
    if train and self.variance in ("learned", "unit"):
      noise = jax.random.normal(self.make_rng("dropout"), (x.shape[0], m))
    out = encode(params, x, self.k, noise, self.variance)
    out["recon"] = decode(params, out["features"], self.normalize_decoder)
    return out


@model_registry.register_model("topk_sae")
def topk_sae(num_classes: int = 0, **kwargs: Any) -> TopKSAE:
  return TopKSAE(num_classes=num_classes, **kwargs)
