"""`ensemble`: K independent copies of any zoo model, trained in one step.

The members' parameters are stacked on a leading axis (`params =
{"members": <the base model's params, each leaf [K, ...]>}`), initialised
from K split keys, and the forward pass is `jax.vmap` of the base model's
`apply` over that axis, so K models train together inside one jitted step
(one compilation, one dispatch) while staying independent: nothing couples
the members' gradients (a method takes the sum of their losses) and each
member's dropout key is its own.

    model = get_model("ensemble", 259, members=4, base="transformer",
                      size="tiny", d_model=32)
    out = model.apply(variables, tokens)      # out["logits"]: [K, B, T, V]

Every output of the base model gains the leading member axis. Base models
with mutable collections (BatchNorm statistics) are refused: an ensemble of
LMs or MLPs needs none. The optimizer's `kernels` weight-decay mask reads
the member axis (`common.core.optim`: leaves under `members` decay when
they are matrices per member), so norm scales are not decayed.

Used by infinite_compute (ensembles of LMs; log-mean-softmax in
`algos/lm/infinite_compute.py`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from common.models import registry

MEMBER_AXIS_KEY = "members"   # the params key of the stacked members


class _Template:
  """Holds the unbound base module so flax does not adopt it as a child."""

  def __init__(self, module: nn.Module):
    self.module = module


class Ensemble(nn.Module):
  """`members` copies of `template.module`, vmapped over stacked params.

  Attributes:
    template: the base module (wrapped; see `ensemble`).
    members: K, the ensemble size.
  """

  template: Any
  members: int

  @property
  def num_classes(self) -> int:
    return self.template.module.num_classes

  @nn.compact
  def __call__(self, x: Any, train: bool = False, **kwargs: Any
               ) -> dict[str, Any]:
    """The base model's outputs, each with a leading `[K]` axis.

    Args:
      x: the base model's input (shared by every member).
      train: train mode (each member draws its own dropout mask).
      **kwargs: further arguments of the base model's `__call__`.
    """
    base = self.template.module
    k = self.members

    def init_members(rng):
      def one(key):
        variables = base.init({"params": key, "dropout": key}, x,
                              train=False, **kwargs)
        if set(variables) != {"params"}:
          raise ValueError(
              f"model 'ensemble' needs a base model without mutable "
              f"collections; {type(base).__name__} has "
              f"{sorted(set(variables) - {'params'})}")
        return variables["params"]
      return jax.vmap(one)(jax.random.split(rng, k))

    params = self.param(MEMBER_AXIS_KEY, init_members)
    rng = (self.make_rng("dropout") if self.has_rng("dropout")
           else jax.random.PRNGKey(0))

    def forward(p, key):
      return base.apply({"params": p}, x, train=train,
                        rngs={"dropout": key}, **kwargs)
    return jax.vmap(forward)(params, jax.random.split(rng, k))


@registry.register_model("ensemble")
def ensemble(num_classes: int, *, members: int = 2,
             base: str = "transformer",
             dtype: str = "float32", **base_kwargs: Any) -> Ensemble:
  """`members` copies of the registered model `base` built with
  `num_classes`, `dtype` and `base_kwargs` (config.model.kwargs)."""
  from common import models   # the zoo's lookup (same layer)
  if int(members) < 1:
    raise ValueError(f"model 'ensemble' needs members >= 1; got {members}")
  if base == "ensemble":
    raise ValueError("model 'ensemble' cannot nest itself; allowed base: "
                     "any other registered model")
  module = models.get_model(base, num_classes, dtype=dtype, **base_kwargs)
  return Ensemble(template=_Template(module), members=int(members))
