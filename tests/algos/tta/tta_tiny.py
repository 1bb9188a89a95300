"""A tiny BatchNorm model and helpers shared by the TTA tests.

The TTA methods run exactly as in a study: `tta_loop.Adapter` builds the
one train step (`build.build`) of the method on the tiny model, and
`step` / `walk` feed it batches.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common import models
from common.core import sharding
from common.data import preprocess as preprocess_lib
from common.data import streams as streams_lib
from common.protocols import tta
from common.protocols import tta_loop

NUM_CLASSES = 3
SHAPE = (2, 2, 1)  # images [b, 2, 2, 1] -> 4 features
MODEL = "tta_tiny_bn"


class TinyBN(nn.Module):
  """flatten -> BatchNorm(4) -> Dense(3): logits = BN(x) W + c."""
  num_classes: int = NUM_CLASSES
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    h = x.reshape(x.shape[0], -1)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                     epsilon=1e-5, name="bn")(h)
    logits = nn.Dense(self.num_classes, name="head")(h)
    return {"logits": logits, "features": h}


if MODEL not in models.MODELS:   # registered in-process for the tests
  models.register_model(MODEL)(TinyBN)


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


def config(method: str, method_cfg: dict, optim: str = "sgd",
           lr: float = 0.5, batch: int = 8, loop: str = "auto",
           seed: int = 0) -> mlc.ConfigDict:
  """A TTA config of `method` on the tiny model (SGD lr 0.5, no momentum)."""
  c = tta.base_config()
  c.experiment = "tta_tiny"
  c.seed = seed
  c.model.name = MODEL
  c.data.update(mean=(0.5,), std=(0.25,))
  c.adapt.update(method=method, batch_size=batch, loop=loop)
  c.adapt.optim.update(name=optim, learning_rate=lr, momentum=0.0)
  c.tta[method] = dict(method_cfg)
  c.lock()
  return c


def source(seed: int = 0) -> tta_loop.Source:
  _, params, bstats = variables(seed)
  return tta_loop.Source(model_name=MODEL, model_kwargs={}, params=params,
                         model_state=bstats, num_classes=NUM_CLASSES,
                         image_shape=SHAPE, final={})


def build(method: str, method_cfg: dict, optim: str = "sgd",
          lr: float = 0.5, clean: np.ndarray | None = None,
          loop: str = "auto", fork=None, batch: int = 8
          ) -> tta_loop.Adapter:
  """The adapter of `method` on the tiny model; `clean` uint8
  `[n_batches, b, 2, 2, 1]` reaches `Method.init` as the protocol's clean
  batches; `fork` replaces the registered Method."""
  cfg = config(method, method_cfg, optim, lr, batch, loop)
  src = source()
  extras = None
  if clean is not None:
    extras = {"clean_batches": {"image": jnp.asarray(clean)},
              "preprocess": preprocess_lib.make(
                  tta_loop.adapt_config(cfg, src).data)}
  return tta_loop.Adapter(cfg, src, sharding.make_mesh(), extras, fork)


def step(adapter: tta_loop.Adapter, state, x: np.ndarray, hparams=None):
  """One train step on a copy of `state` (the step donates its input):
  `(new state, reported logits [b, C], method metrics {name: float})`."""
  new, metrics, outputs = adapter.setup.train_step(
      jax.tree.map(jnp.copy, state), {"image": jnp.asarray(x)},
      adapter.setup.hparams if hparams is None else hparams)
  metrics = {k.split("/", 1)[-1]: float(v)
             for k, v in jax.device_get(metrics).items()}
  return new, np.asarray(outputs["logits"]), metrics


def walk(adapter: tta_loop.Adapter, state, xs: np.ndarray):
  """Adapts on `[T, b, ...]` from a copy of `state`: `(state, preds [T, b],
  metrics {name: [T]})`."""
  return adapter.walk(jax.tree.map(jnp.copy, state),
                      {"image": jax.device_put(
                          xs, streams_lib.stream_sharding(adapter.mesh))})


def with_hparams(adapter: tta_loop.Adapter, **method_hp):
  """The adapter's hparams with some method numbers replaced (traced: the
  step is not recompiled)."""
  hp = jax.tree.map(lambda v: v, adapter.setup.hparams)
  hp["method"] = {**hp["method"], **{k: jnp.float32(v)
                                     for k, v in method_hp.items()}}
  return hp


def assert_config_error(config: mlc.ConfigDict, overrides: dict, match: str):
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(config_lib.ConfigError, match=match):
    tta.validate(config_lib.apply_overrides(config, overrides))


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


def np_softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


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
