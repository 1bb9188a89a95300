"""A tiny BatchNorm model and helpers shared by the TTA tests."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import adapt

NUM_CLASSES = 3
SHAPE = (2, 2, 1)  # images [b, 2, 2, 1] -> 4 features


class TinyBN(nn.Module):
  """flatten -> BatchNorm(4) -> Dense(3): logits = BN(x) W + c."""

  @nn.compact
  def __call__(self, x, train: bool):
    h = x.reshape(x.shape[0], -1)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                     epsilon=1e-5, name="bn")(h)
    logits = nn.Dense(NUM_CLASSES, name="head")(h)
    return {"logits": logits, "features": h}


def variables(seed: int = 0):
  model = TinyBN()
  v = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *SHAPE)),
                 train=False)
  v = jax.tree.map(np.asarray, dict(v))
  params = v.pop("params")
  # Non-trivial BN affine so gradients flow through scale and bias.
  params["bn"]["scale"] = np.asarray([1.2, 0.8, 1.0, 0.9], np.float32)
  params["bn"]["bias"] = np.asarray([0.1, -0.2, 0.0, 0.3], np.float32)
  return model, params, v


def stream(steps: int, batch: int, seed: int = 0) -> np.ndarray:
  """uint8 images `[steps, batch, 2, 2, 1]`."""
  rs = np.random.RandomState(seed)
  return rs.randint(0, 256, (steps, batch, *SHAPE)).astype(np.uint8)


def optim_config(name="sgd", lr=0.5, momentum=0.0):
  return mlc.ConfigDict(dict(name=name, learning_rate=lr, momentum=momentum,
                             nesterov=False, b1=0.9, b2=0.999, eps=1e-8,
                             weight_decay=0.0))


def build(method_name: str, method_cfg: dict, optim=None, model=None,
          mesh=None):
  """`(adapter, hparams)` of a TTA method on the tiny model (SGD lr 0.5)."""
  optim = optim or optim_config()
  model = model or TinyBN()
  method = adapt.get_tta_method(method_name, method_cfg)
  adapter = adapt.make_adapter(model, method, num_classes=NUM_CLASSES,
                               mean=(0.5,), std=(0.25,),
                               optimizer=optim.name, mesh=mesh)
  hp = adapt.build_hparams(method, method_cfg, optim, NUM_CLASSES)
  return adapter, hp


# ------------------------------------------------ numpy oracle (float64)
def np_forward(params, images_u8):
  """The tiny model with test-batch BN, in float64 numpy."""
  x = (images_u8.astype(np.float64) / 255.0 - 0.5) / 0.25
  h = x.reshape(x.shape[0], -1)
  mu, var = h.mean(0), h.var(0)
  h = (h - mu) / np.sqrt(var + 1e-5)
  h = h * params["bn"]["scale"] + params["bn"]["bias"]
  return h @ params["head"]["kernel"] + params["head"]["bias"]


def np_entropy(logits):
  z = logits - logits.max(-1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
  return -(np.exp(logp) * logp).sum(-1)


def np_bn_grad(loss, params, eps=1e-6):
  """Central finite differences of `loss(params)` w.r.t. BN scale/bias."""
  out = {}
  for name in ("scale", "bias"):
    base = np.asarray(params["bn"][name], np.float64)
    g = np.zeros_like(base)
    for i in range(base.size):
      for sign in (1, -1):
        p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
        p["bn"][name] = base.copy()
        p["bn"][name][i] += sign * eps
        g[i] += sign * loss(p) / (2 * eps)
    out[name] = g
  return out
