"""Correctness-aware (CA) calibration: a per-sample temperature predicted
from the classifier's predictions on transformed copies, trained with the
correctness-aware loss.

Paper: Optimizing Calibration by Gaining Aware of Prediction Correctness,
Yuchi Liu, Lei Wang, Yuli Zou, James Zou, Liang Zheng, arXiv:2404.13016.
Official code: liuyvchi/Correctness-aware-calibration (PyTorch, @d843d4b:
`src/run_cal.py`, `src/cal_metrics/temperature_scaling_CA.py`).

Calibrator (official `Temperature_adaptive(input_dim=12, feat_dim=5)`):

    top   = top-K classes of the original logits z          (K = 4)
    feats = [softmax(z_rot)[top], softmax(z_grey)[top],
             softmax(z_jit)[top]]                             [b, 3K]
    T     = clip(W2 relu(W1 feats + b1) + b2, 0.1, 10)        [b]
    calibrated logits = z / T

CA loss, official (`set_temperature`): with `conf` the top-1 softmax of the
calibrated logits and `c = 1[argmax z = y]`,

    l_i = (conf_i - c_i)^2,   w_i = 1 - acc if c_i else acc  (acc = mean c
    over the mini-batch),     L = sum_i w_i l_i / sum_i w_i.

Switches (method config): `balance` (1: the official class-balancing
weights, 0: the plain mean), `form` ("squared": the official squared error;
"bce": `-c log conf - (1 - c) log(1 - conf + 1e-6)`, the log form left
commented out in the official `set_temperature`). The paper's own equation
could not be read offline (the arXiv text was not reachable from this
machine); the official code's objective is the default.

Differences from the official code, on purpose:
* The official calibrator also holds a correctness head (`embed_layer2`,
  `correctness_layer`) and a scalar `temperature`; neither enters the loss
  or the calibrated logits, so they are left out.
* `t_bias` (default 0: the official init) is added to the temperature
  layer's initial bias. With torch's init the first temperatures are
  about 0 +- 0.3, so often clipped to 0.1 for every row, where the clip
  passes no gradient and the calibrator never moves (seen on digits);
  `t_bias=1` starts it near T = 1.
* A mini-batch in which every prediction is right (or every one wrong)
  gives the official weights a zero sum (0/0, NaN in PyTorch); here its
  loss is 0 (no update), which only matters for very accurate models.
* Training runs through the shared train step (any optimizer/schedule;
  the official Adam 1e-4, batch 1000, 10 epochs on ImageNet-val is in
  `third_party_configs/ca_calib`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.calibration import frozen
from algos.calibration import views as views_lib
from common import config as config_lib
from common.core import method as method_lib

FORMS = ("squared", "bce")
DEFAULTS = dict(top_k=4, hidden=5, t_min=0.1, t_max=10.0, balance=1.0,
                form="squared", rotation_deg=15.0, jitter=0.4, hue=0.1,
                t_bias=0.0, image_key="image")
# Traced numbers (a sweep never recompiles); the rest is structure.
_TRACED = ("t_min", "t_max", "balance", "rotation_deg", "jitter", "hue")
# `t_bias` is read by `init` only.
# Colour-jitter draws at evaluation: a fixed key, so a test image's
# transformed copies do not depend on the training run.
_EVAL_KEY = 20240419


def consistency_features(view_logits: jax.Array, top_k: int) -> jax.Array:
  """The calibrator's input (official `temp_args`).

  Args:
    view_logits: `[V, b, C]` logits of the original (view 0) and V - 1
      transformed copies.
    top_k: K, the original prediction's classes that are read.

  Returns:
    `[b, (V - 1) * K]`: for each transformed view in order, its softmax
    at the original logits' top-K classes (in descending order).
  """
  _, top = jax.lax.top_k(view_logits[0], top_k)               # [b, K]
  probs = jax.nn.softmax(view_logits[1:], axis=-1)            # [V-1, b, C]
  gathered = jnp.take_along_axis(probs, top[None], axis=-1)   # [V-1, b, K]
  return jnp.concatenate(list(gathered), axis=-1)


def init_calibrator(rng: jax.Array, in_dim: int, hidden: int,
                    t_bias: float = 0.0) -> dict:
  """The calibrator MLP with torch's default Linear init (`t_bias` added
  to the temperature layer's bias)."""
  k1, k2 = jax.random.split(rng)
  temperature = frozen.torch_linear_init(k2, hidden, 1)
  temperature["bias"] = temperature["bias"] + t_bias
  return {"embed": frozen.torch_linear_init(k1, in_dim, hidden),
          "temperature": temperature}


def sample_temperature(params: dict, feats: jax.Array, t_min: jax.Array,
                       t_max: jax.Array) -> jax.Array:
  """`[b]` temperatures `clip(W2 relu(W1 f + b1) + b2, t_min, t_max)`."""
  h = jax.nn.relu(feats @ params["embed"]["kernel"] + params["embed"]["bias"])
  t = h @ params["temperature"]["kernel"] + params["temperature"]["bias"]
  return jnp.clip(t[:, 0], t_min, t_max)


