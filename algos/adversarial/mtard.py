"""B-MTARD: Balanced Multi-Teacher Adversarial Robustness Distillation.

Zhao, Wang, Wei, "Mitigating Accuracy-Robustness Trade-off via Balanced
Multi-Teacher Adversarial Distillation", IEEE TPAMI 2024, arXiv:2306.16170
(extends MTARD, ECCV 2022, arXiv:2207.07322).
Official code (PyTorch): https://github.com/zhaoshiji123/MTARD-extension
(`resnet18_mtard_cifar10.py`; its `mtard_loss.py` is the one of
https://github.com/zhaoshiji123/MTARD, `mtard/mtard_loss.py`).

Two frozen teachers: a clean ("natural") one trained with cross-entropy and
a robust one trained adversarially. Each step, as the official loop:

1. PGD examples of the student on its own cross-entropy (student in eval
   mode; start `x + 0.001 * N(0, 1)`; 10 steps of 2/255 in eps 8/255);
2. the student in train mode on `x_adv`, then on `x`; the robust teacher
   on `x_adv`, the clean teacher on `x`;
3. `L_adv = kl(s(x_adv), t_adv(x_adv) / T_adv)`,
   `L_nat = kl(s(x), t_nat(x) / T_nat)` with the official
   `kl_loss(log p_s, p_t) = -log p_s * p_t + log(p_t + 1e-5) * p_t`
   averaged over all `b * C` entries (the student is not tempered);
4. entropy balance of the teachers' temperatures (the extension's
   addition), from the entropies `H = mean(p log(p + 1e-5))` of the two
   tempered teachers at the temperatures just used:
   `T_adv -= lr_T * sign(H_adv / H_nat - 1)`,
   `T_nat -= lr_T * sign(H_nat / H_adv - 1)`, both clipped to
   `[T_min, T_max]`: the more uncertain teacher is sharpened, the more
   confident one softened;
5. normalized loss balance: with `L0` the losses of the first step,
   `r = (L / L0) / mean(L / L0)` and
   `w <- w - lr_w * (w - r / sum(r))` for both weights, clipped at 0 and
   renormalised to sum 1 (the ECCV rule `w_adv = 1 - w_nat` gives the same
   numbers: the targets sum to 1);
6. `loss = w_adv * L_adv + w_nat * L_nat` with the *updated* weights
   (constants for the gradient).

`lr_T` and `lr_w` are multiplied by `rate_decay` at the epochs
`rate_decay_epochs` (the official loop divides them by 10 together with the
learning rate at epochs 215, 260, 285 of 300). With `temp_lr = 0` the
temperatures stay at `temp_init` (ECCV MTARD); with `weight_lr = 0` the
weights stay at `weight_init_adv` (fixed-weight ablation).

The temperatures, weights and first-step losses live in `method_state`
(float32; the official code keeps them as host Python floats).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.adversarial import adversarial_lib as adv
from common import config as config_lib
from common.core import method as method_lib

DEFAULTS = dict(adv.ATTACK_DEFAULTS, start_scale=1e-3,
                temp_init=1.0, temp_lr=1e-3, temp_min=1.0, temp_max=10.0,
                weight_init_adv=0.5, weight_lr=0.025,
                rate_decay=0.1, rate_decay_epochs=(215.0, 260.0, 285.0),
                nat_teacher="natural", adv_teacher="robust")


def official_kl(student_logits: jax.Array,
                teacher_probs: jax.Array) -> jax.Array:
  """`[b]`: the official `kl_loss` summed over classes, divided by C (its
  batch mean is the official `torch.mean` over `[b, C]`)."""
  log_s = jax.nn.log_softmax(student_logits.astype(jnp.float32))
  terms = -log_s * teacher_probs + jnp.log(teacher_probs + 1e-5) * (
      teacher_probs)
  return jnp.mean(terms, -1)


def neg_entropy(probs: jax.Array) -> jax.Array:
  """`[b]`: the official `entropy_value` `p log(p + 1e-5)`, mean over C."""
  return jnp.mean(jnp.log(probs + 1e-5) * probs, -1)


def balance_temperatures(t_adv: jax.Array, t_nat: jax.Array,
                         h_adv: jax.Array, h_nat: jax.Array,
                         lr: jax.Array, t_min: jax.Array, t_max: jax.Array
                         ) -> tuple[jax.Array, jax.Array]:
  """One entropy-balance update of the two teacher temperatures (step 4 of
  the module docstring); `h_*` are the official (negative) entropies."""
  new_adv = t_adv - lr * jnp.sign(h_adv / h_nat - 1.0)
  new_nat = t_nat - lr * jnp.sign(h_nat / h_adv - 1.0)
  return (jnp.clip(new_adv, t_min, t_max), jnp.clip(new_nat, t_min, t_max))


def balance_weights(w_adv: jax.Array, w_nat: jax.Array, loss_adv: jax.Array,
                    loss_nat: jax.Array, init_adv: jax.Array,
                    init_nat: jax.Array, lr: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """One normalized-loss-balance update (step 5 of the module docstring)."""
  lhat_adv, lhat_nat = loss_adv / init_adv, loss_nat / init_nat
  lhat_avg = (lhat_adv + lhat_nat) / 2.0
  r_adv, r_nat = lhat_adv / lhat_avg, lhat_nat / lhat_avg
  w_nat = jnp.maximum(w_nat - lr * (w_nat - r_nat / (r_adv + r_nat)), 0.0)
  w_adv = jnp.maximum(w_adv - lr * (w_adv - r_adv / (r_adv + r_nat)), 0.0)
  coef = 1.0 / (w_adv + w_nat)
  return w_adv * coef, w_nat * coef


def rate_factor(hp: dict[str, jax.Array], step: jax.Array,
                steps_per_epoch: int, num_boundaries: int) -> jax.Array:
  """`rate_decay ** (#boundaries passed)` at `step` (epochs -> steps)."""
  epoch = step.astype(jnp.float32) / steps_per_epoch
  passed = sum(jnp.where(epoch >= hp[f"rate_decay_epoch_{i}"], 1.0, 0.0)
               for i in range(num_boundaries))
  return hp["rate_decay"] ** passed


def make_apply(cfg: dict[str, Any]):
  nat_name, adv_name = cfg["nat_teacher"], cfg["adv_teacher"]
  num_boundaries = len(cfg["rate_decay_epochs"])

  def apply(hp, ctx, params, method_state, batch, rng):
    labels = batch["label"]
    valid = adv.row_mask(batch, len(labels))
    mean = lambda v: method_lib.masked_mean(v, valid)
    x_adv = adv.adversarial_inputs(ctx, params, labels, hp, rng, cfg,
                                   start="normal",
                                   start_scale=hp["start_scale"])
    s_adv, model_state = ctx.forward(params, x_adv)
    s_nat, model_state = ctx.forward(params, model_state=model_state)
    teachers = method_state["teachers"]
    t_adv = adv.teacher_logits(ctx, teachers[adv_name], x_adv)
    t_nat = adv.teacher_logits(ctx, teachers[nat_name], ctx.inputs)
    b = method_state["balance"]
    p_adv = jax.nn.softmax(t_adv / b["temp_adv"])
    p_nat = jax.nn.softmax(t_nat / b["temp_nat"])
    loss_adv = mean(official_kl(s_adv["logits"], p_adv))
    loss_nat = mean(official_kl(s_nat["logits"], p_nat))

    decay = rate_factor(hp, ctx.step, ctx.run.steps_per_epoch,
                        num_boundaries)
    h_adv, h_nat = mean(neg_entropy(p_adv)), mean(neg_entropy(p_nat))
    temp_adv, temp_nat = balance_temperatures(
        b["temp_adv"], b["temp_nat"], h_adv, h_nat, hp["temp_lr"] * decay,
        hp["temp_min"], hp["temp_max"])
    l_adv, l_nat = (jax.lax.stop_gradient(loss_adv),
                    jax.lax.stop_gradient(loss_nat))
    # The first step's losses are the reference (-1: not seen yet).
    init_adv = jnp.where(b["init_adv"] < 0, l_adv, b["init_adv"])
    init_nat = jnp.where(b["init_nat"] < 0, l_nat, b["init_nat"])
    w_adv, w_nat = balance_weights(b["w_adv"], b["w_nat"], l_adv, l_nat,
                                   init_adv, init_nat,
                                   hp["weight_lr"] * decay)
    loss = w_adv * loss_adv + w_nat * loss_nat
    balance = dict(temp_adv=temp_adv, temp_nat=temp_nat, w_adv=w_adv,
                   w_nat=w_nat, init_adv=init_adv, init_nat=init_nat)
    metrics = dict(kl_adv=loss_adv, kl_nat=loss_nat, **{
        k: balance[k] for k in ("temp_adv", "temp_nat", "w_adv", "w_nat")},
                   entropy_ratio=h_adv / h_nat)
    return loss, method_lib.StepAux(
        metrics, model_state, {"teachers": teachers, "balance": balance})
  return apply


def make_init(cfg: dict[str, Any]):
  def init(rng, ctx):
    del rng
    teachers = adv.teachers_from_extras(
        ctx, (cfg["nat_teacher"], cfg["adv_teacher"]))
    f = lambda v: jnp.asarray(v, jnp.float32)
    w_adv = float(cfg["weight_init_adv"])
    balance = dict(temp_adv=f(cfg["temp_init"]), temp_nat=f(cfg["temp_init"]),
                   w_adv=f(w_adv), w_nat=f(1.0 - w_adv), init_adv=f(-1.0),
                   init_nat=f(-1.0))
    return {"teachers": teachers, "balance": balance}
  return init


def make_hparams(config: dict[str, Any], run: method_lib.RunInfo
                 ) -> dict[str, float]:
  cfg = adv.settings(config, DEFAULTS)
  hp = method_lib.default_hparams(cfg, run)
  for key in ("temp_init", "weight_init_adv"):   # read by init only
    hp.pop(key)
  hp.update({f"rate_decay_epoch_{i}": float(e)
             for i, e in enumerate(cfg["rate_decay_epochs"])})
  return hp


@method_lib.register_method("mtard")
def make(config: dict) -> method_lib.Method:
  cfg = adv.settings(config, DEFAULTS)
  return method_lib.Method(
      name="mtard", apply=make_apply(cfg), init=make_init(cfg),
      hparams=make_hparams,
      rules={**adv.ATTACK_RULES,
             "temp_init": config_lib.greater_than(0.0),
             "temp_lr": config_lib.at_least(0.0),
             "temp_min": config_lib.greater_than(0.0),
             "temp_max": config_lib.greater_than(0.0),
             "weight_init_adv": config_lib.between(0.0, 1.0),
             "weight_lr": config_lib.between(0.0, 1.0),
             "rate_decay": config_lib.at_least(0.0),
             "rate_decay_epochs": config_lib.each(config_lib.at_least(0.0))})
