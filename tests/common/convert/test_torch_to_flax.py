"""PyTorch -> flax conversion: equal logits on tiny WRN and ResNet models.

The PyTorch modules below are written here from the layouts of RobustBench's
`WideResNet` and torchvision's `ResNet` (v1.5), so the tests need torch but
neither RobustBench nor torchvision.
"""

import json
import os
import sys

import jax
import numpy as np
import pytest

from common import models
from common.convert import torch_to_flax

torch = pytest.importorskip("torch")
tnn = torch.nn
F = torch.nn.functional


class TorchWRNBlock(tnn.Module):
  """RobustBench's WRN `BasicBlock` (pre-activation)."""

  def __init__(self, in_planes, out_planes, stride):
    super().__init__()
    self.bn1 = tnn.BatchNorm2d(in_planes)
    self.conv1 = tnn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
    self.bn2 = tnn.BatchNorm2d(out_planes)
    self.conv2 = tnn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
    self.equal = in_planes == out_planes
    # pylint: disable-next=invalid-name
    self.convShortcut = None if self.equal else tnn.Conv2d(
        in_planes, out_planes, 1, stride, 0, bias=False)

  def forward(self, x):
    a = F.relu(self.bn1(x))
    out = self.conv2(F.relu(self.bn2(self.conv1(a))))
    return (x if self.equal else self.convShortcut(a)) + out


class TorchNetworkBlock(tnn.Module):

  def __init__(self, n, in_planes, out_planes, stride):
    super().__init__()
    self.layer = tnn.Sequential(*[
        TorchWRNBlock(in_planes if i == 0 else out_planes, out_planes,
                      stride if i == 0 else 1) for i in range(n)])

  def forward(self, x):
    return self.layer(x)


class TorchWideResNet(tnn.Module):

  def __init__(self, depth, widen_factor, num_classes):
    super().__init__()
    n = (depth - 4) // 6
    ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
    self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
    self.block1 = TorchNetworkBlock(n, ch[0], ch[1], 1)
    self.block2 = TorchNetworkBlock(n, ch[1], ch[2], 2)
    self.block3 = TorchNetworkBlock(n, ch[2], ch[3], 2)
    self.bn1 = tnn.BatchNorm2d(ch[3])
    self.fc = tnn.Linear(ch[3], num_classes)

  def forward(self, x):
    out = self.block3(self.block2(self.block1(self.conv1(x))))
    out = F.relu(self.bn1(out))
    return self.fc(F.avg_pool2d(out, out.shape[-1]).flatten(1))


class TorchResNetBlock(tnn.Module):
  """torchvision's `Bottleneck` (stride on conv2) or `BasicBlock`."""

  def __init__(self, in_planes, width, stride, bottleneck):
    super().__init__()
    out = width * 4 if bottleneck else width
    self.bottleneck = bottleneck
    if bottleneck:
      self.conv1 = tnn.Conv2d(in_planes, width, 1, bias=False)
      self.conv2 = tnn.Conv2d(width, width, 3, stride, 1, bias=False)
      self.conv3 = tnn.Conv2d(width, out, 1, bias=False)
      self.bn3 = tnn.BatchNorm2d(out)
    else:
      self.conv1 = tnn.Conv2d(in_planes, width, 3, stride, 1, bias=False)
      self.conv2 = tnn.Conv2d(width, width, 3, 1, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(width)
    self.bn2 = tnn.BatchNorm2d(width)
    self.downsample = None
    if stride != 1 or in_planes != out:
      self.downsample = tnn.Sequential(
          tnn.Conv2d(in_planes, out, 1, stride, bias=False),
          tnn.BatchNorm2d(out))

  def forward(self, x):
    h = F.relu(self.bn1(self.conv1(x)))
    if self.bottleneck:
      h = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(h)))))
    else:
      h = self.bn2(self.conv2(h))
    identity = x if self.downsample is None else self.downsample(x)
    return F.relu(h + identity)


class TorchResNet(tnn.Module):

  def __init__(self, stage_sizes, widths, bottleneck, stem_width,
               num_classes):
    super().__init__()
    self.conv1 = tnn.Conv2d(3, stem_width, 7, 2, 3, bias=False)
    self.bn1 = tnn.BatchNorm2d(stem_width)
    self.maxpool = tnn.MaxPool2d(3, 2, 1)
    in_planes = stem_width
    for i, (size, width) in enumerate(zip(stage_sizes, widths)):
      blocks = []
      for j in range(size):
        blocks.append(TorchResNetBlock(in_planes, width,
                                       2 if i > 0 and j == 0 else 1,
                                       bottleneck))
        in_planes = width * 4 if bottleneck else width
      setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
    self.num_stages = len(stage_sizes)
    self.fc = tnn.Linear(in_planes, num_classes)

  def forward(self, x):
    h = self.maxpool(F.relu(self.bn1(self.conv1(x))))
    for i in range(self.num_stages):
      h = getattr(self, f"layer{i + 1}")(h)
    return self.fc(h.mean(dim=(2, 3)))


