"""EntroPE's held-out evaluation (evaluator `forecast`) and its figure.

Evaluator `forecast`, on the test windows (`regime_ar`: `eval_examples`
windows drawn from the key `HELD_OUT + seed`, a stream no train step uses;
`ltsf_csv`: every window of the test split, in order):

* stage "forecast": MSE and MAE on the standardised scale (the papers'
  convention), the mean patch count per series, the fraction of series
  whose patches overflowed `max_patches`, and on `regime_ar` the
  boundary precision / recall / F1 against the true switch points within
  `eval.boundary_tolerance` steps (every channel's boundaries against the
  shared switches; position 0 ignored);
* stage "entropy" (the pretraining run): held-out next-token cross-entropy
  of the entropy model.

`artifacts` (study hook) draws `boundaries.png`: held-out contexts of the
first seed's EntroPE arm with the true switch points, the entropy model's
entropy and the patch boundaries it places.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from algos.timeseries import entrope
from algos.timeseries import entrope_patching
from common.data import procedural
from common.data import timeseries
from common.eval import evaluators
from common.protocols import supervised

HELD_OUT = 20_000


def test_windows(config: Any) -> dict[str, np.ndarray]:
  """The run's test windows {"x", "y"[, "switch"]} (fixed per seed)."""
  if config.data.name == "ltsf_csv":
    return timeseries.split_windows(config, "test")
  gen = procedural.make(config)
  kw = procedural.settings(config, timeseries.REGIME_DEFAULTS)
  batch = gen.sample(jax.random.PRNGKey(HELD_OUT + config.seed),
                     kw["eval_examples"])
  return jax.tree.map(np.asarray, batch)


def _chunks(windows, size):
  n = len(windows["x"])
  for i in range(0, n, size):
    yield {k: v[i:i + size] for k, v in windows.items()}


@evaluators.register_evaluator("forecast")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  cfg = setup.config
  windows = test_windows(cfg)
  size = cfg.train.eval_batch_size
  if cfg.method.entrope.stage == "entropy":
    total, count = 0.0, 0
    for chunk in _chunks(windows, size):
      out = evaluators.predict(setup, state, {"x": chunk["x"]},
                               ("entropy_logits", "tokens"))
      n = out["tokens"].size
      total += float(entrope.entropy_loss(out["entropy_logits"],
                                          out["tokens"])) * n
      count += n
    return {"entropy_ce": total / count}
  sums = dict(se=0.0, ae=0.0, patches=0.0, overflow=0.0)
  counts = dict(predicted=0, hits=0, switches=0, found=0)
  for chunk in _chunks(windows, size):
    out = evaluators.predict(setup, state, {"x": chunk["x"]},
                             ("forecast", "starts", "num_patches",
                              "overflow"))
    err = out["forecast"] - chunk["y"]
    sums["se"] += float((err**2).sum())
    sums["ae"] += float(np.abs(err).sum())
    sums["patches"] += float(out["num_patches"].sum())
    sums["overflow"] += float((out["overflow"] > 0).sum())
    if "switch" in chunk:
      length = chunk["x"].shape[1]
      switch = np.broadcast_to(chunk["switch"][:, None, :length],
                               out["starts"].shape)
      got = entrope_patching.boundary_counts(
          out["starts"], switch, cfg.eval.boundary_tolerance)
      for k, v in got.items():
        counts[k] += int(v)
  y = windows["y"]
  series = y.shape[0] * y.shape[2]
  final = {"mse": sums["se"] / y.size, "mae": sums["ae"] / y.size,
           "num_patches": sums["patches"] / series,
           "overflow": sums["overflow"] / series}
  if "switch" in windows:
    p = counts["hits"] / max(counts["predicted"], 1)
    r = counts["found"] / max(counts["switches"], 1)
    final.update(boundary_precision=p, boundary_recall=r,
                 boundary_f1=2 * p * r / max(p + r, 1e-12))
  return final


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`boundaries.png` of the first seed of the first entropy-patched arm."""
  arm = next((a for a, c in configs.items()
              if c.model.kwargs.get("patching", "entropy") == "entropy"
              and c.data.name == "regime_ar"), None)
  if arm is None:
    return {}
  seed = min(runs[arm])
  from common import config as config_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.apply_overrides(configs[arm], {"seed": seed})
  setup, state = supervised.restore(
      cfg, os.path.join(runs[arm][seed].workdir, "finetune"))
  windows = test_windows(cfg)
  shown = {k: v[:4] for k, v in windows.items()}
  out = evaluators.predict(setup, state, {"x": shown["x"]},
                           ("starts", "entropy"))
  length = shown["x"].shape[1]
  fig, axes = plt.subplots(4, 1, figsize=(9, 8.5), sharex=True)
  for i, ax in enumerate(axes):
    ax.plot(shown["x"][i, :, 0], color="k", lw=1.0, label="channel 0")
    for t in np.flatnonzero(shown["switch"][i, 1:length]) + 1:
      ax.axvline(t - 0.5, color="tab:red", lw=2.0, alpha=0.6)
    for t in np.flatnonzero(out["starts"][i, 0, 1:]) + 1:
      ax.axvline(t - 0.5, color="tab:blue", ls="--", lw=1.0)
    twin = ax.twinx()
    twin.plot(out["entropy"][i, 0], color="tab:green", lw=0.8, alpha=0.7)
    twin.set_ylabel("entropy (nats)", color="tab:green", fontsize=7)
  axes[0].set_title(f"{arm}, seed {seed}: true switch points (red), EntroPE "
                    "patch starts (blue dashed), entropy model (green)",
                    fontsize=9)
  axes[-1].set_xlabel("context step")
  fig.tight_layout()
  path = os.path.join(workdir, "boundaries.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return {"boundaries": path}
