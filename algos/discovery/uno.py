"""UNO: A Unified Objective for Novel Class Discovery (the base of CRKD).

Fini, Sangineto, Lathuiliere, Zhong, Nabi, Ricci. ICCV 2021.
arXiv:2108.08536. Official code: https://github.com/DonkeyShot21/UNO; the
version read here is the one CRKD ships (kleinzcy/Cr-KD-NCD `rKD.py`:
`train_pretrain`, `train_discover`, `swapped_prediction`).

Two stages on one network (`algos/discovery/uno_net.py`):

1. `uno_supervised`: cross-entropy of the known-class head's cosine logits
   over `temperature` on the labelled (known-class) data, averaged over the
   views.
2. `uno`: every head h sees the logits `[known head, novel head h]` of each
   view. Targets: one-hot labels on the known columns for labelled rows,
   Sinkhorn-Knopp pseudo-labels of the novel head's logits on the novel
   columns for unlabelled rows. The swapped-prediction loss trains each view
   on the other view's targets:

       L_h = mean over ordered view pairs (v, o != v) of
             mean_b -sum_c target[v,h,b,c] log softmax(logits[o,h,b] / t)_c

   The loss is the mean of `L_h` over heads; each head's cumulative loss is
   kept (`method_state["loss_per_head"]`) and the head with the lowest one
   is the one evaluated, as the official `best_head`.

Differences from the official code: two augmented views of the harness's
preprocessing (the official CIFAR recipe adds two small multi-crops, used
only as predictions, never as targets); the unlabelled rows are those whose
batch entry `labelled` is false (else `label >= num_labeled`: NCD, where
every known-class example is labelled).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from algos.discovery import sinkhorn
from algos.discovery import uno_net
from common import config as config_lib
from common.core import method as method_lib

# `pseudo_label_fn(scores [n, K], mask [n] bool, hp) -> targets [n, K]`:
# pseudo-labels of the rows where `mask` is true (other rows: any values,
# they are zeroed), computed without gradient.
PseudoLabelFn = Callable[[jax.Array, jax.Array, dict], jax.Array]
# `kd_term(hp, ctx, method_state, views, lab, unlab, labelled)
#   -> (loss, metrics)`: an extra term of the discovery loss (CRKD's).
KDTerm = Callable[..., tuple[jax.Array, dict]]

RULES = {
    "temperature": config_lib.greater_than(0.0),
    "epsilon_sk": config_lib.greater_than(0.0),
    "num_iters_sk": config_lib.at_least(1, integer=True),
    "num_views": config_lib.at_least(2, integer=True),
}


def labelled_mask(batch: dict[str, jax.Array], num_labeled: int
                  ) -> jax.Array:
  """`[b]` bool: the batch's `labelled` entry, else `label < num_labeled`."""
  if "labelled" in batch:
    return batch["labelled"].astype(bool)
  return batch["label"] < num_labeled


def swapped_prediction_loss(logits_lab: jax.Array, logits_unlab: jax.Array,
                            labels: jax.Array, labelled: jax.Array,
                            pseudo_labels: Callable[[jax.Array, jax.Array],
                                                    jax.Array],
                            temperature: jax.Array) -> jax.Array:
  """UNO's per-head swapped-prediction loss.

  Args:
    logits_lab: `[V, b, L]` known-head cosine logits of V views.
    logits_unlab: `[V, H, b, K]` novel heads' cosine logits.
    labels: `[b]` int labels (read only where `labelled`).
    labelled: `[b]` bool.
    pseudo_labels: `(scores [b, K], unlabelled [b]) -> [b, K]`.
    temperature: softmax temperature of the predictions.

  Returns:
    `[H]` the loss of each head.
  """
  num_views, num_heads = logits_unlab.shape[:2]
  num_labeled = logits_lab.shape[-1]
  lab = jnp.broadcast_to(logits_lab[:, None],
                         (num_views, num_heads, *logits_lab.shape[1:]))
  logits = jnp.concatenate([lab, logits_unlab], axis=-1)
  onehot = jax.nn.one_hot(jnp.where(labelled, labels, 0), num_labeled)
  onehot = onehot * labelled[:, None]
  unlabelled = ~labelled
  pseudo = jax.vmap(jax.vmap(lambda s: pseudo_labels(s, unlabelled)))(
      jax.lax.stop_gradient(logits_unlab))
  pseudo = pseudo * unlabelled[:, None]
  targets = jnp.concatenate(
      [jnp.broadcast_to(onehot, (*pseudo.shape[:3], num_labeled)), pseudo],
      axis=-1)
  log_probs = jax.nn.log_softmax(logits / temperature, axis=-1)
  total = 0.0
  for v in range(num_views):
    for o in range(num_views):
      if o != v:
        total += jnp.mean(-jnp.sum(targets[v] * log_probs[o], -1), -1)
  return total / (num_views * (num_views - 1))


