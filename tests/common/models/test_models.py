"""Tests for the model zoo: the output contract, counts, BatchNorm, dtypes.

Big models are only traced (`jax.eval_shape`); forward passes use small
inputs and a small WRN so the file runs in well under a minute on 2 CPUs.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common import models
from common.models import layers
from common.models import preact_resnet
from common.models import wide_resnet

NUM_CLASSES = 10
X_SHAPE = (2, 32, 32, 3)

# name -> (get_model kwargs, feature dimension, has BatchNorm). Kuang Liu's
# PreAct variant differs only in the stem and identity shortcuts, tested
# below without a whole-network forward pass.
CASES = {
    "mlp": (dict(name="mlp", hidden_sizes=(32, 16)), 16, False),
    "small_cnn": (dict(name="small_cnn"), 128, True),
    "preact_resnet18": (dict(name="preact_resnet18"), 512, True),
    "wide_resnet_10_2": (
        dict(name="wide_resnet", depth=10, widen_factor=2, dropout=0.3),
        128, True),
}


def _normal(seed: int, shape) -> jax.Array:
  # numpy, not jax.random: each jax.random call compiles a threefry program,
  # seconds apiece on CPU.
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape),
                     jnp.float32)


def _key(seed: int) -> jax.Array:
  # "rbg" keys lower to one RngBitGenerator op, far cheaper to compile than
  # threefry; models treat every key implementation alike.
  return jax.random.key(seed, impl="rbg")


def _build(case: str, **overrides) -> nn.Module:
  kwargs = dict(CASES[case][0], **overrides)
  return models.get_model(num_classes=NUM_CLASSES, **kwargs)


def _num_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _abstract_variables(model: nn.Module, shape=X_SHAPE):
  """Shapes and dtypes of `model.init`'s output, traced, never computed."""
  return jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros(shape), train=False))


def _identity_bn_zero_conv_variables(module: nn.Module, shape):
  """Fresh-BN variables (scale 1, bias 0, mean 0, var 1) with zero convs."""
  return jax.tree_util.tree_map_with_path(
      lambda path, leaf: (jnp.ones if "scale" in jax.tree_util.keystr(path)
                          or "var" in jax.tree_util.keystr(path)
                          else jnp.zeros)(leaf.shape, leaf.dtype),
      _abstract_variables(module, shape))


@pytest.fixture(scope="module")
def images() -> jax.Array:
  return _normal(1, X_SHAPE)


def _fake_variables(model: nn.Module, seed: int = 0, shape=X_SHAPE):
  """Random variables of the right structure, without running `init`.

  Initialisers compile one RNG program per parameter shape, which costs
  seconds per model on CPU; numpy fills the traced shapes instantly.
  Kernels are N(0, 1 / fan_in), BatchNorm statistics mean 0, variance 1.
  """
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if "kernel" in name:
      fan_in = int(np.prod(leaf.shape[:-1]))
      value = rng.normal(size=leaf.shape) / np.sqrt(fan_in)
    elif "scale" in name or "var" in name:
      value = np.ones(leaf.shape)
    else:  # biases and running means
      value = 0.1 * rng.normal(size=leaf.shape) if "bias" in name else (
          np.zeros(leaf.shape))
    return jnp.asarray(value, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill,
                                          _abstract_variables(model, shape))


@pytest.fixture(scope="module")
def variables():
  """float32 variables per case, built once for the module."""
  return {case: _fake_variables(_build(case)) for case in CASES}


@functools.cache
def _apply_fn(case: str, train: bool, dtype=jnp.float32):
  """A jitted `(variables, x, rng) -> (outputs, batch_stats)` for one case.

  One compiled program per (case, train, dtype), shared by the tests; run
  op by op instead, every primitive compiles on its own and the file takes
  minutes on 2 CPUs.
  """
  model = _build(case, dtype=dtype)

  def run(variables, x, rng):
    out, state = model.apply(variables, x, train=train,
                             rngs={"dropout": rng}, mutable=["batch_stats"])
    return out, state.get("batch_stats")

  jitted = jax.jit(run)
  return lambda variables, x, rng=None: jitted(
      variables, x, _key(2) if rng is None else rng)


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError) as err:
    models.get_model("resnet9000", num_classes=10)
  for name in models.model_names():
    assert name in str(err.value)


