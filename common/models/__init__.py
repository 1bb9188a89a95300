"""Model zoo: constructors registered by name (`register_model`).

Every model is a `flax.linen` module called as `model.apply(variables, x,
train=...)` on `[b, h, w, c]` float images and returns a dict with
"logits" `[b, num_classes]` float32 and "features" `[b, d]`, the input of
the final Dense (whose submodule name is the class's `HEAD_NAME`); the
exception is "autoencoder", whose "logits" are per-pixel reconstruction
logits `[b, h, w, c]` and "features" its latent code (see its module). Models
with BatchNorm keep their statistics in the `batch_stats` collection, to be
made mutable when `train=True`. All take `dtype` (computation) and
`param_dtype` (storage, float32 by default).

Example:
  model = get_model("preact_resnet18", num_classes=100, dtype=jnp.bfloat16)
  variables = model.init(rng, x, train=False)
  out, updates = model.apply(variables, x, train=True,
                             mutable=["batch_stats"])
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

# The submodules stay reachable as `common.models.<file>`: their constructor
# functions are deliberately not re-exported here, since `wide_resnet` the
# function would shadow `wide_resnet` the module.
from common.models import preact_resnet
from common.models import resnet
from common.models import wide_resnet
from common.models.mlp import MLP
from common.models.preact_resnet import PreActResNet
from common.models.resnet import ResNet
from common.models.small_cnn import SmallCNN
from common.models.wide_resnet import WideResNet
from common.models.registry import MODELS
from common.models.registry import register_model

__all__ = [
    "MLP",
    "MODELS",
    "PreActResNet",
    "ResNet",
    "SmallCNN",
    "WideResNet",
    "get_model",
    "model_names",
    "register_model",
]

def model_names() -> list[str]:
  """The registered model names, sorted."""
  return MODELS.names()


def get_model(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
  """Builds a registered model.

  Args:
    name: a registered model name, e.g. "preact_resnet18".
    num_classes: number of output logits.
    **kwargs: further attributes of the model, e.g. `dtype`,
      `hidden_sizes` (mlp), `depth`/`widen_factor`/`dropout` (wide_resnet),
      `variant` (preact_resnet18), `stage_sizes`/`widths`/`bottleneck`
      (resnet).

  Returns:
    The unbound flax module.

  Raises:
    ValueError: if `name` is not registered.
  """
  return MODELS.get(name)(num_classes=num_classes, **kwargs)
