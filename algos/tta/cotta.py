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
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.tta import cotta_augment
from algos.tta import losses
from common import adapt

STATIC_KEYS = ("num_aug", "loss", "hflip")


def hparams(config: dict[str, Any], num_classes: int) -> dict[str, float]:
  del num_classes
  return {"ema": float(config["ema"]),
          "restore_prob": float(config["restore_prob"]),
          "gate": float(config["gate"])}


def init(rng, params, ctx):
  del rng, ctx
  copy = lambda t: jax.tree.map(jnp.copy, t)
  return {"teacher": copy(params), "source": copy(params),
          "gate_fired": jnp.zeros((), jnp.float32)}


def teacher_prediction(hp, teacher, source, images, rng, ctx, num_aug: int,
                       hflip: bool = True):
  """Teacher logits `[b, C]`, augmentation-averaged when the gate fires.

  Returns:
    `(logits, fired)`: `fired` is True when the batch-mean confidence of the
    source model is below `hp["gate"]`.
  """
  anchor = jax.nn.softmax(ctx.forward(source, images, rng), -1)
  conf = jnp.mean(jnp.max(anchor, -1))
  fired = conf < hp["gate"]

  def averaged():
    def body(total, key):
      x = cotta_augment.augment(key, images, hflip=hflip)
      return total + ctx.forward(teacher, x, rng), None
    total, _ = jax.lax.scan(
        body, jnp.zeros((images.shape[0], ctx.num_classes), jnp.float32),
        jax.random.split(rng, num_aug))
    return total / num_aug

  plain = lambda: ctx.forward(teacher, images, rng)
  logits = jax.lax.cond(fired, averaged, plain)
  return jax.lax.stop_gradient(logits), fired, conf


def make_adapt(num_aug: int, loss: str, hflip: bool = True):
  def adapt_fn(hp, method_state, params, images, rng, ctx):
    rng_t, rng_s = jax.random.split(rng)
    target, fired, conf = teacher_prediction(
        hp, method_state["teacher"], method_state["source"], images, rng_t,
        ctx, num_aug, hflip)

    def loss_fn(p):
      z = ctx.forward(p, images, rng_s)
      ce = losses.soft_cross_entropy(z, target)
      if loss == "symmetric":  # imagenet/cotta.py
        ce = 0.5 * ce + 0.5 * losses.soft_cross_entropy(
            jax.lax.stop_gradient(target), z)
      return jnp.mean(ce), ()

    (value, _), grads = ctx.value_and_grad(loss_fn, params)
    b = jnp.asarray(images.shape[0], jnp.float32)
    state = {**method_state,
             "gate_fired": method_state["gate_fired"] + fired.astype(
                 jnp.float32)}
    return adapt.AdaptOutput(
        target, grads, jnp.ones((), bool), state,
        {"loss": value, "gate_fired": fired.astype(jnp.float32),
         "source_confidence": conf, "backward_samples": b,
         "backward_rows": b})
  return adapt_fn


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


def after_update(hp, method_state, params, rng, ctx):
  del ctx
  teacher = ema_update(method_state["teacher"], params, hp["ema"])
  params = stochastic_restore(params, method_state["source"],
                              hp["restore_prob"], rng)
  return params, {**method_state, "teacher": teacher}


def predict(hp, method_state, params, images, ctx):
  del hp, params
  return ctx.forward(method_state["teacher"], images)


@adapt.register_tta("cotta")
def make(config: dict[str, Any]) -> adapt.TTAMethod:
  num_aug = int(config.get("num_aug", 32))
  loss = str(config.get("loss", "ce"))
  hflip = config.get("hflip", True)
  if not isinstance(hflip, bool):
    raise ValueError(f"cotta: hflip={hflip!r} must be True or False")
  if num_aug < 1 or loss not in ("ce", "symmetric"):
    raise ValueError(f"cotta: num_aug={num_aug} must be >= 1 and "
                     f"loss={loss!r} one of ('ce', 'symmetric')")
  return adapt.TTAMethod(
      name="cotta", trains="all", init=init, adapt=make_adapt(num_aug, loss, hflip),
      predict=predict, after_update=after_update,
      hparams=lambda cfg, c: hparams(
          {k: v for k, v in cfg.items() if k not in STATIC_KEYS}, c))
