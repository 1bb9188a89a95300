"""The official PyTorch TTA code beside ours, on the same WRN weights.

Loads, from a checkout the user gives (never copied into this repo), the
official implementations of Tent (DequanWang/tent `tent.py`), EATA
(mr-eggplant/EATA `eata.py`) and CoTTA (qinenergy/cotta `cifar/cotta.py`)
and the RobustBench WideResNet that the CoTTA repo vendors
(`cifar/robustbench/model_zoo/architectures/wide_resnet.py`):

    <root>/tent/tent.py
    <root>/eata/eata.py
    <root>/cotta/cifar/{cotta.py, robustbench/...}

e.g. `git clone https://github.com/DequanWang/tent <root>/tent` (likewise
`eata`, `cotta`). `torch` is needed, `torchvision` is not: CoTTA's
`get_tta_transforms` passes arguments that current torchvision no longer
accepts (`resample=`, `fillcolor=`), so `load` stubs the torchvision and
`my_transforms` imports of `cotta.py` and the caller replaces the
augmentation (`cotta_model(..., transform=...)`); CoTTA's stochastic
restore calls `.cuda()`, which `cpu_cuda_calls` turns into a no-op on a
machine without CUDA. Used by `benchmarks/tta_throughput.py --official` and
`tests/algos/tta/test_official_parity.py` (environment variable
`REGJAX_OFFICIAL_TTA_DIR`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import sys
import types
from typing import Any, Callable

import numpy as np

from common import models
from common.convert import torch_to_flax
from common.protocols import tta_loop

ENV = "REGJAX_OFFICIAL_TTA_DIR"
FILES = {"tent": "tent/tent.py", "eata": "eata/eata.py",
         "cotta": "cotta/cifar/cotta.py",
         "wrn": "cotta/cifar/robustbench/model_zoo/architectures/"
                "wide_resnet.py"}


def missing(root: str | None) -> str | None:
  """Why the official code cannot be loaded from `root`, or None."""
  if not root:
    return f"set {ENV} to a folder with tent/, eata/, cotta/ checkouts"
  absent = [f for f in FILES.values()
            if not os.path.exists(os.path.join(root, f))]
  if absent:
    return f"{ENV}={root} lacks {', '.join(absent)}"
  if importlib.util.find_spec("torch") is None:
    return "torch is not installed"
  return None


def _module(name: str, path: str):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _stub_torchvision() -> dict[str, types.ModuleType]:
  """Modules that let `cotta.py` import without (a current) torchvision;
  anything that would use them raises."""
  def unavailable(*args, **kwargs):
    raise RuntimeError("the official CoTTA augmentation needs an old "
                       "torchvision; pass transform= instead")
  tv = types.ModuleType("torchvision")
  transforms = types.ModuleType("torchvision.transforms")
  transforms.__getattr__ = lambda name: unavailable
  tv.transforms = transforms
  mine = types.ModuleType("my_transforms")
  mine.__getattr__ = lambda name: unavailable
  return {"torchvision": tv, "torchvision.transforms": transforms,
          "my_transforms": mine}


def load(root: str) -> types.SimpleNamespace:
  """The official modules `tent`, `eata`, `cotta` and the class `WRN`."""
  reason = missing(root)
  if reason:
    raise FileNotFoundError(reason)
  path = lambda k: os.path.join(root, FILES[k])
  stubs = _stub_torchvision()
  saved = {k: sys.modules.get(k) for k in stubs}
  sys.modules.update(stubs)
  try:
    cotta = _module("official_cotta", path("cotta"))
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v
  return types.SimpleNamespace(
      tent=_module("official_tent", path("tent")),
      eata=_module("official_eata", path("eata")), cotta=cotta,
      WRN=_module("official_wrn", path("wrn")).WideResNet)


@contextlib.contextmanager
def cpu_cuda_calls():
  """`Tensor.cuda()` returns the tensor itself while active (CoTTA's
  restore mask is moved with `.cuda()`); a no-op when CUDA exists."""
  import torch  # pylint: disable=g-import-not-at-top
  if torch.cuda.is_available():
    yield
    return
  original = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *args, **kwargs: self
  try:
    yield
  finally:
    torch.Tensor.cuda = original


def wrn_pair(official: types.SimpleNamespace, depth: int = 16,
             widen_factor: int = 2, num_classes: int = 10, seed: int = 0,
             logit_scale: float = 8.0):
  """A RobustBench WRN with random weights and BatchNorm statistics, and
  the same weights converted for our `wide_resnet` (`common/convert`).

  `logit_scale` multiplies the classifier so that predictions are
  confident and varied (a random WRN predicts nearly uniformly, and every
  sample would fail EATA's entropy filter).

  Returns:
    `(torch model in eval mode, tta_loop.Source)`.
  """
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  model = official.WRN(depth=depth, num_classes=num_classes,
                       widen_factor=widen_factor)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
    model.fc.weight.mul_(logit_scale)
  model.eval()
  state = {k: v.numpy() for k, v in model.state_dict().items()}
  kwargs = dict(depth=depth, widen_factor=widen_factor)
  variables = torch_to_flax.convert_state_dict(
      state, models.get_model("wide_resnet", num_classes, **kwargs))
  source = tta_loop.Source("wide_resnet", kwargs, variables["params"],
                           {"batch_stats": variables["batch_stats"]},
                           num_classes, (32, 32, 3), {})
  return model, source


def to_torch(images_u8: np.ndarray, mean: float = 0.0, std: float = 1.0):
  """uint8 `[b, h, w, c]` -> float32 NCHW `(x / 255 - mean) / std` (the
  defaults give RobustBench's [0, 1] inputs)."""
  import torch  # pylint: disable=g-import-not-at-top
  x = (images_u8.astype(np.float32) / np.float32(255.0) - np.float32(mean)
       ) / np.float32(std)
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def tent_model(official, model, lr: float = 1e-3):
  """Official Tent (its CIFAR-10 setup: Adam, betas (0.9, 0.999))."""
  import torch  # pylint: disable=g-import-not-at-top
  model = official.tent.configure_model(copy.deepcopy(model))
  params, _ = official.tent.collect_params(model)
  return official.tent.Tent(model, torch.optim.Adam(
      params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0))


def eata_fishers(official, model, clean_batches: list[Any]):
  """`main.py`'s Fisher: squared gradients of the cross-entropy to the
  argmax labels, summed over batches and divided by their number, with
  the parameters at that time (on a configured copy of `model`)."""
  import torch  # pylint: disable=g-import-not-at-top
  net = official.eata.configure_model(copy.deepcopy(model))
  fishers = {}
  for i, x in enumerate(clean_batches, start=1):
    out = net(x)
    torch.nn.functional.cross_entropy(out, out.argmax(1)).backward()
    for name, p in net.named_parameters():
      if p.grad is not None:
        f = p.grad.detach().clone() ** 2
        if i > 1:
          f = f + fishers[name][0]
        if i == len(clean_batches):
          f = f / i
        fishers[name] = [f, p.detach().clone()]
        p.grad = None
  return fishers


def eata_model(official, model, fishers, e_margin: float, d_margin: float,
               fisher_alpha: float, lr: float = 2.5e-4):
  """Official EATA (its ImageNet optimizer: SGD, momentum 0.9)."""
  import torch  # pylint: disable=g-import-not-at-top
  model = official.eata.configure_model(copy.deepcopy(model))
  params, _ = official.eata.collect_params(model)
  return official.eata.EATA(
      model, torch.optim.SGD(params, lr, momentum=0.9), fishers,
      fisher_alpha, e_margin=e_margin, d_margin=d_margin)


def cotta_model(official, model, transform: Callable, gate: float,
                ema: float = 0.999, restore_prob: float = 0.01,
                lr: float = 1e-3, sgd_momentum: float | None = None):
  """Official CoTTA (its CIFAR-10 setup: Adam; SGD with `sgd_momentum`
  if given) with `transform` as the augmentation of its 32 teacher
  passes."""
  import torch  # pylint: disable=g-import-not-at-top
  cotta = official.cotta
  original = cotta.get_tta_transforms
  cotta.get_tta_transforms = lambda *a, **k: transform
  try:
    model = cotta.configure_model(copy.deepcopy(model))
    params, _ = _quietly(cotta.collect_params, model)
    optimizer = (torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999),
                                  weight_decay=0.0)
                 if sgd_momentum is None else
                 torch.optim.SGD(params, lr, momentum=sgd_momentum))
    return cotta.CoTTA(model, optimizer, mt_alpha=ema, rst_m=restore_prob,
                       ap=gate)
  finally:
    cotta.get_tta_transforms = original


def _quietly(fn, *args):
  """`fn(*args)` without its prints (CoTTA's `collect_params` prints every
  parameter name)."""
  with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
    return fn(*args)
