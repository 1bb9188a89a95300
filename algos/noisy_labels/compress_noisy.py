"""Compressing features (nested dropout) + co-teaching for noisy labels.

Compressing Features for Learning with Noisy Labels. Chen, Hu, Shen, Ai,
Suykens. IEEE TNNLS 2022. arXiv:2206.13140. Official code (PyTorch):
https://github.com/yingyichen-cyy/Nested-Co-teaching.

One registered method, `compress_noisy`, whose static switches give the
paper's arms (the CE arm equals `cross_entropy`):

  feature_reg  "none" (CE), "dropout" (dropout on the penultimate features,
               rate `dropout`) or "nested" (nested dropout, truncation
               distribution `exp(-((k - nested_mu) / nested_std)^2)`; see
               `nested_dropout`);
  co_teaching  False: one network; True: two networks (`model.name =
               "two_nets"`, `two_nets.py`) with small-loss cross-selection
               (`co_teaching.py`: `forget_rate`, ramped over `num_gradual`
               epochs).

The feature regulariser acts on the model's `features` (the input of its
final Dense); the logits are recomputed through that Dense. The number of
kept units at evaluation, `method_state["num_kept"]`, starts at d (all) and
is set by the `nested_noisy_labels` evaluator, which picks it on a clean
validation split as the official `TestNested` does.

Differences from the official code, on purpose:
* Co-teaching keeps a traced number of examples as a 0/1 mask on the half
  batch, so BatchNorm's batch statistics in the training forward include
  the forgotten examples (the official forward sees only the kept ones).
* The official selection forward masks the features at the K chosen on
  validation after the previous epoch; evaluator results do not flow back
  into the train step here, so the selection uses all d units.
* The official CIFAR/Clothing1M classifier has no bias; the zoo's heads do.
* Both stages of the paper's Nested + Co-teaching (train two nested
  networks, then fine-tune them with co-teaching) are two runs; the CPU
  study runs the official "co-teaching + nested from scratch" recipe
  (co_teaching_resnet/run_clothing1m.sh), one run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.noisy_labels import co_teaching
from algos.noisy_labels import nested_dropout
from algos.noisy_labels import two_nets
from common import config as config_lib
from common.core import method as method_lib

FEATURE_REGS = ("none", "dropout", "nested")
DEFAULTS = dict(feature_reg="nested", dropout=0.3, nested_mu=0.0,
                nested_std=10.0, co_teaching=False, forget_rate=0.2,
                num_gradual=5.0)


def regularised_logits(hp, feature_reg: str, net, params, outputs,
                       rng: jax.Array, k_rng: jax.Array) -> jax.Array:
  """`[b, C]` training logits of one network under the feature regulariser.

  `k_rng` draws the nested truncation (shared by the networks of a pair);
  `rng` the dropout mask (one per network).
  """
  if feature_reg == "none":
    return outputs["logits"].astype(jnp.float32)
  features = outputs["features"]
  if feature_reg == "dropout":
    features = nested_dropout.dropout_features(rng, features, hp["dropout"])
  else:
    features = nested_dropout.nested_features(
        k_rng, features, hp["nested_mu"], hp["nested_std"])
  return two_nets.head_logits(net, params, features)


def _check(config: dict, model) -> None:
  if config["co_teaching"] != (two_nets.num_networks(model) == 2):
    raise config_lib.ConfigError(
        f"method.compress_noisy.co_teaching={config['co_teaching']} needs "
        + ("model.name='two_nets' (two networks)" if config["co_teaching"]
           else "one network (a zoo classifier or 'one_net'), not "
           "'two_nets'"))


def make(config: dict) -> method_lib.Method:
  """The method of one arm (see the module doc for the fields)."""
  unknown = sorted(set(config) - set(DEFAULTS))
  if unknown:
    raise config_lib.ConfigError(
        f"method.compress_noisy has unknown keys {unknown}; allowed: "
        f"{sorted(DEFAULTS)}")
  config = {**DEFAULTS, **config}
  reg = config["feature_reg"]
  if reg not in FEATURE_REGS:
    raise config_lib.ConfigError(
        f"method.compress_noisy.feature_reg={reg!r}; allowed: {FEATURE_REGS}")

  def init(rng, ctx: method_lib.InitContext):
    del rng
    _check(config, ctx.model)
    net, params, _ = two_nets.members(ctx.model, ctx.params,
                                      ctx.model_state)[0]
    dim = two_nets.head(net, params)[0].shape[0]
    return {"num_kept": jnp.asarray(dim, jnp.int32)}

  def single_apply(hp, ctx, params, method_state, batch, rng):
    outputs, model_state = ctx.forward(params)
    if isinstance(ctx.model, two_nets.NetCopies):  # `one_net`: [b, 1, d]
      outputs = {**outputs, "features": outputs["features"][:, 0]}
    (net, p, _), = two_nets.members(ctx.model, params, ctx.model_state)
    r_drop, r_k = jax.random.split(rng)
    logits = regularised_logits(hp, reg, net, p, outputs, r_drop, r_k)
    valid = batch.get("mask", jnp.ones(batch["label"].shape, bool))
    ce = method_lib.masked_mean(
        co_teaching.per_example_ce(logits, batch["label"]), valid)
    return ce, method_lib.StepAux({"ce": ce}, model_state, method_state)

  def pair_apply(hp, ctx, params, method_state, batch, rng):
    (net, p1, s1), (_, p2, s2) = two_nets.members(ctx.model, params,
                                                  ctx.model_state)
    labels = batch["label"]
    valid = batch.get("mask", jnp.ones(labels.shape, bool))
    half = labels.shape[0] // 2
    x1 = jax.tree.map(lambda x: x[:half], ctx.inputs)
    x2 = jax.tree.map(lambda x: x[half:2 * half], ctx.inputs)
    y1, y2 = labels[:half], labels[half:2 * half]
    v1, v2 = valid[:half], valid[half:2 * half]
    # Selection: each network ranks its own half in eval mode, no gradient.
    o1, _ = two_nets.member_forward(ctx, net, p1, s1, x1, train=False)
    o2, _ = two_nets.member_forward(ctx, net, p2, s2, x2, train=False)
    epoch = ctx.step // ctx.run.steps_per_epoch
    rate = co_teaching.forget_rate_at(epoch, hp["forget_rate"],
                                      hp["num_gradual"])
    l1 = co_teaching.per_example_ce(jax.lax.stop_gradient(o1["logits"]), y1)
    l2 = co_teaching.per_example_ce(jax.lax.stop_gradient(o2["logits"]), y2)
    keep1 = co_teaching.small_loss_mask(l1, rate, v1)
    keep2 = co_teaching.small_loss_mask(l2, rate, v2)
    # Training: network 1 on what network 2 kept of half 2, and vice versa.
    r1, r2, r_k = jax.random.split(rng, 3)
    m1, m2 = jax.random.split(ctx.rng_model)
    t1, n1 = two_nets.member_forward(ctx, net, p1, s1, x2, train=True,
                                     rng=m1)
    t2, n2 = two_nets.member_forward(ctx, net, p2, s2, x1, train=True,
                                     rng=m2)
    logits1 = regularised_logits(hp, reg, net, p1, t1, r1, r_k)
    logits2 = regularised_logits(hp, reg, net, p2, t2, r2, r_k)
    ce1 = method_lib.masked_mean(co_teaching.per_example_ce(logits1, y2),
                                 keep2)
    ce2 = method_lib.masked_mean(co_teaching.per_example_ce(logits2, y1),
                                 keep1)
    metrics = {"ce1": ce1, "ce2": ce2, "forget_rate": rate,
               "kept": jnp.mean(jnp.concatenate([keep1, keep2]))}
    if "clean_label" in batch:  # label precision of the kept examples
      clean = batch["clean_label"]
      correct = jnp.concatenate([y1 == clean[:half],
                                 y2 == clean[half:2 * half]])
      metrics["kept_label_precision"] = method_lib.masked_mean(
          correct.astype(jnp.float32), jnp.concatenate([keep1, keep2]))
    model_state = two_nets.merge_states([n1, n2])
    return ce1 + ce2, method_lib.StepAux(metrics, model_state, method_state)

  def predict(hp, ctx, params, method_state, batch):
    """Mean over the networks of the logits of the first `num_kept` units;
    `member_features [b, m, d]` for the evaluator's choice of K."""
    del hp, batch
    logits, features = [], []
    for net, p, s in two_nets.members(ctx.model, params, ctx.model_state):
      out, _ = two_nets.member_forward(ctx, net, p, s, ctx.inputs,
                                       train=False)
      f = out["features"]
      mask = nested_dropout.prefix_mask(method_state["num_kept"], f.shape[-1])
      logits.append(two_nets.head_logits(net, p, f * mask.astype(f.dtype)))
      features.append(f)
    return {"logits": sum(logits) / len(logits),
            "member_features": jnp.stack(features, axis=1)}

  return method_lib.Method(
      name="compress_noisy", init=init,
      apply=pair_apply if config["co_teaching"] else single_apply,
      predict=predict, hparams=method_lib.default_hparams, rules=RULES)


RULES = {"feature_reg": config_lib.one_of(*FEATURE_REGS),
         "co_teaching": config_lib.one_of(True, False),
         "dropout": config_lib.Rule(
             "a number in [0, 1)",
             lambda v: config_lib.between(0.0, 1.0).test(v) and v < 1.0),
         "nested_std": config_lib.greater_than(0.0),
         "forget_rate": config_lib.between(0.0, 1.0),
         "num_gradual": config_lib.at_least(0.0)}


@method_lib.register_method("compress_noisy")
def make_method(config: dict) -> method_lib.Method:
  return make(config)
