"""The universality lens: Bayes-mixture regret over large classes, and SGLD.

Paper: "The Universality Lens: Why Even Highly Over-Parametrized Models
Learn Well" (2025, theory, no official code). Tools in
`algos/analysis/universality_lens.py` and `algos/analysis/
langevin_ensemble.py`.

Variants (`--config=experiments/universality_lens/config.py:<variant>`):
  cpu    (default) no training (`analysis` protocol, analysis
         "universality_regret" in `regret.py`): logistic classes of 10^2 ..
         10^5 hypotheses under a uniform prior, either with a fixed 5% of
         them near the truth (equal weight, growing size) or with only the
         truth near it (weight 1 / H); regret against the truth over 300
         examples and the resolvability bound.
  nets   the same on every two-layer tanh net with weights in {-1, 0, 1}
         of width 1, 2, 3 (27, 729, 19683 hypotheses; the truth is a
         width-1 net present in all).
  sgld   training (`supervised` protocol, optimizer `sgld`): ensembles of
         K = 1 .. 64 Langevin chains of a 2-parameter logistic model on 40
         examples against the exact grid posterior (evaluator `bayes_gap`
         in `tasks.py`), and a temperature-0 (MAP ensemble) control.
  large  the `cpu` study at full size (10^3 .. 10^6 hypotheses, 3000
         examples); no smoke run. There is no real data set in this paper.

Examples:
  regjax run universality_lens --seeds=0,1,2
  regjax run universality_lens --config=experiments/universality_lens/config.py:nets --seeds=0,1,2
  regjax run universality_lens --config=experiments/universality_lens/config.py:sgld --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import analysis
from common.protocols import supervised
from experiments.universality_lens import regret

VARIANTS = ("cpu", "nets", "sgld", "large")


def _regret_config(variant: str) -> mlc.ConfigDict:
  c = analysis.base_config()
  c.experiment = "universality_lens"
  c.analysis.name = "universality_regret"
  c.lens = regret.default_section()
  big = variant == "large"
  if big:
    c.lens.update(horizon=3000, report_at=(10, 100, 1000, 3000))
  horizons = tuple(c.lens.report_at)
  if variant == "nets":
    c.lens.update(family="nets", width=1)
    c.study.arms = {f"width {w} (H = {3 ** (3 * w)})": f"lens.width={w}"
                    for w in (1, 2, 3)}
  else:
    sizes = (3, 4, 5, 6) if big else (2, 3, 4, 5)
    arms = {}
    for e in sizes:
      arms[f"H = 1e{e}, 5% near truth"] = (
          f"lens.size={10 ** e},lens.num_near={5 * 10 ** (e - 2)}")
    for e in sizes:
      arms[f"H = 1e{e}, truth alone"] = f"lens.size={10 ** e},lens.num_near=1"
    c.study.arms = arms
  cols = tuple((f"regret n={n}", f"regret_{n}", ".2f") for n in horizons)
  cols += ((f"bound n={horizons[-1]}", f"bound_{horizons[-1]}", ".2f"),
           ("-log w(eps*)", "neg_log_w", ".2f"),
           ("-log w(0) (pathwise bound)", "pathwise", ".2f"),
           ("log H", "log_size", ".2f"),
           ("regret vs best n=end", "regret_best", ".2f"),
           ("frac n with regret <= bound", "bound_holds", ".2f"),
           ("max_n regret - bound", "bound_excess", ".3f"))
  c.study.metrics = ()
  c.study.tables = (dict(
      title=("Bayes-mixture regret against the truth (nats), uniform prior "
             "(mean +- std over seeds)"), rows=tuple(c.study.arms),
      cols=cols),)
  c.study.artifacts = "experiments.universality_lens.regret:artifacts"
  c.study.name = {"cpu": "regret", "nets": "nets", "large": "large"}[variant]
  c.study.seeds = (0, 1, 2)
  # One smoke run per paper (the suite's budget): the sgld variant, which
  # exercises the harness path; the regret report is unit-tested.
  c.smoke.enabled = False
  return c


def _sgld_config() -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "universality_lens"
  c.data.update(name="logistic_posterior", source="generator",
                input_key="x", preprocess="none")
  n = 12
  prior_std = 2.0
  c.data.kwargs = mlc.ConfigDict(dict(
      num_train=n, theta_true=(1.5, -1.0), num_test=1000,
      prior_std=prior_std, grid_radius=6.0, grid_points=121))
  c.model = mlc.ConfigDict(dict(name="logistic_ensemble", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(members=16, init_std=1.0))
  c.method = mlc.ConfigDict(dict(name="ensemble_nll"))
  c.method.ensemble_nll = mlc.ConfigDict()
  # SGLD on the mean log-loss: temperature 1 / N and weight decay
  # 1 / (N prior_std^2) sample the posterior with prior N(0, prior_std^2).
  c.optim.update(name="sgld", weight_decay=1.0 / (n * prior_std ** 2),
                 nesterov=False)
  c.optim.temperature = 1.0 / n
  c.schedule.update(name="constant", learning_rate=0.2)
  c.train.update(batch_size=n, steps=1000, eval_every_epochs=100,
                 log_every_steps=100, checkpoint_every_steps=500,
                 tensorboard=False)
  c.eval.name = "bayes_gap"
  arms = {f"SGLD K={k}": f"model.kwargs.members={k}" for k in (1, 4, 16, 64)}
  arms["SGLD K=16, batch 10"] = "model.kwargs.members=16,train.batch_size=10"
  arms["SGLD K=64, lr 1/4"] = "model.kwargs.members=64,schedule.learning_rate=0.05"
  arms["MAP ensemble (T=0) K=16"] = "model.kwargs.members=16,optim.temperature=0.0"
  c.study.arms = arms
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("kl_exact_ens", "logloss_ens", "logloss_exact",
                     "gap_pct", "mean_err", "std_ratio")
  c.study.metric_labels = dict(
      kl_exact_ens="KL(exact, ensemble)", logloss_ens="log-loss ensemble",
      logloss_exact="log-loss exact mixture", gap_pct="gap %",
      mean_err="mean error vs posterior", std_ratio="std / posterior std")
  c.study.formats = dict(kl_exact_ens=".5f", logloss_ens=".4f",
                         logloss_exact=".4f", gap_pct=".2f", mean_err=".3f",
                         std_ratio=".2f")
  c.study.plots = ("kl_exact_ens",)
  c.study.name = "sgld"
  c.smoke.enabled = True
  return c


def get_config(variant: str = "cpu") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"unknown universality_lens variant {variant!r}; "
                     f"allowed: {VARIANTS}")
  if variant == "sgld":
    return _sgld_config()
  return _regret_config(variant)
