"""LDR-KL and ALDR-KL: label-distributionally robust losses.

Zhu, Ying, Yang. "Label Distributionally Robust Losses for Multi-class
Classification: Consistency, Robustness and Adaptivity". ICML 2023.
arXiv:2112.14869. Official code (PyTorch):
https://github.com/Optimization-AI/ICML2023_LDR (`loss.py`).

LDR-KL takes the worst case of label distributions `p` in the simplex,
penalised by `lam * KL(p || uniform)`, over the margins
`m_k = margin * [k != y] + z_k - z_y`; the maximum has a closed form,

    psi_lam(z, y) = max_p sum_k p_k m_k - lam KL(p || 1/K)
                  = lam * log((1/K) sum_k exp(m_k / lam)),

attained at `p* = softmax(m / lam)`. `lam -> 0` gives the Crammer-Singer
hinge `max_k m_k`, `lam -> inf` the mean of the margins (a symmetric loss),
`lam = 1, margin = 0` is CE - log K, and `margin = 0` in general is
temperature-scaled CE.

ALDR-KL also maximises over a per-example `lam_i`, penalised by
`(alpha' / 2) (lam_i - lam0)^2` with `alpha' = alpha log K / lam0`. As the
official code computes it, each example keeps its `lam_i` from its last
visit (a table of `N` entries in `method_state`, `lam0` before the first
visit), and every step

    p      = normalise(softmax(z / lam_i_old) + 1e-5)
    lam_i  = lam0 (1 - KL(p || 1/K) / (alpha log K))       (stored, detached)
    loss_i = psi_{lam_i}(z, y) - (alpha log K / (2 lam0)) (lam_i - lam0)^2.

`lam_i` is the exact maximiser of the penalised objective for that `p`, and
lies in `[lam0 (1 - 1/alpha), lam0]` (`KL <= log K`), so `alpha > 1` keeps
it positive. Like the official code, `p` here is the softmax of the logits
without the margin (the exact inner maximiser would include it), and the
logits are first divided by their mean absolute value (`logit_norm`,
"official": LDR-KL applies softplus first, ALDR-KL does not).

The method `ldr` trains with any loss of `LOSSES` (`loss_name`, static);
every number of the config section is a traced hyperparameter.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from algos.distillation import ps_kd
from algos.noisy_labels import robust_losses as rl
from common import config as config_lib
from common.core import method as method_lib

# Per-example losses `fn(logits, labels, hp) -> [b]`; ALDR-KL is separate
# (it reads and writes the lambda table).
LOSSES = {
    "ce": lambda z, y, hp: rl.ce(z, y),
    "ldr_kl": lambda z, y, hp: ldr_kl(z, y, hp["lam"], hp["margin"]),
    "aldr_kl": None,
    "cs": lambda z, y, hp: rl.cs(z, y, hp["margin"]),
    "ww": lambda z, y, hp: rl.ww(z, y, hp["margin"]),
    "gce": lambda z, y, hp: rl.gce(z, y, hp["gce_q"]),
    "sce": lambda z, y, hp: rl.sce(z, y, hp["sce_balance"], hp["sce_a"]),
    "mae": lambda z, y, hp: rl.mae(z, y),
    "mse": lambda z, y, hp: rl.mse(z, y),
    "focal": lambda z, y, hp: rl.focal(z, y, hp["focal_gamma"]),
    "nce_rce": lambda z, y, hp: rl.nce_rce(z, y, hp["nce_alpha"],
                                           hp["nce_beta"]),
    "nce_agce": lambda z, y, hp: rl.nce_agce(
        z, y, hp["nce_alpha"], hp["nce_beta"], hp["agce_a"], hp["agce_q"]),
    "nce_aul": lambda z, y, hp: rl.nce_aul(
        z, y, hp["nce_alpha"], hp["nce_beta"], hp["aul_a"], hp["aul_q"]),
    "js": lambda z, y, hp: rl.js(z, y, hp["js_pi1"]),
}
LOGIT_NORMS = ("official", "none", "l1", "softplus_l1")
# What "official" means per loss (official loss.py: LDRLoss_V1 always
# applies softplus; ALDRLoss_V1 only on CIFAR-100, `softplus=True`).
_OFFICIAL_NORM = {"ldr_kl": "softplus_l1", "aldr_kl": "l1"}


def ldr_kl(logits: jax.Array, labels: jax.Array, lam: jax.Array | float,
           margin: jax.Array | float) -> jax.Array:
  """`[b]` LDR-KL values `lam log((1/K) sum_k exp(m_k / lam))`.

  Args:
    logits: `[b, K]`.
    labels: `[b]` int.
    lam: scalar or `[b]` KL weight (temperature), > 0.
    margin: scalar margin added to the non-label classes.

  For `lam` much larger than the margins the value is `lam` times a
  logsumexp close to log K, so float32 loses digits (1e-3 absolute at
  lam = 1e4, 1e-6 at the official lam = 10); the gradient,
  `softmax(m / lam)` terms, does not.
  """
  lam = jnp.asarray(lam, logits.dtype)
  lam_col = lam[:, None] if lam.ndim == 1 else lam
  m = rl.margins(logits, labels, margin)
  return lam * (jax.nn.logsumexp(m / lam_col, axis=-1)
                - jnp.log(logits.shape[-1]))


def normalize_logits(logits: jax.Array, kind: str) -> jax.Array:
  """`[b, K]` logits divided by their mean absolute value per example
  ("l1"), after a softplus ("softplus_l1"), or unchanged ("none")."""
  if kind == "none":
    return logits
  if kind == "softplus_l1":
    logits = jax.nn.softplus(logits)
  elif kind != "l1":
    raise ValueError(f"logit_norm={kind!r}; allowed {LOGIT_NORMS[1:]}")
  scale = jnp.sum(jnp.abs(logits), axis=-1, keepdims=True) / logits.shape[-1]
  return logits / jnp.maximum(scale, 1e-12)


def aldr_lambda(logits: jax.Array, lam_old: jax.Array, lam0: jax.Array,
                alpha: jax.Array) -> jax.Array:
  """`[b]` new per-example lambdas (no gradient), from `[b]` old ones.

  `lam0 (1 - KL(p || 1/K) / (alpha log K))` with `p` the softmax of
  `logits / lam_old` plus 1e-5, renormalised (the official code's guard
  against log 0).
  """
  logits = jax.lax.stop_gradient(logits)
  k = logits.shape[-1]
  p = jax.nn.softmax(logits / lam_old[:, None], axis=-1) + 1e-5
  p = p / jnp.sum(p, axis=-1, keepdims=True)
  kl = jnp.sum(p * jnp.log(k * p), axis=-1)
  return lam0 - lam0 * kl / (alpha * jnp.log(k))


def aldr_kl(logits: jax.Array, labels: jax.Array, lam_old: jax.Array,
            lam0: jax.Array, alpha: jax.Array, margin: jax.Array
            ) -> tuple[jax.Array, jax.Array]:
  """`([b] ALDR-KL values, [b] new lambdas)` from `[b]` old lambdas."""
  lam = aldr_lambda(logits, lam_old, lam0, alpha)
  penalty = alpha * jnp.log(logits.shape[-1]) / (2.0 * lam0) * (lam - lam0)**2
  return ldr_kl(logits, labels, lam, margin) - penalty, lam


@functools.lru_cache(maxsize=None)
def make_loss(loss_name: str, logit_norm: str = "official"):
  """`loss(hp, method_state, outputs, batch, params, rng)` of one loss."""
  if loss_name not in LOSSES:
    raise config_lib.ConfigError(
        f"config.method.ldr.loss_name={loss_name!r}; allowed {list(LOSSES)}")
  if logit_norm not in LOGIT_NORMS:
    raise config_lib.ConfigError(
        f"config.method.ldr.logit_norm={logit_norm!r}; allowed {LOGIT_NORMS}")
  norm = (_OFFICIAL_NORM.get(loss_name, "none") if logit_norm == "official"
          else logit_norm)

  def loss(hp, method_state, outputs, batch, params, rng):
    del params, rng
    logits = outputs["logits"]   # float32 at least (float64 stays)
    logits = normalize_logits(
        logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), norm)
    labels, mask = batch["label"], batch["mask"]
    metrics = {}
    if loss_name == "aldr_kl":
      table = method_state["lam"]
      stored = table[batch["index"]]
      lam_old = jnp.where(stored > 0, stored, hp["lam"])  # 0: not visited
      per_example, lam = aldr_kl(logits, labels, lam_old, hp["lam"],
                                 hp["alpha"], hp["margin"])
      # PS-KD's masked row write (padded rows are never written).
      method_state = {"lam": ps_kd.update_table(table, batch["index"], lam,
                                                mask)}
      metrics["lam_mean"] = method_lib.masked_mean(lam, mask)
      if "clean_label" in batch:   # noisy-label studies: lam by example kind
        noisy = batch["clean_label"] != labels
        metrics["lam_noisy"] = method_lib.masked_mean(lam, mask & noisy)
        metrics["lam_clean"] = method_lib.masked_mean(lam, mask & ~noisy)
    else:
      per_example = LOSSES[loss_name](logits, labels, hp)
    value = method_lib.masked_mean(per_example, mask)
    metrics[loss_name] = value
    return value, metrics, method_state

  return loss


def init(rng: jax.Array, ctx: method_lib.InitContext) -> dict[str, Any]:
  """ALDR-KL's `[N]` lambda table (0 = not visited yet: `lam0` is used)."""
  del rng
  if {**DEFAULTS, **ctx.config}["loss_name"] != "aldr_kl":
    return {}
  if ctx.run.num_examples <= 0:
    raise config_lib.ConfigError(
        "loss_name='aldr_kl' keeps a lambda per training example and needs "
        "a dataset source with example indices, not a generator")
  return {"lam": jnp.zeros((ctx.run.num_examples,), jnp.float32)}


