"""ARD: Adversarially Robust Distillation (the single-teacher baseline).

Goldblum, Fowl, Feizi, Goldstein, "Adversarially Robust Distillation",
AAAI 2020, arXiv:1905.09747.
Official code (PyTorch): https://github.com/goldblum/AdversariallyRobustDistillation

One frozen robust teacher. The student is attacked with PGD on its own
cross-entropy (uniform start; eps 8/255, step 2/255, 10 steps on CIFAR-10)
and trained on

    alpha * T^2 * KLDiv(log_softmax(s(x_adv) / T), softmax(t(x) / T))
      + (1 - alpha) * CE(s(x), y)

with the teacher on the *clean* input. As the official `main.py`,
`nn.KLDivLoss()`'s default reduction averages over all `b * C` entries
(so the KL term is the batch-mean KL divided by C); official defaults
`alpha = 1`, `T = 30`. One deviation: the official attack runs the
student in train mode (BatchNorm statistics move during the attack); ours
attacks in eval mode, as MTARD's and our PGD-AT's attacks do.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.adversarial import adversarial_lib as adv
from common import config as config_lib
from common.core import method as method_lib

DEFAULTS = dict(adv.ATTACK_DEFAULTS, alpha=1.0, temperature=30.0,
                teacher="robust")


def ard_loss(student_adv_logits: jax.Array, teacher_logits: jax.Array,
             student_clean_logits: jax.Array, labels: jax.Array,
             alpha: jax.Array, temperature: jax.Array) -> jax.Array:
  """`[b]` per-example ARD loss (its batch mean is the official loss).

  Args:
    student_adv_logits: `[b, C]` student on the PGD examples.
    teacher_logits: `[b, C]` frozen teacher on the clean inputs.
    student_clean_logits: `[b, C]` student on the clean inputs.
    labels: `[b]` int.
    alpha, temperature: the official `--alpha`, `--temp`.
  """
  num_classes = teacher_logits.shape[-1]
  p_t = jax.nn.softmax(teacher_logits / temperature)
  log_s = jax.nn.log_softmax(student_adv_logits.astype(jnp.float32)
                             / temperature)
  kl = jnp.sum(jax.scipy.special.xlogy(p_t, p_t) - p_t * log_s, -1)
  ce = adv.cross_entropy(student_clean_logits, labels)
  return (alpha * temperature ** 2 * kl / num_classes
          + (1.0 - alpha) * ce)


def make_apply(cfg: dict[str, Any]):
  def apply(hp, ctx, params, method_state, batch, rng):
    labels = batch["label"]
    x_adv = adv.adversarial_inputs(ctx, params, labels, hp, rng, cfg,
                                   start="uniform")
    s_adv, model_state = ctx.forward(params, x_adv)
    s_clean, model_state = ctx.forward(params, model_state=model_state)
    t_clean = adv.teacher_logits(
        ctx, method_state["teachers"][cfg["teacher"]], ctx.inputs)
    per_example = ard_loss(s_adv["logits"], t_clean, s_clean["logits"],
                           labels, hp["alpha"], hp["temperature"])
    loss = method_lib.masked_mean(per_example,
                                  adv.row_mask(batch, len(labels)))
    return loss, method_lib.StepAux({"ard": loss}, model_state,
                                    method_state)
  return apply


@method_lib.register_method("ard")
def make(config: dict) -> method_lib.Method:
  cfg = adv.settings(config, DEFAULTS)
  return method_lib.Method(
      name="ard", apply=make_apply(cfg),
      init=lambda rng, ctx: {"teachers": adv.teachers_from_extras(
          ctx, (cfg["teacher"],))},
      hparams=adv.hparams_with(DEFAULTS),
      rules={**adv.ATTACK_RULES, "alpha": config_lib.between(0.0, 1.0),
             "temperature": config_lib.greater_than(0.0)})
