"""Shallow PLRNN (shPLRNN) and its teacher-forced unrolls.

Paper: Hess, Monfared, Brenner, Durstewitz, "Generalized Teacher Forcing for
Learning Chaotic Dynamics", ICML 2023 (PMLR 202:13017-13049). Official code:
DurstewitzLab/GTF-shPLRNN (Julia), `src/models/shallow_plrnn.jl`,
`src/models/affine.jl` (the identity observation model),
`src/tf_training/tfrecur.jl` (the forced recursions).

Latent map (`step`), z [B, M]:
  shPLRNN:          z' = A * z + W1 relu(W2 z + h2) + h1
  clipped shPLRNN:  z' = A * z + W1 (relu(W2 z + h2) - relu(W2 z)) + h1
with A [M] (a diagonal), W1 [M, H], W2 [H, M]. Observation model: the
identity on the first N latent units (`Identity` in the official code);
for M > N the other M - N units start at L x1 (L [M-N, N], learned) and
their forcing signal is 0 (`apply_inverse` pads with zeros) unless
`partial_forcing`.

Unrolls over a window x [B, T, N] (predictions are the *unforced* states,
t = 2..T, as the official `GTFRecur` / `TFRecur` return them):
  gtf:  z~_1 = init(x_1); z_t = F(z~_{t-1}); z~_t = (1 - a) z_t + a z^_t
  stf:  the same with z~_t = z_t except every tau steps, where the observed
        units are replaced by x_t (their gradient stops there)
  free: z_t = F(z_{t-1}) (generation; = gtf with a = 0)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

Params = dict[str, jax.Array]


def step(p: Params, z: jax.Array, clipped: bool) -> jax.Array:
  """One latent step z [..., M] -> [..., M]."""
  w2z = z @ p["W2"].T
  hidden = jax.nn.relu(w2z + p["h2"])
  if clipped:
    hidden = hidden - jax.nn.relu(w2z)
  return p["A"] * z + hidden @ p["W1"].T + p["h1"]


def jacobian(p: Params, z: jax.Array, clipped: bool) -> jax.Array:
  """dF/dz at z [..., M] -> [..., M, M] (closed form, as the official)."""
  w2z = z @ p["W2"].T
  gate = (w2z > -p["h2"]).astype(z.dtype)
  if clipped:
    gate = gate - (w2z > 0).astype(z.dtype)
  jac = jnp.einsum("mh,...h,hk->...mk", p["W1"], gate, p["W2"])
  return jac + jnp.eye(z.shape[-1], dtype=z.dtype) * p["A"][:, None]


def norm_upper_bound(p: Params) -> jax.Array:
  """max|A| + ||W1||_2 ||W2||_2 >= every Jacobian's spectral norm."""
  return (jnp.max(jnp.abs(p["A"])) + jnp.linalg.norm(p["W1"], 2)
          * jnp.linalg.norm(p["W2"], 2))


def init_state(p: Params, x1: jax.Array) -> jax.Array:
  """Latent state [B, M] from observations x1 [B, N] (identity model)."""
  if "L" not in p:
    return x1
  return jnp.concatenate([x1, x1 @ p["L"].T], axis=-1)


def forcing_signals(x: jax.Array, latent_dim: int,
                    partial_forcing: bool) -> jax.Array:
  """Inverse of the identity observation model: [..., N] -> [..., M or N]."""
  pad = latent_dim - x.shape[-1]
  if partial_forcing or pad == 0:
    return x
  return jnp.concatenate([x, jnp.zeros(x.shape[:-1] + (pad,), x.dtype)], -1)


def gtf_unroll(p: Params, x: jax.Array, alpha: jax.Array, clipped: bool,
               partial_forcing: bool = False) -> jax.Array:
  """Unforced latent predictions [B, T-1, M] under GTF with weight alpha.

  alpha = 0 is free-running BPTT from z_1 = init(x_1); alpha = 1 forces the
  (observed) latent units onto the data every step.
  """
  m = p["A"].shape[0]
  zhat = jnp.moveaxis(forcing_signals(x[:, 1:], m, partial_forcing), 1, 0)
  d = zhat.shape[-1]

  def body(z_forced, zhat_t):
    z = step(p, z_forced, clipped)
    mixed = (1.0 - alpha) * z[:, :d] + alpha * zhat_t
    return jnp.concatenate([mixed, z[:, d:]], -1), z

  _, zs = jax.lax.scan(body, init_state(p, x[:, 0]), zhat)
  return jnp.moveaxis(zs, 0, 1)


def stf_unroll(p: Params, x: jax.Array, tau: int, clipped: bool
               ) -> jax.Array:
  """Unforced latent predictions [B, T-1, M] under sparse TF (interval tau).

  At t = 2..T the observed units are replaced by x_t when (t - 1) % tau == 0
  (official `TFRecur`); the replaced units pass no gradient backwards.
  """
  n = x.shape[-1]
  xs = jnp.moveaxis(x[:, 1:], 1, 0)
  ts = jnp.arange(2, x.shape[1] + 1)

  def body(z_prev, inp):
    x_t, t = inp
    z = step(p, z_prev, clipped)
    forced = jnp.concatenate([x_t, z[:, n:]], -1)
    return jnp.where((t - 1) % tau == 0, forced, z), z

  _, zs = jax.lax.scan(body, init_state(p, x[:, 0]), (xs, ts))
  return jnp.moveaxis(zs, 0, 1)