class TorchPreActBlock(tnn.Module):
  """The pre-activation block of PS-KD's `models/preact_resnet.py` (the
  shortcut always takes the activated input) or, with `raw_identity`, of
  kuangliu/pytorch-cifar (an identity shortcut carries the raw input)."""

  def __init__(self, in_planes, planes, stride, raw_identity):
    super().__init__()
    self.bn1 = tnn.BatchNorm2d(in_planes)
    self.conv1 = tnn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
    self.bn2 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.project = stride != 1 or in_planes != planes
    self.raw_identity = raw_identity
    self.shortcut = tnn.Sequential(*(
        [tnn.Conv2d(in_planes, planes, 1, stride, bias=False)]
        if self.project else []))

  def forward(self, x):
    out = F.relu(self.bn1(x))
    shortcut = x if (self.raw_identity and not self.project) else (
        self.shortcut(out))
    out = self.conv2(F.relu(self.bn2(self.conv1(out))))
    return out + shortcut


class TorchPreActResNet(tnn.Module):
  """PS-KD's `CIFAR_ResNet18_preActBasic` (stem conv-BN-ReLU) or Kuang Liu's
  `PreActResNet18` (stem conv only), with `stage_sizes` blocks per stage."""

  def __init__(self, stage_sizes, num_classes, pskd):
    super().__init__()
    self.pskd = pskd
    self.conv1 = tnn.Conv2d(3, 64, 3, 1, 1, bias=False)
    if pskd:
      self.bn1 = tnn.BatchNorm2d(64)
    in_planes = 64
    for i, size in enumerate(stage_sizes):
      planes = 64 * 2**i
      blocks = []
      for j in range(size):
        blocks.append(TorchPreActBlock(in_planes, planes,
                                       2 if i > 0 and j == 0 else 1,
                                       raw_identity=not pskd))
        in_planes = planes
      setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
    self.num_stages = len(stage_sizes)
    self.linear = tnn.Linear(512, num_classes)

  def forward(self, x):
    h = self.conv1(x)
    if self.pskd:
      h = F.relu(self.bn1(h))
    for i in range(self.num_stages):
      h = getattr(self, f"layer{i + 1}")(h)
    return self.linear(F.avg_pool2d(h, h.shape[-1]).flatten(1))


# case -> (torch constructor, zoo name, zoo kwargs)
CASES = {
    "wrn_10_2": (lambda: TorchWideResNet(10, 2, 7), "wide_resnet",
                 dict(depth=10, widen_factor=2)),
    "resnet_bottleneck": (
        lambda: TorchResNet((1, 2), (4, 8), True, 8, 5), "resnet",
        dict(stage_sizes=(1, 2), widths=(4, 8), bottleneck=True,
             stem_width=8)),
    "resnet_basic": (
        lambda: TorchResNet((1, 1), (8, 16), False, 8, 5), "resnet",
        dict(stage_sizes=(1, 1), widths=(8, 16), bottleneck=False,
             stem_width=8)),
    # PS-KD's PreAct-ResNet (one block per stage keeps the test fast; the
    # layout, names and shortcut rules are those of the 2-2-2-2 model).
    "preact_pskd": (lambda: TorchPreActResNet((1, 1, 1, 1), 6, True),
                    "preact_resnet", dict(stage_sizes=(1, 1, 1, 1))),
    "preact_kuangliu": (lambda: TorchPreActResNet((1, 2, 1, 1), 6, False),
                        "preact_resnet",
                        dict(stage_sizes=(1, 2, 1, 1), variant="kuangliu")),
}


def _random_torch_model(case: str, seed: int = 0):
  """A torch model with random weights and BN statistics, in eval mode."""
  torch.manual_seed(seed)
  model = CASES[case][0]()
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, tnn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
  return model.eval()


def _state(model):
  return {k: v.numpy() for k, v in model.state_dict().items()}


def _inputs(seed=1):
  return np.random.default_rng(seed).normal(size=(4, 32, 32, 3)).astype(
      np.float32)


