"""Information compression measured with adaptive estimators (12-bit task).

Paper: Chelombiev, Houghton, O'Donnell, "Adaptive Estimators Show
Information Compression in Deep Neural Networks", ICLR 2019
(arXiv:1902.09037); official code ivansche/adaptive_estimators (Keras/TF).

The 12-10-7-5-4-3-2 network (`algos/analysis/info_mlp.py`, the official
init) trained with Adam on cross-entropy (+ the official L2 term in the L2
arms: method `adaptive_mi`, `algos/analysis/adaptive_mi.py`) on Tishby's
12-bit task (`common/data/tishby12.py`, 80% train), all through the shared
train step. Every `train.eval_every_epochs` the evaluator
(`experiments/adaptive_mi/evaluate.py`) measures I(X;T) and I(T;Y) of
every layer on all 4096 inputs with EBAB, fixed-width binning and the
adaptive KDE; `figures.py` draws the information planes and the
compression table.

Variants:
  main  (default, CPU) full batch (3277 rows), Adam lr 1e-3, 1500 epochs,
        tanh / ReLU / ELU, and tanh / ReLU with L2 (official penalty 0.015);
        measures at 30 log-spaced epochs.
  full  the official defaults (`network_paramters.py`): batch 256, Adam lr
        4e-4, 8000 epochs, official unshuffled 80% split; not run here.

Example:
  regjax run adaptive_mi --seeds=0,1,2
  regjax run adaptive_mi --arms=tanh --seeds=0,1,2,3,4,5,6,7 \
      --workdir=runs/adaptive_mi-init   # tanh over 8 initialisations
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("main", "full")
ACTIVATIONS = ("tanh", "relu", "elu")
L2_ACTIVATIONS = ("tanh", "relu")
L2 = 0.015            # official -penalty default (network_paramters.py)
NUM_TRAIN = 3277      # rint(0.8 * 4096)
FULL_BATCH = 3280     # NUM_TRAIN rounded up to a multiple of 8 devices
LAYERS = 6            # 5 hidden + the softmax output
METRICS = ("train_error", "test_error", "ixt_ebab_5", "ity_ebab_5",
           "ixt_kde_5", "ixt_fixed_5", "ixt_ebab_6")
LABELS = {
    "train_error": "train error %", "test_error": "test error %",
    "ixt_ebab_5": "I(X;T5) EBAB", "ity_ebab_5": "I(T5;Y) EBAB",
    "ixt_kde_5": "I(X;T5) aKDE", "ixt_fixed_5": "I(X;T5) fixed",
    "ixt_ebab_6": "I(X;T6) EBAB"}


def _base() -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "adaptive_mi"
  c.data.update(name="tishby12", source="generator", input_key="x",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(train_fraction=0.8, split="shuffled",
                                      data_seed=-1))
  c.model = mlc.ConfigDict(dict(name="info_mlp", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(hidden_sizes=(10, 7, 5, 4, 3),
                                       activation="tanh"))
  c.method = mlc.ConfigDict(dict(name="adaptive_mi"))
  c.method.adaptive_mi = mlc.ConfigDict(dict(l2=0.0))
  c.optim.update(name="adamw", b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                 weight_decay_mask="all")
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.train.update(batch_size=FULL_BATCH, steps=1500,
                 eval_batch_size=FULL_BATCH, log_every_steps=100,
                 eval_every_epochs=1, checkpoint_every_steps=1500,
                 tensorboard=False)
  c.eval = mlc.ConfigDict(dict(name="adaptive_mi", n_bins=30,
                               kde_scale=0.05, points=30))
  c.study.seeds = (0, 1, 2)
  c.study.arms = {}
  for act in ACTIVATIONS:
    c.study.arms[act] = f"model.kwargs.activation={act}"
  for act in L2_ACTIVATIONS:
    c.study.arms[f"{act} L2"] = (f"model.kwargs.activation={act},"
                                 f"method.adaptive_mi.l2={L2}")
  c.study.metrics = METRICS
  c.study.metric_labels = LABELS
  c.study.formats = {m: ".2f" for m in METRICS}
  c.study.artifacts = "experiments.adaptive_mi.figures:artifacts"
  c.smoke.enabled = True
  c.smoke.steps = 2
  return c


def get_config(variant: str = "main") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"variant {variant!r}; allowed: {VARIANTS}")
  c = _base()
  c.study.name = variant
  if variant == "full":
    c.data.kwargs.split = "official"
    c.schedule.learning_rate = 4e-4
    c.train.update(batch_size=256, steps=-1, num_epochs=8000,
                   eval_every_epochs=1, checkpoint_every_steps=10000)
    c.eval.points = 400     # official -num_samples
    c.smoke.enabled = False   # same data, model and evaluator as main
  return c