def generate(p: Params, x1: jax.Array, length: int, clipped: bool
             ) -> jax.Array:
  """Free-running latent trajectory [B, length, M] from x1 [B, N].

  Row 0 is init(x1), as the official `generate`."""
  def body(z, _):
    nxt = step(p, z, clipped)
    return nxt, nxt
  z1 = init_state(p, x1)
  _, zs = jax.lax.scan(body, z1, None, length=length - 1)
  return jnp.concatenate([z1[:, None], jnp.moveaxis(zs, 0, 1)], axis=1)


def _uniform(bound: float):
  return lambda key, shape: jax.random.uniform(key, shape, jnp.float32,
                                               -bound, bound)


def _diag_of_normalised_pd(key: jax.Array, shape: tuple[int]) -> jax.Array:
  """diag of (R^T R / M + I) / lambda_max (Talathi & Vartak, official)."""
  m = shape[0]
  r = jax.random.normal(key, (m, m))
  k = r.T @ r / m + jnp.eye(m)
  return jnp.diag(k) / jnp.max(jnp.abs(jnp.linalg.eigvalsh(k)))


class ShallowPLRNN(nn.Module):
  """shPLRNN with the identity observation model.

  Attributes:
    latent_dim: M (>= the observed dimension N).
    hidden_dim: H.
    clipped: the clipped (bounded-orbit) formulation, the official default.
  Called on x [B, T, N] with `mode`:
    "gtf" (traced `alpha`), "stf" (static `tau`), "free" (= gtf, alpha 0):
      {"predictions": [B, T-1, N], "latent": [B, T-1, M]};
    "generate": {"generated": [B, T, N]} free-running from x[:, 0],
      and {"prediction_error": [B, horizon]}: the n-step-ahead MSE
      (n = 1..horizon) from every state of x[:, :T-horizon].
  """
  latent_dim: int = 3
  hidden_dim: int = 50
  clipped: bool = True
  partial_forcing: bool = False
  num_classes: int = 0     # the zoo's first argument; unused
  dtype: str = "float32"   # float32 only (chaotic unrolls)

  def params_dict(self, n: int) -> Params:
    m, h = self.latent_dim, self.hidden_dim
    if m < n:
      raise ValueError(f"shplrnn: latent_dim={m} must be >= the observed "
                       f"dimension {n}")
    p = {"A": self.param("A", _diag_of_normalised_pd, (m,)),
         "W1": self.param("W1", _uniform(h ** -0.5), (m, h)),
         "W2": self.param("W2", _uniform(m ** -0.5), (h, m)),
         "h1": self.param("h1", nn.initializers.zeros, (m,)),
         "h2": self.param("h2", _uniform(h ** -0.5) if self.clipped
                          else nn.initializers.zeros, (h,))}
    if m > n:
      p["L"] = self.param("L", nn.initializers.glorot_uniform(), (m - n, n))
    return p

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, *,
               mode: str = "generate", alpha: Any = 0.0, tau: int = 1,
               horizon: int = 1) -> dict[str, jax.Array]:
    del train
    if self.dtype != "float32":
      raise ValueError(f"shplrnn: dtype={self.dtype!r}; allowed: float32")
    n = x.shape[-1]
    p = self.params_dict(n)
    if self.is_initializing():   # parameters only: no unroll to compile
      return {}
    if mode in ("gtf", "free"):
      a = jnp.asarray(0.0 if mode == "free" else alpha, x.dtype)
      z = gtf_unroll(p, x, a, self.clipped, self.partial_forcing)
    elif mode == "stf":
      z = stf_unroll(p, x, tau, self.clipped)
    elif mode == "generate":
      gen = generate(p, x[:, 0], x.shape[1], self.clipped)[..., :n]
      return {"generated": gen,
              "prediction_error": _prediction_errors(p, x, horizon,
                                                     self.clipped)}
    else:
      raise ValueError(f"shplrnn mode={mode!r}; allowed: gtf, stf, free, "
                       "generate")
    return {"predictions": z[..., :n], "latent": z}


def _prediction_errors(p: Params, x: jax.Array, horizon: int,
                       clipped: bool) -> jax.Array:
  """[B, horizon] n-step-ahead MSE from every start of x[:, :T-horizon]."""
  b, t, n = x.shape
  starts = t - horizon
  z0 = init_state(p, x[:, :starts].reshape(b * starts, n))

  def body(z, k):
    z = step(p, z, clipped)
    target = jax.lax.dynamic_slice_in_dim(x, k, starts, axis=1)
    err = jnp.mean((z[:, :n].reshape(b, starts, n) - target) ** 2, (1, 2))
    return z, err

  _, errs = jax.lax.scan(body, z0, jnp.arange(1, horizon + 1))
  return errs.T


@registry.register_model("shplrnn")
def shplrnn(num_classes: int = 0, **kwargs: Any) -> ShallowPLRNN:
  return ShallowPLRNN(num_classes=num_classes, **kwargs)
