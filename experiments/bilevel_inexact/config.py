"""MAID vs HOAG: lower-level work to reach an upper loss, and robustness.

Paper: An Adaptively Inexact First-Order Method for Bilevel Optimization
with Application to Hyperparameter Learning, Salehi, Mukherjee, Roberts,
Ehrhardt, SIMODS 2025, arXiv:2308.10098; official code
MohammadSadeghSalehi/MAID (settings: `third_party_configs/bilevel_inexact/`).

No training (`analysis` protocol, analysis "bilevel_inexact" in
`solve.py`): one run = one seed of one arm. Variants = problems:

  quadratic (default)  the official `Quadratic.py` problem (n = 1000, m =
                       10) with known optimum, drawn from the seed.
  logistic             640 per-feature l2 weights of multinomial logistic
                       regression on digits (1000 train / 797 validation
                       from the seed), upper = validation cross-entropy.
  tv                   TV denoising, 2 parameters, 8 embedded 32x32 images
                       with noise 0.1 drawn from the seed.
  logistic_official_mu logistic with the official code's lower-level
                       constants: mu = L - 1e-3 and gradient descent (its
                       FISTA); MAID eps0 = 1e-1 and HOAG geometric only.

Arms: MAID at eps0 in {1e-1, 1e-3, 1e-5} (delta0 = eps0) and at 10x / 0.1x
the initial step; HOAG with the quadratic, cubic and geometric tolerance
schedules from eps0 = 1e-1 (the official `MultiClassRegression.py` runs).
Every arm stops when its lower-level budget is spent.

Example:
  python -m common run bilevel_inexact --seeds=0,1,2
  python -m common run bilevel_inexact --config=experiments/bilevel_inexact/\
config.py:tv --seeds=0,1
"""

import ml_collections as mlc

from common.protocols import analysis

VARIANTS = ("quadratic", "logistic", "tv", "logistic_official_mu")

# problem -> (initial MAID step, relative to HOAG's first step?, lower-level
# budget, quadratic: target relative gap to f*). The quadratic's step is
# the official 0.01 (Quadratic.py); the others start at HOAG's first step
# (as the official MultiClassRegression.py).
_SETTINGS = {"quadratic": (0.01, False, 10000, 0.03),
             "logistic": (1.0, True, 10000, 0.0),
             "tv": (1.0, True, 10000, 0.0)}

_COLS = (("upper loss at the end", "final_loss", ".4f"),
         ("LL iterations (total)", "ll_total", ".0f"),
         ("outer iterations", "outer_steps", ".0f"))
_QUADRATIC_COLS = (("relative gap to f*", "rel_gap", ".2e"),
                   ("LL iterations to gap 3%", "ll_to_target", ".0f"),
                   ("reached gap 3%", "reached", ".2f"))


def get_config(variant: str = "quadratic") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"unknown bilevel_inexact variant {variant!r}; "
                     f"allowed: {VARIANTS}")
  official = variant == "logistic_official_mu"
  variant = "logistic" if official else variant
  beta, beta_hoag, budget, target = _SETTINGS[variant]
  c = analysis.base_config()
  c.experiment = "bilevel_inexact"
  c.analysis.name = "bilevel_inexact"
  c.bilevel = mlc.ConfigDict(dict(
      problem=variant, solver="maid", schedule="quadratic", eps0=1e-1,
      beta=beta, beta_hoag=beta_hoag, rho=0.5, tau=0.5, nu=1.05,
      ll_budget=budget, max_iter=100000, target=target, image_size=32,
      final_eps=1e-5, official_mu=official, momentum=not official))
  arms = {}
  for eps0 in ("1e-1", "1e-3", "1e-5"):
    arms[f"MAID eps0={eps0}"] = f"bilevel.eps0={eps0}"
  for label, factor in (("x10", 10.0), ("/10", 0.1)):
    arms[f"MAID eps0=1e-1 step {label}"] = f"bilevel.beta={beta * factor}"
  for schedule in ("quadratic", "cubic", "geometric"):
    arms[f"HOAG {schedule}"] = ("bilevel.solver=hoag,bilevel.schedule="
                                f"{schedule}")
  if official:
    arms = {k: arms[k] for k in ("MAID eps0=1e-1", "HOAG geometric")}
  c.study.arms = arms
  cols = _COLS + (_QUADRATIC_COLS if variant == "quadratic" else ())
  c.study.metrics = ()
  c.study.tables = (dict(
      title=f"{variant}: MAID vs HOAG, budget {budget} lower-level "
      "iterations (mean +- std over seeds)", rows=tuple(arms), cols=cols),)
  c.study.artifacts = "experiments.bilevel_inexact.solve:artifacts"
  c.study.name = "logistic_official_mu" if official else variant
  c.study.seeds = (0, 1, 2)
  # One smoke run per paper (the suite's budget); the other problems' code
  # is covered by tests/algos/bilevel.
  c.smoke.enabled = variant == "quadratic"
  return c
