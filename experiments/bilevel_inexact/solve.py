"""One bilevel solve per run: MAID or HOAG on one problem (no training).

Registered as the analysis "bilevel_inexact" (`common.protocols.analysis`).
A run is one seed of one (problem, solver, eps0, step) arm: the problem is
drawn from the seed (the quadratic's matrices, the digits train /
validation split, the TV noise realisation), the solver runs until its
lower-level budget (`bilevel.ll_budget` FISTA gradient evaluations) is
spent, and the run reports

* `final_loss`: the exact upper loss at the final theta (lower problem
  solved to `bilevel.final_eps` = 1e-5, not counted);
* `ll_total`: lower-level iterations spent (the budget plus the last solve);
* quadratic only: `rel_gap = (final - f*) / (f(theta0) - f*)`, and
  `ll_to_target`: lower-level iterations when the recorded upper loss
  first reached `f* + bilevel.target (f(theta0) - f*)`, the total when
  never (`reached` = 0).

`artifacts` (histories of this process's solves; a run served from its
summary is solved again, deterministically) writes `convergence.png`
(upper loss vs cumulative lower-level iterations, lowest seed of every
arm) and `to_best.md`: per arm, the lower-level iterations until the
recorded upper loss is within 1% of the best final loss of any arm on the
same seed (the survey's check: MAID there with >= 2x fewer than HOAG).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np

from algos.bilevel import maid
from algos.bilevel import problems
from common import config as config_lib
from common.protocols import analysis

PROBLEMS = ("quadratic", "logistic", "tv")
SOLVERS = ("maid", "hoag")
RULES = {
    "bilevel.problem": config_lib.one_of(*PROBLEMS),
    "bilevel.solver": config_lib.one_of(*SOLVERS),
    "bilevel.schedule": config_lib.one_of(*maid.HOAG_SCHEDULES),
    "bilevel.eps0": config_lib.greater_than(0.0),
    "bilevel.beta": config_lib.greater_than(0.0),
    "bilevel.ll_budget": config_lib.at_least(1, integer=True),
    "bilevel.max_iter": config_lib.at_least(1, integer=True),
    "bilevel.final_eps": config_lib.greater_than(0.0),
}
_HISTORIES: dict[str, dict] = {}   # fingerprint -> history (for the plot)


def _setup(b: mlc.ConfigDict, seed: int):
  """`(problem, theta0, x0, target, f_star or None, loss scale)`."""
  if b.problem == "quadratic":
    q = problems.quadratic(seed=seed)
    f0 = float(q.problem.upper(q.x_star(jnp.ones(10))))
    return (q.problem, jnp.ones(10), q.x_init,
            q.f_star + b.target * (f0 - q.f_star), (q.f_star, f0))
  if b.problem == "logistic":
    problem, _ = problems.logistic(seed=seed, official_mu=b.official_mu)
    return problem, jnp.full((64, 10), -3.0), jnp.zeros((64, 10)), 0.0, \
        None
  d = problems.tv_denoising(seed=seed, size=b.image_size)
  return d.problem, jnp.array([-5.0, -5.0]), jnp.zeros_like(d.noisy), 0.0, \
      None


def solve(config: mlc.ConfigDict) -> tuple[dict[str, float], dict]:
  """The metrics of one run and the solver's history."""
  b = config.bilevel
  problem, theta0, x0, target, quad = _setup(b, config.seed)
  beta = b.beta
  if b.beta_hoag:   # the official MultiClassRegression: HOAG's first step
    x, _ = maid.lower_solve(problem, theta0, x0, b.eps0, 2000, b.momentum)
    h, _ = maid.hypergradient(problem, theta0, x, b.eps0)
    beta *= float(np.sqrt(h.size) / jnp.linalg.norm(h))
  if b.solver == "maid":
    theta, hist = maid.maid(problem, theta0, x0, eps=b.eps0, delta=b.eps0,
                            beta=beta, rho=b.rho, tau=b.tau, nu=b.nu,
                            max_iter=b.max_iter, ll_budget=b.ll_budget,
                            momentum=b.momentum, seed=config.seed)
  else:
    theta, hist = maid.hoag(problem, theta0, x0, eps=b.eps0,
                            schedule=b.schedule, max_iter=b.max_iter,
                            ll_budget=b.ll_budget, momentum=b.momentum)
  if b.official_mu:   # the final loss with the valid constants
    problem = problems.logistic(seed=config.seed)[0]
  x, _ = maid.lower_solve(problem, theta, x0, b.final_eps, 20000)
  final = float(problem.upper(x))
  metrics = {"final_loss": final, "ll_total": float(hist["ll_total"]),
             "outer_steps": float(len(hist["loss"]) - 1)}
  if quad is not None:
    reach = ll_to_reach(hist, target)
    metrics.update(rel_gap=(final - quad[0]) / (quad[1] - quad[0]),
                   ll_to_target=(float(hist["ll_total"]) if reach is None
                                 else reach),
                   reached=float(reach is not None))
  _HISTORIES[config_lib.fingerprint(config)] = hist
  return metrics, hist