def test_registry_builds_every_model():
  # Denoisers and sequence models have no classes; the co-teaching
  # wrappers hand them to the zoo classifier they copy; a DINO network
  # projects to `out_dim` units (its encoder's unused head is sized).
  classless = {"n2n_unet", "node_series", "dino_net"}
  for name in models.model_names():
    model = models.get_model(name, num_classes=3)
    assert isinstance(model, nn.Module)
    if name not in classless:
      assert getattr(model, "net", model).num_classes == 3, name


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_and_head(case, images, variables):
  out, _ = _apply_fn(case, False)(variables[case], images)
  assert set(out) == {"logits", "features"}
  assert out["logits"].shape == (2, NUM_CLASSES)
  assert out["logits"].dtype == jnp.float32
  assert out["features"].shape == (2, CASES[case][1])
  # "features" is exactly what the final Dense receives.
  head = variables[case]["params"][type(_build(case)).HEAD_NAME]
  expected = out["features"] @ head["kernel"] + head["bias"]
  np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-5)
  assert ("batch_stats" in variables[case]) == CASES[case][2]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bfloat16_computation(case, images, variables):
  params = jax.tree.leaves(variables[case]["params"])
  assert all(p.dtype == jnp.float32 for p in params)
  # Dtypes of a training step only need tracing.
  out, stats = jax.eval_shape(_apply_fn(case, True, jnp.bfloat16),
                              variables[case], images, _key(0))
  assert out["logits"].dtype == jnp.float32
  assert out["features"].dtype == jnp.bfloat16
  if stats is not None:
    assert all(s.dtype == jnp.float32 for s in jax.tree.leaves(stats))
  reference, _ = _apply_fn(case, False)(variables[case], images)
  low, _ = _apply_fn(case, False, jnp.bfloat16)(variables[case], images)
  assert low["logits"].dtype == jnp.float32
  np.testing.assert_allclose(low["logits"], reference["logits"], rtol=0.1,
                             atol=0.1)


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if CASES[c][2]])
def test_batch_stats_update_only_in_training(case, images, variables):
  old = variables[case]["batch_stats"]
  _, updated = _apply_fn(case, True)(variables[case], images)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), old, updated)
  assert all(jax.tree.leaves(changed))
  _, kept = _apply_fn(case, False)(variables[case], images)
  jax.tree.map(np.testing.assert_array_equal, old, kept)


def test_batch_norm_uses_pytorch_momentum_and_epsilon():
  x = _normal(3, (4, 3, 3, 5)) * 2 + 1
  bn = layers.batch_norm(True, jnp.float32, jnp.float32)
  variables = bn.init(_key(0), x)
  y, stats = jax.jit(lambda v: bn.apply(v, x, mutable=["batch_stats"]))(
      variables)
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  stats = stats["batch_stats"]
  np.testing.assert_allclose(stats["mean"], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * var, rtol=1e-5)
  np.testing.assert_allclose(y, (x - mean) / jnp.sqrt(var + 1e-5),
                             rtol=1e-4, atol=1e-4)


def test_strided_conv_pads_like_pytorch():
  # A 3x3 all-ones kernel, stride 2, on a 4x4 all-ones image: PyTorch's
  # padding=1 centres the windows on pixels 0 and 2 -> [[4, 6], [6, 9]].
  # (Flax "SAME" would centre them on 1 and 3 -> [[9, 6], [6, 4]].)
  conv = layers.conv(1, 3, 2, dtype=jnp.float32, param_dtype=jnp.float32,
                     kernel_init=nn.initializers.ones)
  x = jnp.ones((1, 4, 4, 1))
  y = conv.apply(conv.init(_key(0), x), x)
  np.testing.assert_array_equal(y[0, :, :, 0], [[4, 6], [6, 9]])


def test_wide_resnet_dropout(images, variables):
  case = "wide_resnet_10_2"
  outs = [_apply_fn(case, True)(variables[case], images, _key(s))[0]
          for s in (0, 1)]
  assert not np.allclose(outs[0]["logits"], outs[1]["logits"])
  evals = [_apply_fn(case, False)(variables[case], images, _key(s))[0]
           for s in (0, 1)]
  np.testing.assert_array_equal(evals[0]["logits"], evals[1]["logits"])


@pytest.mark.parametrize("activated, expected_fn", [
    (True, lambda x: jax.nn.relu(x / jnp.sqrt(1 + 1e-5))),
    (False, lambda x: x),
])
def test_preact_identity_shortcut_variants(activated, expected_fn):
  # With zero convs a block returns its identity shortcut: relu(bn1(x)) in
  # PS-KD's model, the raw x in Kuang Liu's (fresh BN stats: mean 0, var 1).
  block = preact_resnet.PreActBlock(4, activated_identity=activated)
  x = _normal(4, (1, 4, 4, 4))
  variables = _identity_bn_zero_conv_variables(block, x.shape)
  y = block.apply(variables, x, train=False)
  np.testing.assert_allclose(y, expected_fn(x), rtol=1e-5, atol=1e-6)


