"""LegoGCD: Solving the Catastrophic Forgetting Problem in GCD.

Cao, Zheng, Wang, Yu, Shen, Li, Lu, Tian. CVPR 2024 (CVF open access; no
arXiv version). Official code (PyTorch, on SimGCD):
https://github.com/Cliffia123/LegoGCD (`train.py`, `model.py`).

SimGCD (`algos/discovery/simgcd.py`) plus two terms:

* LER, local entropy regularisation (paper Eqs. 6-10, `train.py` "Soft
  loss"): the rows `o` of the `2b` (both views) that are unlabelled,
  confident (`max softmax(l / 0.1) >= thr`, 0.7) and predicted as an old
  class (`argmax < num_old`) get the cross-entropy between their sharpened
  prediction `softmax(l / tau_o)` (`tau_o = 0.05`) and the logit-adjusted
  prediction `log_softmax(l / tau_o + gamma * log q_hat)` (`gamma = 0.4`,
  the paper's MAP margin `Delta_j = lambda log(1 / q_hat_j)`):

      L_LER = mean over the 2b rows of  o_i * -sum_k sharp_ik log adj_ik,

  weighted by `ler_weight` (2 in `train.py`: `loss += 2 * nll_loss.mean()`).
  `q_hat` `[K]` is the running mean prediction, kept in `method_state`:
  `q_hat <- m q_hat + (1 - m) mean_rows softmax(sg(l))` (temperature 1,
  `m = 0.999`, `update_qhat`), updated after the loss reads it, starting
  uniform (`initial_qhat`). As in `train.py`, the sharpened target is not
  detached: the gradient flows through both sides.
* DKL, dual-view KL (Eq. 11-12): inside the unsupervised classification
  loss, `(1 - w) * dkl_weight * KL(view 1 || view 2)` of the predictions
  `p = softmax(l / 0.1)`, gradient through both views. `dkl_form`:
  "official" is `DistillLoss.forward`'s code, which takes `log_softmax` of
  the *probabilities*: `sum_k p1_k (log softmax(p1)_k - log softmax(p2)_k)`;
  "paper" is Eq. 11's `sum_k p1_k (log p1_k - log p2_k)`.

`num_old` (the number of old classes; labels `< num_old` are old, as
`common.data.category_discovery` orders them) is a method setting, since a
method does not read the data config: keep it equal to the data's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.discovery import simgcd
from common import config as config_lib
from common.core import method as method_lib

DKL_FORMS = ("official", "paper")


def initial_qhat(num_classes: int) -> jax.Array:
  """The uniform prior `[K]` (`initial_qhat`)."""
  return jnp.full((num_classes,), 1.0 / num_classes, jnp.float32)


def update_qhat(qhat: jax.Array, logits: jax.Array, valid: jax.Array,
                momentum: jax.Array) -> jax.Array:
  """EMA of the mean `softmax(logits)` (temperature 1) over valid rows."""
  probs = jax.nn.softmax(jax.lax.stop_gradient(logits).astype(jnp.float32))
  w = valid.astype(jnp.float32)[:, None]
  mean = jnp.sum(probs * w, 0) / jnp.maximum(jnp.sum(w), 1.0)
  return momentum * qhat + (1.0 - momentum) * mean


def potential_known(logits: jax.Array, labelled: jax.Array, valid: jax.Array,
                    num_old: jax.Array, thr: jax.Array) -> jax.Array:
  """bool `[2b]`: unlabelled, confident rows predicted as old (Eq. 8)."""
  probs = jax.nn.softmax(logits / simgcd.STUDENT_TEMP)
  confident = jnp.max(probs, -1) >= thr
  old = jnp.argmax(logits, -1) < num_old
  return valid & ~labelled & confident & old


def ler_loss(logits: jax.Array, qhat: jax.Array, selected: jax.Array,
             valid: jax.Array, pseudo_temp: jax.Array, gamma: jax.Array
             ) -> jax.Array:
  """LER (Eq. 10) on `logits` `[2b, K]`, mean over the valid rows."""
  sharp = jax.nn.softmax(logits / pseudo_temp)
  adjusted = jax.nn.log_softmax(logits / pseudo_temp + gamma * jnp.log(qhat))
  nll = -jnp.sum(sharp * adjusted, -1) * selected.astype(jnp.float32)
  return simgcd.weighted_mean(nll, valid)


def dkl_loss(logits: jax.Array, valid: jax.Array, form: str = "official"
             ) -> jax.Array:
  """KL between the two views' predictions (`logits` `[2b, K]` stacked)."""
  p1, p2 = (jax.nn.softmax(l / simgcd.STUDENT_TEMP)
            for l in jnp.split(logits, 2))
  if form == "official":   # log_softmax of probabilities, as train.py
    log1, log2 = jax.nn.log_softmax(p1), jax.nn.log_softmax(p2)
  elif form == "paper":
    log1, log2 = (jax.nn.log_softmax(l / simgcd.STUDENT_TEMP)
                  for l in jnp.split(logits, 2))
  else:
    raise ValueError(f"dkl_form={form!r}; allowed {DKL_FORMS}")
  v = jnp.split(valid, 2)[0]
  return simgcd.weighted_mean(jnp.sum(p1 * (log1 - log2), -1), v)


