"""Parity of pg_noise_mask with the official training step.

Runs the official `_policy_gradient/train_one_epoch.train_one_epoch` for one
batch (torch, CPU) with the official `MaskGenerator` and loss, both
optimizers plain SGD with lr 1 (so each parameter moves by minus its
gradient), records the Beta mask the official code samples, and checks that
our `policy_logits` / `mask_image` / `pg_loss` on the same inputs, weights
and mask give the same gradients for the classifier and the policy and the
same running base logits.

Stand-ins: `timm` (not installed) gives the policy's feature extractor;
`timm.create_model` returns `nn.Flatten()` here, matched by our
`backbone="flatten"` (1-channel images, so NCHW and NHWC flatten alike).
Where torchvision is missing, `torchvision.transforms.functional.
gaussian_blur` is replaced by a transcription of its documented algorithm
(normalised 1-D Gaussian on `linspace(-(k-1)/2, (k-1)/2, k)`, reflect
padding, separable); with torchvision installed the real one is used.

Skipped unless REGJAX_OFFICIAL_PG_NOISE_MASK_DIR points at a checkout of
ogrenenmakine/Policy-Gradient-Driven-Noise-Mask.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

OFFICIAL = os.environ.get("REGJAX_OFFICIAL_PG_NOISE_MASK_DIR", "")
pytestmark = pytest.mark.skipif(
    not OFFICIAL, reason="set REGJAX_OFFICIAL_PG_NOISE_MASK_DIR to a checkout "
    "of ogrenenmakine/Policy-Gradient-Driven-Noise-Mask")

GRID, SIZE, KERNEL, SIGMA, B, C = 4, 8, 3, 1, 6, 5


def _stub_modules(torch):
  """`timm` (feature extractor = Flatten) and, if absent, torchvision's
  gaussian_blur."""
  timm = types.ModuleType("timm")
  timm.create_model = lambda *a, **k: torch.nn.Flatten()
  stubs = {"timm": timm}
  try:
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    def gaussian_blur(img, kernel_size, sigma):
      k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
      s = float(sigma if not isinstance(sigma, (list, tuple)) else sigma[0])
      x = torch.linspace(-(k - 1) * 0.5, (k - 1) * 0.5, steps=k)
      pdf = torch.exp(-0.5 * (x / s).pow(2))
      k1 = pdf / pdf.sum()
      w = (k1[:, None] * k1[None, :]).expand(img.shape[-3], 1, k, k)
      padded = torch.nn.functional.pad(img, [k // 2] * 4, mode="reflect")
      return torch.nn.functional.conv2d(padded, w, groups=img.shape[-3])
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.ModuleType(
        "torchvision.transforms.functional")
    tv.transforms.functional.gaussian_blur = gaussian_blur
    stubs.update({"torchvision": tv,
                  "torchvision.transforms": tv.transforms,
                  "torchvision.transforms.functional":
                      tv.transforms.functional})
  return stubs


def _load(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_one_official_step_matches_our_gradients_and_base_update(
    monkeypatch):
  torch = pytest.importorskip("torch")
  from algos.regularizers import pg_noise_mask as pg  # pylint: disable=g-import-not-at-top
  folder = os.path.join(OFFICIAL, "_policy_gradient")
  for name, module in _stub_modules(torch).items():
    monkeypatch.setitem(sys.modules, name, module)
  monkeypatch.setitem(sys.modules, "utils",
                      _load("utils", os.path.join(folder, "utils.py")))
  create = _load("pg_official_create_model",
                 os.path.join(folder, "create_model.py"))
  step = _load("pg_official_train_one_epoch",
               os.path.join(folder, "train_one_epoch.py"))

  torch.manual_seed(0)
  policy = create.MaskGenerator(SIZE * SIZE, GRID, "stub")
  model = torch.nn.Sequential(torch.nn.Flatten(),
                              torch.nn.Linear(SIZE * SIZE, C))
  before = {k: v.detach().clone().numpy()
            for k, v in {**{f"p.{k}": v for k, v in
                            policy.named_parameters()},
                         **{f"m.{k}": v for k, v in
                            model.named_parameters()}}.items()}
  base_a, base_b = torch.rand((1, GRID * GRID)), torch.rand((1, GRID * GRID))
  image = torch.randn(B, 1, SIZE, SIZE)
  target = torch.tensor([0, 1, 2, 3, 4, 0])
  sampled = []
  original = torch.distributions.Beta.sample

  def recording_sample(self, *a, **k):
    out = original(self, *a, **k)
    sampled.append(out.detach().clone())
    return out
  monkeypatch.setattr(torch.distributions.Beta, "sample", recording_sample)
  sgd = lambda p: torch.optim.SGD(p, lr=1.0)
  args = argparse.Namespace(grid=GRID, train_crop_size=SIZE, kernel=KERNEL,
                            sigma=SIGMA, clip_grad_norm=None, print_freq=10)
  new_base_a, new_base_b = step.train_one_epoch(
      model, policy, base_a.clone(), base_b.clone(),
      torch.nn.CrossEntropyLoss(), sgd(model.parameters()),
      sgd(policy.parameters()), [(image, target)], "cpu", 0, args)
  after = {**{f"p.{k}": v.detach().numpy()
              for k, v in policy.named_parameters()},
           **{f"m.{k}": v.detach().numpy()
              for k, v in model.named_parameters()}}
  torch_grads = {k: before[k] - after[k] for k in before}   # lr 1, SGD
  assert min(np.abs(g).max() for g in torch_grads.values()) > 1e-6

  # Ours on the same weights, inputs and mask.
  def head(name):
    out = {}
    for i, (lin, bn) in enumerate(((0, 1), (3, 4))):
      out[f"{name}_{i}"] = {"kernel": before[f"p.{name}.{lin}.weight"].T,
                            "bias": before[f"p.{name}.{lin}.bias"]}
      out[f"{name}_bn{i}"] = {"scale": before[f"p.{name}.{bn}.weight"],
                              "bias": before[f"p.{name}.{bn}.bias"]}
    out[f"{name}_out"] = {"kernel": before[f"p.{name}.6.weight"].T,
                          "bias": before[f"p.{name}.6.bias"]}
    return out
  pol = jax.tree.map(jnp.asarray, {**head("alpha"), **head("beta")})
  cls = {"w": jnp.asarray(before["m.1.weight"].T),
         "b": jnp.asarray(before["m.1.bias"])}
  x = jnp.asarray(image.permute(0, 2, 3, 1).numpy())
  mask = jnp.asarray(sampled[0].numpy())
  labels = jnp.asarray(target.numpy())
  net = pg.MaskPolicy(grid=GRID, width=SIZE * SIZE, backbone="flatten")

  def loss(cls, pol):
    log_a, log_b, ba, bb = pg.policy_logits(
        net, pol, x, jnp.asarray(base_a.numpy()), jnp.asarray(base_b.numpy()),
        0.9, 0.99)
    m = pg.mask_image(mask, GRID, SIZE, SIZE, KERNEL, SIGMA)
    logits = (x * m).reshape(B, -1) @ cls["w"] + cls["b"]
    ce = jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits),
                                       labels[:, None], 1))
    return pg.pg_loss(log_a, log_b, mask, ce)[0], (ba, bb)

  (_, (ba, bb)), (g_cls, g_pol) = jax.jit(jax.value_and_grad(
      loss, argnums=(0, 1), has_aux=True))(cls, pol)
  tol = dict(rtol=2e-4, atol=2e-6)
  np.testing.assert_allclose(np.asarray(ba), new_base_a.numpy(), **tol)
  np.testing.assert_allclose(np.asarray(bb), new_base_b.numpy(), **tol)
  np.testing.assert_allclose(g_cls["w"], torch_grads["m.1.weight"].T, **tol)
  np.testing.assert_allclose(g_cls["b"], torch_grads["m.1.bias"], **tol)
  for name in ("alpha", "beta"):
    for i, (lin, bn) in enumerate(((0, 1), (3, 4))):
      np.testing.assert_allclose(g_pol[f"{name}_{i}"]["kernel"],
                                 torch_grads[f"p.{name}.{lin}.weight"].T,
                                 **tol)
      np.testing.assert_allclose(g_pol[f"{name}_bn{i}"]["scale"],
                                 torch_grads[f"p.{name}.{bn}.weight"], **tol)
    np.testing.assert_allclose(g_pol[f"{name}_out"]["kernel"],
                               torch_grads[f"p.{name}.6.weight"].T, **tol)
