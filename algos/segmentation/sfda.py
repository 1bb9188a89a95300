"""Source-free domain adaptation for segmentation: prior-aware entropy.

Paper: M. Bateson, H. Kervadec, J. Dolz, H. Lombaert, I. Ben Ayed,
"Source-Free Domain Adaptation for Image Segmentation", Medical Image
Analysis 2022, arXiv:2108.03152 (MICCAI 2020: "Source-Relaxed Domain
Adaptation for Image Segmentation"). Official code: mathilde-b/SFDA
(PyTorch), `losses.py::EntKLProp`, `utils.py::norm_soft_size`,
`bounds.py::PredictionBounds`, `prostate.make`.

A model trained on labelled source images is adapted on unlabelled target
images (all parameters, BatchNorm in train mode) by

  L = lamb_se * L_ent + lamb_consprior * L_KL,

with softmax probabilities `p [b, h, w, C]`:

* `L_ent = -sum_{b,pix,c} w_c p log(p + 1e-10) / sum_{b,pix,c} p`: the
  class-weighted entropy (official prostate weights `w = (0.1, 0.9)`);
* `L_KL = (1 / b) sum_{b,c} tau_hat log(tau_hat + 1e-10)
  - tau_hat log(tau + 1e-10)`: KL(tau_hat || tau), the predicted class
  proportions against the prior (this direction, as the official code);
* `tau_hat = norm_soft_size(p)`: each pixel's probabilities divided by
  their maximum (so the argmax class counts 1), raised to `power` (1),
  summed over pixels and normalised over classes (not the plain mean
  probability of the paper's equations: we follow the code);
* `tau [b, C]`: the size prior. The official `dumbpredwtags` column is one
  constant size per foreground class, set to 0 in the images whose
  image-level tag says the class is absent, with the background taking the
  rest of the image (`sizes/prostate.csv`: [140225, 8000] of 385^2, or
  [148225, 0]). Here the constant of class c is estimated from the source
  labels (`size_prior` empty: the mean fraction of class c over the source
  slices that contain it) or given (`size_prior`); `tags="labels"` zeroes
  absent classes from the batch's image-level presence (the official main
  setting: weak image-level target labels, never pixels), `tags="none"`
  keeps every class (no target label at all).

`lamb_consprior = 0` is entropy minimisation alone (the baseline the paper
improves on). `tags="source_model"` is the paper's AdaEnt baseline (its
MICCAI 2020 version, "Source-Relaxed Domain Adaptation for Image
Segmentation": the same loss, the class-ratio prior of
each target image predicted by an auxiliary network trained on the
source). The official repo holds no code for that regressor; here the
source segmentation network itself, frozen, is the regressor: tau =
norm_soft_size of its softmax on the image (no target label used).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.core import method as method_lib

EPS = 1e-10
# Where each image's prior comes from: constant sizes zeroed by image-level
# tags, constant sizes, or the frozen source model's predicted proportions.
TAGS = ("labels", "none", "source_model")


def norm_soft_size(probs: jax.Array, power: jax.Array) -> jax.Array:
  """Predicted class proportions `[b, C]` from probabilities `[b, h, w, C]`
  (official `utils.norm_soft_size`)."""
  peak = jnp.max(probs, axis=-1, keepdims=True) + EPS
  sizes = jnp.sum((probs / peak) ** power, axis=(1, 2))
  return sizes / (jnp.sum(sizes, axis=-1, keepdims=True) + EPS)


def class_prior(size_prior: jax.Array, present: jax.Array) -> jax.Array:
  """Per-image prior `[b, C]` from foreground sizes `[C - 1]` (fractions
  of the image) and image-level tags `present [b, C - 1]`: absent classes
  get 0, the background the rest."""
  fg = present.astype(jnp.float32) * size_prior
  return jnp.concatenate([1.0 - jnp.sum(fg, -1, keepdims=True), fg], -1)


def image_tags(labels: jax.Array, num_classes: int) -> jax.Array:
  """bool `[b, C - 1]`: which foreground classes each label map holds."""
  classes = jnp.arange(1, num_classes)
  return jnp.any(labels[..., None] == classes, axis=(1, 2))


def sfda_terms(probs: jax.Array, prior: jax.Array, weights: jax.Array,
               power: jax.Array, rows: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`(L_ent, L_KL, tau_hat [b, C])` of the module docstring.

  Args:
    probs: `[b, h, w, C]` softmax probabilities.
    prior: `[b, C]` size prior tau.
    weights: `[C]` entropy weights.
    power: the exponent of `norm_soft_size`.
    rows: optional bool `[b]`; False rows (batch padding) count nowhere
      (`b` is then the number of True rows).
  """
  rows = jnp.ones(probs.shape[0], bool) if rows is None else rows
  r = rows.astype(jnp.float32)
  est = norm_soft_size(probs, power)
  kl_rows = jnp.sum(est * jnp.log(est + EPS) - est * jnp.log(prior + EPS),
                    axis=-1)
  kl = jnp.sum(kl_rows * r) / jnp.maximum(jnp.sum(r), 1.0)
  weighted = -jnp.sum(weights * probs * jnp.log(probs + EPS), axis=-1)
  mass = jnp.sum(probs, axis=-1)  # 1 per pixel, as the official mask.sum()
  ent = (jnp.sum(weighted * r[:, None, None])
         / (jnp.sum(mass * r[:, None, None]) + EPS))
  return ent, kl, est


