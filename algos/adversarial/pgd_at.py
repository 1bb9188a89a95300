"""PGD adversarial training (the robust-teacher recipe and the AT baseline).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018, arXiv:1706.06083.
Official code (TensorFlow): https://github.com/MadryLab/cifar10_challenge

Each step replaces the batch by PGD examples of the current model (L-inf,
uniform random start, `attack_steps` sign steps of `step_size` inside
`eps`, the model in eval mode while attacking) and minimises the
cross-entropy on them. CIFAR-10 settings as MTARD's / ARD's code: eps 8/255,
step 2/255, 10 steps.
"""

from __future__ import annotations

from typing import Any


from algos.adversarial import adversarial_lib as adv
from common.core import method as method_lib

DEFAULTS = dict(adv.ATTACK_DEFAULTS)


def make_apply(cfg: dict[str, Any]):
  def apply(hp, ctx, params, method_state, batch, rng):
    labels = batch["label"]
    x_adv = adv.adversarial_inputs(ctx, params, labels, hp, rng, cfg,
                                   start="uniform")
    out, model_state = ctx.forward(params, x_adv)
    ce = adv.cross_entropy(out["logits"], labels)
    loss = method_lib.masked_mean(ce, adv.row_mask(batch, len(labels)))
    return loss, method_lib.StepAux({"adv_ce": loss}, model_state,
                                    method_state)
  return apply


@method_lib.register_method("pgd_at")
def make(config: dict) -> method_lib.Method:
  cfg = adv.settings(config, DEFAULTS)
  return method_lib.Method(
      name="pgd_at", apply=make_apply(cfg), init=method_lib.stateless_init,
      hparams=adv.hparams_with(DEFAULTS), rules=adv.ATTACK_RULES)
