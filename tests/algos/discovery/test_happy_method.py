"""Happy's step: stage 0 is SimGCD; a continual stage adds exactly the
weighted Happy terms (weights 0 = the continual SimGCD base)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.discovery import happy
from algos.discovery import happy_method
from algos.discovery import simgcd
from common.core import method as method_lib
from common.models.discovery_head import DiscoveryHead

C, B = 6, 8


def _setup(**cfg):
  model = DiscoveryHead(num_classes=C, backbone="mlp",
                        backbone_kwargs=dict(hidden_sizes=(8,)),
                        hidden_dim=8, proj_dim=4, nlayers=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (B, 5))
  params = model.init(jax.random.PRNGKey(1), x, train=False)["params"]
  run = method_lib.RunInfo(num_examples=64, num_classes=C, steps_per_epoch=8,
                           num_epochs=2, total_steps=16, global_batch_size=B)
  config = {**happy_method.DEFAULTS, "active_classes": C, **cfg}
  ictx = method_lib.InitContext(run, params, {}, config, model)
  ms = happy_method.init(jax.random.PRNGKey(2), ictx)
  hp = jax.tree.map(jnp.float32, happy_method.hparams(config, run))
  ctx = method_lib.StepContext(
      model=model, run=run, step=jnp.int32(3), inputs=x, model_state={},
      trainable=jax.tree.map(lambda _: True, params),
      rng_model=jax.random.PRNGKey(3),
      # deterministic views (the key is ignored): both methods see the same
      preprocess=lambda batch, key: batch["image"] * (
          1.0 if key is None else 1.0),
      normalize=lambda v: v)
  batch = {"image": x, "label": jnp.array([0, 1, 2, 3, 4, 5, 0, 1]),
           "labelled": jnp.ones((B,), bool), "mask": jnp.ones((B,), bool)}
  return ctx, params, ms, hp, batch


@pytest.fixture(scope="module")
def setup():
  """The tiny model and its step, jitted once over (hp, params,
  method_state, batch, rng) for every test (eager dispatch is slow)."""
  ctx, params, ms, hp, batch = _setup()
  step = jax.jit(lambda h, p, m, b, r: happy_method.apply(h, ctx, p, m, b, r))
  return ctx, params, ms, hp, batch, step


def test_stage0_with_every_class_active_is_simgcd(setup):
  ctx, params, ms, hp, batch, step = setup
  rng = jax.random.PRNGKey(4)
  ours, _ = step(hp, params, ms, batch, rng)
  ref, _ = jax.jit(lambda p: simgcd.apply(hp, ctx, p, ms, batch, rng))(
      params)
  np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_continual_stage_adds_the_weighted_happy_terms(setup):
  _, params, ms, hp, batch, step = setup
  protos = jax.random.normal(jax.random.PRNGKey(5), (C, 8))
  seen = jnp.arange(C) < 4
  ms = {**ms, "stage": jnp.int32(1), "seen": seen,
        "prototypes": happy.normalize(protos),
        "hardness": happy.prototype_hardness(protos, seen),
        "radius": jnp.float32(0.1)}
  rng = jax.random.PRNGKey(6)
  zero = {**hp, **{k: jnp.float32(0.0) for k in (
      "memax_old_new_weight", "memax_old_in_weight", "memax_new_in_weight",
      "proto_aug_weight", "feat_distill_weight")}}
  base, aux0 = step(zero, params, ms, batch, rng)
  m = aux0.metrics
  # the continual base: no label used, distill + memax + InfoNCE
  np.testing.assert_allclose(
      base, m["distill"] + hp["memax_weight"] * m["memax"] + m["infonce"],
      rtol=1e-5)
  full, aux = step(hp, params, ms, batch, rng)
  m = aux.metrics
  # teacher = the current params: feature distillation is 0
  np.testing.assert_allclose(m["feat_distill"], 0.0, atol=1e-10)
  np.testing.assert_allclose(full - base, m["soft_entropy"] + m["proto_aug"],
                             rtol=1e-4)
  assert float(m["proto_aug"]) > 0 and float(m["entropy_new_in"]) >= 0
  grads = jax.grad(lambda p: step(hp, p, ms, batch, rng)[0])(params)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  # the prototype CE reaches the classifier rows
  assert float(jnp.abs(grads["classifier"]["kernel"]).sum()) > 0
