"""ECAML: energy confusion added to N-pair metric learning, zero-shot.

Paper: Chen & Deng, "Energy Confused Adversarial Metric Learning for
Zero-Shot Image Retrieval and Clustering", AAAI 2019, arXiv 1901.07169;
code chenbinghui1/ECAML (Caffe).

Variants (`--config=experiments/ecaml/config.py:<variant>`):
  digits  (default) CPU, minutes: an MLP (256-256) + 64-d embedding head
          trained on the digits 0-4 (both TFDS splits, 901 images) in
          batches of 25 same-class pairs, evaluated on the never-seen
          digits 5-9 (896 images): Recall@1/2/4/8 and k-means NMI. The
          official N-pair layer (kcenter 1, k 1, every negative, coeff
          5e-4, unit embedding x 10) and energy-confusion layer (weight
          0.13; 4 partners per row, the official 10 per 130 rows scaled to
          the 50-row batch); Adam 1e-3, 2,000 steps. Arms: N-pair alone
          (lambda 0), ECAML with the official lambda 0.13 and
          with lambda 1.

Examples:
  regjax run ecaml --seeds=0,1,2,3,4
"""

from common.data import class_pairs
from common.protocols import supervised

VARIANTS = ("digits",)


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown ecaml variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = supervised.base_config()
  c.experiment = "ecaml"
  c.method.name = "ecaml"
  # examples/car/train_confusion.prototxt: NpairLoss (kcenter 1, k 1,
  # kcenter_n 128 = every negative of a 130-row batch, coeff 5e-4) on the
  # L2-normalised embedding scaled by 10; EnergyConfusionLoss weight 0.13.
  c.method.ecaml = dict(lam=0.13, coeff=5e-4, scale=10.0, k=1.0, kcenter=1,
                        kcenter_n=0, random_num=4)
  c.model.name = "embedding_net"
  c.model.kwargs = dict(backbone="mlp",
                        backbone_kwargs=dict(hidden_sizes=(256, 256)),
                        embedding_dim=64)
  c.data.update(source="generator", name="digits_pairs", input_key="image",
                preprocess="none")
  c.data.kwargs = dict(class_pairs.DEFAULTS)
  c.optim.update(name="adamw", weight_decay=0.0, weight_decay_mask="kernels")
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.train.update(batch_size=50, steps=2000, eval_batch_size=896,
                 log_every_steps=200, eval_every_epochs=20,
                 checkpoint_every_steps=5000)
  c.eval.name = "zero_shot_retrieval"
  c.study.name = variant
  c.study.seeds = (0, 1, 2, 3, 4)
  c.study.arms = {"N-pair": "method.ecaml.lam=0.0",
                  "ECAML (official lambda)": "method.ecaml.lam=0.13",
                  "ECAML lambda 1": "method.ecaml.lam=1.0"}
  c.study.metrics = ("recall_at_1", "recall_at_2", "recall_at_4",
                     "recall_at_8", "nmi")
  c.study.metric_labels = dict(recall_at_1="R@1", recall_at_2="R@2",
                               recall_at_4="R@4", recall_at_8="R@8",
                               nmi="NMI")
  c.study.formats = {m: ".4f" for m in c.study.metrics}
  c.study.plots = ("recall_at_1", "nmi")
  c.smoke.update(enabled=True, steps=2)
  return c