def init(rng: jax.Array, ctx: method_lib.InitContext):
  del rng
  return {"qhat": initial_qhat(ctx.run.num_classes)}


def legogcd_loss(hp, ctx, logits, proj, labels, labelled, valid, qhat,
                 dkl_form: str = "official"):
  """`(loss, terms, new_qhat)` of LegoGCD on one two-view forward."""
  terms, tau = simgcd.simgcd_terms(hp, ctx, logits, proj, labels, labelled,
                                   valid)
  selected = potential_known(logits, labelled, valid, hp["num_old"],
                             hp["thr"])
  terms["ler"] = ler_loss(logits, qhat, selected, valid, hp["pseudo_temp"],
                          hp["gamma"])
  terms["dkl"] = dkl_loss(logits, valid, dkl_form)
  total = (simgcd.simgcd_total(hp, terms)
           + (1 - hp["sup_weight"]) * hp["dkl_weight"] * terms["dkl"]
           + hp["ler_weight"] * terms["ler"])
  terms["selected"] = simgcd.weighted_mean(selected, valid)
  terms["teacher_temp"] = tau
  new_qhat = update_qhat(qhat, logits, valid, hp["qhat_momentum"])
  # How far the running prior is from uniform (log K at uniform).
  terms["qhat_entropy"] = -jnp.sum(new_qhat * jnp.log(new_qhat))
  return total, terms, new_qhat


def _make_apply(dkl_form: str):
  def apply(hp, ctx, params, method_state, batch, rng):
    out, model_state, labels, labelled, valid = simgcd.two_view_forward(
        ctx, params, batch, rng)
    loss, terms, qhat = legogcd_loss(
        hp, ctx, out["logits"], out["projection"], labels, labelled, valid,
        method_state["qhat"], dkl_form)
    return loss, method_lib.StepAux(terms, model_state, {"qhat": qhat})
  return apply


RULES = dict(
    simgcd.RULES,
    num_old=config_lib.at_least(1, integer=True),
    ler_weight=config_lib.at_least(0.0),
    thr=config_lib.between(0.0, 1.0),
    pseudo_temp=config_lib.at_least(1e-6),
    gamma=config_lib.at_least(0.0),
    qhat_momentum=config_lib.between(0.0, 1.0),
    dkl_weight=config_lib.at_least(0.0),
    dkl_form=config_lib.one_of(*DKL_FORMS))
METHODS = {form: method_lib.Method(name="legogcd", apply=_make_apply(form),
                                   init=init, rules=RULES)
           for form in DKL_FORMS}


@method_lib.register_method("legogcd")
def make(config: dict) -> method_lib.Method:
  form = config.get("dkl_form", "official")
  if form not in METHODS:
    raise config_lib.ConfigError(
        f"config.method.legogcd.dkl_form={form!r} is not allowed: expected "
        f"one of {list(DKL_FORMS)}")
  return METHODS[form]
