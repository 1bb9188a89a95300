"""Noise2Score: Tweedie's Approach to Self-Supervised Image Denoising
without Clean Images. Kim & Ye, NeurIPS 2021. arXiv:2106.07009.
Official code (PyTorch): https://github.com/cubeyoung/Noise2Score

Two stages. (1) Learn the score `s(y) = d/dy log p(y)` of the *noisy* images
with an amortised residual denoising autoencoder (AR-DAE, Lim et al. 2020):

    L(theta) = E_{y, u ~ N(0, I)} || u + sigma_a s_theta(y + sigma_a u) ||^2

whose minimiser tends to the score of `p(y)` as `sigma_a -> 0`; `sigma_a` is
annealed linearly from `sigma_max` to `sigma_min` over `anneal_steps`
optimizer steps (the official `set_sigma`; the network sees no
perturbation at test time). Only noisy images enter the loss. (2) Denoise
with Tweedie's formula for the noise model (`algos/denoising/tweedie.py`).

Methods (registered):
* `noise2score`: config `noise` ("gaussian" | "poisson" | "gamma"), `level`
  (sigma x 255 | zeta | k), `sigma_max`, `sigma_min`, `anneal_steps`. The
  official values: sigma 0.05 -> 0.001 (Gaussian, Gamma; the network reads
  `y`), 1 -> 0.5 (Poisson; it reads the counts `y / zeta`), over 22,000
  steps. Loss: the official `F.mse_loss(std * s, -u)` (mean over pixels).
* `denoise_supervised`: the same network trained on clean targets,
  `x_hat = y + f(y)`, mean squared error: the upper reference.

Batches: `noisy`, `clean` `[b, h, w, 1]` (`common/data/noisy_images.py`).
`predict` returns `denoised` (Tweedie at the known level) and `score`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.denoising import tweedie
from common import config as config_lib
from common.core import method as method_lib

# Official AR-DAE perturbation schedules (models/*_model.py).
OFFICIAL_SIGMAS = {"gaussian": (0.05, 0.001), "poisson": (1.0, 0.5),
                   "gamma": (0.05, 0.001)}
OFFICIAL_ANNEAL_STEPS = 2 * 11000


def annealed_sigma(step: jax.Array, sigma_max: jax.Array,
                   sigma_min: jax.Array, anneal_steps: jax.Array
                   ) -> jax.Array:
  """`sigma_a` at optimizer step `step` (0-based): linear from `sigma_max`
  at step -1 to `sigma_min` at `anneal_steps - 1`, then constant."""
  frac = jnp.minimum((step.astype(jnp.float32) + 1.0) / anneal_steps, 1.0)
  return sigma_max * (1.0 - frac) + sigma_min * frac


def ardae_loss(score_fn, inputs: jax.Array, sigma_a: jax.Array,
               rng: jax.Array) -> jax.Array:
  """`mean (sigma_a s(y + sigma_a u) + u)^2` over `[b, h, w, c]`.

  Args:
    score_fn: `s(inputs [b, ...]) -> [b, ...]`, the score network.
    inputs: the noisy network inputs `[b, ...]`.
    sigma_a: the AR-DAE perturbation scale (scalar).
    rng: key of the perturbation `u`.
  """
  u = jax.random.normal(rng, inputs.shape, inputs.dtype)
  return jnp.mean((sigma_a * score_fn(inputs + sigma_a * u) + u) ** 2)


def _score_fn(ctx: method_lib.StepContext, params, train: bool):
  return lambda z: ctx.forward(params, z, train=train)[0]["output"]


def make_noise2score(method_config: dict[str, Any]) -> method_lib.Method:
  noise = method_config.get("noise", "gaussian")
  if noise not in tweedie.NOISES:
    raise config_lib.ConfigError(
        f"config.method.noise2score.noise={noise!r}; allowed "
        f"{tweedie.NOISES}")

  def apply(hp, ctx, params, method_state, batch, rng):
    inputs = tweedie.model_input(batch["noisy"], noise, hp["level"])
    sigma_a = annealed_sigma(ctx.step, hp["sigma_max"], hp["sigma_min"],
                             hp["anneal_steps"])
    loss = ardae_loss(_score_fn(ctx, params, True), inputs, sigma_a, rng)
    return loss, method_lib.StepAux(
        {"sigma_a": sigma_a, "ardae_loss": loss}, ctx.model_state,
        method_state)

  def predict(hp, ctx, params, method_state, batch):
    del method_state
    inputs = tweedie.model_input(batch["noisy"], noise, hp["level"])
    score = _score_fn(ctx, params, False)(inputs)
    return {"score": score,
            "denoised": tweedie.tweedie(batch["noisy"], score, noise,
                                        hp["level"])}

  return method_lib.Method(name="noise2score", apply=apply, predict=predict,
                           rules=RULES)


def _supervised_apply(hp, ctx, params, method_state, batch, rng):
  del hp, rng
  out, model_state = ctx.forward(params, batch["noisy"])
  loss = jnp.mean((batch["noisy"] + out["output"] - batch["clean"]) ** 2)
  return loss, method_lib.StepAux({"mse": loss}, model_state, method_state)


def _supervised_predict(hp, ctx, params, method_state, batch):
  del hp, method_state
  out = ctx.forward(params, batch["noisy"], train=False)[0]["output"]
  return {"denoised": batch["noisy"] + out}


RULES = {"noise": config_lib.one_of(*tweedie.NOISES),
         "level": config_lib.greater_than(0.0),
         "sigma_max": config_lib.greater_than(0.0),
         "sigma_min": config_lib.greater_than(0.0),
         "anneal_steps": config_lib.at_least(1, integer=True)}
SUPERVISED = method_lib.Method(name="denoise_supervised",
                               apply=_supervised_apply,
                               predict=_supervised_predict)


@method_lib.register_method("noise2score")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  return make_noise2score(method_config)


@method_lib.register_method("denoise_supervised")
def make_supervised(method_config: dict[str, Any]) -> method_lib.Method:
  del method_config
  return SUPERVISED
