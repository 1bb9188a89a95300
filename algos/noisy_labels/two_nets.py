"""Two copies of any zoo classifier in one parameter pytree (co-teaching).

Co-teaching (Han et al., NeurIPS 2018, arXiv:1804.06872) and the methods
built on it (Nested + Co-teaching, arXiv:2206.13140; ELR+) train two networks
of the same architecture from different initialisations. Here they are one
flax module, `two_nets`, whose parameters are `{"net1": ..., "net2": ...}`
(BatchNorm statistics likewise), so both train in the ONE shared train step
with one optimizer: their losses are summed, and since the two parameter sets
are disjoint each receives exactly its own loss's gradient (SGD with weight
decay on every leaf is then the official pair of optimizers).

Config: `model.name = "two_nets"`, `model.kwargs = {"base": "resnet",
<the base model's kwargs>}`; `"one_net"` is the same wrapper with one copy
(parameters `{"net1": ...}`), so the single- and two-network arms of a study
share `model.kwargs` and differ only in `model.name`. Called directly (the
default evaluation), the module returns the mean of the two networks' logits (the official
co-teaching evaluation, `(logitsCls1 + logitsCls2) * 0.5`); methods run each
network alone through `member_forward`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from common import models
from common.core import method as method_lib

NAMES = ("net1", "net2")


class NetCopies(nn.Module):
  """`copies` independently initialised copies of `net` (unbound module)."""

  net: nn.Module
  copies: int = 2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`logits` `[b, C]`: mean of the copies'; `features` `[b, copies, d]`."""
    outs = [self.net.clone(parent=self, name=name)(x, train=train)
            for name in NAMES[:self.copies]]
    return {"logits": sum(o["logits"] for o in outs) / self.copies,
            "features": jnp.stack([o["features"] for o in outs], axis=1)}


def _copies(num_classes: int, base: str, copies: int, kwargs: dict
            ) -> NetCopies:
  if base in ("one_net", "two_nets"):
    raise ValueError(f"model.kwargs.base={base!r} nests wrappers; name a zoo "
                     f"classifier: {models.model_names()}")
  return NetCopies(net=models.get_model(base, num_classes, **kwargs),
                   copies=copies)


@models.register_model("two_nets")
def two_nets(num_classes: int, base: str = "resnet", **kwargs: Any
             ) -> NetCopies:
  """Two copies of the registered classifier `base` (its kwargs in kwargs)."""
  return _copies(num_classes, base, 2, kwargs)


@models.register_model("one_net")
def one_net(num_classes: int, base: str = "resnet", **kwargs: Any
            ) -> NetCopies:
  """One copy of `base`, with `two_nets`' parameter layout and kwargs."""
  return _copies(num_classes, base, 1, kwargs)


def num_networks(model: nn.Module) -> int:
  return model.copies if isinstance(model, NetCopies) else 1


def members(model: nn.Module, params: Any, model_state: Any
            ) -> list[tuple[nn.Module, Any, Any]]:
  """`[(module, params, model_state)]`: the networks of `model` (1 or 2)."""
  if not isinstance(model, NetCopies):
    return [(model, params, model_state)]
  return [(model.net, params[name],
           {col: v[name] for col, v in model_state.items()})
          for name in NAMES[:model.copies]]


def merge_states(model_states: Sequence[Any]) -> Any:
  """Inverse of `members`' state split of a pair: `{col: {"net1": ..,
  "net2": ..}}`."""
  return {col: {name: s[col] for name, s in zip(NAMES, model_states)}
          for col in model_states[0]}


def member_forward(ctx: method_lib.StepContext, net: nn.Module, params: Any,
                   model_state: Any, inputs: Any, *, train: bool,
                   rng: jax.Array | None = None):
  """`(outputs, new_state)` of one network of a pair on `inputs`."""
  return ctx.forward(params, inputs, train=train, model_state=model_state,
                     rng=rng, model=net)


def head(net: nn.Module, params: Any) -> tuple[jax.Array, jax.Array]:
  """`(kernel [d, C], bias [C])` of the final Dense of a zoo classifier."""
  name = getattr(type(net), "HEAD_NAME", None)
  if name is None or name not in params:
    raise ValueError(f"model {type(net).__name__} has no final Dense named by "
                     "HEAD_NAME; feature-level methods need a zoo classifier "
                     "returning {'logits', 'features'}")
  dense = params[name]
  kernel = dense["kernel"]
  bias = dense.get("bias", jnp.zeros(kernel.shape[-1], kernel.dtype))
  return kernel, bias


def head_logits(net: nn.Module, params: Any, features: jax.Array
                ) -> jax.Array:
  """`[b, C]` float32 logits of (masked) `features` `[b, d]` through the
  network's final Dense (what the model computes from unmasked ones)."""
  kernel, bias = head(net, params)
  return (features.astype(jnp.float32) @ kernel.astype(jnp.float32)
          + bias.astype(jnp.float32))
