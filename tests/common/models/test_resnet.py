"""Tests of the torchvision-layout ResNet (`common.models.resnet`).

Numerical equality with PyTorch modules is tested in
tests/common/convert/test_torch_to_flax.py; here only traced shapes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common import models


def _abstract(model, shape):
  return jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros(shape), train=False))


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name, expected", [
    ("resnet50", 25_557_032), ("resnet18", 11_689_512)])
def test_parameter_counts_match_torchvision(name, expected):
  # sum(p.numel() for p in torchvision.models.<name>().parameters()).
  model = models.get_model(name, 1000)
  variables = _abstract(model, (1, 224, 224, 3))
  assert _count(variables["params"]) == expected


def test_resnet50_shapes_and_names():
  model = models.get_model("resnet50", 1000)
  out = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0),
                                     jnp.zeros((2, 224, 224, 3)),
                                     train=False)[0])
  assert out["logits"].shape == (2, 1000)
  assert out["features"].shape == (2, 2048)
  params = _abstract(model, (1, 64, 64, 3))["params"]
  assert sorted(k for k in params if k.startswith("layer4")) == [
      "layer4_0", "layer4_1", "layer4_2"]
  block = params["layer2_0"]
  # v1.5: the stride-2 conv is the 3x3 conv2; projection on the shortcut.
  assert block["conv2"]["kernel"].shape == (3, 3, 128, 128)
  assert block["downsample_0"]["kernel"].shape == (1, 1, 256, 512)
  assert "downsample_0" not in params["layer2_1"]
  assert models.ResNet.HEAD_NAME == "fc"


def test_general_resnet_rejects_mismatched_stages():
  model = models.get_model("resnet", 10, stage_sizes=(1, 1), widths=(8,))
  with pytest.raises(ValueError, match="equal length"):
    _abstract(model, (1, 32, 32, 3))
