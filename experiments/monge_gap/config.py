"""Monge gap: fitting loss + lambda * Monge gap, lambda swept, vs ICNN dual.

Paper: The Monge Gap: A Regularizer to Learn All Transport Maps, Uscidda &
Cuturi, ICML 2023, arXiv:2302.04953; code in ott-jax
(`ott.neural.methods.monge_gap`).

Variants (`--config=experiments/monge_gap/config.py:<variant>`):
  cpu   (default) 2-D Gaussian -> Gaussian (closed-form OT map known) and
        ott's square_five -> square_four Gaussian mixtures; residual-MLP maps for lambda in
        {0, 0.1, 1, 10} and ott's ICNN W2 neural dual; minutes on 2 cores.
  long  10x the steps, batch 512, three tasks, lambda in {0, 0.1, 1, 10}
        (hours on CPU, minutes on one GPU).

Examples:
  regjax run monge_gap --seeds=0,1,2
  regjax run monge_gap --seeds=0 --arms=lambda_0,lambda_1
"""

import ml_collections as mlc

from common import config as config_lib

VARIANTS = ("cpu", "long")
LAMBDAS = (0.0, 1.0, 10.0)


def get_config(variant: str = "cpu"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown monge_gap variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = config_lib.base_config()
  c.experiment = "monge_gap"
  c.runner = "experiments.monge_gap.run"
  c.ot = mlc.ConfigDict(dict(
      tasks=("gaussian", "square_five->square_four"),
      task="gaussian", dim=2, model="mlp", hidden=(64, 64, 64),
      # Fractions of the mean cost (ott's relative_epsilon="mean").
      lambda_monge_gap=1.0, epsilon_fit=0.01, epsilon_gap=0.01,
      epsilon_eval=0.01,
      learning_rate=3e-3, batch_size=128, steps=150, log_every=50,
      checkpoint_every=75, num_test=500,
      icnn_hidden=(64, 64, 64), icnn_steps=300, icnn_learning_rate=1e-4,
      icnn_conjugate="lbfgs", icnn_conjugate_max_iter=5,
      icnn_gaussian_init=False, icnn_init_samples=1024))
  c.study.arms = {f"lambda_{lam:g}".replace(".", "p"): f"ot.lambda_monge_gap={lam}"
                  for lam in LAMBDAS}
  c.study.arms["ICNN_dual"] = "ot.model=icnn"
  # CPU-sized ICNN dual: 5-step conjugate solves, Adam 1e-3, 300 steps.
  # Run it on the Gaussian task with a smaller ICNN (see README):
  #   --config.ot.tasks="('gaussian',)" --config.ot.icnn_hidden="(32, 32)"
  c.study.arms["ICNN_dual_fast"] = ("ot.model=icnn,ot.icnn_conjugate=lbfgs_short,"
                                    "ot.icnn_steps=300,ot.icnn_learning_rate=1e-3")
  # The same, started at the Bures (Gaussian) map (ott's gaussian_map_samples
  # init); on the Gaussian task that init is already the OT map up to
  # sampling error (see README).
  c.study.arms["ICNN_dual_fast_gaussian_init"] = (
      c.study.arms["ICNN_dual_fast"] + ",ot.icnn_gaussian_init=True")
  c.study.seeds = (0, 1, 2)
  c.smoke.enabled = True
  if variant == "long":
    c.ot.update(steps=3000, batch_size=512, icnn_steps=3000,
                checkpoint_every=1000,
                tasks=("gaussian", "simple->circle",
                       "square_five->square_four"))
    c.study.arms = {f"lambda_{lam:g}".replace(".", "p"):
                    f"ot.lambda_monge_gap={lam}"
                    for lam in (0.0, 0.1, 1.0, 10.0)}
    c.study.arms["ICNN_dual"] = "ot.model=icnn"
  return c
