"""Weight compander (WC): an elementwise reparameterisation of chosen weights.

Paper: "Weight Compander: A Simple Weight Reparameterization for
Regularization", Rinor Cakaj, Jens Mehnert, Bin Yang, IJCNN 2023,
arXiv:2306.16993. Official code: no official code.

The network trains raw weights `v`; every forward pass uses the effective
weights `w = wc(v)`, where `wc` is odd and saturating: it bounds `|w|`
(no single weight dominates) and is steep around 0 (slope `gain > 1`: small
raw weights are expanded away from zero, and their gradient is multiplied
by the slope, which "reactivates dead weights", as the abstract puts it).
Compressor for large weights, expander for small ones: a compander.

NOT VERIFIED: the paper's exact function could not be read offline (only
its abstract: `/work/shared/papers/`, the arXiv/OpenReview abstract pages).
This module implements the two forms the abstract's description fits,
selected by `method.weight_compander.form`:

* `"tanh"`:   `w = c * tanh(g * v / c)`
* `"arctan"`: `w = (2 c / pi) * arctan(pi * g * v / (2 c))`

both odd, `|w| < c`, slope `g` at 0, and the identity in the limit
`c -> inf, g = 1`. `mix` blends `w = (1 - mix) * v + mix * wc(v)` so that
`mix = 0` is exactly the baseline network (same numbers, same compiled
step). With `bound_units="fan_in"` the bound of a leaf is
`c / sqrt(fan_in)` (its default-init scale), so one `c` fits every layer.

Learnable hyperparameters (the paper's second variant): with
`learnable=True`, `init` adds `params["weight_compander"][<path>] =
{"log_bound", "log_gain"}` (zeros) for each selected leaf; the effective
bound and gain of the leaf are `c * exp(log_bound)`, `g * exp(log_gain)`,
trained by the optimizer with everything else.

Which leaves: a regex `include` on the "/"-joined parameter path (default
every `kernel`), minus a regex `exclude` (default none).
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax
import jax.numpy as jnp

from algos.baselines import cross_entropy
from common import config as config_lib
from common.core import method as method_lib

PyTree = Any
FORMS = ("tanh", "arctan")
BOUND_UNITS = ("fan_in", "absolute")
HYPER_KEY = "weight_compander"   # top-level params entry (learnable hp)


def compand(v: jax.Array, bound: jax.Array, gain: jax.Array,
            form: str = "tanh") -> jax.Array:
  """The compander of `v` (any shape), elementwise.

  Args:
    v: raw weights.
    bound: `c > 0`, broadcastable to `v`: the supremum of `|w|`.
    gain: `g > 0`, broadcastable: the slope at 0.
    form: one of `FORMS`.

  Returns:
    `w`, the shape of `v`: odd in `v`, `|w| < c`, `dw/dv (0) = g`.
  """
  if form == "tanh":
    return bound * jnp.tanh(gain * v / bound)
  if form == "arctan":
    return (2.0 * bound / jnp.pi) * jnp.arctan(jnp.pi * gain * v / (2 * bound))
  raise ValueError(f"weight_compander form={form!r}; allowed {FORMS}")


def wc(v: jax.Array, bound: jax.Array, gain: jax.Array, mix: jax.Array,
       form: str = "tanh") -> jax.Array:
  """`(1 - mix) * v + mix * compand(v)`: `mix = 0` is the identity."""
  return (1.0 - mix) * v + mix * compand(v, bound, gain, form)


def path_name(path: tuple) -> str:
  """"/"-joined key path of a params leaf, e.g. `conv0/kernel`."""
  return "/".join(str(getattr(k, "key", k)) for k in path)


def selected_paths(params: PyTree, include: str, exclude: str = ""
                   ) -> list[str]:
  """Names of the leaves the compander applies to (static, sorted)."""
  names = [path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(
      {k: v for k, v in params.items() if k != HYPER_KEY})]
  chosen = [n for n in names if re.search(include, n)
            and not (exclude and re.search(exclude, n))]
  if not chosen:
    raise ValueError(f"method.weight_compander.include={include!r} "
                     f"(exclude={exclude!r}) selects no parameter; "
                     f"parameters: {names}")
  return sorted(chosen)


def leaf_bound_scale(shape: tuple[int, ...], units: str) -> float:
  """The factor of `c` for a leaf: `1 / sqrt(fan_in)` or 1."""
  if units == "absolute":
    return 1.0
  if units == "fan_in":
    fan_in = math.prod(shape[:-1]) if len(shape) > 1 else 1
    return 1.0 / math.sqrt(max(fan_in, 1))
  raise ValueError(f"weight_compander bound_units={units!r}; allowed "
                   f"{BOUND_UNITS}")


def effective_params(params: PyTree, hp: dict[str, jax.Array],
                     cfg: dict[str, Any]) -> PyTree:
  """Raw params (with the learnable entry, if any) -> the model's params.

  Args:
    params: the trained pytree; `params[HYPER_KEY]` holds learnable
      `log_bound` / `log_gain` scalars by leaf name when `cfg["learnable"]`.
    hp: traced `bound`, `gain`, `mix`.
    cfg: the method's static config (`include`, `exclude`, `form`,
      `bound_units`, `learnable`).

  Returns:
    The model's params (no `HYPER_KEY`), selected leaves companded.
  """
  learned = params.get(HYPER_KEY, {}) if cfg["learnable"] else {}
  model_params = {k: v for k, v in params.items() if k != HYPER_KEY}
  chosen = set(selected_paths(model_params, cfg["include"], cfg["exclude"]))

  def visit(path, v):
    name = path_name(path)
    if name not in chosen:
      return v
    bound = hp["bound"] * leaf_bound_scale(v.shape, cfg["bound_units"])
    gain = hp["gain"]
    if name in learned:
      bound = bound * jnp.exp(learned[name]["log_bound"])
      gain = gain * jnp.exp(learned[name]["log_gain"])
    return wc(v, bound.astype(v.dtype), gain.astype(v.dtype),
              hp["mix"].astype(v.dtype), cfg["form"])
  return jax.tree_util.tree_map_with_path(visit, model_params)


_DEFAULTS = dict(form="tanh", include=r"kernel$", exclude="",
                 bound_units="fan_in", learnable=False, bound=3.0, gain=1.5,
                 mix=1.0, label_smoothing=0.0)


def make_method(config: dict[str, Any]) -> method_lib.Method:
  """The WC method: cross-entropy on the forward with companded weights."""
  cfg = {**_DEFAULTS, **config}
  unknown = set(cfg) - set(_DEFAULTS)
  if unknown:
    raise ValueError(f"unknown method.weight_compander keys {sorted(unknown)};"
                     f" allowed {sorted(_DEFAULTS)}")
  if cfg["form"] not in FORMS:
    raise ValueError(f"method.weight_compander.form={cfg['form']!r}; allowed "
                     f"{FORMS}")
  if cfg["bound_units"] not in BOUND_UNITS:
    raise ValueError(f"method.weight_compander.bound_units="
                     f"{cfg['bound_units']!r}; allowed {BOUND_UNITS}")
  static = {k: cfg[k] for k in ("form", "include", "exclude", "bound_units",
                                "learnable")}

  def hparams(method_config, run):
    del run
    merged = {**_DEFAULTS, **method_config}
    return {k: float(merged[k]) for k in ("bound", "gain", "mix",
                                          "label_smoothing")}

  def init(rng, ctx: method_lib.InitContext):
    del rng
    names = selected_paths(ctx.params, cfg["include"], cfg["exclude"])
    if not cfg["learnable"]:
      return {}
    zero = lambda: jnp.zeros((), jnp.float32)
    hyper = {n: {"log_bound": zero(), "log_gain": zero()} for n in names}
    return method_lib.InitOutput(method_state={},
                                 params={**ctx.params, HYPER_KEY: hyper})

  def apply(hp, ctx: method_lib.StepContext, params, method_state, batch,
            rng):
    outputs, model_state = ctx.forward(effective_params(params, hp, static))
    loss, metrics, method_state = cross_entropy.loss(
        hp, method_state, outputs, batch, params, rng)
    if cfg["learnable"]:
      hyper = params[HYPER_KEY]
      metrics["bound_factor"] = jnp.mean(jnp.stack(
          [jnp.exp(h["log_bound"]) for h in hyper.values()]))
      metrics["gain_factor"] = jnp.mean(jnp.stack(
          [jnp.exp(h["log_gain"]) for h in hyper.values()]))
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  def predict(hp, ctx, params, method_state, batch):
    del method_state, batch
    return ctx.forward(effective_params(params, hp, static), train=False)[0]

  return method_lib.Method(
      name="weight_compander", init=init, apply=apply, predict=predict,
      hparams=hparams,
      rules={"bound": config_lib.greater_than(0.0),
             "gain": config_lib.greater_than(0.0),
             "mix": config_lib.between(0.0, 1.0),
             "label_smoothing": config_lib.between(0.0, 1.0),
             "form": config_lib.one_of(*FORMS),
             "bound_units": config_lib.one_of(*BOUND_UNITS)})


@method_lib.register_method("weight_compander")
def make(config: dict) -> method_lib.Method:
  return make_method(config)
