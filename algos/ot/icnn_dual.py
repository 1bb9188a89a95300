"""The W2 neural dual with ICNN potentials, on the shared train step.

Makkuva, Taghvaei, Oh, Lee. "Optimal transport mapping via input convex
neural networks", ICML 2020, arXiv:1908.10962; with the amortised,
fine-tuned conjugate of Amos, "On amortizing convex conjugates for optimal
transport", ICLR 2023, arXiv:2210.12153. Reference implementation: ott-jax's
`ott.neural.methods.neuraldual.W2NeuralDual` (0.6), whose step this ports:
the Monge-gap paper's ICNN baseline.

Two ICNN potentials (ott's `ICNN`): f, whose gradient maps the source to
the target, and g ~ f*, whose gradient initialises the conjugate solve.
One step (ott's default `parallel_updates=True, num_inner_iters=1`):

    x_hat(y) = argmin_x f(x) - <x, y>   (ott's conjugate solver, started at
                                         grad g(y), gradient stopped)
    dual   = E_x f(x) + E_y [<x_hat, y> - f(x_hat)]
    amort. = E ||grad g(y) - x_hat||^2  ("regression"; "objective" when
                                         there is no conjugate solver)
    loss   = dual + amort. [+ beta (||relu(-W_z^f)|| + ||relu(-W_z^g)||)]

one gradient of `loss` with respect to {f, g} and one Adam update of both
(ott updates f and g with two Adams of the same settings: elementwise, the
same as one Adam over both). Without positive-weight projection
(`pos_weights=False`) the loss penalises negative W_z kernels and
`after_update` clips f's to >= 0, as ott does. The conjugate solve is an
inner optimisation problem solved by ott's `FenchelConjugateLBFGS` (jaxopt
L-BFGS), not a training update. The map is `grad f` (`predict`:
"mapped"); ott's `DualPotentials.transport` of this solver returns the
midpoint `(x + grad f(x)) / 2` in ott-jax 0.6 (see the monge_gap README),
so it is not used. Test: `tests/algos/ot/test_icnn_dual.py` checks one
step against ott's own `W2NeuralDual` step.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from ott.neural.networks import icnn
from ott.neural.networks.layers import conjugate

from common import config as config_lib
from common.core import method as method_lib
from common.models import registry as model_registry

CONJUGATES = ("lbfgs", "lbfgs_short", "none")


def potential_net(model: "ICNNDual", dim: int, **kwargs: Any) -> icnn.ICNN:
  """The (unbound) ICNN of one potential of `model` on `dim`-d points."""
  ranks = 1
  if model.gaussian_init:   # a full-rank quadratic term, as ott's Bures init
    ranks = (1,) * (len(model.dim_hidden) + 1) + (dim,)
  return icnn.ICNN(dim_data=dim, dim_hidden=tuple(model.dim_hidden),
                   pos_weights=model.pos_weights, ranks=ranks, **kwargs)


@model_registry.register_model("icnn_dual")
class ICNNDual(nn.Module):
  """The potentials f and g: `[b, d] -> {"f": [b], "g": [b]}`.

  Attributes:
    num_classes: unused (the model registry's first argument).
    dim_hidden: hidden widths of both ICNNs.
    pos_weights: ott's positive-weight projection of the W_z kernels; False:
      a penalty and clipping instead (the method's `beta`).
    gaussian_init: full-rank quadratic terms, which the method's `init`
      sets to the Bures map between Gaussian fits of the two measures
      (ott's `gaussian_map_samples`, Bunne et al. 2022).
    dtype: unused (ott's ICNN computes in float32).
  """
  num_classes: int = 0
  dim_hidden: Sequence[int] = (64, 64, 64, 64)
  pos_weights: bool = True
  gaussian_init: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    del train
    dim = x.shape[-1]
    return {"f": potential_net(self, dim, name="f")(x),
            "g": potential_net(self, dim, name="g")(x)}


def _value(net: icnn.ICNN, params: Any):
  return lambda x: net.apply({"params": params}, x)


def _negative_weight_penalty(params: Any) -> jax.Array:
  return sum(jnp.linalg.norm(jax.nn.relu(-p["kernel"]))
             for k, p in params.items() if k.startswith("w_z"))


def _clip_weights(params: Any) -> Any:
  return {k: ({**p, "kernel": jnp.clip(p["kernel"], 0.0)}
              if k.startswith("w_z") else p) for k, p in params.items()}


@method_lib.register_method("w2_neural_dual")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The W2 neural dual step (see the module docstring).

  Args:
    method_config: `conjugate` ("lbfgs": ott's default solver, 20 L-BFGS
      steps at gtol 1e-5; "lbfgs_short": `FenchelConjugateLBFGS` with
      `conjugate_max_iter` steps at gtol 1e-3; "none": no solver, g trained
      with the "objective" amortisation), `conjugate_max_iter`, `beta`
      (traced: weight of the negative-weight penalty when the model has no
      positive-weight projection), `gaussian_init_samples` (points of each
      measure for the Bures-map init of a `gaussian_init` model).

  Returns:
    The Method; batches hold the source points as the model input and the
    target points under "y" `[b, d]`; `predict` returns "mapped" = grad f.
  """
  cfg = dict(method_config)
  kind = cfg.get("conjugate", "lbfgs")
  if kind not in CONJUGATES:
    raise config_lib.ConfigError(
        f"config.method.w2_neural_dual.conjugate={kind!r}; allowed: "
        f"{list(CONJUGATES)}")
  max_iter = int(cfg.get("conjugate_max_iter", 5))
  n_init = int(cfg.get("gaussian_init_samples", 1024))
  if kind == "lbfgs":
    solver = conjugate.DEFAULT_CONJUGATE_SOLVER
  elif kind == "lbfgs_short":
    solver = conjugate.FenchelConjugateLBFGS(max_iter=max_iter)
  else:
    solver = None

  def hparams(method_cfg, run):
    del run
    return {"beta": float(method_cfg.get("beta", 1.0))}

  def init(rng, ctx):
    if not ctx.model.gaussian_init:
      return {}
    if ctx.sample is None:
      raise ValueError("model icnn_dual with gaussian_init needs a "
                       "procedural source (config.data.source='generator')")
    k_data, k_f, k_g = jax.random.split(rng, 3)
    batch = ctx.sample(k_data, n_init)
    x, y = batch["x"], batch["y"]
    dim = x.shape[-1]
    # f maps source -> target, g target -> source.
    params = {
        "f": potential_net(ctx.model, dim, gaussian_map_samples=(x, y)).init(
            k_f, x[:1])["params"],
        "g": potential_net(ctx.model, dim, gaussian_map_samples=(y, x)).init(
            k_g, y[:1])["params"]}
    return method_lib.InitOutput(method_state={}, params=params)

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    source, target = ctx.inputs, batch["y"]
    net = potential_net(ctx.model, source.shape[-1])
    f_value = _value(net, params["f"])
    x_hat_init = jax.vmap(jax.grad(_value(net, params["g"])))(target)
    if solver is not None:
      x_hat = jax.lax.stop_gradient(jax.vmap(
          lambda y, x0: solver.solve(f_value, y, x_init=x0).grad)(
              target, x_hat_init))
    else:
      x_hat = x_hat_init
    batch_dot = jax.vmap(jnp.dot)
    f_source = f_value(source)
    f_star_target = batch_dot(x_hat, target) - f_value(x_hat)
    dual = f_source.mean() + f_star_target.mean()
    if solver is not None:
      amortisation = ((x_hat_init - x_hat) ** 2).mean()
    else:
      f_fixed = _value(net, jax.lax.stop_gradient(params["f"]))
      amortisation = (f_fixed(x_hat_init)
                      - batch_dot(x_hat_init, target)).mean()
    loss = dual + amortisation
    if not ctx.model.pos_weights:
      loss += hp["beta"] * (_negative_weight_penalty(params["f"])
                            + _negative_weight_penalty(params["g"]))
    w2 = (jnp.mean(jnp.sum(source ** 2, -1))
          + jnp.mean(jnp.sum(target ** 2, -1)) - 2.0 * dual)
    metrics = {"dual": dual, "amortisation": amortisation, "w2_dist": w2}
    return loss, method_lib.StepAux(metrics, ctx.model_state, method_state)

  def after_update(hp, ctx, params, method_state, rng):
    del hp, rng
    if ctx.model.pos_weights:
      return params, method_state
    return {**params, "f": _clip_weights(params["f"])}, method_state

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state, batch
    net = potential_net(ctx.model, ctx.inputs.shape[-1])
    return {"mapped": jax.vmap(jax.grad(_value(net, params["f"])))(
        ctx.inputs)}

  return method_lib.Method(
      name="w2_neural_dual", hparams=hparams, init=init, apply=apply,
      after_update=after_update, predict=predict,
      rules={"conjugate_max_iter": config_lib.at_least(1, integer=True),
             "gaussian_init_samples": config_lib.at_least(2, integer=True),
             "beta": config_lib.at_least(0.0)})
