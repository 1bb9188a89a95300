"""CoTTA: continual test-time adaptation with a gated, augmented EMA teacher.

Paper: Continual Test-Time Domain Adaptation, Wang et al., CVPR 2022,
arXiv:2203.13591; official code qinenergy/cotta (`cifar/cotta.py`). Per
test batch, as `CoTTA.forward_and_adapt`:

  y_s   = f_theta(x)                         (student, all params train)
  conf  = mean_batch max softmax(f_source(x))      (anchor = source model)
  y_t   = mean_{k<N} f_teacher(aug_k(x)) if conf < gate else f_teacher(x)
  L     = mean_batch CE(softmax(y_t), log_softmax(y_s))
  theta <- optimizer step on L
  teacher <- ema * teacher + (1 - ema) * theta
  theta <- M * theta_source + (1 - M) * theta,  M ~ Bernoulli(restore_prob)
  report y_t (the teacher's prediction, made before the update)

Every model uses the test batch's BatchNorm statistics. N = 32, ema 0.999,
restore_prob 0.01, gate 0.92 (CIFAR-10; the 5% quantile of the source
model's confidence on source data minus 0.05, qinenergy/cotta issue #16).

JAX specifics: the N augmented teacher passes run only when the gate fires
(`lax.cond`; the official CIFAR code computes them always), accumulated by a
`lax.scan` (memory of one pass); each augmentation draws its parameters once
for the whole batch (as torchvision on a batch tensor); the EMA and the
stochastic restore are each one `jax.tree.map` (fused by XLA).
`loss="symmetric"` is the ImageNet variant (`imagenet/cotta.py`).

Method v2: `apply` makes the teacher target and the student loss (all
parameters train), `after_update` the EMA teacher and the stochastic
restore, `predict` the teacher. A negative `gate` is the official recipe
computed for the source model at hand: `init` takes the 5% quantile of the
source model's confidence (test-batch BatchNorm, per batch) on the clean
source batches the TTA protocol hands over, minus 0.05.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.tta import cotta_augment
from algos.tta import losses
from algos.tta import tta_lib
from common import config as config_lib
from common.core import method as method_lib

STATIC_KEYS = ("num_aug", "loss", "hflip")
RULES = {
    "ema": config_lib.between(0.0, 1.0),
    "restore_prob": config_lib.between(0.0, 1.0),
    "gate": config_lib.Rule("a number (< 0: recomputed for the source "
                            "model)", config_lib.between(-1e9, 1e9).test),
    "num_aug": config_lib.at_least(1, integer=True),
    "loss": config_lib.one_of("ce", "symmetric"),
    "hflip": config_lib.one_of(True, False),
}
GATE_QUANTILE, GATE_MARGIN = 0.05, 0.05   # qinenergy/cotta issue #16
IMAGE_KEY = "image"   # the TTA stream's uint8 images (pixel-space augment)


def hparams(config: dict[str, Any], run: method_lib.RunInfo
            ) -> dict[str, float]:
  del run
  return {"ema": float(config["ema"]),
          "restore_prob": float(config["restore_prob"]),
          "gate": float(config["gate"])}


def source_confidence_gate(ctx: method_lib.InitContext, inputs: jax.Array
                           ) -> jax.Array:
  """The source model's `GATE_QUANTILE` confidence on `inputs`
  `[n_batches, b, ...]` (test-batch BatchNorm per batch) minus
  `GATE_MARGIN`."""
  conf = jax.lax.map(lambda x: jnp.max(jax.nn.softmax(
      tta_lib.init_forward(ctx, ctx.params, x), -1), -1), inputs)
  return jnp.quantile(conf.ravel(), GATE_QUANTILE) - GATE_MARGIN


def init(rng, ctx: method_lib.InitContext):
  """EMA teacher, source copy and the recomputed gate (if asked for)."""
  del rng
  copy = lambda t: jax.tree.map(jnp.copy, t)
  gate = jnp.full((), jnp.nan, jnp.float32)
  if float(ctx.config.get("gate", 0.0)) < 0:
    inputs = tta_lib.clean_inputs(ctx)
    if inputs is None:
      raise ValueError("cotta.gate < 0 recomputes the gate on clean source "
                       "images, but the protocol gave none; set a gate "
                       ">= 0 (0.92 for CIFAR-10)")
    gate = source_confidence_gate(ctx, inputs)
  return {"teacher": copy(ctx.params), "source": copy(ctx.params),
          "gate": gate}


def teacher_prediction(hp, method_state, ctx, rng, num_aug: int,
                       hflip: bool = True, images=None):
  """Teacher logits `[b, C]`, augmentation-averaged when the gate fires.

  Args:
    hp: `gate` (< 0: the recomputed `method_state["gate"]`).
    method_state: `teacher` and `source` parameters.
    ctx: the step context (`ctx.inputs` normalised, `ctx.normalize`).
    rng: augmentation key.
    num_aug: augmented teacher passes when the gate fires.
    hflip: the official random horizontal flip in the augmentation.
    images: float32 `[b, h, w, c]` in [0, 1], the pixels `ctx.inputs` were
      made from.

  Returns:
    `(logits, fired, confidence, gate)`: `fired` is True when the
    batch-mean confidence of the source model is below the gate.
  """
  gate = jnp.where(hp["gate"] < 0, method_state["gate"], hp["gate"])
  anchor = jax.nn.softmax(tta_lib.forward(ctx, method_state["source"]), -1)
  conf = jnp.mean(jnp.max(anchor, -1))
  fired = conf < gate
  teacher = method_state["teacher"]

  def averaged():
    def body(total, key):
      x = cotta_augment.augment(key, images, hflip=hflip)
      return total + tta_lib.forward(ctx, teacher, ctx.normalize(x)), None
    total, _ = jax.lax.scan(
        body, jnp.zeros((images.shape[0], ctx.run.num_classes), jnp.float32),
        jax.random.split(rng, num_aug))
    return total / num_aug

  plain = lambda: tta_lib.forward(ctx, teacher)
  logits = jax.lax.cond(fired, averaged, plain)
  return jax.lax.stop_gradient(logits), fired, conf, gate


def make_apply(num_aug: int, loss: str, hflip: bool = True):
  """The student's loss against the (augmented) teacher's prediction."""
  def apply(hp, ctx, params, method_state, batch, rng):
    images = batch[IMAGE_KEY].astype(jnp.float32) / 255.0
    target, fired, conf, gate = teacher_prediction(
        hp, method_state, ctx, jax.random.split(rng)[0], num_aug, hflip,
        images)
    z = tta_lib.forward(ctx, params)
    ce = losses.soft_cross_entropy(z, target)
    if loss == "symmetric":  # imagenet/cotta.py
      ce = 0.5 * ce + 0.5 * losses.soft_cross_entropy(
          jax.lax.stop_gradient(target), z)
    b = tta_lib.batch_count(z)
    metrics = {"gate_fired": fired.astype(jnp.float32),
               "source_confidence": conf, "gate": gate,
               "backward_samples": b, "backward_rows": b}
    return jnp.mean(ce), tta_lib.step_aux(ctx, method_state, target, metrics)
  return apply


def ema_update(teacher, student, ema):
  """`ema * teacher + (1 - ema) * student`, one tree op."""
  return jax.tree.map(lambda t, s: ema * t + (1.0 - ema) * s, teacher,
                      student)


def stochastic_restore(params, source, prob, rng):
  """Each element reset to its source value with probability `prob`."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.tree.unflatten(treedef, list(jax.random.split(rng, len(leaves))))
  return jax.tree.map(
      lambda w, w0, k: jnp.where(jax.random.uniform(k, w.shape) < prob, w0,
                                 w), params, source, keys)


