"""Monge gap: fitting loss + lambda * Monge gap, lambda swept, vs ICNN dual.

Paper: The Monge Gap: A Regularizer to Learn All Transport Maps, Uscidda &
Cuturi, ICML 2023, arXiv:2302.04953; code in ott-jax
(`ott.neural.methods.monge_gap`).

Every run trains on the shared train step with a procedural source
(`experiments/monge_gap/tasks.py`: generator `ot_pair`, evaluator
`ot_map`). Arms are "<task>: <arm>".

Variants (`--config=experiments/monge_gap/config.py:<variant>`):
  cpu   (default) 2-D Gaussian -> Gaussian (closed-form OT map known) and
        ott's square_five -> square_four Gaussian mixtures x lambda in
        {0, 1, 10}: residual-MLP maps (`residual_mlp`) with the Method
        `monge_gap`; minutes on 2 cores.
  icnn  the ICNN baseline on the Gaussian task: ott's W2 neural dual ported
        onto the step (Method `w2_neural_dual`, model `icnn_dual`), from
        the identity or from ott's Gaussian (Bures-map) initialisation.
  long  10x the steps, batch 512, three tasks, lambda in {0, 0.1, 1, 10}
        (hours on CPU, minutes on one GPU).

Examples:
  regjax run monge_gap --seeds=0,1,2
  regjax run monge_gap --config=experiments/monge_gap/config.py:icnn \
      --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("cpu", "icnn", "long")
CPU_TASKS = ("gaussian", "square_five->square_four")
CPU_LAMBDAS = (0.0, 1.0, 10.0)


def lambda_arms(tasks, lambdas) -> dict[str, str]:
  return {f"{task}: lambda_{lam:g}".replace(".", "p"):
          f"data.kwargs.task={task},method.monge_gap.lambda_monge_gap={lam}"
          for task in tasks for lam in lambdas}


def _base(study_name: str) -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "monge_gap"
  c.data.update(name="ot_pair", source="generator", input_key="x",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(
      task="gaussian", dim=2,
      num_test=500))     # held-out points of each measure
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="constant")
  c.train.update(batch_size=128, log_every_steps=50, eval_every_epochs=0,
                 tensorboard=False)
  c.eval.name = "ot_map"
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("fit", "map_cost", "ot_cost", "cost_gap", "map_error")
  c.study.metric_labels = dict(
      fit="fit S_eps(T#mu, nu)", map_cost="map cost",
      ot_cost="exact OT cost", cost_gap="cost gap",
      map_error="error to true map")
  c.study.formats = {m: ".4f" for m in c.study.metrics}
  c.study.name = study_name
  return c


def get_config(variant: str = "cpu") -> mlc.ConfigDict:
  if variant == "icnn":
    c = _base("results_icnn")
    c.model = mlc.ConfigDict(dict(name="icnn_dual", dtype="float32"))
    c.model.kwargs = mlc.ConfigDict(dict(
        dim_hidden=(32, 32), pos_weights=True, gaussian_init=False))
    c.method = mlc.ConfigDict(dict(name="w2_neural_dual"))
    # A cheaper conjugate solve than ott's default (5 L-BFGS steps at gtol
    # 1e-3 instead of 20 at 1e-5), for CPU.
    c.method.w2_neural_dual = mlc.ConfigDict(dict(
        conjugate="lbfgs_short", conjugate_max_iter=5, beta=1.0,
        gaussian_init_samples=1024))
    # ott's W2NeuralDual settings: Adam(b1 = b2 = 0.5).
    c.optim.update(b1=0.5, b2=0.5)
    c.schedule.learning_rate = 1e-3
    c.train.update(steps=300, checkpoint_every_steps=150)
    c.study.arms = {
        "gaussian: ICNN_dual_fast": "",
        # ott's Bures-map init; W2NeuralDual's positive-weight projection
        # would undo it, so convexity is kept by ott's penalty on negative
        # weights and the clipping of f's instead (beta = 1).
        "gaussian: ICNN_dual_fast_gaussian_init":
            "model.kwargs.gaussian_init=True,model.kwargs.pos_weights=False",
    }
    # No smoke run: tests/algos/ot/test_icnn_dual.py runs this step and map
    # against ott's own.
    return c
  c = _base("results" if variant == "cpu" else "results_long")
  c.model = mlc.ConfigDict(dict(name="residual_mlp", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(hidden=(64, 64, 64)))
  c.method = mlc.ConfigDict(dict(name="monge_gap"))
  # Epsilons are fractions of the mean cost (ott's relative_epsilon="mean").
  c.method.monge_gap = mlc.ConfigDict(dict(
      lambda_monge_gap=1.0, epsilon_fit=0.01, epsilon_gap=0.01,
      cost="sqeuclidean"))
  c.schedule.learning_rate = 3e-3
  c.train.update(steps=150, checkpoint_every_steps=75)
  c.study.arms = lambda_arms(CPU_TASKS, CPU_LAMBDAS)
  c.smoke.enabled = variant == "cpu"
  if variant == "long":
    c.train.update(steps=3000, batch_size=512, checkpoint_every_steps=1000,
                   log_every_steps=250)
    c.study.arms = lambda_arms(
        ("gaussian", "simple->circle", "square_five->square_four"),
        (0.0, 0.1, 1.0, 10.0))
  return c
