"""ELR: targets, lambda=0 equals CE, masking, 1 vs 8 devices."""

from __future__ import annotations

from concurrent import futures

import jax
import jax.numpy as jnp
import numpy as np

from algos.baselines import cross_entropy
from algos.noisy_labels import elr
from common.core import method as method_lib
from tests.conftest import train_on_cpu_devices

N, C = 12, 5


def _state():
  run = method_lib.RunInfo(num_examples=N, num_classes=C, steps_per_epoch=2,
                           num_epochs=1, total_steps=2, global_batch_size=6)
  ctx = method_lib.InitContext(run, {}, {}, {"lam": 3.0, "beta": 0.7})
  return elr.init(jax.random.PRNGKey(0), ctx)


def _batch(seed, index=(3, 0, 7, 1, 9, 4)):
  rng = np.random.default_rng(seed)
  b = len(index)
  return ({"label": jnp.asarray(rng.integers(0, C, b), jnp.int32),
           "index": jnp.asarray(index, jnp.int32),
           "mask": jnp.ones((b,), bool)},
          jnp.asarray(3 * rng.normal(size=(b, C)), jnp.float32))


def _loss(hp, state, batch, logits):
  value, _, new = elr.loss(hp, state, {"logits": logits}, batch, {}, None)
  return value, new


def test_lambda_zero_equals_cross_entropy():
  state = _state()
  state["targets"] = jax.nn.softmax(jax.random.normal(
      jax.random.PRNGKey(1), (N, C)))
  batch, logits = _batch(0)
  hp = {"lam": jnp.float32(0.0), "beta": jnp.float32(0.7)}
  ce = lambda z: cross_entropy.loss({"label_smoothing": 0.0}, {},
                                    {"logits": z}, batch, {}, None)[0]
  ours = lambda z: _loss(hp, state, batch, z)[0]
  np.testing.assert_allclose(ours(logits), ce(logits), rtol=1e-6)
  np.testing.assert_allclose(jax.grad(ours)(logits), jax.grad(ce)(logits),
                             rtol=1e-6, atol=1e-7)


def test_targets_update_only_batch_rows_and_stay_distributions():
  state = _state()
  hp = {"lam": jnp.float32(3.0), "beta": jnp.float32(0.7)}
  batch, logits = _batch(0)
  batch["mask"] = batch["mask"].at[-1].set(False)   # row 4 is padding
  _, new = _loss(hp, state, batch, logits)
  t = np.asarray(new["targets"])
  written = [3, 0, 7, 1, 9]
  untouched = [i for i in range(N) if i not in written]
  np.testing.assert_array_equal(t[untouched], 0.0)
  # From zero targets one update gives (1 - beta) * normalised clipped p.
  p = np.asarray(elr.clipped_probs(logits))[:5]
  np.testing.assert_allclose(t[written], 0.3 * p / p.sum(1, keepdims=True),
                             rtol=1e-6)
  _, newer = _loss(hp, new, batch, logits)
  np.testing.assert_allclose(np.asarray(newer["targets"])[written].sum(1),
                             0.3 + 0.7 * 0.3, rtol=1e-6)


def test_regulariser_pulls_toward_the_targets():
  """The ELR gradient raises the logit of the target's class."""
  state = _state()
  state["targets"] = jax.nn.one_hot(jnp.arange(N) % C, C)
  batch, logits = _batch(0)
  hp = {"lam": jnp.float32(1.0), "beta": jnp.float32(1.0)}  # frozen targets
  reg = lambda z: _loss(hp, state, batch, z)[0] - cross_entropy.loss(
      {"label_smoothing": 0.0}, {}, {"logits": z}, batch, {}, None)[0]
  g = jax.grad(reg)(logits)
  own = np.asarray(batch["index"]) % C
  assert np.all(np.asarray(g)[np.arange(len(own)), own] <= 0)


_DEVICES_CONFIG = (
    "config_lib.apply_overrides(config_lib.load_config("
    "'experiments/elr/config.py:digits'), {'train.steps': 6, "
    "'train.batch_size': 32, 'train.eval_batch_size': 120, "
    "'train.log_every_steps': 1, 'train.eval_every_epochs': 0, "
    "'train.tensorboard': False})")


def test_one_and_eight_devices_train_alike(tmp_path_factory, tfds_data_dir):
  """ELR + 40% symmetric noise + the noisy_labels evaluator: the noisy
  labels, the per-example targets and the losses do not depend on the
  device count."""
  del tfds_data_dir  # the subprocesses inherit TFDS_DATA_DIR
  with futures.ThreadPoolExecutor(2) as pool:
    one, eight = pool.map(lambda n: train_on_cpu_devices(
        _DEVICES_CONFIG, n, str(tmp_path_factory.mktemp(f"elr{n}"))), (1, 8))
  assert one["devices"] == 1 and eight["devices"] == 8
  np.testing.assert_allclose(one["losses"], eight["losses"], rtol=2e-4)
  assert 0.3 < one["eval"]["corrupted_fraction"] < 0.4
  for key, value in one["eval"].items():
    np.testing.assert_allclose(eight["eval"][key], value, rtol=1e-3,
                               atol=1e-3, err_msg=key)
