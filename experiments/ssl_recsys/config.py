"""SSL for two-tower retrieval: supervised vs + SSL (RFM) vs + SSL (CFM).

Paper: Self-supervised Learning for Large-scale Item Recommendations, Yao
et al., CIKM 2021, arXiv:2007.12865; no official code.

Every arm is the method `ssl_recsys` (algos/recsys/ssl_recsys.py) on the one
train step with the `two_tower` model (algos/recsys/two_tower.py); the
baseline is `masking="none"`. Evaluator `retrieval_recall`
(common/eval/retrieval.py): Recall@10/50 over the whole catalogue, on all /
head / tail test pairs.

Variants (`--config=experiments/ssl_recsys/config.py:<variant>`):
  synthetic  (default) CPU, minutes: generator `synthetic_recsys`
             (common/data/recsys.py): 2,000 items with Zipf(1) popularity,
             six correlated categorical features from latent topics and
             creators, 500 users with latent preferences, 20,000 training
             pairs (the bottom half of the items hold ~8% of them); 1,600
             steps of batch 256, Adam 1e-3.
  ablation   the synthetic setting: CFM with alpha 0.3 / 3, SSL on the
             main batch's items instead of uniform ones, and the three
             arms without the logQ correction.
  movielens  the paper's training settings on a public proxy, TFDS
             `movielens/1m-ratings` under --config.data.data_dir (ratings
             as implicit feedback, 10% held out), generator
             `movielens_recsys`; see third_party_configs/ssl_recsys/.

Examples:
  regjax run ssl_recsys --seeds=0,1,2
  regjax run ssl_recsys --config=experiments/ssl_recsys/config.py:movielens \
      --config.data.data_dir=/data/tfds --seeds=0
"""

import ml_collections as mlc

from common.data import recsys
from common.protocols import supervised

VARIANTS = ("synthetic", "ablation", "movielens")

_ARMS = {
    "two-tower": "method.ssl_recsys.masking=none",
    "+SSL RFM": "method.ssl_recsys.masking=rfm",
    "+SSL CFM": "method.ssl_recsys.masking=cfm",
}

# SSL weight, SSL item distribution, and the main loss without logQ.
_ABLATION = {
    "+SSL CFM alpha=3e-1": "method.ssl_recsys.alpha=0.3",
    "+SSL CFM alpha=3": "method.ssl_recsys.alpha=3.0",
    "+SSL CFM batch items": "method.ssl_recsys.ssl_items=batch",
    "two-tower no logQ": ("method.ssl_recsys.masking=none,"
                          "method.ssl_recsys.logq_weight=0.0"),
    "+SSL RFM no logQ": ("method.ssl_recsys.masking=rfm,"
                         "method.ssl_recsys.logq_weight=0.0"),
    "+SSL CFM no logQ": "method.ssl_recsys.logq_weight=0.0",
}


def get_config(variant: str = "synthetic") -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "ssl_recsys"
  c.method.name = "ssl_recsys"
  c.method.ssl_recsys = mlc.ConfigDict(dict(
      masking="cfm", ssl_items="uniform", mi_examples=8192, alpha=1.0,
      tau=0.1, ssl_tau=0.1, logq_weight=1.0))
  c.data.update(source="generator", input_key="inputs", preprocess="none")
  c.model = mlc.ConfigDict(dict(name="two_tower", dtype="float32"))
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.eval = mlc.ConfigDict(dict(name="retrieval_recall", ks=(10, 50)))
  c.train.update(eval_every_epochs=0, log_every_steps=100,
                 checkpoint_every_steps=100000, tensorboard=False,
                 eval_batch_size=512)
  c.study.arms = dict(_ARMS)
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("recall50_all", "recall50_head", "recall50_tail",
                     "recall10_all", "recall10_tail")
  c.study.metric_labels = dict(
      recall50_all="Recall@50 all %", recall50_head="Recall@50 head %",
      recall50_tail="Recall@50 tail %", recall10_all="Recall@10 all %",
      recall10_tail="Recall@10 tail %")
  c.study.formats = {k: ".2f" for k in c.study.metrics}
  c.study.paper_source = ""
  if variant in ("synthetic", "ablation"):
    c.data.name = "synthetic_recsys"
    c.data.kwargs = mlc.ConfigDict(dict(recsys.DEFAULTS))
    c.model.kwargs = mlc.ConfigDict(dict(
        item_vocab=(2000, 40, 160, 200, 6, 6), query_vocab=(500, 40),
        embed_dim=16, hidden=(64,), out_dim=32))
    c.train.update(batch_size=256, steps=1600)
    c.smoke.update(enabled=True, steps=2)
    if variant == "ablation":
      c.study.arms = dict(_ABLATION)
      c.study.name = "results_ablation"
      c.smoke.enabled = False     # the same program as `synthetic`
  elif variant == "movielens":
    c.data.name = "movielens_recsys"
    c.data.kwargs = mlc.ConfigDict(dict(name="movielens/1m-ratings",
                                        test_fraction=0.1, num_test=5000))
    # MovieLens-1M: 3,706 rated movies, 18 genres, 13 decades; 6,040
    # users, 2 genders, 7 age buckets, 21 occupations.
    c.model.kwargs = mlc.ConfigDict(dict(
        item_vocab=(3706, 18, 18, 13), query_vocab=(6040, 2, 7, 21),
        embed_dim=64, hidden=(1024, 256), out_dim=128))
    # Paper (Sec. 5, verify): batch 4096, Adagrad; we use Adam.
    c.train.update(batch_size=4096, num_epochs=20)
    c.method.ssl_recsys.mi_examples = 65536
    c.smoke.enabled = False
  else:
    raise ValueError(f"unknown ssl_recsys variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  return c
