"""Random Teachers are Good Teachers: DINO distillation into a random teacher.

Paper: F. Sarnthein, G. Bachmann, S. Anagnostidis, T. Hofmann, "Random
Teachers are Good Teachers", ICML 2023, arXiv 2302.12091.
Official code: github.com/safelix/dinopl (PyTorch Lightning; read, not
copied): `dinopl/core.py` (`DINOHead.forward` centring, `DINO.
multicrop_loss_clf`, `DINOTeacherUpdater.ema`), `configuration.py`
(`init_student_teacher`: `s_init` teacher / random / neighborhood /
interpolated), `configs/cifar10_distillation*.json`.

A student network is trained to match a frozen, randomly initialised teacher
of the same architecture on the *same* un-augmented input (official
`mc='1x32'`: one full-size crop, no augmentation, `loss_pairing='same'`):

  L = mean_b CE(softmax((t_b - c) / tau_t), log_softmax(s_b / tau_s)),

with `t, s` the projections of the DINO head (`algos/distillation/
dino_head.py`) and `c` the teacher's centre, updated after it is applied:
`c <- m c + (1 - m) mean_b t_b` (official `t_cmom`; `centering=False` is
the official `t_cmom=nan`). The teacher runs in eval mode (`t_eval=True`,
BatchNorm on its initial running statistics). The student starts at
`teacher + eps * fresh` (`s_init='neighborhood'`, a fresh independent
initialisation `fresh`; eps 0 = the official default `s_init='teacher'`),
optionally divided by `sqrt(1 + eps^2)` (`var_preserving`), at
`(1 - alpha) teacher + alpha fresh` (`init='interpolated'`, `init_alpha`,
divided by `sqrt(2 alpha^2 - 2 alpha + 1)` if `var_preserving`: the
paper's locality sweep, official `s_init='interpolated'`), or from an
independent initialisation (`init='independent'`, `s_init='random'`).

`teacher='ema'` turns it into DINO's teacher: after each optimizer step,
`teacher <- m teacher + (1 - m) student` with m on DINO's cosine schedule
from `ema_momentum` to 1 (official `t_mom=CosSched(0.996, 1)`), the model
state (BatchNorm statistics) averaged alike (official
`t_bn_mode='from_student'`).

Everything lives in `method_state` and is updated inside the jitted step:
`{"teacher": params, "teacher_state": model state, "center": [out_dim]}`.
`predict` adds the teacher's embedding as "teacher_features", so the linear
probe (`common/eval/linear_probe.py`) scores student and teacher.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

TEACHERS = ("frozen", "ema")
INITS = ("neighborhood", "interpolated", "independent")


def dino_loss(student_proj: jax.Array, teacher_proj: jax.Array,
              center: jax.Array, student_temp: jax.Array,
              teacher_temp: jax.Array) -> dict[str, jax.Array]:
  """The DINO loss of one view pair and its parts.

  Args:
    student_proj: `[b, K]` student projections.
    teacher_proj: `[b, K]` teacher projections (no gradient flows into them).
    center: `[K]` teacher centre.
    student_temp, teacher_temp: scalars tau_s, tau_t.

  Returns:
    `ce` (the loss, mean over the batch), `kl` (= ce - teacher entropy),
    `teacher_entropy`, `student_entropy` (batch means).
  """
  teacher_proj = jax.lax.stop_gradient(teacher_proj)
  log_t = jax.nn.log_softmax((teacher_proj - center) / teacher_temp, -1)
  log_s = jax.nn.log_softmax(student_proj / student_temp, -1)
  p_t, p_s = jnp.exp(log_t), jnp.exp(log_s)
  ce = -jnp.sum(p_t * log_s, -1)
  h_t = -jnp.sum(p_t * log_t, -1)
  return {"ce": jnp.mean(ce), "kl": jnp.mean(ce - h_t),
          "teacher_entropy": jnp.mean(h_t),
          "student_entropy": jnp.mean(-jnp.sum(p_s * log_s, -1))}


def update_center(center: jax.Array, teacher_proj: jax.Array,
                  momentum: jax.Array) -> jax.Array:
  """`m c + (1 - m) mean_b t_b`: `center` `[K]`, `teacher_proj` `[b, K]`
  (the mean is over the global batch)."""
  batch_center = jnp.mean(jax.lax.stop_gradient(teacher_proj), axis=0)
  return center * momentum + batch_center * (1.0 - momentum)


def init_near_teacher(teacher: Any, fresh: Any, eps: float,
                      var_preserving: bool = False) -> Any:
  """`teacher + eps * fresh` leafwise (`/ sqrt(1 + eps^2)` if
  `var_preserving`), as the official `s_init='neighborhood'`."""
  scale = 1.0 / math.sqrt(1.0 + eps * eps) if var_preserving else 1.0
  return jax.tree.map(lambda t, f: (t + eps * f) * scale, teacher, fresh)


def init_interpolated(teacher: Any, fresh: Any, alpha: float,
                      var_preserving: bool = False) -> Any:
  """`(1 - alpha) teacher + alpha fresh` leafwise (`/ sqrt(2 alpha^2 - 2
  alpha + 1)` if `var_preserving`), as the official `s_init='interpolated'`.
  """
  scale = (1.0 / math.sqrt(2 * alpha * alpha - 2 * alpha + 1)
           if var_preserving else 1.0)
  return jax.tree.map(lambda t, f: ((1 - alpha) * t + alpha * f) * scale,
                      teacher, fresh)


def ema_momentum_at(base: jax.Array, step: jax.Array,
                    total_steps: int) -> jax.Array:
  """DINO's cosine schedule from `base` (step 0) to 1 (the last step)."""
  frac = step.astype(jnp.float32) / max(total_steps - 1, 1)
  return 1.0 - (1.0 - base) * (jnp.cos(jnp.pi * frac) + 1.0) / 2.0


