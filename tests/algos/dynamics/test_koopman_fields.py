"""info_koopman on 2-D fields: the official CNN's upsampling, the field
autoencoder's shapes and loss, the `cfd_fields` windows and their errors,
and the full-scale cylinder config compiled at its real shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.dynamics import info_koopman as ik
from algos.dynamics import koopman_fields
from common import config as config_lib
from common.data import cfd_fields
from common.data import procedural
from common.protocols import compile_check
from experiments.info_koopman import evaluate as field_eval


def test_upsampling_equals_torch_bilinear_with_aligned_corners():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(
      np.float32)                                          # [b, c, h, w]
  want = torch.nn.UpsamplingBilinear2d(scale_factor=2)(torch.from_numpy(x))
  got = koopman_fields.upsample2x_aligned(jnp.asarray(x.transpose(0, 2, 3,
                                                                  1)))
  np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2),
                             want.numpy(), atol=1e-6)


def test_upsampling_keeps_corners_and_linear_ramps():
  ramp = jnp.arange(4.0)[None, :, None, None] * jnp.ones((1, 4, 3, 1))
  up = koopman_fields.upsample2x_aligned(ramp)[0, :, 0, 0]
  np.testing.assert_allclose(up, np.linspace(0.0, 3.0, 8), atol=1e-6)


def test_field_autoencoder_shapes_and_plain_loss():
  model = ik.KoopmanAE(latent_dim=8, architecture="field_cnn", field_size=16)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 16, 16, 2))
  hp = dict(recon_weight=0.1, mi_weight=0.0, entropy_weight=0.0,
            mi_temperature=0.1)

  @jax.jit     # one compilation: op-by-op dispatch of the CNN is slow
  def run(x):
    variables = model.init(jax.random.PRNGKey(1), x)
    out = model.apply(variables, x)
    loss, metrics = ik.koopman_loss(hp, out, x, mi_k=1)
    roll = model.apply(variables, x[:, 0], 3, method="rollout")
    return variables, out, loss, metrics, roll

  variables, out, loss, metrics, roll = run(x)
  assert out["latents"].shape == (2, 5, 8)
  assert out["recon"].shape == (2, 5, 16, 16, 2)
  assert out["pred"].shape == (2, 4, 16, 16, 2)
  per_step = lambda a, b: jnp.mean((a - b) ** 2, axis=(0, 2, 3, 4))
  want = (per_step(out["pred"], x[:, 1:]).sum()
          + 0.1 * per_step(out["recon"][:, :-1], x[:, :-1]).sum())
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  assert metrics["pred_loss"] > 0
  assert roll.shape == (2, 4, 16, 16, 2)
  # The held-out metrics of the field runs, against the same forward.
  scores = field_eval.field_metrics(model, variables,
                                    variables["params"]["koopman"],
                                    np.asarray(x), chunk=1)
  rmse = lambda a, b: float(jnp.sqrt(jnp.mean((a - b) ** 2)))
  np.testing.assert_allclose(scores["rollout_rmse"],
                             rmse(out["pred"], x[:, 1:]), rtol=1e-4)
  np.testing.assert_allclose(scores["recon_rmse"], rmse(out["recon"], x),
                             rtol=1e-4)
  np.testing.assert_allclose(scores["koopman_radius"], 1.0, rtol=1e-6)


def test_bad_architecture_and_field_size_are_refused():
  x = jnp.zeros((1, 2, 24, 24, 2))
  with pytest.raises(ValueError, match="field_size=24.*divide by 16"):
    ik.KoopmanAE(architecture="field_cnn", field_size=24).init(
        jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match="allowed \\['mlp', 'field_cnn'\\]"):
    ik.KoopmanAE(architecture="cnn").init(jax.random.PRNGKey(0), x)


def _write_fields(root, frames=40, size=64, train=2):
  rng = np.random.default_rng(0)
  data = {}
  for split, n in (("train", train), ("val", 1)):
    data[split] = (3.0 + 2.0 * rng.standard_normal(
        (n, frames, 2, size, size))).astype(np.float32)
    np.save(root / f"cylinder_{split}_data.npy", data[split])
  return data


def _field_config(root, variant="cylinder"):
  c = config_lib.load_config(
      f"experiments/info_koopman/config.py:{variant}")
  return config_lib.apply_overrides(c, {"data.data_dir": str(root)})


def test_windows_are_consecutive_standardised_frames(tmp_path):
  data = _write_fields(tmp_path, frames=20, size=16)
  config = config_lib.apply_overrides(_field_config(tmp_path),
                                      {"data.kwargs.length": 5})
  train = np.moveaxis(data["train"], 2, -1)
  mean, std = train.mean(axis=(0, 1, 2, 3)), train.std(axis=(0, 1, 2, 3))
  gen = procedural.make(config)
  assert gen.epoch_size == 2 * 16
  x = np.asarray(gen.sample(jax.random.PRNGKey(3), 8)["x"])
  assert x.shape == (8, 5, 16, 16, 2)
  raw = x * std + mean
  for window in raw:       # each window is 5 consecutive frames of a sample
    hits = [(i, s) for i in range(2) for s in range(16)
            if np.allclose(train[i, s:s + 5], window, atol=1e-4)]
    assert len(hits) == 1
  held_out = cfd_fields.eval_windows(config)
  val = (np.moveaxis(data["val"], 2, -1) - mean) / std
  assert held_out.shape == (16, 5, 16, 16, 2)
  np.testing.assert_allclose(held_out[3], val[0, 3:8], atol=1e-4)


def test_missing_files_and_long_windows_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="cylinder_train_data.npy"):
    procedural.make(_field_config(tmp_path))
  _write_fields(tmp_path, frames=10, size=16)
  with pytest.raises(config_lib.ConfigError, match="length=17 is not "
                     "allowed: the train split has 10 frames"):
    procedural.make(_field_config(tmp_path))


def test_cylinder_config_lowers_at_its_real_shapes(tmp_path):
  # Lowered, not compiled: the shapes are what this checks (compiling it
  # takes tens of seconds here; `regjax compile` does it where data exist).
  _write_fields(tmp_path)
  config = _field_config(tmp_path)
  programs = compile_check.PROGRAMS[config.protocol](config)
  train = next(p for p in programs if p.name == "train_step").lower()
  text = train.as_text()
  assert "16x17x64x64x2xf32" in text       # batch 16 of 17-frame windows
  assert "4096x512xf32" in text            # the official encoder's linear
