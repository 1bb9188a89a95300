"""AEM vs ABMIL: attention entropy maximisation in small-data MIL.

Paper: Zhang et al., "AEM: Attention Entropy Maximization for Multiple
Instance Learning based Whole Slide Image Classification", 2024,
arXiv 2406.15303; code dazhangyu123/AEM.

Variants (`--config=experiments/aem/config.py:<variant>`):
  digits    (default) CPU, minutes: MNIST-bags-style bags of 10-40 embedded
            8x8 digits (64 pixel features per instance), positive iff the
            bag holds a 7; 200 training bags (the overfitting regime), 400
            held-out bags. The official ABMIL (D_inner 128, gated attention
            dim 128) and the official optimisation (AdamW lr 1e-4, cosine
            to 0, wd 1e-5, one bag per step, 50 epochs). Arms: ABMIL
            (lambda 0) and AEM with lambda 0.01 / 0.05 / 0.1 (paper default) /
            0.2.
  digits_small  the same with 50 training bags, one 7 per positive bag
            (stronger overfitting), 200 epochs (the same 10,000 steps).
  camelyon16  the official CAMELYON16 setting (config/camelyon_config.yml,
            README commands; third_party_configs/aem/): ABMIL on the
            official 384-d `medical_ssl` patch features (D_inner 128), 50
            epochs, one slide per step. Needs the official HDF5 features
            packed into `camelyon16_medical_ssl.npz` under data_dir
            (experiments/aem/README.md shows how).

Examples:
  regjax run aem --seeds=0,1,2,3,4
  regjax run aem --config=experiments/aem/config.py:digits_small --seeds=0,1,2
"""

from common.data import mil_bags
from common.protocols import supervised

VARIANTS = ("digits", "digits_small", "camelyon16")


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown aem variant {variant!r}; allowed: {VARIANTS}")
  c = supervised.base_config()
  c.experiment = "aem"
  c.method.name = "aem"
  c.method.aem = dict(lam=0.1)           # the paper's default (README)
  c.model.name = "abmil"
  c.model.kwargs = dict(inner_dim=128, attention_dim=128, attention="gated")
  c.data.update(source="generator", name="mil_digits", input_key="bag",
                preprocess="none")
  c.data.kwargs = dict(mil_bags.DEFAULTS, num_test_bags=400)
  if variant == "digits_small":
    # 50 bags, a single 7 in each positive bag: ABMIL overfits.
    c.data.kwargs.update(num_train_bags=50, max_positives=1)
  # Official main.py: AdamW (weight decay on every parameter), the LR set
  # each step by utils.adjust_learning_rate (half-cycle cosine from
  # conf.lr = 1e-4 to min_lr 0, no warm-up); config/camelyon_config.yml:
  # wd 1e-5, B 1, 50 epochs.
  c.optim.update(name="adamw", weight_decay=1e-5, weight_decay_mask="all")
  c.schedule.update(name="cosine", learning_rate=1e-4)
  c.train.update(batch_size=1, num_epochs=50, eval_batch_size=400,
                 log_every_steps=200, eval_every_epochs=5,
                 checkpoint_every_steps=5000)
  if variant == "digits_small":
    # 200 epochs = the digits variant's 10,000 steps: at the official
    # lr 1e-4, 50 epochs of 50 bags leave some seeds unfitted.
    c.train.update(num_epochs=200, eval_every_epochs=20)
  c.eval.name = "mil"
  c.study.name = variant
  c.study.seeds = (0, 1, 2, 3, 4)
  c.study.arms = {"ABMIL": "method.aem.lam=0.0",
                  "AEM lambda 1e-2": "method.aem.lam=0.01",
                  "AEM lambda 5e-2": "method.aem.lam=0.05",
                  "AEM lambda 1e-1": "method.aem.lam=0.1",
                  "AEM lambda 2e-1": "method.aem.lam=0.2"}
  c.study.metrics = ("bag_auc", "error", "attention_entropy_ratio",
                     "attention_max", "instance_auc")
  c.study.metric_labels = dict(
      bag_auc="bag AUC", error="bag error",
      attention_entropy_ratio="attention entropy / log n",
      attention_max="max attention", instance_auc="instance AUC")
  c.study.formats = dict(bag_auc=".4f", attention_entropy_ratio=".3f",
                         attention_max=".3f", instance_auc=".4f")
  c.study.plots = ("bag_auc", "attention_entropy_ratio")
  c.smoke.update(enabled=variant == "digits", steps=2)
  if variant == "camelyon16":
    # 270 training / 129 test slides; the test split is the official one
    # (names containing "test"); the official code also holds out 10% of
    # the training slides for model selection, which we do not.
    c.data.update(name="mil_features", data_dir="")
    c.data.kwargs = dict(file="camelyon16_medical_ssl.npz",
                         max_instances=16384)
    c.train.eval_batch_size = 136
    c.study.seeds = (0, 1, 2, 3, 4)
    c.study.metrics = ("bag_auc", "error", "attention_entropy_ratio",
                       "attention_max")
    c.study.arms = {"ABMIL": "method.aem.lam=0.0",
                    "AEM lambda 1e-1": "method.aem.lam=0.1"}
  return c
