"""SORSA vs PiSSA vs LoRA: adapting a pretrained LM to a new task.

Paper: SORSA: Singular Values and Orthonormal Regularized Singular Vectors
Adaptation of Large Language Models, Yang Cao 2024, arXiv:2409.00055;
code Gunale0926/SORSA. Method `sorsa` (`algos/peft/sorsa.py`) on the
params transform `common/models/peft.py`.

The `finetune` protocol pretrains the transformer with `next_token`
(`pretrain.overrides`: a method section of its own, so every arm of a seed
shares one pretraining run), then this config's sections adapt it with
the method `sorsa`: only the adapters train.

Variants (`--config=experiments/sorsa/config.py:<variant>`):
  stdlib_to_arithmetic  (default) CPU: a 2-layer byte-level transformer
            (d 128) pretrained on the CPython-stdlib docstrings, adapted to
            the generated arithmetic scratchpads (loss on completions) with
            rank-4 adapters on every attention and MLP projection (the
            official target modules), equal steps and learning rate.
            Arms: LoRA, PiSSA, SORSA (gamma / lr as the official script),
            SORSA without the regulariser.
  llama2_metamath  full scale: Llama-2-7B from a Hugging Face checkpoint
            directory (`common/convert/hf_checkpoint.py`,
            `pretrain.dir` = a finished run holding it, see
            third_party_configs/sorsa), MetaMathQA (`data.name`, prepared
            in `data_dir`), rank 128, lr 3e-5, gamma 4e-4, 1 epoch of the
            first 100k examples, batch 128 (2 x 64 accumulation).

Examples:
  python -m common run sorsa --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import finetune
from experiments import lm_common

VARIANTS = ("stdlib_to_arithmetic", "llama2_metamath")

# Every attention and MLP projection (official run.py: q/k/v/o, gate, up,
# down); the embedding (tied unembedding) stays frozen.
TARGETS = (r"layer_\d+/(attn|mlp)/\w+/kernel",)
# Official scripts/train_sorsa.sh: lr 3e-5, gamma 4e-4 (ratio 13.3).
_OFFICIAL_RATIO = 4e-4 / 3e-5


def _arms(lr: float) -> dict[str, str]:
  gamma = round(lr * _OFFICIAL_RATIO, 8)
  return {"LoRA": "method.sorsa.adapter=lora,method.sorsa.gamma=0.0",
          "PiSSA": "method.sorsa.adapter=pissa,method.sorsa.gamma=0.0",
          "SORSA": f"method.sorsa.adapter=sorsa,method.sorsa.gamma={gamma}",
          "SORSA (no regulariser)":
              "method.sorsa.adapter=sorsa,method.sorsa.gamma=0.0"}


def get_config(variant: str = "stdlib_to_arithmetic"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "stdlib_to_arithmetic":
    lr = 2e-3
    c = lm_common.lm_config("sorsa", dataset="arithmetic", text_key="",
                            size="small", seq_len=128, batch_size=16,
                            steps=-1, learning_rate=lr, warmup_epochs=0.0)
    c.data.eval_split = "test"
    c.model.kwargs.update(num_layers=2, d_model=128, num_heads=4,
                          num_kv_heads=4, d_ff=384, dropout=0.0)
    # Fine-tuning: 320 rows of 128 tokens (20 steps an epoch), 6 epochs.
    c.data.kwargs.max_train_rows = 320
    c.train.update(num_epochs=6, eval_every_epochs=2, log_every_steps=5,
                   eval_batch_size=64)
    rank = 4
    c.pretrain = finetune.base_config().pretrain
    c.pretrain.overrides = (
        "data.name=python_stdlib", "data.eval_split=validation",
        "data.kwargs={'tokenizer': 'byte', 'seq_len': 128, "
        "'text_key': 'docstrings'}",
        "method={'name': 'next_token', 'next_token': {'loss': 'naive'}}",
        "train.steps=300", "train.eval_every_epochs=0", "eval.name=lm",
        "schedule.learning_rate=0.003", "optim.weight_decay=0.1")
    c.study.seeds = (0, 1)
  else:
    # Official scripts/train_sorsa.sh + run.py: Llama-2-7B, MetaMathQA
    # (first 100k examples, 1 epoch), max length 512, batch 2 x 64
    # accumulation, lr 3e-5, gamma 4e-4, rank 128, bf16, AdamW wd 0, cosine
    # with 3% warmup, clip 1. The checkpoint is read through
    # common/convert/hf_checkpoint.py (`pretrain.hf_checkpoint`).
    lr = 3e-5
    hf_dir = "/checkpoints/Llama-2-7b-hf"
    c = lm_common.lm_config("sorsa", dataset="meta_math_qa", text_key="",
                            size="llama_1b", seq_len=512, batch_size=128,
                            steps=-1, learning_rate=lr, warmup_epochs=0.03)
    c.data.update(train_split="train[:100000]", eval_split="train[-1000:]")
    # The checkpoint's tokenizer.json: pass
    # --config.data.kwargs.tokenizer=/checkpoints/Llama-2-7b-hf at launch
    # ("byte" here only so that the config validates on a machine without
    # the checkpoint; the run then stops at the vocabulary mismatch).
    c.data.kwargs.update(tokenizer="byte", text_key="response",
                         prompt_key="query")
    c.model.dtype = "bfloat16"
    c.model.kwargs = dict(size="llama_1b", max_len=512, num_layers=32,
                          d_model=4096, num_heads=32, num_kv_heads=32,
                          d_ff=11008, tie_embeddings=False, norm_eps=1e-5,
                          rope_theta=10000.0, rope_scaling=())
    c.train.update(num_epochs=1, micro_batches=64, eval_every_epochs=0,
                   log_every_steps=1, param_sharding="fsdp",
                   eval_batch_size=16, checkpoint_every_steps=100)
    rank = 128
    c.pretrain = finetune.base_config().pretrain
    c.pretrain.hf_checkpoint = hf_dir
    c.study.seeds = (0,)
    c.smoke.enabled = False
  c.protocol = "finetune"
  c.method.name = "sorsa"
  c.method.sorsa = dict(adapter="sorsa", rank=rank, alpha=0.0,
                        targets=TARGETS, gamma=round(lr * _OFFICIAL_RATIO, 8),
                        lr=lr, loss="naive")
  # Official: AdamW, no weight decay, cosine with 3% warmup, clip 1.
  c.optim.update(weight_decay=0.0, b2=0.999)
  c.schedule.update(name="cosine", warmup_epochs=0.03 * c.train.num_epochs)
  c.eval.name = "peft_lm"
  c.study.arms = _arms(lr)
  c.study.metrics = ("finetuned/loss", "finetuned/ortho",
                     "finetuned/trainable_fraction", "pretrained/loss")
  c.study.metric_labels = {
      "finetuned/loss": "held-out loss after adapting (nats/token)",
      "finetuned/ortho": "orthonormality error",
      "finetuned/trainable_fraction": "trainable fraction",
      "pretrained/loss": "pretraining held-out loss"}
  c.study.formats = {"finetuned/loss": ".4f", "finetuned/ortho": ".2e",
                     "finetuned/trainable_fraction": ".4f",
                     "pretrained/loss": ".4f"}
  c.study.plots = ("loss", "ortho")
  c.study.artifacts = "experiments.sorsa.curves:artifacts"
  c.study.paper = {
      "LoRA": {"GSM8K": 42.30, "MATH": 5.50},
      "PiSSA": {"GSM8K": 53.07, "MATH": 7.44},
      "SORSA": {"GSM8K": 56.03, "MATH": 10.36}}
  c.study.paper_source = ("arXiv:2409.00055 abstract, Llama 2 7B on "
                          "MetaMathQA, accuracy %; not comparable to our "
                          "held-out loss")
  c.smoke.steps = 2
  return c
