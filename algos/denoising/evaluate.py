"""The `denoising` evaluator: PSNR / SSIM of a denoiser on held-out patches.

Reports, over the generator's fixed held-out batches (`noisy`, `clean`):
`psnr_noisy` / `ssim_noisy` (the noisy input: the lower reference),
`psnr` / `ssim` of the method's `denoised` output (clipped to [0, 1] as the
official `forward_psnr`), and, for `noise2score` with
`config.denoising.blind_points > 0`, the blind estimate: the level chosen
per image on the official search grid (`tweedie.blind_criterion`),
`psnr_blind`, `ssim_blind`, `level_blind` (median of the chosen levels) and
`level_blind_mae` (mean absolute error to the true level).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from algos.denoising import tweedie
from common.core import sharding as sharding_lib
from common.eval import evaluators
from common.eval import image_quality


def held_out(setup: Any, state: Any) -> dict[str, np.ndarray]:
  """Host `noisy`, `clean`, `denoised` `[n, h, w, 1]` of the eval batches."""
  out = {"noisy": [], "clean": [], "denoised": []}
  for batch in setup.eval_batches():
    pred = setup.eval_step(state, batch, setup.hparams,
                           output_keys=("denoised",))
    out["denoised"].append(sharding_lib.gather_to_host(pred["denoised"]))
    for k in ("noisy", "clean"):
      out[k].append(sharding_lib.gather_to_host(batch[k]))
  return {k: np.concatenate(v) for k, v in out.items()}


def blind_search(setup: Any, state: Any, noisy: np.ndarray,
                 points: int) -> tuple[np.ndarray, np.ndarray]:
  """`(estimates [n, h, w, 1], chosen levels [n])` of the blind search."""
  noise = setup.config.method.noise2score.noise
  variables = {"params": state.params, **state.model_state}
  score_fn = jax.jit(lambda z: setup.model.apply(
      variables, z, train=False)["output"])
  grid = tweedie.blind_grid(noise, points)
  best = np.full(len(noisy), np.inf)
  estimate = np.zeros_like(noisy)
  level = np.zeros(len(noisy))
  score = None
  for candidate in grid:
    if score is None or noise == "poisson":   # Poisson reads y / zeta
      score = np.asarray(score_fn(tweedie.model_input(noisy, noise,
                                                       candidate)))
    recon = np.asarray(tweedie.tweedie(noisy, score, noise, candidate))
    crit = tweedie.blind_criterion(recon, noisy, noise)
    better = crit < best
    best = np.where(better, crit, best)
    estimate[better] = recon[better]
    level[better] = candidate
  return estimate, level


@evaluators.register_evaluator("denoising")
def denoising(setup: Any, state: Any) -> dict[str, float]:
  data = held_out(setup, state)
  clean = data["clean"]
  denoised = np.clip(data["denoised"], 0.0, 1.0)
  metrics = {
      "psnr_noisy": image_quality.psnr(data["noisy"], clean).mean(),
      "ssim_noisy": image_quality.ssim(data["noisy"], clean).mean(),
      "psnr": image_quality.psnr(denoised, clean).mean(),
      "ssim": image_quality.ssim(denoised, clean).mean()}
  points = setup.config.get("denoising", {}).get("blind_points", 0)
  if setup.config.method.name == "noise2score" and points > 0:
    estimate, level = blind_search(setup, state, data["noisy"], points)
    estimate = np.clip(estimate, 0.0, 1.0)
    true_level = setup.config.method.noise2score.level
    metrics.update(
        psnr_blind=image_quality.psnr(estimate, clean).mean(),
        ssim_blind=image_quality.ssim(estimate, clean).mean(),
        level_blind=float(np.median(level)),
        level_blind_mae=float(np.mean(np.abs(level - true_level))))
  return {k: float(v) for k, v in metrics.items()}
