"""LegoGCD vs SimGCD on category-discovery splits.

Paper: Solving the Catastrophic Forgetting Problem in Generalized Category
Discovery, Cao, Zheng, Li, Qiu, Zhang. CVPR 2024 (no arXiv version; CVF open
access). Official code: Cliffia123/LegoGCD (SimGCD base: CVMI-Lab/SimGCD).

Variants (`--config=experiments/legogcd/config.py:<variant>`):
  digits    (default) CPU, minutes: embedded 8x8 digits, old classes 0-4
            (50% of their training examples labelled), new classes 5-9;
            small CNN backbone + `discovery_head`; evaluated on the
            unlabelled training examples (the papers' protocol), Hungarian
            All / Old / New (v2).
  shapes32  CPU: shapes32/c10 (first 3,000
            training images, 12 epochs), old 0-4, same protocol, the 6-layer ResNet of
            experiments/shapes32_recipe.py as the backbone.
  cifar100  the official CIFAR-100 settings (third_party_configs/legogcd/)
            on a from-scratch ResNet-18 backbone: the official DINO ViT-B/16
            backbone is not in this repo's zoo (named, not run).

Examples:
  regjax run legogcd --seeds=0,1,2
"""

from common.data import category_discovery
from common.protocols import supervised
from experiments import shapes32_recipe

VARIANTS = ("digits", "shapes32", "cifar100")

# The paper's Table 3, CIFAR-100 (Hungarian v2 accuracy on the unlabelled
# training images, %): SimGCD* is the paper's own rerun of SimGCD (seed 0),
# "Ours" LegoGCD (equal to the official README's row).
_PAPER = {
    "SimGCD": dict(all_acc=79.0, old_acc=77.9, new_acc=81.5),
    "LegoGCD": dict(all_acc=81.8, old_acc=81.4, new_acc=82.5),
}

SIMGCD = dict(sup_weight=0.35, memax_weight=2.0, warmup_teacher_temp=0.07,
              teacher_temp=0.04, warmup_teacher_temp_epochs=30)


def get_config(variant: str = "digits"):
  c = supervised.base_config()
  c.experiment = "legogcd"
  c.data.category_discovery = category_discovery.default_config()
  c.data.category_discovery.update(kind="gcd", num_old=5,
                                   labelled_fraction=0.5, seed=0,
                                   eval_on="unlabelled_train")
  c.model.name = "discovery_head"
  c.method.name = "legogcd"
  c.method.simgcd = dict(SIMGCD)
  c.method.legogcd = dict(SIMGCD, num_old=5, ler_weight=2.0, thr=0.7,
                          pseudo_temp=0.05, gamma=0.4, qhat_momentum=0.999,
                          dkl_weight=1.0, dkl_form="official")
  c.eval.name = "category_discovery"
  c.optim.update(name="sgd", momentum=0.9, nesterov=False, weight_decay=5e-5,
                 weight_decay_mask="kernels")
  c.schedule.update(name="cosine", learning_rate=0.1)
  c.study.arms = dict(SimGCD="method.name=simgcd",
                      LegoGCD="method.name=legogcd")
  c.study.metrics = ("all_acc", "old_acc", "new_acc")
  c.study.paper = _PAPER
  c.study.paper_source = ("LegoGCD paper (CVPR 2024) Table 3, CIFAR-100, "
                          "DINO ViT-B/16; SimGCD = the paper's SimGCD* rerun "
                          "(accuracy in %, ours in [0, 1])")
  c.study.plots = ("all_acc", "old_acc", "new_acc")

  if variant == "digits":
    c.data.update(name="digits", crop_padding=1, flip=False, mean=(0.5,),
                  std=(0.5,))
    c.model.kwargs = dict(backbone="small_cnn",
                          backbone_kwargs=dict(widths=(16, 32, 64)),
                          hidden_dim=128, proj_dim=32, nlayers=3)
    c.train.update(batch_size=128, num_epochs=30, eval_batch_size=1080,
                   log_every_steps=50, eval_every_epochs=5,
                   checkpoint_every_steps=1000)
    for m in ("simgcd", "legogcd"):
      c.method[m].warmup_teacher_temp_epochs = 5   # 30 of 200 epochs
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = True
  elif variant == "shapes32":
    c.data.update(name="shapes32/c10", train_split="train[:3000]",
                  crop_padding=2, flip=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    # The 6-layer ResNet of experiments/shapes32_recipe.py as the backbone.
    c.model.kwargs = dict(backbone=shapes32_recipe.MODEL["name"],
                          backbone_kwargs=dict(shapes32_recipe.MODEL["kwargs"]),
                          hidden_dim=256, proj_dim=64, nlayers=3)
    c.train.update(batch_size=128, num_epochs=12, eval_batch_size=500,
                   log_every_steps=100, eval_every_epochs=3,
                   checkpoint_every_steps=5000)
    for m in ("simgcd", "legogcd"):
      c.method[m].warmup_teacher_temp_epochs = 2   # 30 of 200 epochs
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = False
  elif variant == "cifar100":
    c.data.update(name="cifar100", crop_padding=4, flip=True,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    c.data.category_discovery.num_old = 80   # SimGCD: range(80), prop 0.5
    # SimGCD scripts/run_cifar100.sh: memax 4; LegoGCD's: memax 2, thr 0.85.
    c.method.simgcd.memax_weight = 4.0
    c.method.legogcd.update(num_old=80, memax_weight=2.0, thr=0.85)
    c.model.kwargs = dict(backbone="resnet18", hidden_dim=2048,
                          proj_dim=256, nlayers=3)
    c.train.update(batch_size=128, num_epochs=200, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=10,
                   checkpoint_every_steps=5000)
    c.study.seeds = (0,)
  else:
    raise ValueError(f"unknown legogcd variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  return c