DEFAULTS = dict(
    loss_name="aldr_kl", logit_norm="official",
    # LDR-KL / ALDR-KL (official experiment.py: Lambda 10, margin 0.1,
    # alpha 2); margin is also CS's and WW's.
    lam=10.0, margin=0.1, alpha=2.0,
    gce_q=0.7, sce_balance=0.5, sce_a=4.0, focal_gamma=2.0,
    nce_alpha=5.0, nce_beta=5.0, agce_a=3.0, agce_q=1.5, aul_a=6.0,
    aul_q=1.5, js_pi1=0.5)

def _finite(v: Any) -> bool:
  return (isinstance(v, (int, float)) and not isinstance(v, bool)
          and math.isfinite(v))


def _in_open_closed(lo: float, hi: float) -> config_lib.Rule:
  return config_lib.Rule(f"a number in ({lo:g}, {hi:g}]",
                         lambda v: _finite(v) and lo < v <= hi)


def _open(lo: float, hi: float) -> config_lib.Rule:
  return config_lib.Rule(f"a number in ({lo:g}, {hi:g})",
                         lambda v: _finite(v) and lo < v < hi)


RULES = {
    "loss_name": config_lib.one_of(*LOSSES),
    "logit_norm": config_lib.one_of(*LOGIT_NORMS),
    "lam": config_lib.greater_than(0.0),
    "margin": config_lib.at_least(0.0),
    "alpha": config_lib.greater_than(1.0),
    "gce_q": _in_open_closed(0.0, 1.0),
    "sce_balance": config_lib.between(0.0, 1.0),
    "sce_a": config_lib.at_least(0.0),
    "focal_gamma": config_lib.at_least(0.0),
    "nce_alpha": config_lib.at_least(0.0),
    "nce_beta": config_lib.at_least(0.0),
    "agce_a": config_lib.greater_than(0.0),
    "agce_q": config_lib.greater_than(0.0),
    "aul_a": config_lib.greater_than(1.0),
    "aul_q": config_lib.greater_than(0.0),
    "js_pi1": _open(0.0, 1.0),
}


@method_lib.register_method("ldr")
def make(config: dict) -> method_lib.Method:
  """The `ldr` method: `config` is `config.method.ldr` (see DEFAULTS)."""
  cfg = {**DEFAULTS, **config}
  return method_lib.Method(
      name=f"ldr/{cfg['loss_name']}", init=init,
      loss=make_loss(cfg["loss_name"], cfg["logit_norm"]),
      hparams=method_lib.default_hparams, rules=RULES)