def forward_views(ctx: method_lib.StepContext, params: Any,
                  batch: dict[str, jax.Array], rng: jax.Array,
                  num_views: int) -> tuple[list, list, Any]:
  """`(views, outputs, model_state)`: the step's input plus `num_views - 1`
  more augmentations of `batch`, each through a train-mode forward (the
  BatchNorm statistics updated view after view, as the official loop)."""
  views = [ctx.inputs] + [ctx.preprocess(batch, jax.random.fold_in(rng, v))
                          for v in range(1, num_views)]
  outputs, state = [], ctx.model_state
  for v, x in enumerate(views):
    out, state = ctx.forward(params, x, model_state=state,
                             rng=jax.random.fold_in(ctx.rng_model, v))
    outputs.append(out)
  return views, outputs, state


def sinkhorn_labels(config: dict[str, Any]) -> PseudoLabelFn:
  """UNO's pseudo-labels: `num_iters_sk` Sinkhorn-Knopp rounds at
  `epsilon_sk` over the unlabelled rows (the shared
  `algos/discovery/sinkhorn.py`)."""
  num_iters = int(config.get("num_iters_sk", 3))
  return lambda scores, mask, hp: sinkhorn.sinkhorn_knopp(
      scores, hp["epsilon_sk"], num_iters, mask)


def after_update(hp, ctx, params, method_state, rng):
  """Unit-length prototypes after every update (official
  `normalize_prototypes` before every forward)."""
  del hp, ctx, rng
  return uno_net.normalize_prototypes(params), method_state


# ------------------------------------------------ stage 1: pretraining
def _supervised_apply(num_views, hp, ctx, params, method_state, batch, rng):
  _, outputs, state = forward_views(ctx, params, batch, rng, num_views)
  losses = [optax.softmax_cross_entropy_with_integer_labels(
      o["logits"] / hp["temperature"], batch["label"]).mean()
            for o in outputs]
  loss = sum(losses) / num_views
  return loss, method_lib.StepAux({"ce": loss}, state, method_state)


def _supervised_init(rng, ctx):
  del rng
  return method_lib.InitOutput({}, uno_net.normalize_prototypes(ctx.params))


@method_lib.register_method("uno_supervised")
def make_supervised(config: dict[str, Any]) -> method_lib.Method:
  """Known-class pretraining (`temperature`, `num_views`)."""
  views = int(config.get("num_views", 2))
  return method_lib.Method(
      name="uno_supervised",
      hparams=lambda c, run: {"temperature": float(c.get("temperature",
                                                         0.1))},
      init=_supervised_init,
      apply=functools.partial(_supervised_apply, views),
      after_update=after_update, rules=RULES)