def test_wide_resnet_block_shortcuts():
  x = _normal(5, (1, 4, 4, 8))
  same = wide_resnet.BasicBlock(8)
  same_vars = _identity_bn_zero_conv_variables(same, x.shape)
  assert set(same_vars["params"]) == {"bn1", "conv1", "bn2", "conv2"}
  widen = wide_resnet.BasicBlock(16, strides=2)
  assert set(_abstract_variables(widen, x.shape)["params"]) == {
      "bn1", "conv1", "bn2", "conv2", "convShortcut"}
  # Equal channels: zero convs leave the raw (not activated) input.
  y = same.apply(same_vars, x, train=False)
  np.testing.assert_allclose(y, x)


def test_preact_resnet18_parameter_count():
  # Derived in common/models/preact_resnet.py's docstring.
  model = models.get_model("preact_resnet18", num_classes=100)
  abstract = _abstract_variables(model)
  assert _num_params(abstract["params"]) == 11_217_444
  # PS-KD's stem BatchNorm "bn1" and no BatchNorm after the last block.
  assert set(abstract["params"]) == {"conv1", "bn1", "linear"} | {
      f"layer{i}_{j}" for i in (1, 2, 3, 4) for j in (0, 1)}
  assert set(abstract["params"]["layer2_0"]) == {"bn1", "conv1", "bn2",
                                                 "conv2", "shortcut_0"}
  assert "shortcut_0" not in abstract["params"]["layer1_0"]
  # A mean and a variance per BatchNorm channel: stem 64, then per stage
  # (c_in + c) + (c + c): 256 + 448 + 896 + 1792.
  assert _num_params(abstract["batch_stats"]) == 2 * 3456
  kuangliu = models.get_model("preact_resnet18", num_classes=100,
                              variant="kuangliu")
  assert _num_params(_abstract_variables(kuangliu)["params"]) == 11_217_316


def _wrn_param_count(depth: int, k: int, num_classes: int) -> int:
  """Parameters of RobustBench's WideResNet, block by block."""
  n = (depth - 4) // 6
  total, c_in = 3 * 3 * 3 * 16, 16
  for width in (16 * k, 32 * k, 64 * k):
    for _ in range(n):
      total += 2 * c_in + 9 * c_in * width + 2 * width + 9 * width * width
      if c_in != width:
        total += c_in * width  # convShortcut
      c_in = width
  return total + 2 * c_in + c_in * num_classes + num_classes


def test_wide_resnet28_10_parameter_count_and_names():
  model = models.get_model("wide_resnet28_10", num_classes=10)
  abstract = _abstract_variables(model)
  params = abstract["params"]
  assert _wrn_param_count(28, 10, 10) == 36_479_194
  assert _num_params(params) == 36_479_194
  assert set(params) == {"conv1", "bn1", "fc"} | {
      f"block{i}_layer{j}" for i in (1, 2, 3) for j in range(4)}
  assert "convShortcut" in params["block1_layer0"]
  assert "convShortcut" not in params["block1_layer1"]
  assert params["block2_layer0"]["conv1"]["kernel"].shape == (3, 3, 160, 320)
  out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(X_SHAPE),
                                             train=False), abstract)
  assert out["logits"].shape == (2, 10)
  assert out["features"].shape == (2, 640)
  small = models.get_model("wide_resnet", num_classes=7, depth=16,
                           widen_factor=4)
  assert _num_params(_abstract_variables(small)["params"]) == (
      _wrn_param_count(16, 4, 7))


def test_wide_resnet_rejects_bad_depth():
  with pytest.raises(ValueError):
    _abstract_variables(
        models.get_model("wide_resnet", num_classes=10, depth=27))


def test_small_models_real_init_on_digits_shape():
  # 8x8 single-channel inputs, as the CPU smoke runs on sklearn's digits.
  # The only real `init`s of the file (jitted: one compile per model).
  x = _normal(6, (4, 8, 8, 1))
  expected_counts = {
      "mlp": 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10,
      "small_cnn": (9 * 1 * 32 + 9 * 32 * 64 + 9 * 64 * 128
                    + 2 * (32 + 64 + 128) + 128 * 10 + 10),
  }
  for name, count in expected_counts.items():
    model = models.get_model(name, num_classes=10)
    variables = jax.jit(model.init, static_argnames="train")(
        _key(0), x, train=False)
    assert _num_params(variables["params"]) == count
    out, _ = jax.jit(lambda v, m=model: m.apply(
        v, x, train=True, mutable=["batch_stats"]))(variables)
    assert out["logits"].shape == (4, 10)
    assert np.all(np.isfinite(out["logits"]))
