"""2-bit quantisation of a trained small LM: RTN vs ApiQ vs ULB-SAPR.

Paper: Enhancing Ultra-Low-Bit Quantization of Large Language Models
Through Saliency-Aware Partial Retraining, arXiv:2504.13932; code
TokuyuSou/ULB-SAPR (built on ApiQ).

The `finetune` protocol pretrains a byte-level transformer (Llama-style:
RMSNorm, SwiGLU) on the CPython-stdlib docstrings with `next_token`
(`pretrain.overrides`, shared by the arms of a seed), then calibrates its
2-bit group-wise quantisation with the method `ulb_sapr`
(`algos/lm/ulb_sapr.py`) on a calibration set of 128 training rows of
128 bytes (the official 128 samples), 20 epochs of batch 16 at the
official learning rates (LoRA 5e-4, clipping 10x), weight decay 0.1.
`pretrained/perplexity` is the full-precision model, `finetuned/...` the
quantised one (held-out `lm` evaluator on the validation split). Arms:

  RTN              min-max round-to-nearest (no clipping, no update);
  ApiQ             learnable clipping + rank-4 LoRA, block-wise output
                   MSE (+ the aug term), lambda_reg 0;
  ApiQ+saliency    the same + lambda_reg * sum s (Q(W) - W)^2 with the
                   Fisher saliency s (ULB-SAPR).

Variants (`--config=experiments/ulb_sapr/config.py:<variant>`):
  stdlib      (default) CPU: 4 layers, d=64, 2 bits, group size 32.
  llama2_7b   full scale: the official Llama-2-7B recipe (2 bits, group
              64, rank 64, 128 x 2048-token calibration rows of C4 /
              WikiText), third_party_configs/ulb_sapr; the checkpoint is
              loaded by the finetune protocol's `pretrain.dir`.

Examples:
  python -m common run ulb_sapr --seeds=0,1,2
"""

from common.protocols import finetune
from experiments import lm_common

VARIANTS = ("stdlib", "llama2_7b")

ARMS = {
    "RTN": "method.ulb_sapr.lwc=False,schedule.learning_rate=0.0,"
           "train.num_epochs=1",
    "ApiQ": "method.ulb_sapr.lambda_reg=0.0",
    "ApiQ+saliency": "method.ulb_sapr.lambda_reg=0.0001",
    "ApiQ+saliency (lambda 1e-3)": "method.ulb_sapr.lambda_reg=0.001",
    "ApiQ+saliency (lambda 1e-2)": "method.ulb_sapr.lambda_reg=0.01",
}


def _finetune(c):
  c.protocol = "finetune"
  c.pretrain = finetune.base_config().pretrain
  return c


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "stdlib":
    c = _finetune(lm_common.lm_config("ulb_sapr", size="tiny", seq_len=128,
                            batch_size=16, steps=-1, learning_rate=5e-4,
                            warmup_epochs=0.0))
    c.model.kwargs.update(num_layers=4, d_model=64, num_heads=4, d_ff=256)
    c.data.kwargs.max_train_rows = 128
    c.method.ulb_sapr = dict(bits=2, group_size=32, rank=4, lora_alpha=1.0,
                             lwc=True, aug_loss=True, lambda_reg=1e-4,
                             saliency_steps=8, lwc_lr_ratio=10.0)
    # 5 epochs of the 128 rows (the official 20: CPU time).
    c.train.update(steps=-1, num_epochs=5, eval_batch_size=64,
                   log_every_steps=10)
    c.pretrain.overrides = (
        "method={'name': 'next_token', 'next_token': {'loss': 'naive'}}",
        "data.kwargs.max_train_rows=0", "train.steps=300", "train.num_epochs=0", "schedule.name=cosine",
        "schedule.learning_rate=0.003", "schedule.warmup_epochs=0.02")
    c.study.seeds = (0, 1, 2)
    # Smoke off for the suite's time budget: a 2-step run still compiles
    # the step and evaluates the whole validation split (~25 s of CPU);
    # the unit tests run the method's step and the study runs the rest.
    c.smoke.enabled = False
  else:
    c = _finetune(lm_common.lm_config("ulb_sapr", dataset="c4/en", text_key="text",
                            size="llama_1b", seq_len=2048, batch_size=1,
                            steps=-1, learning_rate=5e-4, warmup_epochs=0.0))
    # Llama-2-7B's shape; the vocabulary is the tokenizer's (pass the
    # checkpoint's tokenizer.json: --config.data.kwargs.tokenizer=PATH).
    c.model.kwargs.update(num_layers=32, d_model=4096,
                          num_heads=32, num_kv_heads=32, d_ff=11008,
                          max_len=4096, rope_theta=10000.0, rope_scaling=())
    c.data.kwargs.update(max_train_rows=128, packing="rows", docs_per_row=2)
    c.method.ulb_sapr = dict(bits=2, group_size=64, rank=64,
                             lora_alpha=16.0, lwc=True, aug_loss=True,
                             lambda_reg=1e-3, saliency_steps=128,
                             lwc_lr_ratio=10.0)
    c.model.dtype = "bfloat16"
    c.train.update(steps=-1, num_epochs=20, eval_batch_size=8,
                   param_sharding="fsdp", log_every_steps=128)
    c.pretrain.overrides = (
        "method={'name': 'next_token', 'next_token': {'loss': 'naive'}}",
        "train.steps=0")
    c.study.seeds = (0,)
    c.smoke.enabled = False
  c.method.name = "ulb_sapr"
  c.schedule.name = "constant"
  c.study.arms = dict(ARMS)
  c.study.artifacts = "experiments.ulb_sapr.figures:perplexity_figure"
  c.study.metrics = ("pretrained/perplexity", "finetuned/perplexity",
                     "finetuned/loss", "pretrained/loss")
  c.study.metric_labels = {
      "pretrained/perplexity": "FP32 ppl", "finetuned/perplexity":
      "2-bit ppl", "finetuned/loss": "2-bit loss", "pretrained/loss":
      "FP32 loss"}
  c.study.formats = {"pretrained/perplexity": ".3f",
                     "finetuned/perplexity": ".3f", "finetuned/loss": ".4f",
                     "pretrained/loss": ".4f"}
  return c