def ema(old: Any, new: Any, momentum: jax.Array) -> Any:
  """`m old + (1 - m) new` on the float leaves (others: `new`)."""
  def mix(o, n):
    if not jnp.issubdtype(n.dtype, jnp.floating):
      return n
    return (momentum * o + (1.0 - momentum) * n).astype(n.dtype)
  return jax.tree.map(mix, old, new)


RULES = {
    "teacher": config_lib.one_of(*TEACHERS),
    "init": config_lib.one_of(*INITS),
    "init_eps": config_lib.at_least(0.0),
    "init_alpha": config_lib.between(0.0, 1.0),
    "student_temp": config_lib.greater_than(0.0),
    "teacher_temp": config_lib.greater_than(0.0),
    "center_momentum": config_lib.between(0.0, 1.0),
    "ema_momentum": config_lib.between(0.0, 1.0),
}
DEFAULTS = dict(teacher="frozen", init="neighborhood", init_eps=0.0,
                init_alpha=0.0, var_preserving=False, centering=True,
                student_temp=0.1, teacher_temp=0.04, center_momentum=0.9,
                ema_momentum=0.996)


@method_lib.register_method("random_teachers")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The method; `method_config` keys: see `DEFAULTS` (the official
  `cifar10_distillation.json` values: centring 0.9, tau_t 0.04, tau_s 0.1)."""
  unknown = set(method_config) - set(DEFAULTS)
  if unknown:
    raise ValueError(f"config.method.random_teachers has {sorted(unknown)}; "
                     f"allowed {sorted(DEFAULTS)}")
  cfg = {**DEFAULTS, **method_config}
  for key in ("teacher", "init"):
    if not RULES[key].test(cfg[key]):
      raise config_lib.ConfigError(
          f"config.method.random_teachers.{key}={cfg[key]!r}; allowed "
          f"{RULES[key].allowed}")
  use_ema, centering = cfg["teacher"] == "ema", bool(cfg["centering"])

  def hparams(mc, run):
    del run
    mc = {**DEFAULTS, **mc}
    return {k: float(mc[k]) for k in ("student_temp", "teacher_temp",
                                      "center_momentum", "ema_momentum")}

  def init(rng, ctx: method_lib.InitContext):
    out_dim = getattr(ctx.model, "out_dim", None)
    if out_dim is None or ctx.init_params is None:
      raise ValueError("method random_teachers needs model 'dino_net' (a "
                       "projection head with out_dim) built by the harness")
    teacher = ctx.params   # the run's random initialisation
    fresh = ctx.init_params(rng)
    if cfg["init"] == "independent":
      student = fresh
    elif cfg["init"] == "interpolated":
      student = init_interpolated(teacher, fresh, float(cfg["init_alpha"]),
                                  bool(cfg["var_preserving"]))
    else:
      student = init_near_teacher(teacher, fresh, float(cfg["init_eps"]),
                                  bool(cfg["var_preserving"]))
    state = {"teacher": teacher, "teacher_state": ctx.model_state,
             "center": jnp.zeros((out_dim,), jnp.float32)}
    return method_lib.InitOutput(method_state=state, params=student)

  def apply(hp, ctx: method_lib.StepContext, params, method_state, batch,
            rng):
    del batch, rng
    student, model_state = ctx.forward(params)
    teacher, _ = ctx.forward(method_state["teacher"], train=False,
                             model_state=method_state["teacher_state"])
    t_proj = jax.lax.stop_gradient(teacher["logits"])
    parts = dino_loss(student["logits"], t_proj, method_state["center"],
                      hp["student_temp"], hp["teacher_temp"])
    new_state = dict(method_state)
    if centering:
      new_state["center"] = update_center(method_state["center"], t_proj,
                                          hp["center_momentum"])
    metrics = {**parts, "center_norm": jnp.linalg.norm(new_state["center"])}
    return parts["ce"], method_lib.StepAux(metrics, model_state, new_state)

  def after_update(hp, ctx: method_lib.StepContext, params, method_state,
                   rng):
    del rng
    m = ema_momentum_at(hp["ema_momentum"], ctx.step, ctx.run.total_steps)
    state = dict(method_state)
    state["teacher"] = ema(method_state["teacher"], params, m)
    state["teacher_state"] = ema(method_state["teacher_state"],
                                 ctx.model_state, m)
    return params, state

  def predict(hp, ctx: method_lib.StepContext, params, method_state, batch):
    del hp, batch
    out = dict(ctx.forward(params, train=False)[0])
    teacher = ctx.forward(method_state["teacher"], train=False,
                          model_state=method_state["teacher_state"])[0]
    out["teacher_features"] = teacher["features"]
    out["teacher_logits"] = teacher["logits"]
    return out

  return method_lib.Method(
      name="random_teachers", hparams=hparams, init=init, apply=apply,
      after_update=after_update if use_ema else None, predict=predict,
      rules=RULES)
