"""CRKD: Class-relation Knowledge Distillation for Novel Class Discovery.

Gu, Zhang, Xu, He. ICCV 2023. arXiv:2307.09158.
Official code (PyTorch, UNO base): https://github.com/kleinzcy/Cr-KD-NCD
(`model/losses.py:KD`, `rKD.py:train_discover`).

A model trained on the known classes (the supervised stage of UNO) is kept
frozen as the teacher. Its known-class distribution on an unlabelled
(novel-class) example is that example's *class relation*; CRKD distils it
into the known-class head of the discovering student, weighted per example:

    p_T = softmax(z_T / (t T))         teacher known head       [V, b, L]
    q_h = softmax([z_S, u_h] / (t T))  student known + novel h  [V, H, b, L+K]
    p_S = softmax(z_S / (t T))         student known head alone [V, b, L]
    w_h = sum_{c < L} q_h[c]           mass the student puts on the known
                                       classes, divided by its mean over
                                       views, heads and unlabelled rows
    KD_h = mean over views and unlabelled rows of
           T^2 * w_h * sum_c -p_T[c] log p_S[c]
    loss = UNO loss + alpha * mean_h KD_h

with `t` UNO's `temperature` (0.1) and `T` = `kd_temperature` (4).

The "learnable weighting function" of the paper, as the official code
trains it (checked against `losses.py:KD`, commit 0f55bea): there is no
separate weighting network; `w` is the student's own softmax mass on the
known classes, computed from the same logits and *not* detached, so the KD
term's gradient also reaches `w` (and through it the novel heads), and the
mean-normalisation keeps it from collapsing to zero. The divergence is the
cross-entropy `-sum p_T log p_S` (KL plus the teacher's entropy; the two
differ in gradient here because `w` is trained). The teacher runs in eval
mode (BatchNorm running statistics) on the same augmented views as the
student.

Here the teacher (params and BatchNorm statistics of the known-class model,
without the novel heads) lives in `method_state["teacher"]` and is applied
inside the jitted step; `init` copies it from the run's initial parameters,
which the `finetune` protocol sets to the pretraining run's result.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from algos.discovery import uno
from common import config as config_lib
from common.core import method as method_lib

RULES = {
    "alpha": config_lib.at_least(0.0),
    "kd_temperature": config_lib.greater_than(0.0),
}


def class_relation(teacher_logits: jax.Array, temperature: jax.Array,
                   kd_temperature: jax.Array) -> jax.Array:
  """`[..., L]` the teacher's known-class distribution (class relation)."""
  return jax.nn.softmax(teacher_logits / temperature / kd_temperature, -1)


def crkd_loss(teacher_lab: jax.Array, student_lab: jax.Array,
              student_unlab: jax.Array, unlabelled: jax.Array,
              temperature: jax.Array, kd_temperature: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
  """The weighted relation-distillation loss of each head.

  Args:
    teacher_lab: `[V, b, L]` the frozen teacher's known-head logits.
    student_lab: `[V, b, L]` the student's known-head logits.
    student_unlab: `[V, H, b, K]` the student's novel heads' logits.
    unlabelled: `[b]` bool, the rows distilled.
    temperature: UNO's logit temperature `t`.
    kd_temperature: the distillation temperature `T`.

  Returns:
    `([H] loss per head, [V, H, b] normalised weights)`.
  """
  num_views, num_heads = student_unlab.shape[:2]
  scale = temperature * kd_temperature
  p_t = jax.lax.stop_gradient(
      class_relation(teacher_lab, temperature, kd_temperature))
  log_p_s = jax.nn.log_softmax(student_lab / scale, -1)
  lab = jnp.broadcast_to(student_lab[:, None],
                         (num_views, num_heads, *student_lab.shape[1:]))
  q = jax.nn.softmax(jnp.concatenate([lab, student_unlab], -1) / scale, -1)
  weight = jnp.sum(q[..., :student_lab.shape[-1]], -1)          # [V, H, b]
  rows = jnp.broadcast_to(unlabelled, weight.shape).astype(jnp.float32)
  n = jnp.maximum(jnp.sum(unlabelled.astype(jnp.float32)), 1.0)
  weight = weight / (jnp.sum(weight * rows) / (n * num_views * num_heads))
  ce = -jnp.sum(p_t * log_p_s, -1)                              # [V, b]
  per_row = kd_temperature ** 2 * weight * ce[:, None]          # [V, H, b]
  per_head = jnp.sum(per_row * rows, axis=(0, 2)) / (n * num_views)
  return per_head, weight


def teacher_logits(ctx: method_lib.StepContext, teacher: dict[str, Any],
                   views: list) -> jax.Array:
  """`[V, b, L]` the frozen teacher's eval-mode known-head logits."""
  return jnp.stack([jax.lax.stop_gradient(ctx.forward(
      teacher["params"], v, train=False, model_state=teacher["model_state"],
      unlab=False)[0]["logits"]) for v in views])


def kd_term(hp, ctx, method_state, views, lab, unlab, labelled):
  """CRKD's term of the discovery loss (`uno.KDTerm`)."""
  per_head, weight = crkd_loss(
      teacher_logits(ctx, method_state["teacher"], views), lab, unlab,
      ~labelled, hp["temperature"], hp["kd_temperature"])
  kd = hp["alpha"] * jnp.mean(per_head)
  unl = (~labelled).astype(jnp.float32)
  w_std = jnp.sqrt(jnp.sum(jnp.square(weight - 1.0) * unl)
                   / jnp.maximum(jnp.sum(unl) * weight.shape[0]
                                 * weight.shape[1], 1.0))
  return kd, {"kd_loss": kd, "kd_weight_std": w_std}


@method_lib.register_method("crkd")
def make(config: dict[str, Any]) -> method_lib.Method:
  """UNO + CRKD (`alpha`, `kd_temperature`, UNO's numbers)."""
  return uno.discovery_method("crkd", config, uno.sinkhorn_labels(config),
                              kd_term, RULES)

