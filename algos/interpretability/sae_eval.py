"""Sparse-autoencoder metrics and the evaluator `sae`.

For "Analysis of Variational Sparse Autoencoders" (arXiv:2509.22994; no
confirmed official code). Metrics of a dictionary `W_dec [m, d]` and its
codes `f [n, m]` on held-out vectors `x [n, d]`:

* `nmse` = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (normalised MSE);
  `fve` = 1 - sum ||r - mean(r)||^2 / sum ||x - mean(x)||^2, r = x - x_hat
  (fraction of variance explained, SAE-Bench's "explained variance").
* `l0`: mean number of non-zero latents per example.
* `dead_frac`: latents that are zero on every held-out example (a window of
  `n` examples).
* with a ground-truth dictionary `D [n_true, d]` (toy data): `mmcs`, the
  mean over true features of the max cosine to any decoder row (Sharkey et
  al. 2022), and `recovered`, the share of true features with max cosine
  > 0.9.
* feature-independence proxies (the paper's SAE-Bench SCR/TPP/absorption
  runs need a language model and probes; these are what toy data allows):
  `dec_overlap`, the mean over live latents of the max |cosine| to another
  live decoder row, and `act_corr`, the mean |Pearson correlation| between
  the activations of pairs of live latents.

The evaluator runs the method's eval-mode forward (`z = mu`, no sampling)
on the run's held-out batches (the generator's eval stream).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from algos.interpretability import vsae
from common.core import sharding as sharding_lib
from common.data import superposition
from common.eval import evaluators


def _unit(rows: np.ndarray) -> np.ndarray:
  return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True),
                           1e-12)


def reconstruction_metrics(x: np.ndarray, recon: np.ndarray,
                           features: np.ndarray) -> dict[str, float]:
  """`nmse`, `fve`, `l0`, `dead_frac` of held-out `x [n, d]`."""
  x, recon = np.asarray(x, np.float64), np.asarray(recon, np.float64)
  r = x - recon
  total = np.sum((x - x.mean(0)) ** 2)
  active = np.asarray(features) != 0
  return {"nmse": float(np.sum(r ** 2) / total),
          "fve": float(1.0 - np.sum((r - r.mean(0)) ** 2) / total),
          "l0": float(active.sum(-1).mean()),
          "dead_frac": float(1.0 - active.any(0).mean())}


def recovery_metrics(w_dec: np.ndarray, truth: np.ndarray,
                     threshold: float = 0.9) -> dict[str, float]:
  """`mmcs` and `recovered` of decoder rows `[m, d]` vs truth `[n, d]`."""
  cos = _unit(np.asarray(truth, np.float64)) @ _unit(
      np.asarray(w_dec, np.float64)).T
  best = cos.max(-1)
  return {"mmcs": float(best.mean()),
          "recovered": float((best > threshold).mean())}


def independence_metrics(w_dec: np.ndarray, features: np.ndarray
                         ) -> dict[str, float]:
  """`dec_overlap` and `act_corr` over live latents (nan if < 2 live)."""
  live = np.asarray(features != 0).any(0)
  if live.sum() < 2:
    return {"dec_overlap": float("nan"), "act_corr": float("nan")}
  w = _unit(np.asarray(w_dec, np.float64)[live])
  cos = np.abs(w @ w.T)
  np.fill_diagonal(cos, 0.0)
  f = np.asarray(features, np.float64)[:, live]
  f = f - f.mean(0)
  std = np.sqrt((f ** 2).mean(0))
  corr = (f.T @ f) / len(f) / np.maximum(np.outer(std, std), 1e-12)
  n = corr.shape[0]
  off = np.abs(corr)[~np.eye(n, dtype=bool)]
  return {"dec_overlap": float(cos.max(-1).mean()),
          "act_corr": float(off.mean())}


@evaluators.register_evaluator("sae")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Held-out SAE metrics (module docstring) of `state`."""
  cfg = setup.config
  xs, recons, feats = [], [], []
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("recon", "features"))
    xs.append(sharding_lib.gather_to_host(batch["x"]))
    recons.append(sharding_lib.gather_to_host(out["recon"]))
    feats.append(sharding_lib.gather_to_host(out["features"]))
  x, recon, features = (np.concatenate(a) for a in (xs, recons, feats))
  normalize = bool(cfg.model.kwargs.get("normalize_decoder", True))
  w_dec = np.asarray(vsae.decoder_rows(
      {"w_dec": jnp.asarray(state.params["w_dec"])}, normalize))
  metrics = reconstruction_metrics(x, recon, features)
  if cfg.data.name == "toy_superposition":
    metrics.update(recovery_metrics(
        w_dec, np.asarray(superposition.true_dictionary(cfg))))
  metrics.update(independence_metrics(w_dec, features))
  return metrics