def _loss(hp, outputs, batch, prior):
  """The adaptation loss on the train-mode forward, prior `[b, C]`."""
  probs = jax.nn.softmax(outputs["logits"].astype(jnp.float32), axis=-1)
  weights = jnp.stack(hp["entropy_weights"])
  ent, kl, est = sfda_terms(probs, prior, weights, hp["power"],
                            batch["mask"])
  value = hp["lamb_se"] * ent + hp["lamb_consprior"] * kl
  rows = batch["mask"].astype(jnp.float32)[:, None]
  gap = jnp.sum(jnp.abs(est - prior) * rows) / jnp.maximum(jnp.sum(rows), 1)
  return value, {"entropy": ent, "kl_prior": kl, "prop_gap": gap}


def _constant_prior(method_state, outputs, batch, use_tags: bool):
  num_classes = outputs["logits"].shape[-1]
  if use_tags:
    present = image_tags(batch["label"], num_classes)
  else:
    present = jnp.ones((outputs["logits"].shape[0], num_classes - 1), bool)
  return class_prior(method_state["size_prior"], present)


def loss_with_tags(hp, method_state, outputs, batch, params, rng):
  """`tags="labels"`: absent classes (image-level tags) get prior 0."""
  del params, rng
  prior = _constant_prior(method_state, outputs, batch, use_tags=True)
  return (*_loss(hp, outputs, batch, prior), method_state)


def loss_without_tags(hp, method_state, outputs, batch, params, rng):
  """`tags="none"`: the same prior for every image (no target label)."""
  del params, rng
  prior = _constant_prior(method_state, outputs, batch, use_tags=False)
  return (*_loss(hp, outputs, batch, prior), method_state)


def apply_source_prior(hp, ctx: method_lib.StepContext, params, method_state,
                       batch, rng):
  """`tags="source_model"` (AdaEnt, MICCAI 2020): each image's prior is the
  class proportions `norm_soft_size` that a network trained on the source
  predicts for it: here the frozen source model itself (eval mode, its own
  BatchNorm statistics), no gradient, no target label."""
  del rng
  outputs, model_state = ctx.forward(params)
  source, _ = ctx.forward(method_state["source_params"], train=False,
                          model_state=method_state["source_state"])
  probs = jax.nn.softmax(source["logits"].astype(jnp.float32), axis=-1)
  prior = jax.lax.stop_gradient(norm_soft_size(probs, hp["power"]))
  value, metrics = _loss(hp, outputs, batch, prior)
  return value, method_lib.StepAux(metrics, model_state, method_state)


