"""The `gifd_inversion` probe: attack held-out digits' shared gradients.

Given the trained generator and the victim classifier of a `probe` run
(`common/protocols/probe.py`), for each target distribution (`in`: test
digits of the classes the generator was trained on; `ood`: the other
classes) it draws `gifd.targets` client batches of `gifd.batch_size`
images with distinct labels, computes each batch's victim gradient, and
runs the three attacks of `algos.privacy.gifd.attack` on it (one jitted
call, vmapped over batches). Metrics, means over all target images:

* `psnr/<dist>/<attack>`, `ssim/<dist>/<attack>` (attack in pixel, latent,
  gifd; `common.eval.image_quality`, images in [0, 1]);
* `match/<dist>/<attack>`: the gradient-matching loss (1 - cos) reached;
* `labels/<dist>`: share of labels iDLG recovered;
* `gifd_wins/<dist>`: share of images where GIFD's PSNR beats latent-only;
* `stage/<dist>`: mean index of the stage GIFD's best image comes from.

It writes `reconstructions_<dist>.png` (rows: targets, pixel, latent-only,
GIFD) into the run's workdir.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from algos.privacy import gifd
from common import config as config_lib
from common.data import gan_images
from common.eval import image_quality
from common.protocols import probe

ATTACKS = ("pixel", "latent", "gifd")
RULES = {
    "gifd.victim_state": config_lib.one_of("init", "trained"),
    "gifd.batch_size": config_lib.between(1, 5),
    "gifd.targets": config_lib.at_least(1, integer=True),
    "gifd.restarts": config_lib.at_least(1, integer=True),
    "gifd.pixel_steps": config_lib.at_least(1, integer=True),
    "gifd.latent_steps": config_lib.at_least(1, integer=True),
    "gifd.stage_steps": config_lib.each(config_lib.at_least(1, integer=True)),
    "gifd.tv_weight": config_lib.at_least(0.0),
    "gifd.pixel_lr": config_lib.greater_than(0.0),
    "gifd.latent_lr": config_lib.greater_than(0.0),
    "gifd.stage_lrs": config_lib.each(config_lib.greater_than(0.0)),
    "gifd.radii": config_lib.each(config_lib.at_least(0.0)),
}


def section() -> mlc.ConfigDict:
  """The `gifd` config section this probe reads (defaults: the CPU study)."""
  return mlc.ConfigDict(dict(
      victim_state="init",      # the victim at init or after training
      batch_size=1,             # images per shared gradient (distinct labels)
      targets=4,                # client batches per target distribution
      ood_classes=(5, 6, 7, 8, 9),
      restarts=1,
      # Equal budgets: GIFD's three stages share the steps of each baseline.
      pixel_steps=300, latent_steps=300,
      stage_steps=(100, 100, 100),     # latent stage, then layers 1, 2
      tv_weight=1e-4,                  # official total_variation
      pixel_lr=0.1, latent_lr=0.1,     # official lr (geiping) / lr_io
      stage_lrs=(0.1, 0.1, 0.1),       # official lr_io
      radii=(0.0, 100.0, 200.0)))      # l1 radii of the feature stages


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)
  g = config.gifd
  layers = _num_layers(config)
  if not 1 <= len(g.stage_steps) <= layers or not (
      len(g.stage_lrs) == len(g.radii) == len(g.stage_steps)):
    raise config_lib.ConfigError(
        f"config.gifd.stage_steps/stage_lrs/radii: one entry per stage, "
        f"1..{layers} stages (the generator's layers); got "
        f"{len(g.stage_steps)}/{len(g.stage_lrs)}/{len(g.radii)}")
  classes = set(config.data.kwargs.classes or range(10))
  if g.batch_size > min(len(classes), len(g.ood_classes)):
    raise config_lib.ConfigError(
        f"config.gifd.batch_size={g.batch_size}: a batch holds distinct "
        f"labels, at most {min(len(classes), len(g.ood_classes))} here")


def _num_layers(config: mlc.ConfigDict) -> int:
  """The generator's `num_layers` read from the config (before it is built)."""
  size = int(config.data.kwargs.image_size)
  return int(round(np.log2(size / 4))) + 2


def _blocks(module, features, start: int, end: int):
  """The generator's blocks `start..end-1` (flax `method=`)."""
  for i in range(start, end):
    features = module._block(i, features)  # pylint: disable=protected-access
  return features


def _targets(split_images, split_labels, classes, count, n, rng):
  """`count` batches `[count, n, s, s, 1]` in [0, 1] of `n` images with
  distinct labels (ascending), and their labels `[count, n]`."""
  xs, ys = [], []
  for _ in range(count):
    picked = np.sort(rng.choice(np.asarray(classes), n, replace=False))
    idx = [rng.choice(np.flatnonzero(split_labels == c)) for c in picked]
    xs.append((split_images[idx] + 1.0) / 2.0)
    ys.append(picked)
  return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.int32)


