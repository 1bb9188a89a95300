"""Information-shaped Koopman autoencoder (and the plain one at strength 0).

Paper: Cheng, Yuan, Yang, Zhang, Cheng, He, Sun, "Information Shapes Koopman
Representation", arXiv:2510.13025 (ICLR 2026). Official code:
https://github.com/Wenxuan52/InformationKoopman (PyTorch; only the physical
simulation experiments are released: `model/physical_simulation/base.py`,
`train_scripts/physical_simulation/trainer.py`, commit 32f52a1).

A window of states x_0..x_T `[b, T+1, d]` is encoded, z_t = phi(x_t), and
the latent is advanced by a linear Koopman operator, z_{t+1} ~ z_t K (row
vectors, as the official `torch.mm(z, C_forward)`). The loss is the
paper's Lagrangian as its official trainer weighs it:

  L = L_pred + lamb * L_recon + alpha * L_InfoNCE - beta * S_vN,

* L_pred = sum_{k=1..T} MSE(psi(z_0 K^k), x_k): multi-step prediction;
* L_recon = sum_{t<T} MSE(psi(z_t), x_t) (the official "identity" loss);
* L_InfoNCE: the official temporal InfoNCE on the latents z_0..z_{T-1}
  (cosine similarity / temperature; positives = the 2k neighbours
  z_{n +- i}, 1 <= i <= k, of an anchor n in [k, T-k); negatives = the
  other states of the same window), a lower bound of the latent mutual
  information I(z_t; z_{t+-i}); minimising it raises that MI ("simplicity");
* S_vN = -tr(rho log rho), rho = Sigma / tr Sigma, Sigma the centred
  (unbiased) covariance of the window's latents over batch and time: the
  von Neumann entropy that keeps many modes alive ("expressiveness").

Official weights (`cylinder.yaml`, `dam.yaml`): lamb = 0.1, alpha = 2.0,
beta = 0.1, k = 3; the temperature the trainer actually uses is its
default 0.1 (the yaml's `mi_temperature: 0.07` is never passed on).
Sign: the paper says the entropy *sustains* expressiveness and prevents
collapse, so we subtract beta * S_vN; the official trainer adds
`+ lamb_entropy * loss_entropy` (it minimises S_vN). `beta < 0` here is the
official code's sign; the study runs both.

The operator (`operator`, static):
* "learned" (default): K is a trained parameter and L_pred is multi-step
  as above (the standard Koopman autoencoder of Lusch et al. 2018 that the
  issue asks for; the default because the fingerprinted study runs of
  `config.py:cpu` were made with it and carry no `operator` key);
* "least_squares": the official operator. On every batch each window's
  latent pairs give the ridge solution C_b = (Z_b^T Z_b + ridge I)^-1
  Z_b^T Z'_b (Z_b = z_0..z_{T-1}, Z'_b = z_1..z_T, `[T, m]`; the official
  `batch_pinv(I_factor=0.1)`, in its kernel form when T < m), K = mean_b C_b
  with its gradient stopped (`.detach()`), and L_pred = sum_{t<T}
  MSE(psi(z_t K), x_{t+1}) (one step from every state, the official
  `loss_fwd`). The test-time operator is, as the official `C_forward.pt`,
  the mean of the batch operators of the last completed epoch (method
  state "koopman"; during the first epoch the running mean). The official
  trainer keeps the epoch with the best validation loss; we keep the last.

In both, the plain autoencoder baseline is the same model with
alpha = beta = 0.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.dynamics import koopman_fields
from common import config as config_lib
from common.core import method as method_lib
from common.models import registry as model_registry

HPARAM_NAMES = ("recon_weight", "mi_weight", "entropy_weight",
                "mi_temperature", "ridge")
OPERATORS = ("learned", "least_squares")
ARCHITECTURES = ("mlp", "field_cnn")
_EPS = 1e-8   # the official code's eps (covariance ridge, clamps, log)


# ------------------------------------------------------- information terms
def temporal_info_nce(z: jax.Array, k: int, temperature: jax.Array | float
                      ) -> jax.Array:
  """The official multi-positive temporal InfoNCE loss (a scalar).

  Args:
    z: `[b, T, m]` latents of consecutive states.
    k: neighbourhood radius (static): positives of anchor n are z_{n-k..n-1}
      and z_{n+1..n+k}; negatives the other T - 2k - 1 states of the window.
    temperature: divides the cosine similarities (traced).

  Returns:
    mean over anchors n in [k, T-k) and the batch of
    -log(sum_pos e^s / (sum_pos e^s + sum_neg e^s + 1e-8)); 0 when
    T <= 2k (no anchor has a full neighbourhood), as the official code.
  """
  t = z.shape[1]
  if t <= 2 * k or t - 2 * k - 1 <= 0:
    return jnp.zeros((), z.dtype)
  zn = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  scores = jnp.einsum("bnh,bmh->bnm", zn, zn) / temperature     # [b, T, T]
  gap = jnp.abs(jnp.arange(t)[:, None] - jnp.arange(t)[None, :])
  pos, neg = (gap >= 1) & (gap <= k), gap > k                    # [T, T]
  anchors = slice(k, t - k)
  s, pos, neg = scores[:, anchors], pos[anchors], neg[anchors]
  # The official stabiliser: the max over positives and negatives.
  top = jnp.max(jnp.where(pos | neg, s, -jnp.inf), axis=-1, keepdims=True)
  e = jnp.exp(s - top)
  p = jnp.sum(jnp.where(pos, e, 0.0), -1)
  n = jnp.sum(jnp.where(neg, e, 0.0), -1)
  return jnp.mean(-jnp.log(p / (p + n + _EPS)))


@jax.custom_vjp
def _spectral_entropy(rho: jax.Array) -> jax.Array:
  evals = jnp.maximum(jnp.linalg.eigvalsh(rho), _EPS)
  return -jnp.sum(evals * jnp.log(evals))


def _spectral_entropy_fwd(rho):
  evals, vecs = jnp.linalg.eigh(rho)
  clamped = jnp.maximum(evals, _EPS)
  # d(-l log l)/dl = -(log l + 1) where the clamp is inactive, else 0. For a
  # spectral function tr f(rho) the gradient is U f'(Lambda) U^T exactly,
  # with no 1 / (l_i - l_j) terms, so repeated eigenvalues are harmless.
  slope = jnp.where(evals > _EPS, -(jnp.log(clamped) + 1.0), 0.0)
  return -jnp.sum(clamped * jnp.log(clamped)), (vecs, slope)


def _spectral_entropy_bwd(res, g):
  vecs, slope = res
  return (g * (vecs * slope[None, :]) @ vecs.T,)


_spectral_entropy.defvjp(_spectral_entropy_fwd, _spectral_entropy_bwd)


def von_neumann_entropy(z: jax.Array, center: bool = True) -> jax.Array:
  """S_vN = -tr(rho log rho) of the latents' covariance (a scalar).

  Args:
    z: `[..., m]` latents; all leading axes are samples (official: batch
      and time flattened).
    center: subtract the sample mean first (official default).

  Returns:
    the entropy of rho = (Sigma + 1e-8 I) / tr(.), Sigma = Z^T Z / (N - 1);
    eigenvalues clamped at 1e-8, as the official code. In [0, log m].
  """
  zf = z.reshape(-1, z.shape[-1])
  if center:
    zf = zf - jnp.mean(zf, axis=0, keepdims=True)
  sigma = zf.T @ zf / (zf.shape[0] - 1) + _EPS * jnp.eye(zf.shape[-1])
  rho = sigma / jnp.maximum(jnp.trace(sigma), _EPS)
  rho = 0.5 * (rho + rho.T)
  return _spectral_entropy(rho)


def effective_rank(z: jax.Array) -> jax.Array:
  """Roy & Vetterli's effective rank of centred latents `[..., m]`.

  exp of the Shannon entropy of the normalised singular values of the
  centred sample matrix; between 1 (one mode) and m (all equal). The
  singular values come from the `[m, m]` Gram matrix's eigenvalues (an SVD
  of the `[n, m]` samples costs ~10x more on CPU, in every step's metrics).
  """
  zf = z.reshape(-1, z.shape[-1])
  zf = zf - jnp.mean(zf, axis=0, keepdims=True)
  sv = jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(zf.T @ zf), 0.0))
  p = sv / jnp.maximum(jnp.sum(sv), 1e-30)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(
      jnp.where(p > 0, p, 1.0)), 0.0)))


def ridge_operator(z: jax.Array, z_next: jax.Array,
                   ridge: jax.Array | float) -> jax.Array:
  """The official batch Koopman operator `[m, m]` (gradient stopped).

  Args:
    z: `[b, T, m]` current latents of each window.
    z_next: `[b, T, m]` the next latents.
    ridge: the ridge coefficient (traced; official `I_factor` 0.1).

  Returns:
    mean over windows of C_b = (Z_b^T Z_b + ridge I_m)^-1 Z_b^T Z'_b,
    computed as the official `batch_pinv` does: through the `[m, m]` system
    when T >= m, else through the `[T, T]` one, Z_b^T (Z_b Z_b^T +
    ridge I_T)^-1 (equal in exact arithmetic).
  """
  t, m = z.shape[-2:]
  zt = jnp.swapaxes(z, -1, -2)                                  # [b, m, T]
  if t >= m:
    gram = zt @ z + ridge * jnp.eye(m, dtype=z.dtype)           # [b, m, m]
    pinv = jnp.linalg.solve(gram, zt)                           # [b, m, T]
  else:
    gram = z @ zt + ridge * jnp.eye(t, dtype=z.dtype)           # [b, T, T]
    pinv = jnp.swapaxes(jnp.linalg.solve(gram, z), -1, -2)      # [b, m, T]
  return jax.lax.stop_gradient(jnp.mean(pinv @ z_next, axis=0))


# ------------------------------------------------------------------ model
class _MLP(nn.Module):
  """Dense layers with ELU between them: `[..., in] -> [..., out]`."""
  hidden: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, out: int) -> jax.Array:
    h = x.astype(self.dtype)
    for width in self.hidden:
      h = nn.elu(nn.Dense(width, dtype=self.dtype)(h))
    return nn.Dense(out, dtype=self.dtype)(h).astype(jnp.float32)


def _identity_init(key, shape, dtype=jnp.float32):
  del key
  return jnp.eye(shape[0], dtype=dtype)


@model_registry.register_model("koopman_ae")
class KoopmanAE(nn.Module):
  """Encoder phi, linear Koopman operator K `[m, m]`, decoder psi.

  Called on a window `[b, T+1, d]` with `operator="learned"`, returns
  * "latents" `[b, T+1, m]`: z_t = phi(x_t);
  * "recon" `[b, T+1, d]`: psi(z_t);
  * "pred" `[b, T, d]`: psi(z_0 K^k), k = 1..T (multi-step prediction);
  * "pred_latents" `[b, T, m]`: z_0 K^k.
  With `operator="least_squares"` K is `ridge_operator` of this batch's
  latents (returned as "koopman" `[m, m]`), and "pred" / "pred_latents"
  are the one-step psi(z_t K) / z_t K, t = 0..T-1 (the official forward).
  `rollout(x0 [b, d], steps, koopman=None)` gives `[b, steps + 1, d]`,
  psi(phi(x0) K^k) for k = 0..steps (K: the parameter unless `koopman`
  `[m, m]` is given). The parameter K starts at the identity.

  `architecture="mlp"` (states `[..., d]`; `hidden` widths, ELU) or
  `"field_cnn"`: states are 2-D fields `[..., H, W, C]` (H = W =
  `field_size`) encoded and decoded by the official CNN of the CFDBench
  experiments (`koopman_fields.py`, dropout `dropout` in training); every
  `d` above is then the field's trailing `[H, W, C]`.
  `num_classes` is unused.
  """
  num_classes: int = 0
  latent_dim: int = 16
  hidden: Sequence[int] = (64, 64)
  architecture: str = "mlp"
  field_size: int = 64
  dropout: float = 0.1
  dtype: Any = jnp.float32

  def setup(self):
    if self.architecture == "field_cnn":
      if self.field_size % 16:
        raise ValueError(f"koopman_ae: field_size={self.field_size}; the "
                         "field CNN pools 4 times, so it must divide by 16")
      self.encoder = koopman_fields.FieldEncoder(
          self.latent_dim, dropout=self.dropout, dtype=self.dtype)
      self.decoder = koopman_fields.FieldDecoder(
          self.field_size // 16, dropout=self.dropout, dtype=self.dtype)
    elif self.architecture == "mlp":
      self.encoder = _MLP(tuple(self.hidden), self.dtype)
      self.decoder = _MLP(tuple(self.hidden)[::-1], self.dtype)
    else:
      raise ValueError(f"koopman_ae: architecture={self.architecture!r}; "
                       f"allowed {list(ARCHITECTURES)}")
    self.koopman = self.param("koopman", _identity_init,
                              (self.latent_dim, self.latent_dim))

  def encode(self, x: jax.Array, train: bool = False) -> jax.Array:
    """`[..., d] -> [..., m]` (fields: `[..., H, W, C] -> [..., m]`)."""
    if self.architecture == "mlp":
      return self.encoder(x, self.latent_dim)
    lead = x.shape[:-3]
    z = self.encoder(x.reshape(-1, *x.shape[-3:]), train)
    return z.reshape(*lead, self.latent_dim)

  def decode(self, z: jax.Array, state_dim: int,
             train: bool = False) -> jax.Array:
    """`[..., m] -> [..., state_dim]` (fields: `[..., H, W, state_dim]`)."""
    if self.architecture == "mlp":
      return self.decoder(z, state_dim)
    x = self.decoder(z.reshape(-1, z.shape[-1]), state_dim, train)
    return x.reshape(*z.shape[:-1], *x.shape[1:])

  def advance(self, z0: jax.Array, steps: int,
              koopman: jax.Array | None = None) -> jax.Array:
    """`[b, steps, m]`: z0 K^k for k = 1..steps."""
    koop = self.koopman if koopman is None else koopman

    def body(z, _):
      z = z @ koop
      return z, z
    _, zs = jax.lax.scan(body, z0, None, length=steps)
    return jnp.swapaxes(zs, 0, 1)

  def __call__(self, x: jax.Array, train: bool = False,
               operator: str = "learned", ridge: jax.Array | float = 0.1
               ) -> dict[str, jax.Array]:
    d, steps = x.shape[-1], x.shape[1] - 1
    z = self.encode(x, train)
    decode = lambda latents: self.decode(latents, d, train)
    if operator == "least_squares":
      koop = ridge_operator(z[:, :-1], z[:, 1:], ridge)
      z_pred = z[:, :-1] @ koop
      return {"latents": z, "recon": decode(z), "pred": decode(z_pred),
              "pred_latents": z_pred, "koopman": koop}
    z_pred = self.advance(z[:, 0], steps)
    return {"latents": z, "recon": decode(z), "pred": decode(z_pred),
            "pred_latents": z_pred}

  def rollout(self, x0: jax.Array, steps: int,
              koopman: jax.Array | None = None) -> jax.Array:
    z0 = self.encode(x0)
    zs = jnp.concatenate([z0[:, None], self.advance(z0, steps, koopman)],
                         axis=1)
    return self.decode(zs, x0.shape[-1])


# ----------------------------------------------------------------- method
def koopman_loss(hp: dict[str, jax.Array], outputs: dict[str, jax.Array],
                 window: jax.Array, mi_k: int
                 ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The Lagrangian on one batch of windows.

  Args:
    hp: `recon_weight` (lamb), `mi_weight` (alpha), `entropy_weight`
      (beta; the loss subtracts beta * S_vN), `mi_temperature`.
    outputs: `KoopmanAE` outputs on `window`.
    window: `[b, T+1, d]` true states (or fields `[b, T+1, H, W, C]`).
    mi_k: InfoNCE neighbourhood radius (static).

  Returns:
    `(loss, metrics)`; the metrics hold every term.
  """
  x = window.astype(jnp.float32)
  # Per step: the mean over the batch and every state (or field) axis.
  mse = lambda a, b: jnp.mean(jnp.square(a - b),
                              axis=(0, *range(2, a.ndim)))
  pred = jnp.sum(mse(outputs["pred"], x[:, 1:]))
  recon = jnp.sum(mse(outputs["recon"][:, :-1], x[:, :-1]))
  z = outputs["latents"][:, :-1]        # z_0..z_{T-1}, as the official z_seq
  nce = temporal_info_nce(z, mi_k, hp["mi_temperature"])
  entropy = von_neumann_entropy(z)
  loss = (pred + hp["recon_weight"] * recon + hp["mi_weight"] * nce
          - hp["entropy_weight"] * entropy)
  metrics = {"pred_loss": pred, "recon_loss": recon, "info_nce": nce,
             "vn_entropy": entropy,
             "effective_rank": effective_rank(jax.lax.stop_gradient(z))}
  return loss, metrics


