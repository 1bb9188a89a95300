"""Grokking with corrupted labels: memorisation, IPR pruning, regularisers.

Paper: Doshi, Das, He, Gromov, "To grok or not to grok: Disentangling
generalization and memorization on corrupted algorithmic datasets",
arXiv:2310.13061 (ICLR 2024); official code d-doshi/Grokking.

At the paper's own scale (its `Notebooks/Grokking_with_label_corruption`
and `Training_scripts/phase_diagrams_*.py`): `a + b mod 97`, half of the
9409 pairs train, a fraction xi of the training labels redrawn uniformly
(data: `common/data/modular.py`), the two-layer quadratic MLP of width 500
(`common/models/quad_mlp.py`), MSE on one-hot labels (`algos/baselines/
mse.py`), full-batch AdamW (lr 1e-2, betas (0.9, 0.98), eps 1e-8), all
through the shared train step. The evaluator (`evaluate.py`) measures the
parts of the dataset, the neurons' Fourier IPR (`algos/analysis/
grok_ipr.py`) and pruning by IPR; `figures.py` draws the curves, the IPR
histograms, the pruning curves and the phase diagram.

Variants:
  main   (default) xi = 0.35: weight decay 0 / 5 / 15 (the notebook's
         coexistence, partial and full inversion), dropout, and the
         notebook's mini-batch pair with and without BatchNorm
         (xi = 0.2, 65% train, batch 64).
  phase  corruption xi x weight decay grid (coarse: 3 x 3), 500 steps.
  long   the phase grid's xi = 0.5 cells with weight decay, 2000 steps
         (the official phase scripts' length).

Example:
  regjax run grok_corrupted --seeds=0,1
  regjax run grok_corrupted:phase --seeds=0
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("main", "phase", "long")
P = 97
PHASE_XI = (0.2, 0.5, 0.8)
PHASE_WD = (0.0, 5.0, 15.0)
METRICS = ("train_acc", "clean_train_acc", "corrupted_train_acc",
           "corrupted_true_acc", "test_acc", "ipr_high_frac")
PRUNED = ("pruned_neurons", "pruned_corrupted_train_acc",
          "pruned_clean_train_acc", "pruned_test_acc",
          "random_pruned_corrupted_train_acc", "random_pruned_test_acc")
LABELS = {
    "train_acc": "train (its labels) %", "clean_train_acc": "clean train %",
    "corrupted_train_acc": "corrupted train vs corrupted label %",
    "corrupted_true_acc": "corrupted train vs true label %",
    "test_acc": "test %", "ipr_high_frac": "neurons IPR>=0.5 %",
    "ipr_mean": "mean IPR",
    "pruned_neurons": "pruned (IPR<0.5) %",
    "pruned_corrupted_train_acc": "pruned: corrupted train %",
    "pruned_clean_train_acc": "pruned: clean train %",
    "pruned_test_acc": "pruned: test %",
    "random_pruned_corrupted_train_acc": "random-pruned: corrupted train %",
    "random_pruned_test_acc": "random-pruned: test %"}
# The official notebook's printed final outputs (train acc against the
# training labels, test acc), d-doshi/Grokking@0b4335f
# Notebooks/Grokking_with_label_corruption.ipynb, cells 8, 12, 16, 24, 28
# (epochs 1000, 500, 500; steps 2000 at batch 64); one run each.
PAPER = {
    "wd=0": {"train_acc": 97.83, "test_acc": 98.30},
    "wd=5": {"train_acc": 78.55, "test_acc": 100.0},
    "wd=15": {"train_acc": 65.37, "test_acc": 100.0},
    "bs64 BatchNorm": {"train_acc": 80.43, "test_acc": 100.0},
    "bs64": {"train_acc": 81.85, "test_acc": 100.0},
}


def full_batch(train_fraction: float) -> int:
  """The training-set size rounded up to a multiple of 8 devices."""
  n = int(train_fraction * P * P)
  return -(-n // 8) * 8


def phase_arm(xi: float, wd: float) -> str:
  return f"xi={round(100 * xi)}% wd={wd:g}"   # no dots in arm names


def _base() -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "grok_corrupted"
  c.data.update(name="modular", source="generator", input_key="x",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(
      p=P, operation="add", train_fraction=0.5, corruption=0.35,
      relabel="uniform", data_seed=-1))
  c.model = mlc.ConfigDict(dict(name="quad_mlp", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(width=500, power=2, dropout=0.0,
                                       norm="none"))
  c.method = mlc.ConfigDict(dict(name="mse"))
  c.method.mse = mlc.ConfigDict()
  c.method.cross_entropy = mlc.ConfigDict(dict(label_smoothing=0.0))
  c.optim.update(name="adamw", b1=0.9, b2=0.98, eps=1e-8, weight_decay=0.0,
                 weight_decay_mask="all")
  c.schedule.update(name="constant", learning_rate=1e-2)
  c.train.update(batch_size=full_batch(0.5), steps=1000,
                 eval_batch_size=full_batch(0.5),
                 log_every_steps=100, eval_every_epochs=25,
                 checkpoint_every_steps=1000, tensorboard=False)
  c.eval = mlc.ConfigDict(dict(name="grok_corrupted", ipr_power=2.0,
                               ipr_threshold=0.5))
  c.study.seeds = (0, 1)
  c.study.metrics = METRICS + PRUNED
  c.study.metric_labels = LABELS
  c.study.formats = {m: ".1f" for m in METRICS + PRUNED}
  c.study.paper_source = ("official notebook outputs, d-doshi/Grokking "
                          "Notebooks/Grokking_with_label_corruption.ipynb "
                          "(one run each, its own split and init)")
  c.smoke.enabled = True
  return c


def get_config(variant: str = "main") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"variant {variant!r}; allowed: {VARIANTS}")
  c = _base()
  c.study.name = variant
  if variant == "main":
    minibatch = ("data.kwargs.train_fraction=0.65,data.kwargs.corruption=0.2,"
                 "train.batch_size=64,schedule.learning_rate=0.005,"
                 "train.steps=2000,train.eval_every_epochs=2")
    c.study.arms = {
        "wd=0": "optim.weight_decay=0.0",
        # 500 steps as the notebook's runs with weight decay
        "wd=5": "optim.weight_decay=5.0,train.steps=500",
        "wd=15": "optim.weight_decay=15.0,train.steps=500",
        "dropout 30%": "model.kwargs.dropout=0.3,train.steps=500",
        "bs64": minibatch,
        "bs64 BatchNorm": minibatch + ",model.kwargs.norm=batch",
    }
    c.study.paper = PAPER
    c.study.artifacts = "experiments.grok_corrupted.figures:artifacts"
  else:
    c.train.steps = 500 if variant == "phase" else 2000
    c.smoke.enabled = False   # the same data, model and step as main
    c.study.seeds = (0,)
    c.study.arms = {phase_arm(xi, wd): (f"data.kwargs.corruption={xi},"
                                         f"optim.weight_decay={wd}")
                    for xi in PHASE_XI for wd in PHASE_WD
                    if variant == "phase" or (xi == 0.5 and wd > 0)}
    c.study.metrics = ("corrupted_train_acc", "corrupted_true_acc",
                       "test_acc", "ipr_high_frac")
    c.study.paper_source = ""
    c.study.artifacts = ("experiments.grok_corrupted.figures:phase_diagram"
                         if variant == "phase" else
                         "experiments.grok_corrupted.figures:step_curves")
  return c