# --------------------------------------------------- stage 2: discovery
def discovery_init(with_teacher: bool, rng: jax.Array,
                   ctx: method_lib.InitContext) -> method_lib.InitOutput:
  """Fresh novel heads on the (pretrained) model, as the official loader
  skips every `unlab` key; with a teacher, a frozen copy of the known-class
  model (params and BatchNorm statistics) in `method_state["teacher"]`."""
  model = ctx.model
  if not isinstance(model, uno_net.UNONet):
    raise ValueError("the discovery methods need model.name='uno_net', got "
                     f"{type(model).__name__}")
  params, state = dict(ctx.params), dict(ctx.model_state)
  fresh = uno_net.fresh_unlab_heads(
      model, rng, params["head_lab"]["kernel"].shape[0])
  method_state = {"loss_per_head": jnp.zeros((model.num_heads,),
                                             jnp.float32)}
  if with_teacher:
    method_state["teacher"] = {
        "params": uno_net.without_unlab_heads(params),
        "model_state": {k: uno_net.without_unlab_heads(v)
                        for k, v in state.items()}}
  params["head_unlab"] = fresh["params"]
  state["batch_stats"] = {**state["batch_stats"],
                          "head_unlab": fresh["batch_stats"]}
  return method_lib.InitOutput(method_state,
                               uno_net.normalize_prototypes(params), state)


def discovery_apply(pseudo_label_fn: PseudoLabelFn, kd_term: KDTerm | None,
                    num_views: int, hp, ctx, params, method_state, batch,
                    rng):
  """Swapped prediction (+ `kd_term`) on `num_views` views of `batch`."""
  num_labeled = ctx.model.num_labeled
  views, outputs, state = forward_views(ctx, params, batch, rng, num_views)
  lab = jnp.stack([o["logits"] for o in outputs])
  unlab = jnp.stack([jnp.moveaxis(o["logits_unlab"], 1, 0)
                     for o in outputs])
  labelled = labelled_mask(batch, num_labeled)
  per_head = swapped_prediction_loss(
      lab, unlab, batch["label"], labelled,
      lambda s, m: pseudo_label_fn(s, m, hp), hp["temperature"])
  loss = jnp.mean(per_head)
  metrics = {"loss_cluster": loss}
  if kd_term is not None:
    kd, kd_metrics = kd_term(hp, ctx, method_state, views, lab, unlab,
                             labelled)
    loss = loss + kd
    metrics.update(kd_metrics)
  method_state = {**method_state, "loss_per_head": (
      method_state["loss_per_head"] + jax.lax.stop_gradient(per_head))}
  metrics["best_head"] = jnp.argmin(method_state["loss_per_head"])
  return loss, method_lib.StepAux(metrics, state, method_state)


def discovery_predict(hp, ctx, params, method_state, batch):
  """`logits` `[b, L + K]`: known head and the best novel head (the
  task-agnostic prediction); `logits_novel` `[b, K]`: the best novel head
  alone (task-aware); `logits_unlab` `[b, H, K]`: every head."""
  del hp, batch
  out = ctx.forward(params, train=False)[0]
  best = jnp.argmin(method_state["loss_per_head"])
  novel = jnp.take(out["logits_unlab"], best, axis=1)
  return {"logits": jnp.concatenate([out["logits"], novel], -1),
          "logits_novel": novel, "logits_unlab": out["logits_unlab"],
          "features": out["features"]}


def discovery_hparams(config: dict[str, Any], run) -> dict[str, float]:
  """The traced numbers: every numeric field but the static counts."""
  del run
  return {k: float(v) for k, v in config.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)
          and k not in ("num_iters_sk", "num_views")}


def discovery_method(name: str, config: dict[str, Any],
                     pseudo_label_fn: PseudoLabelFn,
                     kd_term: KDTerm | None = None,
                     rules: dict | None = None) -> method_lib.Method:
  """A UNO-based discovery `Method` (UNO itself when `kd_term` is None)."""
  views = int(config.get("num_views", 2))
  return method_lib.Method(
      name=name, hparams=discovery_hparams,
      init=functools.partial(discovery_init, kd_term is not None),
      apply=functools.partial(discovery_apply, pseudo_label_fn, kd_term,
                              views),
      after_update=after_update, predict=discovery_predict,
      rules={**RULES, **(rules or {})})


@method_lib.register_method("uno")
def make(config: dict[str, Any]) -> method_lib.Method:
  """UNO's discovery stage (`temperature`, `epsilon_sk`, `num_iters_sk`,
  `num_views`)."""
  return discovery_method("uno", config, sinkhorn_labels(config))