RULES = {
    "recon_weight": config_lib.at_least(0.0),
    "mi_weight": config_lib.at_least(0.0),
    "entropy_weight": config_lib.between(-1e3, 1e3),
    "mi_temperature": config_lib.greater_than(0.0),
    "mi_k": config_lib.at_least(1, integer=True),
    "operator": config_lib.one_of(*OPERATORS),
    "ridge": config_lib.greater_than(0.0),
}
DEFAULTS = dict(recon_weight=0.1, mi_weight=2.0, entropy_weight=0.1,
                mi_temperature=0.1, mi_k=3, operator="learned", ridge=0.1)


def _record_operator(state: dict[str, jax.Array], koop: jax.Array,
                     step: jax.Array, steps_per_epoch: int
                     ) -> dict[str, jax.Array]:
  """Adds this batch's operator to the epoch's mean (the official C_fwd).

  `state["koopman"]` `[m, m]` is the mean of the last completed epoch's
  batch operators, or, in the first epoch, the running mean so far;
  `state["koopman_last"]` is this batch's operator (not official: the
  encoder keeps moving during an epoch, and the refit K lets its latent
  basis drift freely, so the epoch's mean can lag the final encoder).
  """
  pos = step % steps_per_epoch
  total = jnp.where(pos == 0, 0.0, state["koopman_sum"]) + koop
  mean = total / (pos + 1).astype(koop.dtype)
  done = (pos == steps_per_epoch - 1) | (step < steps_per_epoch)
  return {"koopman_sum": total, "koopman_last": koop,
          "koopman": jnp.where(done, mean, state["koopman"])}


