"""The probe protocol trains (or reuses) its models, then probes them."""

import os

import jax
import jax.numpy as jnp
import pytest

from common import config as config_lib
from common.protocols import probe

_SEEN = []


def _norm_probe(config, models, workdir):
  """Records what it was given; returns each model's step and param norm."""
  _SEEN.append((dict(models), workdir))
  out = {}
  for name, trained in models.items():
    leaves = jax.tree.leaves(trained.state.params)
    out[f"{name}/step"] = int(trained.state.step)
    out[f"{name}/norm"] = float(sum(jnp.sum(x * x) for x in leaves))
  return out


probe.register_probe("test_norms")(
    lambda: probe.Probe(run=_norm_probe, smoke={}))


def _config(**overrides):
  c = probe.base_config()
  c.experiment = "test_probe"
  c.data.update(name="gaussian_blobs", source="generator", input_key="x",
                preprocess="none")
  c.model.update(name="mlp")
  c.model.kwargs = dict(hidden_sizes=(8,))
  c.optim.update(name="sgd", momentum=0.0, nesterov=False, weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=0.1)
  c.train.update(batch_size=16, steps=2, eval_batch_size=32,
                 tensorboard=False, eval_every_epochs=0)
  c.eval.name = "none"
  c.probe.name = "test_norms"
  c.probe.models.first = ()
  # A dict literal replaces a sub-section: another model's arguments.
  c.probe.models.second = ("train.steps=3",
                           "model.kwargs={'hidden_sizes': (4,)}")
  c.lock()
  return config_lib.apply_overrides(c, overrides)


def test_probe_gets_each_trained_model_and_arms_share_them(tmp_path):
  config = _config()
  result = probe.run(config, str(tmp_path / "arm" / "seed_0"),
                     show_progress=False)
  assert result.status == "finished"
  assert result.final["first/step"] == 2 and result.final["second/step"] == 3
  models, _ = _SEEN[-1]
  assert models["second"].config.train.steps == 3
  assert models["second"].state.params["dense0"]["kernel"].shape[-1] == 4
  assert models["first"].state.params["dense0"]["kernel"].shape[-1] == 8
  assert sorted(os.listdir(tmp_path / "pretrained")) == sorted(
      f"{n}_{config_lib.fingerprint(probe.model_config(config, n))[:12]}"
      for n in ("first", "second"))
  # Another arm reuses both models; a rerun is served from the summary.
  calls = len(_SEEN)
  other = probe.run(config, str(tmp_path / "arm2" / "seed_0"),
                    show_progress=False)
  assert other.final == result.final and len(_SEEN) == calls + 1
  again = probe.run(config, str(tmp_path / "arm" / "seed_0"),
                    show_progress=False)
  assert again.final == result.final and len(_SEEN) == calls + 1
  assert len(os.listdir(tmp_path / "pretrained")) == 2


def test_bad_probe_configs_are_one_line():
  with pytest.raises(config_lib.ConfigError, match="probe.models.first"):
    probe.validate(_config(**{"probe.models.first": ("probe.name=x",)}))
  with pytest.raises(config_lib.ConfigError, match="is a section"):
    probe.validate(_config(**{"probe.models.first": ("model.kwargs=3",)}))
  with pytest.raises(config_lib.ConfigError, match="registered probe"):
    probe.validate(_config(**{"probe.name": "nope"}))
