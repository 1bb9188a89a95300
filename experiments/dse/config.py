"""Diffusion spectral entropy: intrinsic dimension, and DSMI during training.

Paper: Liao et al., "Assessing Neural Network Representations During
Training Using Noise-Resilient Diffusion Spectral Entropy", arXiv:2312.04823;
official code ChenLiu-1996/DiffusionSpectralEntropy (only the DSE/DSMI
functions are public; its training scripts were withdrawn).

Variants (`--config=experiments/dse/config.py:<variant>`):
  manifold  (default, `analysis` protocol, no training) points on d-dim
            flat manifolds (d = 1..10) in R^100 with ambient noise; DSE
            and the binned Shannon entropy of every cloud, their Spearman
            correlation with d. Arms: noise levels at the official defaults
            (sigma 10, t 1), a uniform-cube manifold, and sigma 3 with
            t = 1 / 5 (diffusion time against noise).
  training  (`supervised` protocol) an MLP (256, 256) on the 8x8 digits,
            true labels vs random labels (every training label redrawn,
            `data.label_noise` symmetric 0.999); the `dse` evaluator
            (experiments/dse/evaluate.py) measures DSE / DSMI of the
            penultimate features every 5 epochs.
  cifar10   full scale (GPU, not run here): ResNet-18 (pre-activation) on
            CIFAR-10, SGD 0.1 cosine, 200 epochs, true vs random labels, DSE/DSMI on 2,000 test and
            training images each evaluation. Needs TFDS cifar10 under
            --config.data.data_dir.

Examples:
  regjax run dse --seeds=0,1,2
  regjax run dse --config=experiments/dse/config.py:training --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import analysis
from common.protocols import supervised
from experiments.dse import evaluate
from experiments.dse import manifold

VARIANTS = ("manifold", "training", "cifar10")
DIMS = tuple(range(1, 11))
RANDOM = "data.label_noise.kind=symmetric,data.label_noise.rate=0.999"
INIT = "train.steps=1,schedule.learning_rate=0.0"


def _manifold() -> mlc.ConfigDict:
  c = analysis.base_config()
  c.experiment = "dse"
  c.analysis.name = "dse_manifold"
  c.manifold = manifold.default_config()
  # (arm names carry no dots: 5e-1 = 0.5)
  arms = {f"noise {s}": f"manifold.noise={float(s)}"
          for s in ("0", "1e-1", "5e-1", "1")}
  arms["cube, noise 5e-1"] = "manifold.kind=cube,manifold.noise=0.5"
  for t in (1, 5):
    arms[f"sigma 3, t {t}, noise 5e-1"] = (f"manifold.sigma=3.0,manifold.t={t},"
                                           "manifold.noise=0.5")
  c.study.arms = arms
  c.study.metrics = ()
  c.study.tables = (
      dict(title="Spearman correlation with the intrinsic dimension d = 1..10 "
           "(n = 500 points in R^100; mean +- std over seeds)",
           rows=tuple(arms),
           cols=(("DSE Spearman", "dse_spearman", ".3f"),
                 ("binned Spearman", "cse_spearman", ".3f"),
                 ("DSE spread (bits)", "dse_spread", ".2f"),
                 ("binned spread (bits)", "cse_spread", ".3f"))),
      dict(title="DSE (bits) per intrinsic dimension d", rows=tuple(arms),
           cols=tuple((f"d={d}", f"dse_d{d}", ".2f") for d in DIMS)),
      dict(title="Binned Shannon entropy (bits, 2 bins per dimension) per d; "
           "log2(n) = 8.97", rows=tuple(arms),
           cols=tuple((f"d={d}", f"cse_d{d}", ".2f") for d in DIMS)))
  c.study.name = "manifold"
  c.smoke.enabled = True
  return c


def _training(full: bool) -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "dse"
  c.method.name = "cross_entropy"
  c.eval = mlc.ConfigDict(dict(name="dse"))
  c.eval.dse = evaluate.default_config()
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=1e-3)
  # The untrained network (one step at learning rate 0): the baseline.
  c.study.arms = {"init (untrained)": INIT,
                  "true labels": "data.label_noise.kind=none",
                  "random labels": RANDOM}
  raw = ("dse_test", "dsmi_test", "dse_train", "dsmi_train", "dsmi_train_fit")
  rms = tuple(m + "_rms" for m in raw)
  c.study.metrics = ("error", "train_fit_acc") + raw
  c.study.plots = ("dsmi_test", "dsmi_test_rms", "dse_test", "dse_test_rms",
                   "dsmi_train_fit", "train_fit_acc", "error")
  labels = dict(dse_test="DSE(Z) test", dsmi_test="DSMI(Z;Y) test",
                dse_train="DSE(Z) train", dsmi_train="DSMI(Z;Y true) train",
                dsmi_train_fit="DSMI(Z;Y trained) train")
  labels.update({k + "_rms": v + " [rms]" for k, v in labels.items()})
  c.study.metric_labels = dict(train_fit_acc="train acc. (its labels)",
                               **labels)
  c.study.formats = {m: ".3f" for m in ("train_fit_acc",) + raw + rms}
  c.study.tables = (dict(
      title="The same measures on rms-normalised features (eval.dse."
      "rms_sigma = 0.5; ours, not the paper's)",
      rows=tuple(c.study.arms), cols=tuple((labels[m], m, ".3f")
                                           for m in rms)),)
  if full:
    c.data.update(name="cifar10", crop_padding=4, flip=True,
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010))
    c.model.name = "preact_resnet"
    c.model.kwargs = dict(stage_sizes=(2, 2, 2, 2))
    c.optim.update(name="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4)
    c.schedule.update(name="cosine", learning_rate=0.1)
    c.train.update(batch_size=128, num_epochs=200, eval_batch_size=1000,
                   eval_every_epochs=5, log_every_steps=100,
                   checkpoint_every_steps=5000)
    c.eval.dse.points = 2000
    c.study.seeds = (0, 1, 2)
    c.study.name = "cifar10"
    c.smoke.enabled = False
    return c
  c.data.update(name="digits", crop_padding=0, flip=False, mean=(0.5,),
                std=(0.5,))
  c.model.name = "mlp"
  c.model.kwargs = dict(hidden_sizes=(256, 256))
  c.train.update(batch_size=64, num_epochs=60, eval_batch_size=360,
                 eval_every_epochs=2, log_every_steps=100,
                 checkpoint_every_steps=5000, tensorboard=False)
  c.study.seeds = (0, 1, 2)
  c.study.name = "training"
  c.smoke.enabled = True
  return c


def get_config(variant: str = "manifold") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"unknown dse variant {variant!r}; allowed: {VARIANTS}")
  if variant == "manifold":
    return _manifold()
  return _training(full=variant == "cifar10")
