"""GAN training through the harness: the generator's layer API, one
alternating step against a hand-written one, 1 device = 8 devices."""

import chex
import jax
import jax.numpy as jnp
import ml_collections as mlc
import pytest

from algos.generative import gan
from common.core import train_step as train_step_lib
from common.models import gan as gan_models
from common.protocols import build
from common.protocols import supervised
from tests.conftest import run_on_one_and_eight_devices


def gan_config(method: str = "gan", **method_kw) -> mlc.ConfigDict:
  """A tiny digits GAN (8x8, width 8) on the `gan_images` generator."""
  c = supervised.base_config()
  c.experiment = "test_gan"
  c.data.update(source="generator", name="gan_images", input_key="z",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(image_size=8, latent_dim=8,
                                      eval_examples=64))
  c.model.name = "gan_generator"
  c.model.kwargs = mlc.ConfigDict(dict(image_size=8, width=8))
  c.method.name = method
  c.method[method] = mlc.ConfigDict(dict(d_width=8, **method_kw))
  c.optim.update(name="adamw", b1=0.0, b2=0.99, weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=0.002)
  c.train.update(batch_size=16, steps=2, eval_every_epochs=0,
                 tensorboard=False, log_every_steps=1)
  c.eval.name = "gan"
  return c


def test_generator_layers_compose_to_the_full_generator():
  g = gan_models.Generator(image_size=16, width=4)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 5))

  @jax.jit   # one compilation for every split point, not op by op
  def full_and_rebuilt(key, z):
    v = g.init(key, z)
    return g.apply(v, z)["images"], [
        g.apply(v, g.apply(v, z, layer, method=g.features_at), layer,
                method=g.generate_from)
        for layer in range(g.num_layers + 1)]
  images, rebuilt = full_and_rebuilt(jax.random.PRNGKey(1), z)
  assert images.shape == (3, 16, 16, 1) and g.num_layers == 4
  for layer_images in rebuilt:
    chex.assert_trees_all_close(layer_images, images, atol=1e-6)


@pytest.fixture(scope="module")
def gan_setup():
  return build.setup(gan_config(r1=10.0))


def test_one_gan_step_matches_a_hand_written_alternating_step(gan_setup):
  """D: one Adam(b1=0) step on logistic + R1 (first Adam step =
  lr * g / (|g| + eps)); G: the gradient of the non-saturating loss on
  fresh latents against the updated D."""
  s = gan_setup
  state = s.init_state()
  params, d0 = jax.tree.map(jnp.array, (state.params,
                                        state.method_state["disc"]))
  batch = s.generator.sample(train_step_lib.procedural_key(state.rng, 0),
                             16)
  rng = jax.random.fold_in(state.rng, 0)
  _, _, rng_method = jax.random.split(rng, 3)
  _, k_z = jax.random.split(rng_method)
  new, metrics, _ = s.train_step(state, {}, s.hparams)

  g = lambda p, z: s.model.apply({"params": p}, z)["images"]
  disc = gan_models.Discriminator(width=8)
  d = lambda dp, x: disc.apply({"params": dp}, x)["logits"]

  @jax.jit   # one compilation instead of op-by-op dispatch
  def reference(params, d0, batch, k_z):
    fake = g(params, batch["z"])

    def d_loss(dp):
      return (gan.d_logistic_loss(d(dp, batch["image"]), d(dp, fake))
              + 5.0 * gan.r1_penalty(lambda x: d(dp, x), batch["image"]))
    lr = 0.002 * 16 / 17
    d1 = jax.tree.map(lambda w, gw: w - lr * gw / (jnp.abs(gw) + 1e-8), d0,
                      jax.grad(d_loss)(d0))
    z_g = jax.random.normal(k_z, batch["z"].shape)
    g_grads = jax.grad(
        lambda p: gan.g_nonsaturating_loss(d(d1, g(p, z_g))))(params)
    p1 = jax.tree.map(lambda w, gw: w - 0.002 * gw / (jnp.abs(gw) + 1e-8),
                      params, g_grads)
    return d1, p1

  d1, p1 = reference(params, d0, batch, k_z)
  chex.assert_trees_all_close(new.method_state["disc"], d1, atol=1e-6)
  chex.assert_trees_all_close(new.params, p1, atol=1e-6)
  assert float(metrics["method/d_loss"]) > 0


_SCRIPT = """
import json, sys
import jax
sys.path.insert(0, ".")
from common.core import logging_utils
from common.protocols import supervised
from tests.algos.generative.test_gan import gan_config
c = gan_config()
c.train.steps = 3
c.eval.name = "none"
supervised.train(c, sys.argv[1], show_progress=False)
rows = [r for r in logging_utils.read_jsonl(sys.argv[1] + "/metrics.jsonl")
        if r["split"] == "train"]
print(json.dumps({"devices": jax.device_count(),
                  "g": [r["method/g_adv"] for r in rows],
                  "d": [r["method/d_loss"] for r in rows]}))
"""


def test_gan_training_is_the_same_on_one_and_eight_devices(tmp_path_factory):
  one, eight = run_on_one_and_eight_devices(_SCRIPT, tmp_path_factory)
  assert len(one["g"]) == 3
  chex.assert_trees_all_close(one["g"], eight["g"], rtol=1e-4)
  chex.assert_trees_all_close(one["d"], eight["d"], rtol=1e-4)