def estimate_size_prior(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """`[C - 1]`: per foreground class, its mean pixel fraction over the label
  maps `[n, h, w]` that contain it (0 for a class never seen)."""
  labels = np.asarray(labels)
  out = np.zeros(num_classes - 1)
  for c in range(1, num_classes):
    frac = (labels == c).mean(axis=(1, 2))
    out[c - 1] = frac[frac > 0].mean() if np.any(frac > 0) else 0.0
  return out


def load(config: dict[str, Any], run: method_lib.RunInfo) -> dict[str, Any]:
  """The size prior: given, or estimated from the source labels (host)."""
  if config["size_prior"]:
    prior = np.asarray(config["size_prior"], np.float64)
  else:
    from common.data import sources  # pylint: disable=g-import-not-at-top
    source = sources.open_split(config["prior_dataset"],
                                config["prior_split"],
                                config["prior_data_dir"] or None)
    labels = source.get(np.arange(len(source)))["label"]
    prior = estimate_size_prior(labels, run.num_classes)
  if prior.shape != (run.num_classes - 1,) or prior.sum() >= 1:
    raise config_lib.ConfigError(
        f"config.method.sfda_seg.size_prior: {prior.tolist()} must hold one "
        f"fraction per foreground class ({run.num_classes - 1}) summing "
        "below 1")
  return {"size_prior": prior}


def init(rng, ctx: method_lib.InitContext):
  del rng
  extras = ctx.extras
  if isinstance(extras, dict) and "method" in extras:
    extras = extras["method"]
  state = {"size_prior": jnp.asarray(extras["size_prior"], jnp.float32)}
  if ctx.config.get("tags") == "source_model":
    # The run's initial parameters: the source model under `finetune`.
    copy = lambda t: jax.tree.map(jnp.array, t)
    state.update(source_params=copy(ctx.params),
                 source_state=copy(ctx.model_state))
  return state


def hparams(config: dict[str, Any], run: method_lib.RunInfo
            ) -> dict[str, Any]:
  weights = tuple(config["entropy_weights"]) or (1.0,) * run.num_classes
  if len(weights) != run.num_classes:
    raise config_lib.ConfigError(
        f"config.method.sfda_seg.entropy_weights has {len(weights)} values; "
        f"the model has {run.num_classes} classes")
  return {"lamb_se": float(config["lamb_se"]),
          "lamb_consprior": float(config["lamb_consprior"]),
          "power": float(config["power"]),
          "entropy_weights": [float(w) for w in weights]}


def default_config() -> dict[str, Any]:
  """The official prostate settings (`prostate.make`), 2 classes."""
  return dict(lamb_se=1.0, lamb_consprior=1.0, power=1.0,
              entropy_weights=(0.1, 0.9), tags="labels", size_prior=(),
              prior_dataset="segshapes/domains", prior_split="source_train",
              prior_data_dir="")


RULES = {
    "lamb_se": config_lib.at_least(0.0),
    "lamb_consprior": config_lib.at_least(0.0),
    "power": config_lib.greater_than(0.0),
    "entropy_weights": config_lib.each(config_lib.at_least(0.0)),
    "tags": config_lib.one_of(*TAGS),
    "size_prior": config_lib.each(config_lib.between(0.0, 1.0)),
}


@method_lib.register_method("sfda_seg")
def make(config: dict[str, Any]) -> method_lib.Method:
  tags = config.get("tags", "labels")
  if tags not in TAGS:
    raise config_lib.ConfigError(
        f"config.method.sfda_seg.tags={tags!r}; allowed {TAGS}")
  if tags == "source_model":
    return method_lib.Method(name="sfda_seg", apply=apply_source_prior,
                             hparams=hparams, init=init, load=load,
                             rules=RULES)
  return method_lib.Method(
      name="sfda_seg",
      loss=loss_with_tags if tags == "labels" else loss_without_tags,
      hparams=hparams, init=init, load=load, rules=RULES)
