"""SORSA (with LoRA and PiSSA): adapter fine-tuning of a language model.

SORSA: Singular Values and Orthonormal Regularized Singular Vectors
Adaptation of Large Language Models. Yang Cao, 2024. arXiv:2409.00055.
Official code (PyTorch): https://github.com/Gunale0926/SORSA
(`sorsalib/src/sorsa/layer.py`, `trainer.py`, `run.py`).

The mechanism (`common.models.peft`) turns the pretrained parameters into
`{"base": frozen, "adapters": trainable}` in this method's `init` (the
`finetune` protocol hands the pretrained params to `init` as `ctx.params`),
and `trainable` freezes everything but the adapters, so the harness's one
optimizer update trains the adapters only. Every forward merges the
adapters into the model's plain parameters first (`peft.merge`), so the
loss is the `next_token` objective on the adapted model.

SORSA's orthonormal regulariser: the official trainer backpropagates
`(gamma / learning_rate) * calc_ortho(model)` into the same gradients the
AdamW step then applies (`trainer.py`: `s_gamma = self.args.gamma /
self.args.learning_rate; self.accelerator.backward(s_gamma * ortho_loss)`,
with the *peak* learning rate). Here the loss adds
`gamma / lr * orthonormality(adapters)` (hyperparameters `gamma`, `lr`:
traced). Deviation: the official code adds the regulariser's gradient after
clipping the task gradient; here global-norm clipping (if on) sees both.

Config (`config.method.sorsa`): `adapter` ("lora" | "pissa" | "sorsa"),
`rank`, `alpha` (0 = scale 1), `targets` (regular expressions over
'/'-joined parameter paths, e.g. "attn/(q|k|v|o)/kernel"), `gamma` (0 =
no regulariser; only SORSA adapters are regularised), `lr` (the peak
learning rate the official code divides gamma by), `loss` (the per-token
LM loss, as `next_token`'s).

Metrics: the LM ones, `ortho` (the regulariser's value). Evaluator
`peft_lm`: the `lm` evaluator plus `ortho` of the final adapters and
`trainable_fraction`. `merged_params(params)` gives the plain checkpoint.
"""

from __future__ import annotations

from typing import Any

import jax

from algos.lm import losses
from algos.lm import next_token
from common import config as config_lib
from common.core import method as method_lib
from common.eval import evaluators
from common.eval import language
from common.models import peft

DEFAULTS = {"adapter": "sorsa", "rank": 4, "alpha": 0.0,
            "targets": ("kernel",), "gamma": 4e-4, "lr": 3e-5,
            "loss": "naive"}
RULES = {"adapter": config_lib.one_of(*peft.KINDS),
         "rank": config_lib.at_least(1, integer=True),
         "alpha": config_lib.at_least(0.0),
         "gamma": config_lib.at_least(0.0),
         "lr": config_lib.greater_than(0.0)}


def settings(method_config: dict[str, Any]) -> dict[str, Any]:
  unknown = set(method_config) - set(DEFAULTS)
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.sorsa has {sorted(unknown)}; it reads "
        f"{sorted(DEFAULTS)}")
  kw = {**DEFAULTS, **method_config}
  if kw["adapter"] not in peft.KINDS:
    raise config_lib.ConfigError(
        f"config.method.sorsa.adapter={kw['adapter']!r}; allowed {peft.KINDS}")
  if kw["loss"] not in losses.LOSSES:
    raise config_lib.ConfigError(
        f"config.method.sorsa.loss={kw['loss']!r}; registered: "
        f"{losses.loss_names()}")
  kw["targets"] = tuple(kw["targets"])
  return kw


def merged_params(params: dict[str, Any], rank: int, alpha: float
                  ) -> Any:
  """The plain model parameters of adapter params (a mergeable checkpoint)."""
  return peft.merge(params, peft.scale_of(rank, alpha or None))


@method_lib.register_method("sorsa")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """LoRA / PiSSA / SORSA fine-tuning with the next-token loss."""
  kw = settings(method_config)
  scale = peft.scale_of(kw["rank"], kw["alpha"] or None)

  def hparams(cfg, run):
    del run
    cfg = {**DEFAULTS, **cfg}
    return {"ortho_weight": float(cfg["gamma"]) / float(cfg["lr"])}

  def init(rng, ctx):
    out = peft.init_adapters(ctx.params, kw["targets"], kw["adapter"],
                             kw["rank"], rng, kw["alpha"] or None)
    return method_lib.InitOutput(method_state={}, params=out)

  def nll(ctx, params, batch, train):
    return next_token.token_nll(
        ctx, peft.merge(params, scale), batch, loss=kw["loss"],
        softcap=next_token._softcap(ctx.model), train=train)  # pylint: disable=protected-access

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    values, model_state = nll(ctx, params, batch, True)
    metrics = next_token.lm_metrics(values, batch)
    ortho = peft.orthonormality(params["adapters"])
    metrics["ortho"] = ortho
    loss = metrics["loss"] + hp["ortho_weight"] * ortho
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state
    return {"token_nll": nll(ctx, params, batch, False)[0]}

  return method_lib.Method(
      name="sorsa", hparams=hparams, init=init, apply=apply, predict=predict,
      trainable=peft.trainable_mask, rules=RULES)


@evaluators.register_evaluator("peft_lm")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """The `lm` evaluator plus the adapters' orthonormality error (`ortho`)
  and the fraction of parameters that train (`trainable_fraction`)."""
  out = language.evaluate(setup, state)
  params = state.params
  if isinstance(params, dict) and set(params) == {"base", "adapters"}:
    n_adapt = sum(x.size for x in jax.tree.leaves(params["adapters"]))
    n_all = n_adapt + sum(x.size for x in jax.tree.leaves(params["base"]))
    out["ortho"] = float(peft.orthonormality(params["adapters"]))
    out["trainable_fraction"] = n_adapt / n_all
  return out
