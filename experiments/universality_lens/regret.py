"""One regret run per seed: the Bayes mixture over a finite class (no training).

Registered as the analysis "universality_regret" (`common.protocols.
analysis`); settings in `config.lens`:

* `family="redundant"`: `size` logistic hypotheses in `dim` dimensions,
  the truth `theta_true` first, `num_near - 1` within `near_std` of it, the
  rest spread (`far_std`) around `far_center` (away from the truth),
  uniform prior (`universality_lens.
  redundant_logistic_class`; drawn from the run's seed).
* `family="nets"`: every two-layer tanh net of `width` units with weights
  in {-1, 0, 1} (`3 ** (3 width)` hypotheses in 2-D), uniform prior, logits
  scaled by `scale`; the truth is the width-1 net `scale tanh(x1 - x2)`,
  present in every width.

The run draws `horizon` examples `x ~ N(0, I)`, `y ~ Bern(p*(x))`, runs the
mixture (`mixture_predictive`), and reports at every `report_at` horizon
`n`: `regret_<n>` (against the truth), `bound_<n>` (`min_eps -log w(eps) +
n eps`, per-example KL from `kl_samples` fresh inputs) and, at the horizon,
`regret_best` (against the best hypothesis in hindsight), `log_size` (`log
H` = `-log pi(truth)` for a single copy of the truth), `pathwise` (`-log
w(0)`, the prior mass of the hypotheses that equal the truth: a bound on
the regret of every sequence) and `neg_log_w` (`-log w(eps*)` at the
horizon's minimiser), `bound_holds` (fraction of `n = 1..horizon` with
the seed's regret below the expected-regret bound, 1e-3 nats of float32
slack) and `bound_excess` (`max_n regret - bound`).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np

from algos.analysis import universality_lens as ul
from common import config as config_lib
from common.protocols import analysis

FAMILIES = ("redundant", "nets")
RULES = {
    "lens.family": config_lib.one_of(*FAMILIES),
    "lens.size": config_lib.at_least(1, integer=True),
    "lens.num_near": config_lib.at_least(1, integer=True),
    "lens.near_std": config_lib.at_least(0.0),
    "lens.far_std": config_lib.greater_than(0.0),
    "lens.width": config_lib.between(1, 4),
    "lens.scale": config_lib.greater_than(0.0),
    "lens.horizon": config_lib.at_least(1, integer=True),
    "lens.kl_samples": config_lib.at_least(1, integer=True),
    "lens.report_at": config_lib.each(config_lib.at_least(1, integer=True)),
}
_CHUNK = 8192    # hypotheses per block of logits
_CURVES: dict[str, dict] = {}   # fingerprint -> curves (for the plot)


def default_section() -> mlc.ConfigDict:
  return mlc.ConfigDict(dict(
      family="redundant", size=1000, num_near=10, near_std=0.05,
      far_std=1.0, far_center=(-2.0, 1.0), theta_true=(2.0, -1.0),
      width=1, scale=3.0,
      horizon=300, kl_samples=1000, report_at=(10, 30, 100, 300)))


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)
  lens = config.lens
  if lens.family == "redundant" and lens.num_near > lens.size:
    raise config_lib.ConfigError(
        f"config.lens.num_near={lens.num_near} exceeds lens.size="
        f"{lens.size}")
  if max(lens.report_at) > lens.horizon:
    raise config_lib.ConfigError(
        f"config.lens.report_at={tuple(lens.report_at)} goes past "
        f"lens.horizon={lens.horizon}")


def _class_and_truth(lens: mlc.ConfigDict, key: jax.Array):
  """`(logits_fn(x [n, d]) -> [n, H], truth_fn(x) -> [n], dim)`."""
  if lens.family == "redundant":
    truth = jnp.asarray(lens.theta_true, jnp.float32)
    thetas = ul.redundant_logistic_class(key, truth, lens.size, lens.num_near,
                                         lens.near_std, lens.far_std,
                                         jnp.asarray(lens.far_center))
    return (lambda x: x @ thetas.T), (lambda x: x @ truth), truth.shape[0]
  w, v = ul.quantized_nets(lens.width, 2)
  w, v = jnp.asarray(w), jnp.asarray(v)
  blocks = range(0, len(v), _CHUNK)

  def logits(x):
    return jnp.concatenate([ul.net_logits(w[i:i + _CHUNK], v[i:i + _CHUNK],
                                          x, lens.scale) for i in blocks], 1)
  return logits, (lambda x: lens.scale * jnp.tanh(x[:, 0] - x[:, 1])), 2


def curves(config: mlc.ConfigDict) -> dict[str, np.ndarray]:
  """The run's curves over `n = 1..horizon`: `regret`, `regret_best`,
  `bound`, `pathwise` (scalar), `log_size`, `neg_log_w` (at the horizon)."""
  lens = config.lens
  key = jax.random.PRNGKey(config.seed)
  k_class, k_x, k_y, k_kl = jax.random.split(key, 4)
  logits_fn, truth_fn, dim = _class_and_truth(lens, k_class)
  x = jax.random.normal(k_x, (lens.horizon, dim))
  t_logit = truth_fn(x)
  y = jax.random.bernoulli(k_y, jax.nn.sigmoid(t_logit)).astype(jnp.int32)
  logliks = ul.bernoulli_logliks(logits_fn(x), y)                  # [n, H]
  log_prior = jnp.zeros(logliks.shape[1])
  truth_ll = ul.bernoulli_logliks(t_logit[:, None], y)[:, 0]
  x_kl = jax.random.normal(k_kl, (lens.kl_samples, dim))
  kl = ul.expected_kl(truth_fn(x_kl), logits_fn(x_kl))
  out = {k: np.asarray(v) for k, v in
         ul.regret_report(log_prior, logliks, truth_ll, kl).items()}
  out["log_size"] = float(np.log(logliks.shape[1]))
  out["neg_log_w"] = float(-ul.hypothesis_log_weight(
      log_prior, kl, out["eps_star"][-1])[0])
  return out


def _curves_of(config: mlc.ConfigDict) -> dict[str, np.ndarray]:
  key = config_lib.fingerprint(config)
  if key not in _CURVES:
    _CURVES[key] = curves(config)
  return _CURVES[key]


def run(config: mlc.ConfigDict) -> dict[str, float]:
  c = _curves_of(config)
  out = {}
  for n in config.lens.report_at:
    out[f"regret_{n}"] = c["regret"][n - 1]
    out[f"bound_{n}"] = c["bound"][n - 1]
  out.update(regret_best=c["regret_best"][-1], log_size=c["log_size"],
             pathwise=c["pathwise"], neg_log_w=c["neg_log_w"],
             # float32 sums over the horizon: 1e-3 nats of slack.
             bound_holds=float(np.mean(c["regret"] <= c["bound"] + 1e-3)),
             bound_excess=float(np.max(c["regret"] - c["bound"])))
  return out


@analysis.register_analysis("universality_regret")
def make() -> analysis.Analysis:
  return analysis.Analysis(
      run=run, validate=validate,
      smoke={"lens.horizon": 20, "lens.kl_samples": 50,
             "lens.report_at": (10, 20), "lens.size": 50,
             "lens.num_near": 5, "lens.width": 1})


def artifacts(configs: dict[str, mlc.ConfigDict], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`regret.png`: mean regret (solid) and bound (dashed) vs n per arm, and
  `mean_bound.md`: max over n of the seed-mean regret minus the seed-mean
  bound, per arm (curves of this process's runs; a run served from its
  summary is computed again, deterministically)."""
  del runs
  fig, ax = plt.subplots(figsize=(7, 4.5))
  seeds = next(iter(configs.values())).study.seeds
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, (arm, cfg) in enumerate(configs.items()):
    cs = [_curves_of(config_lib.apply_overrides(cfg, {"seed": s}))
          for s in seeds]
    n = np.arange(1, cfg.lens.horizon + 1)
    color = colors[i % len(colors)]
    ax.plot(n, np.mean([c["regret"] for c in cs], 0), "-", color=color,
            label=f"{arm} (log H = {cs[0]['log_size']:.1f})")
    ax.plot(n, np.mean([c["bound"] for c in cs], 0), "--", color=color,
            lw=0.8)
  ax.set_xscale("log")
  ax.set_xlabel("n (examples)")
  ax.set_ylabel("cumulative regret vs truth (nats)")
  ax.set_title("mixture regret (solid) and -log w(eps) + n eps (dashed)")
  ax.legend(fontsize=6)
  fig.tight_layout()
  path = os.path.join(workdir, "regret.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  lines = [f"Seed-mean regret against the seed-mean bound (seeds "
           f"{', '.join(map(str, seeds))}): max over n = 1..horizon of "
           "mean(regret) - mean(bound); <= 0 means the bound on the expected "
           "regret holds for the mean at every n.", "",
           "| arm | max_n mean regret - mean bound (nats) |", "|---|---|"]
  for arm, cfg in configs.items():
    cs = [_curves_of(config_lib.apply_overrides(cfg, {"seed": s}))
          for s in seeds]
    gap = (np.mean([c["regret"] for c in cs], 0)
           - np.mean([c["bound"] for c in cs], 0))
    lines.append(f"| {arm} | {float(np.max(gap)):.4f} |")
  table = os.path.join(workdir, "mean_bound.md")
  with open(table, "w") as f:
    f.write("\n".join(lines) + "\n")
  return {"regret_plot": path, "mean_bound": table}
