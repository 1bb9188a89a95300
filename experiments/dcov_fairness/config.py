"""dCov fairness regularisation: marginal vs intersectional (JdCov, CCdCov).

Paper: Machine Learning with Multitype Protected Attributes: Intersectional
Fairness through Regularisation, Lee, Antonio, Avanzi, Marchi, Zhou, 2025,
arXiv:2509.08163 (no official code).

Variants (`--config=experiments/dcov_fairness/config.py:<variant>`):
  insurance      (default) generated motor-insurance-like regression
                 (`fair_insurance`: gender, age, region protected, an
                 intersectional "xor" term invisible to each attribute
                 alone); MLP 64-64, Adam 1e-3, batch 256, 60 epochs.
                 Arms: a lambda sweep of each regulariser (marginal sum,
                 JdCov c=1, CCdCov) and the unregularised baseline.
                 With `--config.data.kwargs.interaction=corner`: a "corner"
                 interaction (female x region 4), which every measure sees.
  insurance_clf  the same table as a claim / no-claim classification (BCE,
                 regularising the predicted probability).
  compas         full scale: ProPublica COMPAS two-year recidivism from
                 `data.data_dir` (not run here; no smoke).

Example:
  regjax run dcov_fairness --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("insurance", "insurance_clf", "compas")

# lambda grids per regulariser: their values differ in scale (JdCov holds
# the higher-order terms), so each grid spans the same task-loss range.
LAMBDAS = {
    "marginal": (3.0, 10.0, 30.0, 100.0),
    "jdcov": (1.0, 3.0, 10.0, 30.0),
    "ccdcov": (3.0, 10.0, 30.0, 100.0),
}
NAMES = {"marginal": "marginal", "jdcov": "JdCov", "ccdcov": "CCdCov"}


def arms(lambdas=LAMBDAS) -> dict[str, str]:
  out = {"none": "method.dcov_fairness.kind=none"}
  for kind, grid in lambdas.items():
    for lam in grid:
      out[f"{NAMES[kind]} lam={lam:g}"] = (
          f"method.dcov_fairness.kind={kind},method.dcov_fairness.lam={lam}")
  return out


def get_config(variant: str = "insurance") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"unknown dcov_fairness variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = supervised.base_config()
  c.experiment = "dcov_fairness"
  c.data.update(source="generator", input_key="x", preprocess="none")
  c.model = mlc.ConfigDict(dict(name="mlp", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(hidden_sizes=(64, 64)))
  task = "classification" if variant in ("insurance_clf", "compas") else (
      "regression")
  c.method.name = "dcov_fairness"
  # blocks: widths of gender / sex (1), age (1), region (5) / race (4).
  c.method.dcov_fairness = mlc.ConfigDict(dict(
      kind="ccdcov", lam=0.0, c=1.0, task=task, estimator="v",
      blocks=(1, 1, 4 if variant == "compas" else 5)))
  c.optim.update(name="adamw", weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8)
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.eval.name = "fairness"
  c.fairness = mlc.ConfigDict(dict(
      bins=20, min_size=20,
      intersect=("sex", "race") if variant == "compas" else (
          "gender", "region")))
  if variant == "compas":
    c.data.name = "compas"
    c.data.data_dir = "~/data/compas"
    c.data.kwargs = mlc.ConfigDict(dict(test_fraction=0.3, age_bands=3,
                                        data_seed=0))
    c.train.update(batch_size=256, eval_batch_size=2048, num_epochs=100)
  else:
    c.data.name = "fair_insurance"
    c.data.kwargs = mlc.ConfigDict(dict(
        num_examples=6000, test_fraction=1 / 3,
        interaction="xor",
        interaction_strength=1.0,
        task=task, noise=0.5, proxy_noise=0.6, age_bands=3, data_seed=0))
    c.train.update(batch_size=256, eval_batch_size=2000, num_epochs=60)
  c.train.update(log_every_steps=200, eval_every_epochs=0,
                 checkpoint_every_steps=100000, tensorboard=False)
  # Probabilities in [0, 1] have smaller distances than the regression
  # outputs: the classification grids are 10x larger.
  c.study.arms = arms({k: tuple(10 * lam for lam in v)
                       for k, v in LAMBDAS.items()}
                      if task == "classification" else LAMBDAS)
  c.study.seeds = (0, 1, 2)
  task_metric = "bce" if task == "classification" else "mse"
  c.study.metrics = (task_metric, "js_inter_max", "js_inter",
                     "js_marginal_max", "js_gender" if variant != "compas"
                     else "js_sex", "js_age", "ccdcov", "jdcov",
                     "dcov_marginal")
  c.study.metric_labels = dict(
      mse="test MSE", bce="test BCE",
      js_inter_max="max subgroup JS (bits)", js_inter="JSD inter.",
      js_marginal_max="max marginal JSD", js_gender="JSD gender",
      js_sex="JSD sex", js_age="JSD age", ccdcov="CCdCov^2",
      jdcov="JdCov^2", dcov_marginal="sum dCov^2")
  c.study.paper = {}
  c.study.paper_source = (
      "arXiv:2509.08163; the paper's tables (COMPAS, motor insurance) were "
      "not readable offline")
  c.study.artifacts = "experiments.dcov_fairness.matched:artifacts"
  c.study.name = variant
  c.smoke.enabled = variant == "insurance"
  c.smoke.steps = 3
  return c