def _grid(rows: list[np.ndarray], path: str) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pad = lambda im: np.pad(im[..., 0], 1, constant_values=1.0)
  grid = np.concatenate([np.concatenate([pad(im) for im in r], axis=1)
                         for r in rows], axis=0)
  pixels = (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)
  Image.fromarray(pixels).resize((pixels.shape[1] * 6, pixels.shape[0] * 6),
                                 Image.NEAREST).save(path)


def run(config: mlc.ConfigDict, models: Mapping[str, probe.Trained],
        workdir: str) -> dict[str, float]:
  g = config.gifd
  gen = models["generator"]
  gen_vars = {"params": gen.state.params, **gen.state.model_state}
  forward = lambda f, start, end: gen.setup.model.apply(
      gen_vars, f, start, end, method=_blocks)
  victim = models["victim"]
  vstate = (victim.setup.init_state() if g.victim_state == "init"
            else victim.state)
  vmodel, vstate_rest = victim.setup.model, vstate.model_state

  def victim_apply(params, images01):  # victims read images in [-1, 1]
    return vmodel.apply({"params": params, **vstate_rest},
                        images01 * 2.0 - 1.0, train=False)["logits"]

  grads_fn = functools.partial(gifd.victim_gradients, victim_apply,
                               vstate.params)
  budget = gifd.Budget(g.restarts, g.pixel_steps, g.latent_steps,
                       tuple(g.stage_steps))
  hp = {k: jnp.asarray(g[k], jnp.float32) for k in (
      "tv_weight", "pixel_lr", "latent_lr", "stage_lrs", "radii")}
  size = int(config.data.kwargs.image_size)

  @jax.jit
  def attack_all(images, labels, key, hp):
    targets = jax.vmap(grads_fn)(images, labels)
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda t, k: gifd.attack(
        grads_fn, lambda grad: grad["head"]["kernel"], forward,
        gen.setup.model.num_layers, int(config.data.kwargs.latent_dim), t,
        g.batch_size, k, budget, hp))(targets, keys)

  in_classes = tuple(config.data.kwargs.classes) or tuple(range(10))
  split_x, split_y = gan_images.real_images("test", size)
  rng = np.random.default_rng(config.seed)
  key = jax.random.key(config.seed)
  out: dict[str, float] = {}
  for i, (dist, classes) in enumerate((("in", in_classes),
                                       ("ood", tuple(g.ood_classes)))):
    images, labels = _targets(split_x, split_y, classes, g.targets,
                              g.batch_size, rng)
    res = jax.device_get(attack_all(images, labels,
                                    jax.random.fold_in(key, i), hp))
    flat_true = images.reshape((-1,) + images.shape[2:])
    psnr = {}
    for a in ATTACKS:
      rec = res[a].reshape(flat_true.shape)
      psnr[a] = image_quality.psnr(rec, flat_true)
      out[f"psnr/{dist}/{a}"] = float(np.mean(psnr[a]))
      out[f"ssim/{dist}/{a}"] = float(np.mean(
          image_quality.ssim(rec, flat_true)))
      out[f"match/{dist}/{a}"] = float(np.mean(res[f"{a}_score"]))
    out[f"labels/{dist}"] = float(np.mean(res["labels"] == labels))
    out[f"gifd_wins/{dist}"] = float(np.mean(psnr["gifd"] > psnr["latent"]))
    out[f"stage/{dist}"] = float(np.mean(res["gifd_stage"]))
    shown = slice(0, min(8, len(flat_true)))
    _grid([flat_true[shown]] + [res[a].reshape(flat_true.shape)[shown]
                                for a in ATTACKS],
          os.path.join(workdir, f"reconstructions_{dist}.png"))
  return out


# The victim: a small BatchNorm CNN trained on all ten TFDS digits (inputs
# in [-1, 1]); "key=value" overrides of the generator's supervised sections.
VICTIM = (
    "data.source=tfds", "data.name=digits", "data.input_key=image",
    "data.preprocess=image", "data.kwargs={}",
    "model.name=small_cnn", "model.kwargs={'widths': (16, 32, 64)}",
    "method.name=cross_entropy", "optim.b1=0.9", "optim.b2=0.999",
    "schedule.learning_rate=0.001", "train.steps=600",
    "eval.name=classification")

# The smoke keeps compilation small: no R1 term, an MLP victim, two stages.
SMOKE = {"probe.models.generator": ("method.gan.r1=0.0",),
         "probe.models.victim": VICTIM + (
             "model.name=mlp", "model.kwargs={'hidden_sizes': (8,)}"),
         "gifd.targets": 1, "gifd.restarts": 1, "gifd.pixel_steps": 1,
         "gifd.latent_steps": 1, "gifd.stage_steps": (1, 1),
         "gifd.stage_lrs": (0.1, 0.1), "gifd.radii": (0.0, 1.0)}


@probe.register_probe("gifd_inversion")
def make() -> probe.Probe:
  return probe.Probe(run=run, validate=validate, smoke=SMOKE)
