"""infinite_compute's study artifacts: scaling fits, asymptotes, plots.

`scaling_artifact` (the `stdlib` study): per size, the weight decay with the
lowest seed-mean held-out loss; the parameter-scaling law `L(N) = A/N^alpha
+ E` over sizes at their tuned weight decay (and at the default 0.1), the
ensemble-scaling law `L(K) = A/K^alpha + E` of the d32 members, both with
bootstrap CIs over seeds (`algos/analysis/scaling_laws.py`), and the
bootstrap probability that the ensemble asymptote is below the
parameter-scaling one; figure `scaling.png`.

`distill_artifact` (the `stdlib_distill` study): the share of the
ensemble's gain over a single model that the distilled student keeps,
`(L_plain - L_student) / (L_plain - L_teacher)`, per seed, with a bootstrap
CI of the mean.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from algos.analysis import scaling_laws as sl
from common.models import layers_lm
from common.models import transformer as transformer_lib
from common.study import artifacts
from experiments.infinite_compute import config as cfg_lib

_NUM_BOOT = 500


def member_params(d_model: int, vocab: int = 259) -> int:
  """Parameters of one member of width `d_model` (the study's shape)."""
  kw = dict(cfg_lib.member_kwargs(d_model))
  kw.pop("base")
  size = kw.pop("size")
  return transformer_lib.num_params(layers_lm.config_from_kwargs(
      size, vocab_size=vocab, **kw))


def _losses(finals, arm) -> np.ndarray:
  return np.asarray([r["loss"] for r in finals.get(arm, {}).values()
                     if "loss" in r], np.float64)


def _fit_rows(name: str, fit: Mapping[str, float]) -> str:
  return (f"| {name} | {fit['e']:.3f} [{fit['e_lo']:.3f}, {fit['e_hi']:.3f}]"
          f" | {fit['alpha']:.2f} [{fit['alpha_lo']:.2f}, "
          f"{fit['alpha_hi']:.2f}] | {fit['a']:.3g} |")


def scaling_tables(finals: Mapping[str, Mapping[int, Mapping[str, float]]]
                   ) -> tuple[str, dict[str, Any]]:
  """Markdown and the numbers of the fits (see the module doc)."""
  sizes = {s: member_params(d) for s, d in cfg_lib.SIZES.items()}
  lines = ["| model | params | best weight decay | x default | loss at "
           "best | loss at default 0.1 |", "|---|---|---|---|---|---|"]
  tuned, default = [], []
  for size, n in sizes.items():
    means = {w: _losses(finals, cfg_lib.arm_label(size, w)).mean()
             for w in cfg_lib.WEIGHT_DECAYS
             if len(_losses(finals, cfg_lib.arm_label(size, w)))}
    if not means:
      continue
    best = min(means, key=means.get)
    value = cfg_lib.WEIGHT_DECAYS[best]
    lines.append(f"| {size} | {n:,} | {value:g} | {value / 0.1:g}x | "
                 f"{means[best]:.4f} | {means.get('wd1x', np.nan):.4f} |")
    tuned.append((n, _losses(finals, cfg_lib.arm_label(size, best))))
    default.append((n, _losses(finals, cfg_lib.arm_label(size, "wd1x"))))
  out: dict[str, Any] = {}
  fit_lines = ["| scaling law | asymptote E [95% CI] | exponent alpha "
               "[95% CI] | A |", "|---|---|---|---|"]
  for name, pts in (("params, tuned weight decay", tuned),
                    ("params, default weight decay 0.1", default)):
    if len(pts) >= 3 and all(len(v) for _, v in pts):
      fit = sl.fit_with_ci([n for n, _ in pts], [v for _, v in pts],
                           num_boot=_NUM_BOOT)
      out[name] = fit
      fit_lines.append(_fit_rows(name + " (x = N)", fit))
  n32 = sizes["d32"]
  ks = [1, *cfg_lib.ENSEMBLE_SIZES]
  ens = [(k, _losses(finals, cfg_lib.arm_label("d32", cfg_lib.ENSEMBLE_WD,
                                               k))) for k in ks]
  ens = [(k, v) for k, v in ens if len(v)]
  if len(ens) >= 3:
    fit = sl.fit_with_ci([k for k, _ in ens], [v for _, v in ens],
                         num_boot=_NUM_BOOT)
    out["ensemble"] = fit
    out["ensemble_points"] = [(k * n32, float(v.mean())) for k, v in ens]
    fit_lines.append(_fit_rows(
        f"ensembles of d32 members, weight decay "
        f"{cfg_lib.WEIGHT_DECAYS[cfg_lib.ENSEMBLE_WD]:g} (x = K)", fit))
  out["tuned_points"] = [(n, float(v.mean())) for n, v in tuned]
  out["default_points"] = [(n, float(v.mean())) for n, v in default]
  text = "\n".join(lines) + "\n\n" + "\n".join(fit_lines) + "\n"
  if "ensemble" in out and "params, tuned weight decay" in out:
    b_ens = sl.bootstrap_fits([k for k, _ in ens], [v for _, v in ens],
                              num_boot=_NUM_BOOT, seed=7)
    b_par = sl.bootstrap_fits([n for n, _ in tuned], [v for _, v in tuned],
                              num_boot=_NUM_BOOT, seed=8)
    p = float(np.mean([a.e < b.e for a, b in zip(b_ens, b_par)]))
    out["p_ensemble_lower"] = p
    text += (f"\nEnsemble asymptote below the parameter-scaling asymptote in "
             f"{100 * p:.0f}% of {_NUM_BOOT} bootstrap resamples (seeds "
             f"resampled per point).\n")
  return text, out


def _plot(out: Mapping[str, Any], path: str) -> None:
  import matplotlib   # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt   # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 4))
  grid_n = np.geomspace(2e4, 2e6, 100)
  for key, label, color in (("params, tuned weight decay",
                             "params, tuned wd", "C0"),
                            ("params, default weight decay 0.1",
                             "params, wd 0.1", "C1")):
    pts = out["tuned_points" if "tuned" in key else "default_points"]
    if pts:
      ax.plot(*zip(*pts), "o", color=color, label=label)
    if key in out:
      f = out[key]
      ax.plot(grid_n, sl.power_law(grid_n, f["a"], f["alpha"], f["e"]), "-",
              color=color, lw=1)
      ax.axhline(f["e"], color=color, ls=":", lw=1)
  if "ensemble" in out:
    f = out["ensemble"]
    n32 = out["ensemble_points"][0][0]
    ax.plot(*zip(*out["ensemble_points"]), "s", color="C2",
            label="ensembles of d32 (x = K N)")
    ks = grid_n / n32
    ax.plot(grid_n[ks >= 1], sl.power_law(ks[ks >= 1], f["a"], f["alpha"],
                                          f["e"]), "-", color="C2", lw=1)
    ax.axhline(f["e"], color="C2", ls=":", lw=1)
  ax.set_xscale("log")
  ax.set_xlabel("total parameters")
  ax.set_ylabel("held-out loss (nats/token)")
  ax.set_title("fits L = A/x^alpha + E, asymptotes dotted")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def scaling_artifact(configs: Mapping[str, Any], workdir: str,
                     runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """The `stdlib` study's hook: `scaling.md` and `scaling.png`."""
  del configs
  text, out = scaling_tables(artifacts.final_metrics(runs))
  paths = {"scaling": artifacts.write_markdown(workdir, "scaling.md", text)}
  png = os.path.join(workdir, "scaling.png")
  _plot(out, png)
  paths["scaling_plot"] = png
  return paths


def retained_gain(plain: np.ndarray, student: np.ndarray,
                  teacher: np.ndarray) -> np.ndarray:
  """Per seed: `(plain - student) / (plain - teacher)` (1 = all of the
  teacher's gain kept; 0 = none)."""
  return (plain - student) / (plain - teacher)


def distill_artifact(configs: Mapping[str, Any], workdir: str,
                     runs: Mapping[str, Mapping[int, Any]]
                     ) -> dict[str, str]:
  """The `stdlib_distill` study's hook: `distill.md`."""
  del configs
  finals = artifacts.final_metrics(runs)
  plain, dist = finals.get("d32/k1/plain", {}), finals.get(
      "d32/k1/distilled", {})
  seeds = sorted(set(plain) & set(dist))
  p = np.asarray([plain[s]["loss"] for s in seeds])
  d = np.asarray([dist[s]["loss"] for s in seeds])
  t = np.asarray([dist[s]["teacher/ensemble/loss"] for s in seeds])
  g = retained_gain(p, d, t)
  lines = ["| seed | single d32 | distilled d32 | teacher (4 x d32) | gain "
           "kept |", "|---|---|---|---|---|"]
  lines += [f"| {s} | {a:.4f} | {b:.4f} | {c:.4f} | {x:.0%} |"
            for s, a, b, c, x in zip(seeds, p, d, t, g)]
  if len(g):
    lo, hi = (sl.bootstrap_mean_ci(g) if len(g) > 1 else (np.nan, np.nan))
    lines.append(f"\nMean gain kept {g.mean():.0%} (bootstrap 95% CI over "
                 f"seeds [{lo:.0%}, {hi:.0%}]); paper: 83% (8x smaller "
                 "student, sequence-level distillation).")
  return {"distill": artifacts.write_markdown(workdir, "distill.md",
                                              "\n".join(lines) + "\n")}
