"""Sparsity-constrained OT: the cost/sparsity trade-off, and MoE routing.

Paper: Sparsity-Constrained Optimal Transport, Liu, Puigcerver, Blondel,
ICLR 2023, arXiv:2209.15466; reference solver in POT (`ot.smooth`,
`SparsityConstrained`).

Two studies, one per protocol (`--config=experiments/sparse_ot/config.py:
<variant>`):

  tradeoff  (default) no training (`analysis` protocol): 40 x 40 2-D clouds,
            one arm per k in {1, 2, 3, 5, 10, 20, 40 = n}, our semi-dual solver
            (float64) vs POT's on the same problems; seconds per run.
  moe       (`supervised` protocol) an MoE of 4 experts on digit patches,
            trained 150 Adam steps; arms: top-k vs sparse-OT routing.
  tradeoff_long, moe_long  100 x 100 clouds (k up to 50); 8 experts, 750
            steps (about an hour on CPU).

Examples:
  regjax run sparse_ot --seeds=0,1,2
  regjax run sparse_ot --config=experiments/sparse_ot/config.py:moe \
      --seeds=0,1,2 --arms=sparse_ot
"""

import ml_collections as mlc

from common.protocols import analysis
from common.protocols import supervised

VARIANTS = ("tradeoff", "moe", "tradeoff_long", "moe_long")

# (column label, metric, format) of the trade-off table.
_TRADEOFF_COLS = (
    ("max nnz / column", "max_nnz_per_column", ".2f"),
    ("<P, C>", "transport_cost", ".5f"),
    ("row-marginal L1 error", "row_marginal_l1", ".3f"),
    ("semi-dual value", "semi_dual_value", ".5f"),
    ("POT: <P, C>", "pot_transport_cost", ".5f"),
    ("POT: row-marginal L1 error", "pot_row_marginal_l1", ".3f"),
    ("POT: semi-dual value", "pot_semi_dual_value", ".5f"))


def _tradeoff(long: bool) -> mlc.ConfigDict:
  c = analysis.base_config()
  c.experiment = "sparse_ot"
  c.analysis.name = "sparse_ot_tradeoff"
  n, ks = (100, (1, 2, 3, 5, 10, 20, 50)) if long else (40,
                                                        (1, 2, 3, 5, 10, 20))
  # float64: float32 round-off derails L-BFGS at binding k (see README).
  # ftol=0: no stop on a small improvement, so that every cell reaches the
  # optimum as far as float64 allows (the solver's default 1e-9 is scipy's).
  c.tradeoff = mlc.ConfigDict(dict(n=n, k=1, gamma=1.0, max_iter=500,
                                   ftol=0.0, float64=True))
  arms = {f"k={k}": f"tradeoff.k={k}" for k in ks + (n,)}
  c.study.arms = arms
  c.study.metrics = ()     # the tables below list the arms in k order
  c.study.tables = (
      dict(title=f"Sparse OT vs POT, {n} x {n} clouds (k = {n} = n is "
           "quadratic OT)", rows=tuple(arms), cols=_TRADEOFF_COLS),
      dict(title="Exact OT (POT emd2), the k = 1 limit", row_label="",
           rows=("exact OT",), arm="k=1",
           cols=(("<P, C>", "emd_transport_cost"),), fmt=".5f"))
  c.study.artifacts = "experiments.sparse_ot.tradeoff:artifacts"
  c.study.name = "tradeoff_long" if long else "tradeoff"
  return c


def _moe(long: bool) -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "sparse_ot"
  # Pixels in [0, 1] (mean 0, std 1), no augmentation, as the patches of
  # the first version.
  c.data.update(name="digits", mean=(0.0,), std=(1.0,))
  c.model.name = "digit_moe"
  c.model.kwargs = dict(num_experts=8 if long else 4, width=32,
                        router="topk", capacity_factor=1.0, gamma=1.0)
  c.method.name = "cross_entropy"
  c.optim.update(name="adamw", weight_decay=0.0)   # = Adam
  c.schedule.update(name="constant", learning_rate=3e-3)
  batch = 64 if long else 32
  c.train.update(batch_size=batch, eval_batch_size=batch,
                 steps=750 if long else 150, eval_every_epochs=0,
                 log_every_steps=50, tensorboard=False)
  c.eval.name = "moe_routing"
  c.study.arms = {"topk": "model.kwargs.router=topk",
                  "sparse_ot": "model.kwargs.router=sparse_ot"}
  c.study.metrics = ("accuracy", "dropped", "load_cv",
                     "max_tokens_per_expert", "capacity")
  c.study.metric_labels = {
      "accuracy": "test accuracy (%)", "dropped": "tokens dropped (%)",
      "load_cv": "load CV", "max_tokens_per_expert": "max tokens / expert",
      "capacity": "capacity"}
  c.study.formats = {"max_tokens_per_expert": ".0f", "capacity": ".0f"}
  c.study.name = "moe_long" if long else "moe"
  return c


def get_config(variant: str = "tradeoff"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown sparse_ot variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  long = variant.endswith("_long")
  c = _tradeoff(long) if variant.startswith("tradeoff") else _moe(long)
  c.study.seeds = (0, 1, 2)
  c.smoke.enabled = not long
  return c
