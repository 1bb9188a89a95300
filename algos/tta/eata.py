"""EATA: reliable, non-redundant entropy minimisation with a Fisher anchor.

Paper: Efficient Test-Time Model Adaptation without Forgetting, Niu et al.,
ICML 2022, arXiv:2204.02610; official code mr-eggplant/EATA (`eata.py`,
`main.py`). Per test batch, as `forward_and_adapt_eata`:

  p = softmax(f(x)), H_i = entropy(p_i)
  S1 = {i : H_i < E0},  E0 = e_margin_factor * ln C  (main.py: 0.4 ln C)
  S2 = {i in S1 : |cos(m, p_i)| < d_margin}  (no filter while m is unset)
  m <- mean_{S1} p (first time) or 0.9 m + 0.1 mean_{S2} p (kept if empty)
  L = sum_{i in S2} exp(E0 - H_i) H_i / |S2|
      + fisher_alpha * sum_params F * (theta - theta_0)^2
  step only if |S2| > 0; only BatchNorm scale/bias train.

The weights `exp(E0 - H_i)` are constants (detached). F is the diagonal
Fisher from clean in-distribution images with pseudo-labels, computed once
before adaptation (`main.py`): F = mean over batches of (grad of the mean
cross-entropy to argmax labels)^2, theta_0 the parameters at that time.

Backward compute. The default (`capacity_buckets=()`) is the official
semantics ("implementation version 1" of `forward_and_adapt_eata`): the
masked, re-weighted loss is back-propagated through the forward of the
whole batch, so BatchNorm statistics (and so the gradient) are the full
batch's; no update when no sample is selected (the backward is skipped
by `lax.cond`, except on CPU where it runs anyway: see
`make_value_and_grad`). Opt-in
(`capacity_buckets`, fractions of the batch): the official code's
commented "version 2", which forwards and back-propagates only the
selected samples again, made jit-friendly by static capacities: with n
selected samples and the smallest capacity K >= n, the K-row sub-batch
(the n selected samples, then the unselected ones of lowest entropy as
BatchNorm-statistics fillers with loss weight 0) is re-forwarded and
back-propagated; when n exceeds every capacity the full-batch backward is
used. This is NOT EATA's update: the sub-batch's BatchNorm statistics
differ from the batch's, so the gradient does too (experiments/eata
README states by how much). `backward_samples` counts n (the paper's
count), `backward_rows` the rows actually back-propagated.

Method v2: `apply` is the definition above (version 1, one forward); the
`value_and_grad` hook computes its gradient (the first forward's vjp, or
the opt-in sub-batches) and skips the backward when nothing is selected;
`init` computes the Fisher from the clean
batches the TTA protocol hands over (`InitContext.extras`); the step is
skipped (`StepAux.apply_update`) when nothing is selected.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from algos.tta import losses
from algos.tta import tta_lib
from common import config as config_lib
from common.core import method as method_lib

STATIC_KEYS = ("capacity_buckets",)
RULES = {
    "e_margin_factor": config_lib.greater_than(0.0),
    "d_margin": config_lib.at_least(0.0),
    "fisher_alpha": config_lib.at_least(0.0),
    "reweight": config_lib.at_least(0.0),
    "ma_momentum": config_lib.between(0.0, 1.0),
    "capacity_buckets": config_lib.Rule(
        "a tuple of batch fractions strictly between 0 and 1",
        lambda v: isinstance(v, tuple) and all(
            isinstance(f, (int, float)) and 0 < f < 1 for f in v)),
}


def hparams(config: dict[str, Any], run: method_lib.RunInfo
            ) -> dict[str, float]:
  """Traced numbers; E0 = e_margin_factor * ln(C) is computed from C."""
  return {"e_margin": float(config["e_margin_factor"])
                      * math.log(run.num_classes),
          "d_margin": float(config["d_margin"]),
          "fisher_alpha": float(config["fisher_alpha"]),
          "reweight": float(config.get("reweight", 1.0)),
          "ma_momentum": float(config.get("ma_momentum", 0.9))}


def fisher_information(ctx: method_lib.InitContext, params, trainable,
                       inputs: jax.Array):
  """Diagonal Fisher of the trainable leaves on clean batches.

  Args:
    ctx: the init context (model, BatchNorm collections).
    params: source parameters (theta_0).
    trainable: bool pytree like params.
    inputs: model inputs `[n_batches, b, ...]` of clean images.

  Returns:
    Pytree like params: mean over batches of the squared gradient of the
    batch-mean cross-entropy to the model's own argmax labels (BatchNorm
    with batch statistics, as the configured model in `main.py`); scalar
    zeros on frozen leaves.
  """
  stop = lambda p: jax.tree.map(
      lambda x, m: x if m else jax.lax.stop_gradient(x), p, trainable)

  def batch_grad(fisher, x):
    def pseudo_label_ce(p):
      logits = tta_lib.init_forward(ctx, stop(p), x)
      labels = jnp.argmax(jax.lax.stop_gradient(logits), -1)
      logp = jax.nn.log_softmax(logits, -1)
      return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], -1))

    g = jax.grad(pseudo_label_ce)(params)
    return jax.tree.map(jnp.add, fisher, jax.tree.map(jnp.square, g)), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  total, _ = jax.lax.scan(batch_grad, zeros, inputs)
  n = inputs.shape[0]
  return jax.tree.map(
      lambda f, m: f / n if m else jnp.zeros((), f.dtype), total, trainable)


def init(rng, ctx: method_lib.InitContext):
  """Moving average, Fisher (zeros without clean batches) and anchor."""
  del rng
  params = ctx.params
  trainable = method_lib.trainable_mask(params, "norm")
  inputs = tta_lib.clean_inputs(ctx)
  if inputs is None:
    fisher = jax.tree.map(lambda p: jnp.zeros((), p.dtype), params)
  else:
    fisher = fisher_information(ctx, params, trainable, inputs)
  anchor = jax.tree.map(lambda p, m: p if m else jnp.zeros((), p.dtype),
                        params, trainable)
  return {"probs": jnp.zeros((ctx.run.num_classes,), jnp.float32),
          "has_probs": jnp.zeros((), bool), "fisher": fisher,
          "anchor": anchor}


def fisher_penalty(params, method_state, trainable) -> jax.Array:
  """`sum F * (theta - theta_0)^2` over the trainable leaves."""
  terms = [jnp.sum(f * jnp.square(p - a)) for p, f, a, m in zip(
      jax.tree.leaves(params), jax.tree.leaves(method_state["fisher"]),
      jax.tree.leaves(method_state["anchor"]), jax.tree.leaves(trainable))
           if m]
  return sum(terms, jnp.zeros((), jnp.float32))


def select(hp, method_state, logits):
  """EATA's two filters and sample weights for one batch.

  Args:
    hp: `e_margin`, `d_margin`, `reweight`, `ma_momentum`.
    method_state: holds the moving average `probs` [C] and `has_probs`.
    logits: `[b, C]` of the pre-update forward.

  Returns:
    `(selected [b] bool, weights [b], entropy [b], new_probs, has_probs,
    n_reliable)`: weights are `exp(reweight * (E0 - H))` on selected rows
    and 0 elsewhere.
  """
  probs = jax.nn.softmax(logits, -1)
  ent = losses.softmax_entropy(logits)
  reliable = ent < hp["e_margin"]
  m = method_state["probs"]
  # F.cosine_similarity(m[None], p, dim=1), eps 1e-8.
  cos = probs @ m / jnp.maximum(
      jnp.linalg.norm(probs, axis=-1) * jnp.linalg.norm(m), 1e-8)
  distinct = jnp.abs(cos) < hp["d_margin"]
  selected = reliable & jnp.where(method_state["has_probs"], distinct, True)
  n_sel = jnp.sum(selected)
  mean_sel = jnp.sum(probs * selected[:, None], 0) / jnp.maximum(n_sel, 1)
  mom = hp["ma_momentum"]
  new_probs = jnp.where(
      n_sel > 0,
      jnp.where(method_state["has_probs"], mom * m + (1 - mom) * mean_sel,
                mean_sel), m)
  has_probs = method_state["has_probs"] | (n_sel > 0)
  weights = jnp.where(
      selected, jnp.exp(hp["reweight"] * (hp["e_margin"] - ent)), 0.0)
  return (selected, jax.lax.stop_gradient(weights), ent, new_probs,
          has_probs, jnp.sum(reliable))


def _finish(hp, ctx, params, method_state, logits, selection, rows,
            entropy_loss):
  """`(loss, StepAux)` of a step from its selection (shared by `apply`
  and the bucketed `value_and_grad`)."""
  selected, _, _, new_probs, has_probs, n_rel = selection
  n = jnp.sum(selected.astype(jnp.float32))
  penalty = fisher_penalty(params, method_state, ctx.trainable)
  new_state = {**method_state, "probs": new_probs, "has_probs": has_probs}
  metrics = {"fisher_penalty": penalty,
             "reliable": n_rel.astype(jnp.float32),
             "backward_samples": n, "backward_rows": rows}
  return entropy_loss + hp["fisher_alpha"] * penalty, tta_lib.step_aux(
      ctx, new_state, logits, metrics, apply_update=n > 0)


def weighted_entropy(logits, weights, n):
  """`sum_i w_i H_i / max(n, 1)` over the batch (`w` is 0 off the
  selection)."""
  return jnp.sum(weights * losses.softmax_entropy(logits)) / jnp.maximum(
      n, 1.0)


def make_apply(select_fn: Callable = select):
  """EATA's loss as defined (version 1: one forward of the whole batch)."""
  def apply(hp, ctx, params, method_state, batch, rng):
    del batch, rng
    logits = tta_lib.forward(ctx, params)
    selection = select_fn(hp, method_state, jax.lax.stop_gradient(logits))
    n = jnp.sum(selection[0].astype(jnp.float32))
    return _finish(hp, ctx, params, method_state, logits, selection,
                   tta_lib.batch_count(logits),
                   weighted_entropy(logits, selection[1], n))
  return apply