def _torch_logits(model, x):
  with torch.no_grad():
    return model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def _flax_model(case, num_classes):
  _, name, kwargs = CASES[case]
  return models.get_model(name, num_classes, **kwargs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_converted_logits_match_eval_and_train_mode(case):
  tmodel = _random_torch_model(case)
  state = _state(tmodel)
  num_classes = torch_to_flax.infer_num_classes(state)
  model = _flax_model(case, num_classes)
  variables = torch_to_flax.convert_state_dict(state, model)
  x = _inputs()

  @jax.jit
  def both_modes(variables, x):
    train_out, _ = model.apply(variables, x, train=True,
                               mutable=["batch_stats"])
    return (model.apply(variables, x, train=False)["logits"],
            train_out["logits"])

  eval_logits, train_logits = both_modes(variables, x)
  np.testing.assert_allclose(eval_logits, _torch_logits(tmodel, x),
                             rtol=1e-5, atol=1e-5)
  # Train mode (batch statistics) agrees too.
  tmodel.train()
  np.testing.assert_allclose(train_logits, _torch_logits(tmodel, x),
                             rtol=1e-4, atol=1e-4)


def test_cli_roundtrip_with_wrapped_state_dict(tmp_path):
  tmodel = _random_torch_model("wrn_10_2", seed=3)
  wrapped = {"state_dict": {f"module.{k}": v
                            for k, v in tmodel.state_dict().items()}}
  path = tmp_path / "wrn.pt"
  torch.save(wrapped, path)
  out_dir = tmp_path / "converted"
  rc = torch_to_flax.main([
      "--arch=wide_resnet", f"--input={path}", f"--output={out_dir}",
      '--model_kwargs={"depth": 10, "widen_factor": 2}'])
  assert rc == 0
  meta = torch_to_flax.load_metadata(str(out_dir))
  assert meta["arch"] == "wide_resnet" and meta["num_classes"] == 7
  assert meta["model_kwargs"] == {"depth": 10, "widen_factor": 2}
  variables = torch_to_flax.load_converted(str(out_dir))
  assert set(variables) == {"params", "batch_stats"}
  model = models.get_model(meta["arch"], meta["num_classes"],
                           **meta["model_kwargs"])
  x = _inputs(2)
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  np.testing.assert_allclose(out["logits"], _torch_logits(tmodel, x),
                             rtol=1e-5, atol=1e-5)
  with open(out_dir / "meta.json") as f:
    assert json.load(f)["source_sha256"]


def test_missing_keys_are_listed():
  state = _state(_random_torch_model("wrn_10_2"))
  del state["block2.layer.0.bn1.running_var"]
  del state["block1.layer.0.conv1.weight"]
  model = _flax_model("wrn_10_2", 7)
  with pytest.raises(torch_to_flax.ConversionError) as err:
    torch_to_flax.convert_state_dict(state, model)
  message = str(err.value)
  assert "2 missing keys" in message
  assert "block1.layer.0.conv1.weight" in message
  assert "block2.layer.0.bn1.running_var" in message


def test_wrong_architecture_lists_missing_and_unexpected_keys():
  state = _state(_random_torch_model("resnet_bottleneck"))
  model = _flax_model("wrn_10_2", 5)
  with pytest.raises(torch_to_flax.ConversionError) as err:
    torch_to_flax.convert_state_dict(state, model)
  message = str(err.value)
  assert "missing keys" in message and "block1.layer.0.bn1.weight" in message
  assert "unexpected keys" in message and "layer1.0.conv1.weight" in message


def test_wrong_width_lists_shape_mismatches():
  state = _state(_random_torch_model("wrn_10_2"))
  model = models.get_model("wide_resnet", 7, depth=10, widen_factor=1)
  with pytest.raises(torch_to_flax.ConversionError) as err:
    torch_to_flax.convert_state_dict(state, model)
  message = str(err.value)
  assert "33 shape mismatches" in message
  assert ("block1.layer.0.bn2.weight: file (32,), model expects (16,)"
          in message)
  assert "... and 3 more" in message  # long lists are cut at 30


def test_ignored_prefixes_and_cli_errors(tmp_path, capsys):
  state = _state(_random_torch_model("wrn_10_2"))
  state["sub_block1.layer.0.conv1.weight"] = np.zeros((1,))
  model = _flax_model("wrn_10_2", 7)
  with pytest.raises(torch_to_flax.ConversionError, match="sub_block1"):
    torch_to_flax.convert_state_dict(state, model)
  torch_to_flax.convert_state_dict(state, model,
                                   ignore_prefixes=("sub_block1.",))
  with pytest.raises(SystemExit):
    torch_to_flax.main(["--arch=nope", "--input=x", "--output=y"])
  assert "unknown --arch 'nope'" in capsys.readouterr().err
  path = tmp_path / "res.pt"
  torch.save(_random_torch_model("resnet_basic").state_dict(), path)
  rc = torch_to_flax.main(["--arch=wide_resnet28_10", f"--input={path}",
                           f"--output={tmp_path / 'out'}"])
  assert rc == 1
  assert "missing keys" in capsys.readouterr().err
  with pytest.raises(FileNotFoundError, match="no converted checkpoint"):
    torch_to_flax.load_converted(str(tmp_path / "nothing"))


def test_missing_torch_is_a_clear_error(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(ImportError, match="pip install torch"):
    torch_to_flax.load_torch_state_dict(os.fspath(tmp_path / "x.pt"))


def test_resnet50_names_cover_torchvision_layout():
  model = models.get_model("resnet50", 1000)
  abstract = torch_to_flax.abstract_variables(model)
  keys = set()
  for collection in ("params", "batch_stats"):
    flat = jax.tree_util.tree_flatten_with_path(abstract[collection])[0]
    for path, leaf in flat:
      names = tuple(p.key for p in path)
      # pylint: disable-next=protected-access
      keys.add(torch_to_flax._torch_key(collection, names, leaf.ndim))
  # A few keys of torchvision's resnet50().state_dict().
  for key in ("conv1.weight", "bn1.running_mean",
              "layer1.0.downsample.0.weight",
              "layer1.0.downsample.1.running_var", "layer4.2.conv3.weight",
              "layer3.5.bn2.bias", "fc.weight", "fc.bias"):
    assert key in keys, key
  # torchvision's 320 state-dict entries less its 53 num_batches_tracked.
  assert len(keys) == 267