@method_lib.register_method("info_koopman")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The Koopman autoencoder's Lagrangian as a Method.

  Args:
    method_config: `recon_weight`, `mi_weight`, `entropy_weight`,
      `mi_temperature`, `ridge` (traced), `mi_k` and `operator` (static),
      defaults `DEFAULTS` (the official weights and ridge);
      `mi_weight = entropy_weight = 0` is the plain Koopman autoencoder.

  Returns:
    The Method; the model input is the window `[b, T+1, d]` and the model
    `koopman_ae` (or any module with its outputs). With "least_squares"
    the method state holds the test-time operator "koopman" `[m, m]`.
  """
  unknown = set(method_config) - set(DEFAULTS)
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.info_koopman has {sorted(unknown)}; allowed "
        f"{sorted(DEFAULTS)}")
  cfg = {**DEFAULTS, **method_config}
  mi_k, operator = int(cfg["mi_k"]), cfg["operator"]
  if operator not in OPERATORS:
    raise config_lib.ConfigError(
        f"config.method.info_koopman.operator={operator!r}; allowed "
        f"{list(OPERATORS)}")
  fitted = operator == "least_squares"

  def hparams(method_cfg, run):
    del run
    cfg = {**DEFAULTS, **method_cfg}
    return {k: float(cfg[k]) for k in HPARAM_NAMES}

  def init(rng, ctx):
    del rng
    if not fitted:
      return {}
    m = ctx.params["koopman"].shape[0]
    return {"koopman_sum": jnp.zeros((m, m), jnp.float32),
            "koopman_last": jnp.eye(m, dtype=jnp.float32),
            "koopman": jnp.eye(m, dtype=jnp.float32)}

  def apply(hp, ctx, params, method_state, batch, rng):
    del batch, rng
    if fitted:
      outputs, model_state = ctx.forward(params, operator=operator,
                                         ridge=hp["ridge"])
      method_state = _record_operator(method_state, outputs["koopman"],
                                      ctx.step, ctx.run.steps_per_epoch)
    else:
      outputs, model_state = ctx.forward(params)
    loss, metrics = koopman_loss(hp, outputs, ctx.inputs, mi_k)
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  return method_lib.Method(name="info_koopman", hparams=hparams, init=init,
                           apply=apply, rules=RULES)
