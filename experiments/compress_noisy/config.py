"""Nested dropout, dropout, co-teaching and Nested + Co-teaching vs CE.

Paper: Compressing Features for Learning with Noisy Labels, Chen et al.,
IEEE TNNLS 2022, arXiv:2206.13140; code yingyichen-cyy/Nested-Co-teaching.

Arms (all `method.name=compress_noisy`, `algos/noisy_labels/`): CE, Dropout
(rate 0.3 on the penultimate features), Nested (nested dropout, std 10),
Co-teaching and Nested + Co-teaching (two networks, `model.name=two_nets`,
the official "from scratch" recipe: forget rate ramped over 5 epochs). The
evaluator `nested_noisy_labels` picks the nested truncation K on a clean
validation split and reports the test error at K (plus memorisation).

Variants (`--config=experiments/compress_noisy/config.py:<variant>`):
  digits    (default) CPU smoke/unit scale: small CNN on the embedded 8x8
            digits, first 1,200 training images (noisy), 237 held out as
            the clean validation split.
  shapes32  the CPU study: procedural 32x32 RGB shapes32/c10, the calibrated
            recipe (experiments/shapes32_recipe.py: 6-layer ResNet, d = 64
            features, 30 epochs, cosine LR) on the first 2,000 training
            images, clean validation `train[3000:4000]`; 40% symmetric noise
            (`sym40`) and 40% asymmetric look-alike flips (`asym40`).
  cifar10_sym, cifar100_sym: the official stage-one CIFAR settings
            (nested/train_resnet.py defaults, nested/run_cifar.sh: ResNet-18,
            SGD 0.1, wd 5e-4, batch 320, 350 epochs, LR / 10 at 200 and 300,
            warm-up; nested std 10 / 100, dropout 0.3 / 0.7; 20% symmetric
            noise). Need TFDS cifar10/cifar100 under --config.data.data_dir.
            Clothing1M / ANIMAL-10N (the paper's headline) are documented in
            third_party_configs/compress_noisy/ (no TFDS builder here).

Examples:
  regjax run compress_noisy --seeds=0,1,2
  regjax run compress_noisy \
      --config=experiments/compress_noisy/config.py:shapes32 \
      --arms=CE/sym40,Nested/sym40 --seeds=0,1,2
"""

from common.protocols import supervised
from experiments import shapes32_recipe

VARIANTS = ("digits", "shapes32", "cifar10_sym", "cifar100_sym")

# arm -> method.compress_noisy overrides (+ the two-network model).
METHODS = {
    "CE": dict(feature_reg="none", co_teaching=False),
    "Dropout": dict(feature_reg="dropout", co_teaching=False),
    "Nested": dict(feature_reg="nested", co_teaching=False),
    "Co-teaching": dict(feature_reg="none", co_teaching=True),
    "Nested+Co-teaching": dict(feature_reg="nested", co_teaching=True),
    # Sensitivity: a wider truncation law (p(k) ~ exp(-(k / 32)^2) keeps
    # half of the 64 shapes32 units on average instead of ~9 of them).
    "Nested-std32": dict(feature_reg="nested", nested_std=32.0,
                         co_teaching=False),
}
NOISES = {"sym40": ("symmetric", 0.4, ""), "asym40": ("asymmetric", 0.4, "")}

# The paper's test accuracy (%) as error, official README "Results"
# (Clothing1M: mean of 3 runs; ANIMAL-10N: mean +- std of 3 runs).
PAPER_CLOTHING1M_ERROR = {"CE": 100 - 67.2, "Co-teaching": 100 - 69.2,
                          "Dropout": 100 - 72.8, "Nested": 100 - 73.1,
                          "Nested+Co-teaching": 100 - 74.9}
PAPER_ANIMAL10N_ERROR = {"CE": 100 - 79.4, "Dropout": 100 - 81.3,
                         "Nested": 100 - 81.3, "Nested+Co-teaching": 100 - 84.1}


def _arm(method: str, noise: str, asym_map: str) -> str:
  kind, rate, _ = NOISES[noise]
  out = [f"method.compress_noisy.{k}={v}" for k, v in METHODS[method].items()]
  out += [f"data.label_noise.kind={kind}", f"data.label_noise.rate={rate}"]
  if kind == "asymmetric":
    out.append(f"data.label_noise.map={asym_map}")
  # One or two copies of the same zoo model (model.kwargs.base), so the
  # arms share model.kwargs (algos/noisy_labels/two_nets.py).
  out.append("model.name=" + ("two_nets" if METHODS[method]["co_teaching"]
                              else "one_net"))
  return ",".join(out)


def arms(asym_map: str, noises=tuple(NOISES)) -> dict:
  return {f"{m}/{n}": _arm(m, n, asym_map) for n in noises for m in METHODS}