def make_value_and_grad(buckets: tuple[float, ...],
                        select_fn: Callable = select):
  """EATA's gradient; `buckets` (fractions < 1) opt into sub-batches.

  Chosen per batch by `lax.switch`: nothing (n = 0), the K-row sub-batch
  re-forwarded (version 2, only with `buckets`) or the first forward's vjp
  (version 1, the official semantics).
  """
  def value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn):
    del batch, rng, loss_fn
    inputs = ctx.inputs
    b = inputs.shape[0]
    caps = sorted({max(1, min(b - 1, round(f * b))) for f in buckets
                   if 0 < f < 1})
    fwd = lambda p: tta_lib.forward(ctx, ctx.stop_frozen(p))
    logits, vjp_fn = jax.vjp(fwd, params)
    logits = jax.lax.stop_gradient(logits)
    selection = select_fn(hp, method_state, logits)
    selected, weights, ent = selection[:3]
    n = jnp.sum(selected.astype(jnp.float32))
    zeros = jax.tree.map(jnp.zeros_like, params)

    def skip():
      return zeros, jnp.zeros((), jnp.float32)

    def full():  # version 1: masked loss back through the first forward
      g_logits = jax.grad(weighted_entropy)(logits, weights, n)
      return vjp_fn(g_logits)[0], jnp.asarray(b, jnp.float32)

    def sub_batch(k):  # version 2 on a K-row sub-batch
      def run():
        order = jnp.argsort(jnp.where(selected, -jnp.inf, ent), stable=True)
        idx = order[:k]
        x, w = inputs[idx], weights[idx]

        def sub_loss(p):
          return weighted_entropy(tta_lib.forward(ctx, p, x), w, n), ()
        _, g = ctx.value_and_grad(sub_loss, params)
        return g, jnp.asarray(k, jnp.float32)
      return run

    if not caps and jax.default_backend() == "cpu":
      # XLA:CPU runs convolution gradients inside a conditional (or any
      # nested computation) far slower than at top level: the layout
      # rewrite to its fast convolution kernels is not applied there
      # (jax-ml/jax#12868; experiments/eata/README.md, Throughput). So on
      # CPU the full-batch backward always runs (the update is still
      # skipped when nothing is selected, via `apply_update`).
      grads, rows = full()
    else:
      branches = [skip] + [sub_batch(k) for k in caps] + [full]
      # 0 if n == 0; else 1 + number of capacities smaller than n.
      index = jnp.where(n > 0, 1 + jnp.sum(jnp.asarray(caps) < n), 0)
      grads, rows = jax.lax.switch(index, branches)
    # The Fisher term's gradient 2 * alpha * F * (theta - theta_0).
    grads = jax.tree.map(
        lambda g, p, f, a, m: g + 2.0 * hp["fisher_alpha"] * f * (p - a)
        if m else g, grads, params, method_state["fisher"],
        method_state["anchor"], ctx.trainable)
    return _finish(hp, ctx, params, method_state, logits, selection, rows,
                   weighted_entropy(logits, weights, n)), grads

  return value_and_grad


@method_lib.register_method("eata")
def make(config: dict[str, Any], select_fn: Callable | None = None
         ) -> method_lib.Method:
  """EATA from its config section; `select_fn` forks the selection rule
  (`select`'s signature and outputs), e.g. notebooks/eata_selection."""
  select_fn = select_fn or select
  # () = the official full-batch backward; fractions opt into version 2.
  buckets = tuple(float(f) for f in config.get("capacity_buckets", ()))
  bad = [f for f in buckets if not 0 < f < 1]
  if bad:
    raise ValueError(f"eata.capacity_buckets={buckets}: fractions of the "
                     f"batch strictly between 0 and 1 (the full batch is "
                     f"always available); bad: {bad}")
  return method_lib.Method(
      name="eata", init=init, apply=make_apply(select_fn),
      value_and_grad=make_value_and_grad(buckets, select_fn),
      predict=tta_lib.predict_batch_stats, trainable="norm", rules=RULES,
      hparams=lambda cfg, run: hparams(
          {k: v for k, v in cfg.items() if k not in STATIC_KEYS}, run))