def after_update(hp, ctx, params, method_state, rng):
  """EMA teacher from the updated student, then the stochastic restore."""
  del ctx
  teacher = ema_update(method_state["teacher"], params, hp["ema"])
  params = stochastic_restore(params, method_state["source"],
                              hp["restore_prob"], rng)
  return params, {**method_state, "teacher": teacher}


def predict(hp, ctx, params, method_state, batch):
  del hp, params, batch
  return {"logits": tta_lib.forward(ctx, method_state["teacher"])}


@method_lib.register_method("cotta")
def make(config: dict[str, Any]) -> method_lib.Method:
  num_aug = int(config.get("num_aug", 32))
  loss = str(config.get("loss", "ce"))
  hflip = config.get("hflip", True)
  if not isinstance(hflip, bool):
    raise ValueError(f"cotta: hflip={hflip!r} must be True or False")
  if num_aug < 1 or loss not in ("ce", "symmetric"):
    raise ValueError(f"cotta: num_aug={num_aug} must be >= 1 and "
                     f"loss={loss!r} one of ('ce', 'symmetric')")
  return method_lib.Method(
      name="cotta", init=init, apply=make_apply(num_aug, loss, hflip),
      after_update=after_update, predict=predict, trainable="all",
      rules=RULES,
      hparams=lambda cfg, run: hparams(
          {k: v for k, v in cfg.items() if k not in STATIC_KEYS}, run))
