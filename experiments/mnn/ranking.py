"""The mnn study hook: do MNN, Matrix Entropy and held-out loss agree?

Every (arm, epoch) evaluation of a seed is one "checkpoint" with a
held-out loss, a mean MNN / T and a mean Matrix Entropy (`hidden_rank`
evaluator). Per seed, `ranking.md` reports

* Kendall tau between MNN and Matrix Entropy over all checkpoints (do the
  two metrics rank checkpoints the same way?);
* Kendall tau between MNN and Matrix Entropy over the arms' final
  checkpoints (model ranking by size);
* Spearman rho between MNN and held-out loss over all checkpoints, and
  within each arm over its epochs (the sign the paper implies: MNN falls
  as models get better, so rho > 0);

and the mean over seeds. A checkpoint is a point of the eval history.

It also writes each arm's final MNN / T next to its ceiling: with unit
rows the column norms' squares sum to T, so the top-D sum is at most
sqrt(D T) and MNN / T <= sqrt(min(T, d) / T), equality for orthogonal
columns of equal norm. Widths below T thus cap MNN / T by the width alone;
MNN / ceiling compares models of different d on one scale.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import stats

from common.study import artifacts


def _points(history: list[dict[str, Any]]) -> np.ndarray:
  """`[n, 3]` (loss, mnn, matrix_entropy) of the records that have all."""
  keys = ("loss", "mnn", "matrix_entropy")
  rows = [[r[k] for k in keys] for r in history
          if all(k in r for k in keys)]
  return np.asarray(rows, np.float64).reshape(-1, 3)


def correlations(histories: Mapping[str, list[dict[str, Any]]]
                 ) -> dict[str, float]:
  """The correlations of the module doc for one seed: arm -> history."""
  pts = {arm: _points(h) for arm, h in histories.items()}
  pts = {a: p for a, p in pts.items() if len(p)}
  every = np.concatenate(list(pts.values()))
  finals = np.stack([p[-1] for p in pts.values()])
  out = {
      "tau_mnn_me_all": stats.kendalltau(every[:, 1], every[:, 2])[0],
      "tau_mnn_me_final": stats.kendalltau(finals[:, 1], finals[:, 2])[0],
      "rho_mnn_loss_all": stats.spearmanr(every[:, 1], every[:, 0])[0],
      "rho_me_loss_all": stats.spearmanr(every[:, 2], every[:, 0])[0],
  }
  within = [stats.spearmanr(p[:, 1], p[:, 0])[0] for p in pts.values()
            if len(p) > 2]
  out["rho_mnn_loss_within_arm"] = float(np.mean(within)) if within else np.nan
  return {k: float(v) for k, v in out.items()}


_LABELS = {
    "tau_mnn_me_all": "Kendall tau(MNN, ME), all checkpoints",
    "tau_mnn_me_final": "Kendall tau(MNN, ME), final checkpoint of each size",
    "rho_mnn_loss_all": "Spearman rho(MNN, held-out loss), all checkpoints",
    "rho_me_loss_all": "Spearman rho(ME, held-out loss), all checkpoints",
    "rho_mnn_loss_within_arm":
        "Spearman rho(MNN, held-out loss) over epochs, mean over sizes",
}


def ranking_markdown(per_seed: Mapping[int, dict[str, float]]) -> str:
  seeds = sorted(per_seed)
  head = "| correlation | " + " | ".join(f"seed {s}" for s in seeds)
  lines = [head + " | mean |", "|---|" + "---|" * (len(seeds) + 1)]
  for key, label in _LABELS.items():
    vals = [per_seed[s][key] for s in seeds]
    lines.append(f"| {label} | " + " | ".join(f"{v:+.3f}" for v in vals)
                 + f" | {np.nanmean(vals):+.3f} |")
  return "\n".join(lines) + "\n"


def ceiling(width: int, seq_len: int) -> float:
  """The largest MNN / T of a `[seq_len, width]` matrix with unit rows."""
  return float(np.sqrt(min(width, seq_len) / seq_len))


def ceiling_markdown(configs: Mapping[str, Any],
                     finals: Mapping[str, Mapping[int, dict[str, float]]]
                     ) -> str:
  lines = ["| arm | d | final MNN / T | ceiling sqrt(min(T, d) / T) | "
           "MNN / ceiling |", "|---|---|---|---|---|"]
  for arm in sorted(finals, key=lambda a: configs[a].model.kwargs.d_model):
    width = configs[arm].model.kwargs.d_model
    top = ceiling(width, configs[arm].data.kwargs.seq_len)
    vals = [r["mnn"] for r in finals[arm].values() if "mnn" in r]
    m = float(np.mean(vals))
    lines.append(f"| {arm} | {width} | {m:.4f} | {top:.4f} | "
                 f"{m / top:.4f} |")
  return "\n".join(lines) + "\n"


def ranking_artifact(configs: Mapping[str, Any], workdir: str,
                     runs: Mapping[str, Mapping[int, Any]]
                     ) -> dict[str, str]:
  """The study hook: writes `<workdir>/ranking.md`."""
  seeds = sorted({s for by_seed in runs.values() for s in by_seed})
  per_seed = {s: correlations({arm: by_seed[s].history
                               for arm, by_seed in runs.items()
                               if s in by_seed}) for s in seeds}
  text = (ranking_markdown(per_seed) + "\nFinal MNN / T against its ceiling "
          "(mean over seeds):\n\n" + ceiling_markdown(
              configs, artifacts.final_metrics(runs)))
  return {"ranking": artifacts.write_markdown(workdir, "ranking.md", text)}
