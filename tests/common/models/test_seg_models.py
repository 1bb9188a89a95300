"""Dense-prediction models: output contracts and their failure modes."""

import jax
import jax.numpy as jnp
import pytest

from common import models


def test_unet_logits_per_pixel_and_features():
  model = models.get_model("unet", 5, widths=(4, 8))
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3))

  @jax.jit
  def forward(rng):
    variables = model.init(rng, x, train=False)
    return model.apply(variables, x, train=True, mutable=["batch_stats"])

  out, state = forward(jax.random.PRNGKey(1))
  assert out["logits"].shape == (2, 16, 16, 5)
  assert out["logits"].dtype == jnp.float32
  assert out["features"].shape == (2, 16, 16, 4)
  assert "batch_stats" in state
  # Pixels see their neighbourhood: the logits are not constant in space.
  assert float(jnp.std(out["logits"], axis=(1, 2)).min()) > 0


def test_resnet_seg_output_shapes():
  model = models.get_model("resnet_seg", 5, stage_sizes=(1, 1),
                           widths=(4, 8), stem_width=4, decoder_width=8)
  x = jnp.zeros((2, 32, 32, 3))
  out = jax.eval_shape(lambda: model.apply(
      model.init(jax.random.PRNGKey(0), x, train=False), x, train=False))
  assert out["logits"].shape == (2, 32, 32, 5)
  assert out["features"].shape == (2, 8, 8, 8)


def test_resnet_seg_backbone_names_match_the_classifier():
  seg = models.get_model("resnet_seg", 3, stage_sizes=(1, 1), widths=(4, 8),
                         stem_width=4)
  cls = models.get_model("resnet", 3, stage_sizes=(1, 1), widths=(4, 8),
                         stem_width=4)
  x = jnp.zeros((1, 32, 32, 3))
  init = lambda m: jax.eval_shape(
      lambda: m.init(jax.random.PRNGKey(0), x, train=False))["params"]
  seg_params, cls_params = init(seg), init(cls)
  backbone = jax.tree.map(jnp.shape, seg_params["backbone"])
  classifier = jax.tree.map(jnp.shape, {k: v for k, v in cls_params.items()
                                        if k != "fc"})
  assert backbone == classifier


def test_unet_rejects_sides_not_divisible():
  model = models.get_model("unet", 2, widths=(4, 8, 16))
  with pytest.raises(ValueError, match="divisible by 4"):
    jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                      jnp.zeros((1, 18, 18, 3)), train=False))