def get_config(variant: str = "digits"):
  c = supervised.base_config()
  c.experiment = "compress_noisy"
  c.method.name = "compress_noisy"
  c.method.compress_noisy = dict(
      feature_reg="nested", dropout=0.3, nested_mu=0.0, nested_std=10.0,
      co_teaching=True, forget_rate=0.4, num_gradual=5.0)
  c.eval.name = "nested_noisy_labels"
  c.eval.nested = dict(val_split="")
  c.data.label_noise.update(kind="symmetric", rate=0.4, seed=0)
  # Official: SGD momentum 0.9, wd 5e-4 on every parameter, no Nesterov.
  c.optim.update(name="sgd", momentum=0.9, nesterov=False, weight_decay=5e-4,
                 weight_decay_mask="all")
  c.study.metrics = ("error", "error_all_units", "num_kept", "val_error",
                     "corrupted_pred_noisy", "clean_pred_true")
  c.study.metric_labels = dict(
      error="test error at K (%)", error_all_units="test error, all units",
      num_kept="K", val_error="val. error at K",
      corrupted_pred_noisy="corrupted: pred = noisy label",
      clean_pred_true="clean-label train acc.")
  c.study.formats = dict(error=".1f", error_all_units=".1f", num_kept=".0f",
                         val_error=".1f", corrupted_pred_noisy=".3f",
                         clean_pred_true=".3f")
  c.study.plots = ("error", "corrupted_pred_noisy")
  c.study.artifacts = "experiments.compress_noisy.selection:artifacts"
  c.study.paper = {}
  c.study.paper_source = ""

  if variant == "digits":
    c.data.update(name="digits", train_split="train[:1200]", crop_padding=0,
                  flip=False, mean=(0.5,), std=(0.5,))
    c.eval.nested.val_split = "train[1200:]"
    base = dict(name="small_cnn", kwargs=dict(widths=(16, 32, 64)))
    c.train.update(batch_size=64, num_epochs=30, eval_batch_size=360,
                   log_every_steps=20, eval_every_epochs=5,
                   checkpoint_every_steps=5000, tensorboard=False)
    c.schedule.update(name="cosine", learning_rate=0.05)
    c.study.arms = arms("mnist")
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = True
  elif variant == "shapes32":
    shapes32_recipe.apply(c)
    # The recipe's calibrated optimizer (SGD Nesterov, wd 5e-4), as the ELR,
    # LDR and PS-KD shapes32 studies; the official code has no Nesterov.
    c.optim.nesterov = True
    base = dict(name=c.model.name, kwargs=c.model.kwargs.to_dict())
    # The recipe's 30 epochs (CE memorises the noisy labels late in the
    # cosine schedule; ELR's shapes32 CE sym40 fits 67% of the corrupted
    # images) on 2,000 images instead of 3,000: five arms, two of them with
    # two networks, fit the CPU budget.
    c.data.train_split = "train[:2000]"
    c.eval.nested.val_split = "train[3000:4000]"
    c.train.update(log_every_steps=100, eval_every_epochs=10,
                   checkpoint_every_steps=5000, tensorboard=False)
    c.study.arms = arms("shapes32")
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = False   # building shapes32/c10 takes minutes
  elif variant in ("cifar10_sym", "cifar100_sym"):
    cifar10 = variant == "cifar10_sym"
    c.data.update(
        name="cifar10" if cifar10 else "cifar100",
        # Official preprocess_cifar*.py hold out a clean validation split of
        # the training images (5,000 here: the last 10%).
        train_split="train[:90%]", crop_padding=4, flip=True,
        mean=((0.4914, 0.4822, 0.4465) if cifar10 else
              (0.5071, 0.4867, 0.4408)),
        std=((0.2023, 0.1994, 0.2010) if cifar10 else
             (0.2675, 0.2565, 0.2761)))
    c.eval.nested.val_split = "train[90%:]"
    # Official preprocess_sym_noise_cifar.py: a `rate` fraction of each
    # class moved to another class (never its own).
    c.data.label_noise.update(kind="symmetric_flip", rate=0.2)
    # Official: a post-activation CIFAR ResNet-18 (512 features); the zoo's
    # CIFAR ResNet-18 is pre-activation.
    base = dict(name="preact_resnet18", kwargs={})
    c.method.compress_noisy.update(
        nested_std=10.0 if cifar10 else 100.0,
        dropout=0.3 if cifar10 else 0.7, forget_rate=0.2)
    c.schedule.update(name="piecewise", learning_rate=0.1,
                      boundaries_epochs=(200.0, 300.0), decay_factor=0.1,
                      # warmUpIter 6000 at batch 320 = 43 epochs of 140.
                      warmup_epochs=6000 / 140)
    c.train.update(batch_size=320, num_epochs=350, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=5,
                   checkpoint_every_steps=5000)
    c.study.arms = {a: o for a, o in arms(
        "cifar10" if cifar10 else "cifar100", noises=("sym40",)).items()}
    c.study.arms = {a.replace("sym40", "sym20"): o.replace(
        "rate=0.4", "rate=0.2").replace("kind=symmetric,",
                                        "kind=symmetric_flip,")
                    for a, o in c.study.arms.items()}
    c.study.seeds = (0,)
  else:
    raise ValueError(f"unknown compress_noisy variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  # The default (smoke) arm is Nested + Co-teaching: two copies of the
  # variant's model; the single-network arms use `one_net` (one copy).
  c.model.name = "two_nets"
  c.model.kwargs = dict(base=base["name"], **base["kwargs"])
  return c