def ll_to_reach(hist: dict, target: float) -> float | None:
  """Cumulative lower-level iterations when the recorded upper loss first
  reached `target` (None: never)."""
  hits = [c for f, c in zip(hist["loss"], hist["ll_calls"]) if f <= target]
  return float(hits[0]) if hits else None


def run(config: mlc.ConfigDict) -> dict[str, float]:
  return solve(config)[0]


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)


@analysis.register_analysis("bilevel_inexact")
def make() -> analysis.Analysis:
  return analysis.Analysis(
      run=run, validate=validate,
      smoke={"bilevel.ll_budget": 200, "bilevel.max_iter": 3,
             "bilevel.final_eps": 1e-2})


def _history(configs, arm, seed):
  config = config_lib.apply_overrides(configs[arm], {"seed": seed})
  return _HISTORIES.get(config_lib.fingerprint(config)) or solve(config)[1]


def artifacts(configs: dict[str, mlc.ConfigDict], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`convergence.png` and `to_best.md` (module docstring)."""
  seeds = sorted(set.intersection(*(set(r) for r in runs.values())))
  hists = {(a, s): _history(configs, a, s) for a in runs for s in seeds}
  fig, ax = plt.subplots(figsize=(6.5, 4))
  for arm in runs:   # from the first step (f at x0 dwarfs the rest)
    hist = hists[arm, seeds[0]]
    style = "-" if configs[arm].bilevel.solver == "maid" else "--"
    ax.plot(hist["ll_calls"][1:], hist["loss"][1:], style, label=arm)
  problem = next(iter(configs.values())).bilevel.problem
  ax.set_xscale("log")
  ax.set_xlabel("cumulative lower-level iterations")
  ax.set_ylabel("upper loss (at the inexact lower solution)")
  ax.set_yscale("log")
  ax.set_title(f"{problem}, seed {seeds[0]}")
  ax.legend(fontsize=7)
  fig.tight_layout()
  plot = os.path.join(workdir, "convergence.png")
  fig.savefig(plot, dpi=110)
  plt.close(fig)
  best = {s: np.nanmin([runs[a][s].final["final_loss"] for a in runs])
          for s in seeds}   # nan: a run that diverged
  lines = [f"LL iterations until the upper loss is within 1% of the seed's "
           f"best final loss (seeds {', '.join(map(str, seeds))})", "",
           "| arm | LL iterations (mean +- std over reaching seeds) | "
           "seeds reaching |", "|---|---|---|"]
  for arm in runs:
    reach = [ll_to_reach(hists[arm, s], 1.01 * best[s]) for s in seeds]
    hit = [r for r in reach if r is not None]
    cell = f"{np.mean(hit):.0f} +- {np.std(hit):.0f}" if hit else "-"
    lines.append(f"| {arm} | {cell} | {len(hit)}/{len(seeds)} |")
  with open(os.path.join(workdir, "histories.json"), "w",
            encoding="utf-8") as f:
    json.dump({f"{a} seed {s}": {k: hists[a, s][k] for k in
                                 ("loss", "ll_calls", "eps", "step")}
               for a, s in hists}, f)
  table = os.path.join(workdir, "to_best.md")
  with open(table, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return {"convergence": plot, "to_best": table}
