"""Sparsity-constrained OT: cost/sparsity trade-off and MoE routing.

Paper: Sparsity-Constrained Optimal Transport, Liu, Puigcerver, Blondel,
ICLR 2023, arXiv:2209.15466; reference solver in POT (`ot.smooth`,
`SparsityConstrained`).

Variants (`--config=experiments/sparse_ot/config.py:<variant>`):
  cpu   (default) 40 x 40 clouds with k in {1, 2, 3, 5, 10, 20}; an MoE of
        4 experts on digit patches, top-k vs sparse-OT routing; minutes.
  long  100 x 100 clouds, 8 experts, 5x more MoE steps (about an hour on CPU).

Examples:
  regjax run sparse_ot --seeds=0,1,2
  regjax run sparse_ot --seeds=0 --arms=sparse_ot
"""

import ml_collections as mlc

from common import config as config_lib

VARIANTS = ("cpu", "long")


def get_config(variant: str = "cpu"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown sparse_ot variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = config_lib.base_config()
  c.experiment = "sparse_ot"
  c.runner = "experiments.sparse_ot.run"
  # float64: float32 round-off derails L-BFGS at binding k (see README).
  c.tradeoff = mlc.ConfigDict(dict(n=40, ks=(1, 2, 3, 5, 10, 20), gamma=1.0,
                                   max_iter=500, float64=True))
  c.moe = mlc.ConfigDict(dict(
      routers=("topk", "sparse_ot"), num_experts=4, width=32, batch_size=32,
      capacity_factor=1.0, gamma=1.0, learning_rate=3e-3, steps=150))
  c.study.seeds = (0, 1, 2)
  c.smoke.enabled = True
  if variant == "long":
    c.tradeoff.update(n=100, ks=(1, 2, 3, 5, 10, 20, 50))
    c.moe.update(num_experts=8, batch_size=64, steps=750)
  return c
