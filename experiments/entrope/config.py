"""EntroPE vs fixed-size patching, the entropy model trained first.

Paper: EntroPE: Entropy-Guided Dynamic Patch Encoder for Time Series
Forecasting, Abeywickrama et al. 2025, arXiv:2509.26157; code
github.com/Sachithx/EntroPE.

Every run uses the `finetune` protocol: its pretraining run is the entropy
model's stage (`method.entrope.stage=entropy`, shared by the arms of a
seed: `pretrain.overrides` reset the arm-specific patching keys), then the
forecaster trains from those parameters with the entropy model frozen
(`algos/timeseries/entrope.py`). The evaluator `forecast`
(`experiments/entrope/forecast_eval.py`) reports test MSE/MAE, mean patch
count and, on synthetic data, boundary precision/recall/F1 against the
true switch points (+-`eval.boundary_tolerance` steps).

Variants (`--config=experiments/entrope/config.py:<variant>`):
  cpu          (default) regime-switching AR(2) series (`regime_ar`: 3
               regimes, 3 channels, mean regime length 48), L=48, H=24; a
               small EntroPE (d=16) with the global-quantile rule vs the
               same network on fixed-size patches of the length giving the
               same mean patch count (official `static` mode); minutes.
  etth1, ettm1, weather, electricity
               full scale: the LTSF CSV files from `data.data_dir`
               (`ltsf_csv`, standard splits), L=96, H=96, the official
               ETTh1 script's settings (third_party_configs/entrope).

Examples:
  python -m common run entrope --seeds=0,1,2
  python -m common run entrope --config=experiments/entrope/config.py:etth1 \
      --config.data.data_dir=/data/ltsf --seeds=0
"""

import ml_collections as mlc

from common.protocols import finetune

VARIANTS = ("cpu", "etth1", "ettm1", "weather", "electricity")
_CSV = {"etth1": ("ETTh1", 7), "ettm1": ("ETTm1", 7),
        "weather": ("weather", 21), "electricity": ("electricity", 321)}
# Reset for the entropy-model stage, so every arm of a seed shares it.
_PRETRAIN_SHARED = ("method.entrope.stage=entropy",
                    "model.kwargs.patching=entropy",
                    "model.kwargs.patch_size=8", "model.kwargs.rule=global",
                    "method.entrope.quantile=0.95")


def _base() -> mlc.ConfigDict:
  c = finetune.base_config()
  c.experiment = "entrope"
  c.data.update(source="generator", input_key="x", preprocess="none")
  c.model = mlc.ConfigDict(dict(name="entrope", dtype="float32"))
  c.method = mlc.ConfigDict(dict(name="entrope"))
  c.method.entrope = mlc.ConfigDict(dict(stage="forecast", quantile=0.9))
  c.optim.update(name="adamw", weight_decay=0.0, clip_grad_norm=1.0)
  c.schedule.update(name="cosine", warmup_epochs=0.0)
  c.eval = mlc.ConfigDict(dict(name="forecast", boundary_tolerance=3))
  c.train.update(log_every_steps=50, eval_every_epochs=0,
                 checkpoint_every_steps=500, tensorboard=False)
  c.study.metrics = ("finetuned/mse", "finetuned/mae",
                     "finetuned/num_patches")
  c.study.metric_labels = {"finetuned/mse": "test MSE",
                           "finetuned/mae": "test MAE",
                           "finetuned/num_patches": "mean patches",
                           "finetuned/boundary_precision": "boundary P",
                           "finetuned/boundary_recall": "boundary R",
                           "finetuned/boundary_f1": "boundary F1",
                           "pretrained/entropy_ce": "entropy-model CE"}
  c.study.formats = {k: ".4f" for k in c.study.metric_labels}
  c.study.formats["finetuned/num_patches"] = ".2f"
  return c


def get_config(variant: str = "cpu") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = _base()
  if variant == "cpu":
    c.data.name = "regime_ar"
    c.data.kwargs = mlc.ConfigDict(dict(
        context_len=48, horizon=24, channels=3, num_regimes=3,
        mean_duration=48.0, epoch_size=4096, eval_examples=256))
    # The official vocab-64 entropy model (entropy_model_checkpoints_vocab64).
    c.model.kwargs = mlc.ConfigDict(dict(
        horizon=24, vocab_size=64, d_model=16, heads=2, global_layers=2,
        d_ff=64, dropout=0.1, head_dropout=0.0, max_patch_length=16,
        max_patches=24, patching="entropy", rule="global", patch_size=8))
    c.schedule.learning_rate = 3e-3
    c.train.update(batch_size=16, steps=250, eval_batch_size=128)
    # The entropy model: official AdamW(lr 1e-3, wd 0.05, b2 0.95), clip 1.
    c.pretrain.overrides = _PRETRAIN_SHARED + (
        "train.steps=200", "schedule.learning_rate=0.002",
        "optim.weight_decay=0.05", "optim.b2=0.95")
    c.study.metrics += ("finetuned/boundary_precision",
                        "finetuned/boundary_recall", "finetuned/boundary_f1",
                        "pretrained/entropy_ce")
    c.study.seeds = (0, 1, 2)
    c.study.arms = {
        "EntroPE global": "",
        "EntroPE relative": "model.kwargs.rule=relative",
        # 48 / 7 -> 7 patches: EntroPE global's mean count (6.9-7.0).
        "fixed patches (size 7)": "model.kwargs.patching=static,"
                                  "model.kwargs.patch_size=7",
        "fixed patches (size 8)": "model.kwargs.patching=static,"
                                  "model.kwargs.patch_size=8",
    }
    c.study.artifacts = "experiments.entrope.forecast_eval:artifacts"
    c.smoke.enabled = True
    return c
  dataset, channels = _CSV[variant]
  c.data.name = "ltsf_csv"
  c.data.kwargs = mlc.ConfigDict(dict(dataset=dataset, context_len=96,
                                      horizon=96))
  # Official scripts/ETTh1.sh: d_model 8, 2 heads, 3 global layers, d_ff
  # 256, max patch 32, threshold 0.95, dropout 0.1, lr 0.01, batch 128,
  # 10 epochs; vocabulary 256; windows 96 (run_longExp.py defaults).
  c.model.kwargs = mlc.ConfigDict(dict(
      horizon=96, d_model=8, heads=2, global_layers=3, d_ff=256,
      dropout=0.1, head_dropout=0.1, max_patch_length=32, max_patches=32,
      patching="entropy", rule="global", patch_size=8))
  c.method.entrope.quantile = 0.95
  c.schedule.learning_rate = 0.01
  c.train.update(batch_size=128, num_epochs=10, steps=-1,
                 eval_batch_size=max(8, 4096 // channels // 8 * 8))
  c.data.kwargs.epoch_size = 8192
  c.pretrain.overrides = _PRETRAIN_SHARED + (
      "train.num_epochs=50", "schedule.learning_rate=0.001",
      "optim.weight_decay=0.05", "optim.b2=0.95")
  c.study.seeds = (0,)
  c.study.arms = {"EntroPE": "",
                  "fixed patches (size 8)": "model.kwargs.patching=static"}
  return c
