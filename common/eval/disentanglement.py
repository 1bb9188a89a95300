"""Evaluating autoencoders for disentanglement: metrics hook and figures.

`evaluate(setup, state)` is the evaluator `config.eval.name =
"disentanglement"` (see `common.eval.evaluators`): it encodes the
eval split, reads the ground-truth factors (every `label_*` ClassLabel
feature, as TFDS `dsprites` / `shapes3d` and the in-repo `dsprites_gen`
name them) and returns InfoM/InfoE/InfoC, DCI and reconstruction BCE/MSE
(`common.eval.metrics_disentanglement`). Models are
`algos.disentanglement.autoencoder` (registered as "autoencoder"):
the code is discrete (codebook indices) for `latent="quantized"`, else
continuous ("features": z or the posterior mean).

`write_figures` saves the NMI heat-map (sources x latents) and latent
traversals as PNGs.

Optional config section `config.disentanglement` (experiments add it):
`max_eval_examples` (a fixed random subset of the eval split; 0 = all),
`dci_predictor` ("logistic" or "gbt").
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow_datasets as tfds

from common.eval import evaluators
from common.eval import metrics_disentanglement as md

_CACHE: dict[tuple, dict[str, Any]] = {}
_SUBSET_SEED = 20230228


def _options(config) -> dict[str, Any]:
  opts = {"max_eval_examples": 0, "dci_predictor": "logistic"}
  if "disentanglement" in config:
    opts.update(config.disentanglement.to_dict())
  return opts


def load_factors(name: str, split: str, data_dir: str | None,
                 max_examples: int = 0) -> dict[str, Any]:
  """Images and ground-truth factor indices of a split (cached).

  Args:
    name: TFDS name (prepared, or in-repo like `dsprites_gen/small`).
    split: split expression.
    data_dir: TFDS data dir (None: the default).
    max_examples: if > 0, a fixed random subset of this many examples.

  Returns:
    {"images": uint8 [n, h, w, c], "factors": int [n, n_s],
     "names": factor names, "sizes": classes per factor}.
  """
  from common.data import sources  # pylint: disable=g-import-not-at-top
  key = (name, split, data_dir, max_examples)
  if key in _CACHE:
    return _CACHE[key]
  data_dir = data_dir or sources.default_data_dir()
  if sources._base_name(name) in sources.IN_REPO_BUILDERS:  # pylint: disable=protected-access
    sources.prepare_in_repo(name, data_dir)
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    raise sources.DatasetNotFoundError(
        f"dataset {name!r} is not prepared in {data_dir!r}; see "
        "common/data/sources.py for how to prepare TFDS datasets")
  features = builder.info.features
  names = [k for k in features if k.startswith("label_")
           and isinstance(features[k], tfds.features.ClassLabel)]
  if not names:
    raise ValueError(f"dataset {name!r} has no label_* ClassLabel factors; "
                     f"features: {sorted(features)}")
  source = builder.as_data_source(split=split)
  n = len(source)
  indices = np.arange(n)
  if 0 < max_examples < n:
    indices = np.sort(np.random.default_rng(_SUBSET_SEED).choice(
        n, max_examples, replace=False))
  images, factors = [], []
  for start in range(0, len(indices), 1024):
    keys = [int(i) for i in indices[start:start + 1024]]
    records = (source.__getitems__(keys) if hasattr(source, "__getitems__")
               else [source[i] for i in keys])
    images.extend(np.asarray(r["image"]) for r in records)
    factors.extend([int(r[k]) for k in names] for r in records)
  out = {"images": np.stack(images).astype(np.uint8),
         "factors": np.asarray(factors, np.int64),
         "names": [k[len("label_"):] for k in names],
         "sizes": [features[k].num_classes for k in names]}
  _CACHE[key] = out
  return out


@functools.lru_cache(maxsize=None)
def _apply_fn(model, preprocess):
  def apply(params, model_state, images):
    x = preprocess({preprocess.input_key: images}, None)
    return model.apply({"params": params, **model_state}, x, train=False)
  return jax.jit(apply)


@functools.lru_cache(maxsize=None)
def _decode_fn(model):
  def decode(params, model_state, z):
    return model.apply({"params": params, **model_state}, z,
                       method="decode")
  return jax.jit(decode)


def encode_all(s, state, images: np.ndarray) -> dict[str, np.ndarray]:
  """Model outputs of every image, batched by `train.eval_batch_size`."""
  apply = _apply_fn(s.model, s.parts.preprocess)
  size = s.config.train.eval_batch_size
  parts = []
  for start in range(0, len(images), size):
    chunk = images[start:start + size]
    pad = size - len(chunk)   # one compiled shape for every batch
    if pad:
      chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]),
                                              chunk.dtype)])
    out = jax.device_get(apply(state.params, state.model_state, chunk))
    parts.append({k: v[:size - pad] for k, v in out.items()})
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _target_scale(config) -> float:
  method_cfg = config.method[config.method.name]
  return float(method_cfg.get("target_scale", 255.0))


def is_discrete(config) -> bool:
  return config.model.kwargs.get("latent", "") == "quantized"


def code_of(outputs: dict[str, np.ndarray], discrete: bool) -> np.ndarray:
  """The code the metrics read: indices if discrete, else features."""
  return outputs["z_indices"] if discrete else outputs["features"]


def compute(s, state, full: bool = True) -> dict[str, Any]:
  """Everything `evaluate` reports, plus the NMI matrix and the data.

  With `full=False` only the NMI-based numbers (InfoM, InfoC) and the
  reconstruction are computed (no regressions: InfoE and DCI are NaN).
  """
  config = s.config
  opts = _options(config)
  data = load_factors(config.data.name, config.data.eval_split,
                      config.data.data_dir or None,
                      int(opts["max_eval_examples"]))
  outputs = encode_all(s, state, data["images"])
  discrete = is_discrete(config)
  code = code_of(outputs, discrete)
  info = md.infomec(data["factors"], code, discrete, seed=config.seed,
                    explicitness=full)
  nan = float("nan")
  dci = (md.dci(data["factors"], outputs["features"],
                predictor=opts["dci_predictor"], seed=config.seed)
         if full else {"dci_d": nan, "dci_c": nan, "dci_i": nan})
  targets = data["images"].astype(np.float64) / _target_scale(config)
  recon = md.reconstruction_metrics(outputs["logits"], targets)
  metrics = {"infom": info["infom"], "infoe": info["infoe"],
             "infoc": info["infoc"], "dci_d": dci["dci_d"],
             "dci_c": dci["dci_c"], "dci_i": dci["dci_i"],
             "active_latents": float(info["active"].sum()), **recon}
  return {"metrics": metrics, "nmi": info["nmi"], "active": info["active"],
          "data": data, "outputs": outputs}


@evaluators.register_evaluator("disentanglement")
def evaluate(s, state) -> dict[str, float]:
  """The evaluator: disentanglement + reconstruction metrics."""
  return compute(s, state)["metrics"]


def write_figures(s, state, outdir: str, title: str = "",
                  result: dict[str, Any] | None = None) -> dict[str, str]:
  """Writes `nmi.png` (sources x latents) and `traversals.png`.

  Traversals: for 3 eval images, each row sets one latent to evenly spaced
  values (its codebook values if quantized, else its observed 2nd..98th
  percentile) with the others fixed, and decodes.

  Returns:
    {"nmi": path, "traversals": path}.
  """
  result = result or compute(s, state, full=False)
  os.makedirs(outdir, exist_ok=True)
  nmi, names = result["nmi"], result["data"]["names"]
  fig, ax = plt.subplots(figsize=(0.55 * nmi.shape[1] + 2.2,
                                  0.5 * nmi.shape[0] + 1.4))
  im = ax.imshow(nmi, vmin=0, vmax=1, cmap="viridis")
  for (i, j), v in np.ndenumerate(nmi):
    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
            color="white" if v < 0.6 else "black")
  ax.set_yticks(range(len(names)), names)
  ax.set_xticks(range(nmi.shape[1]),
                [f"z{j}" + ("" if a else "*") for j, a in
                 enumerate(result["active"])])
  ax.set_xlabel("latent (* = inactive)")
  m = result["metrics"]
  ax.set_title(f"{title}: NMI, InfoM {m['infom']:.2f}, InfoC "
               f"{m['infoc']:.2f}", fontsize=8)
  fig.colorbar(im, ax=ax, fraction=0.04)
  fig.tight_layout()
  paths = {"nmi": os.path.join(outdir, "nmi.png"),
           "traversals": os.path.join(outdir, "traversals.png")}
  fig.savefig(paths["nmi"], dpi=110)
  plt.close(fig)

  outputs, steps = result["outputs"], 8
  base_latents = (outputs["z_quantized"] if "z_quantized" in outputs
                  else outputs["features"])
  n_z = base_latents.shape[1]
  if "codebook" in state.params:
    book = np.asarray(jax.device_get(state.params["codebook"]))
    grids = [np.sort(book[j])[np.linspace(0, book.shape[1] - 1, steps)
                              .round().astype(int)] for j in range(n_z)]
  else:
    lo, hi = np.percentile(base_latents, [2, 98], axis=0)
    grids = [np.linspace(lo[j], hi[j], steps) for j in range(n_z)]
  decode = _decode_fn(s.model)
  picks = np.linspace(0, len(base_latents) - 1, 3).round().astype(int)
  fig, axes = plt.subplots(n_z, len(picks), figsize=(
      len(picks) * steps * 0.45, n_z * 0.5 + 0.4), squeeze=False)
  for c, idx in enumerate(picks):
    z = np.repeat(base_latents[idx][None, None], n_z, 0).repeat(steps, 1)
    for j in range(n_z):
      z[j, :, j] = grids[j]
    logits = decode(state.params, state.model_state,
                    jnp.asarray(z.reshape(n_z * steps, n_z), jnp.float32))
    imgs = np.asarray(jax.nn.sigmoid(logits)).reshape(
        n_z, steps, *logits.shape[1:])
    for j in range(n_z):
      row = np.concatenate(list(imgs[j]), axis=1)
      ax = axes[j, c]
      ax.imshow(row.squeeze(-1) if row.shape[-1] == 1 else row,
                cmap="gray", vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      if c == 0:
        ax.set_ylabel(f"z{j}", rotation=0, labelpad=12, fontsize=7)
  fig.suptitle(f"{title} latent traversals", fontsize=8)
  fig.tight_layout()
  fig.savefig(paths["traversals"], dpi=90)
  plt.close(fig)
  return paths