def ca_loss(calibrated_logits: jax.Array, correct: jax.Array,
            mask: jax.Array, balance: jax.Array | float = 1.0,
            form: str = "squared") -> jax.Array:
  """The correctness-aware loss (see the module docstring).

  Args:
    calibrated_logits: `[b, C]`.
    correct: `[b]` bool, the classifier's top-1 prediction is right.
    mask: `[b]` bool, rows that count.
    balance: 1 = the official class-balancing weights, 0 = plain mean
      (values in between interpolate).
    form: "squared" (official) or "bce".

  Returns:
    Scalar loss.
  """
  if form not in FORMS:
    raise ValueError(f"form={form!r}; allowed: {FORMS}")
  conf = jnp.max(jax.nn.softmax(calibrated_logits, axis=-1), axis=-1)
  c = correct.astype(jnp.float32)
  if form == "squared":
    per_example = jnp.square(conf - c)
  else:
    per_example = -(c * jnp.log(conf)
                    + (1.0 - c) * jnp.log(1.0 - conf + 1e-6))
  m = mask.astype(jnp.float32)
  acc = jnp.sum(c * m) / jnp.maximum(jnp.sum(m), 1.0)
  balanced = jnp.where(correct, 1.0 - acc, acc)
  w = (balance * balanced + (1.0 - balance)) * m
  return jnp.sum(w * per_example) / jnp.maximum(jnp.sum(w), 1e-12)


def _calibrate(hp, ctx, params, method_state, batch, rng, cfg):
  """`(calibrated logits [b, C], original logits [b, C], T [b])`."""
  x = batch[cfg["image_key"]].astype(jnp.float32) / 255.0
  views = views_lib.transformed_views(rng, x, hp["rotation_deg"],
                                      hp["jitter"], hp["hue"])
  v, b = views.shape[:2]
  # One forward over the four copies (eval mode: no cross-row effects).
  flat = frozen.classifier_logits(ctx, method_state, ctx.normalize(
      views.reshape(v * b, *views.shape[2:])))
  view_logits = flat.reshape(v, b, -1)
  feats = consistency_features(view_logits, cfg["top_k"])
  t = sample_temperature(params, feats, hp["t_min"], hp["t_max"])
  return view_logits[0] / t[:, None], view_logits[0], t


def _check(config: dict) -> dict:
  unknown = sorted(set(config) - set(DEFAULTS))
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.ca_calib has unknown keys {unknown}; allowed: "
        f"{sorted(DEFAULTS)}")
  cfg = {**DEFAULTS, **config}
  if cfg["form"] not in FORMS:
    raise config_lib.ConfigError(
        f"config.method.ca_calib.form={cfg['form']!r}; allowed: {FORMS}")
  return cfg


RULES = {"top_k": config_lib.at_least(1, integer=True),
         "hidden": config_lib.at_least(1, integer=True),
         "t_min": config_lib.greater_than(0.0),
         "t_max": config_lib.greater_than(0.0),
         "balance": config_lib.between(0.0, 1.0),
         "jitter": config_lib.between(0.0, 1.0),
         "hue": config_lib.between(0.0, 0.5)}


@method_lib.register_method("ca_calib")
def make(config: dict) -> method_lib.Method:
  """CA calibration with the method config `config` (keys of `DEFAULTS`)."""
  cfg = _check(config)

  def hparams(method_config, run):
    del run
    c = {**DEFAULTS, **method_config}
    return {k: float(c[k]) for k in _TRACED}

  def init(rng, ctx):
    views = len(views_lib.VIEWS) - 1
    return frozen.init_frozen(ctx, init_calibrator(
        rng, views * cfg["top_k"], cfg["hidden"], float(cfg["t_bias"])))

  def apply(hp, ctx, params, method_state, batch, rng):
    logits, raw, t = _calibrate(hp, ctx, params, method_state, batch, rng,
                                cfg)
    correct = jnp.argmax(raw, axis=-1) == batch["label"]
    loss = ca_loss(logits, correct, batch["mask"], hp["balance"],
                   cfg["form"])
    m = batch["mask"]
    metrics = {"ca_loss": loss,
               "temperature": method_lib.masked_mean(t, m),
               "accuracy": method_lib.masked_mean(
                   correct.astype(jnp.float32), m)}
    return loss, method_lib.StepAux(metrics, ctx.model_state, method_state)

  def predict(hp, ctx, params, method_state, batch):
    logits, _, t = _calibrate(hp, ctx, params, method_state, batch,
                              jax.random.PRNGKey(_EVAL_KEY), cfg)
    return {"logits": logits, "temperature": t}

  return method_lib.Method(name="ca_calib", init=init, apply=apply,
                           predict=predict, hparams=hparams, rules=RULES)
