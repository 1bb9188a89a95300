"""Hyperfitting: fine-tune a pretrained LM to near-zero loss on a tiny set.

Paper: The Hyperfitting Phenomenon: Sharpening and Stabilizing LLMs for
Open-Ended Text Generation, Carlsson et al., ICLR 2025, arXiv:2412.04318;
code FreddeFrallan/Hyperfitting.

The `finetune` protocol pretrains the LM (`pretrain.overrides`: the whole
training split), then fine-tunes it from those parameters with this
config's sections (the first `max_train_rows` rows only, many epochs, no
dropout). The evaluator `hyperfitting` (`algos/lm/hyperfitting.py`) scores
both: greedy and top-p generation from held-out prompts (TTR, repeated
4-grams, sampling entropy), held-out entropy, top-1 probability and loss.
A run's metrics `pretrained/<m>` are the base model's, `finetuned/<m>`
the hyperfitted model's.

Variants (`--config=experiments/hyperfitting/config.py:<variant>`):
  stdlib    (default) CPU, minutes: a 2-layer byte-level transformer
            pretrained on the CPython-stdlib docstrings, hyperfitted on 16
            rows of 128 bytes.
  lm1b      full scale: the GPT-2-small-shaped transformer of
            `experiments/lm_common.py:lm1b_gpt2`, pretrained on TFDS `lm1b`
            (from `data_dir`), hyperfitted with the paper's recipe (2000
            sequences of 256 tokens, 20 epochs, Adam 1e-6, batch 8;
            third_party_configs/hyperfitting).

Examples:
  python -m common run hyperfitting --seeds=0,1,2
  python -m common run hyperfitting \
      --config=experiments/hyperfitting/config.py:lm1b \
      --config.data.data_dir=/data/tfds --seeds=0
"""

import ml_collections as mlc

from common.protocols import finetune
from experiments import lm_common

VARIANTS = ("stdlib", "lm1b")

_ROWS = ("pretrained/greedy", "pretrained/top_p", "finetuned/greedy",
         "finetuned/top_p")


def _tables(ngram: int) -> tuple:
  return (
      dict(title="generation from held-out prompts (pretrained = the base "
                 "model, finetuned = hyperfitted)",
           rows=_ROWS, arm="hyperfit", metric="{row}/{col}",
           row_label="model / decoding",
           cols=(("TTR (last 96)", "ttr"), (f"rep-{ngram}", f"rep{ngram}"),
                 ("sampling entropy (nats)", "entropy")), fmt=".3f"),
      dict(title="held-out predictions and losses",
           rows=("pretrained", "finetuned"), arm="hyperfit",
           metric="{row}/{col}", row_label="model",
           cols=(("entropy (nats)", "heldout/entropy"),
                 ("top-1 prob", "heldout/top1_prob"),
                 ("held-out loss", "loss"),
                 ("train-set loss", "train/loss")), fmt=".3f"))


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "stdlib":
    c = lm_common.lm_config("hyperfitting", dataset="python_stdlib",
                            text_key="docstrings", size="small",
                            seq_len=128, batch_size=8, steps=-1,
                            learning_rate=1e-3, warmup_epochs=0.0)
  else:
    c = lm_common.get_config("lm1b_gpt2")
    c.experiment = "hyperfitting"
  # The finetune protocol: the sections below are the fine-tuning run;
  # `pretrain.overrides` turn them into the pretraining run.
  c.protocol = "finetune"
  c.pretrain = finetune.base_config().pretrain
  c.eval.name = "hyperfitting"
  c.eval.generation = mlc.ConfigDict(dict(
      num_prompts=32, prompt_len=32, new_tokens=224, ttr_window=96, ngram=4,
      top_p=0.9, heldout_batches=8, train_rows=64, seed=0))
  # Hyperfitting: plain Adam(W) without weight decay at a constant rate.
  c.optim.weight_decay = 0.0
  c.schedule.update(name="constant", warmup_epochs=0.0)
  c.study.arms = dict(hyperfit="")
  c.study.metrics = ("pretrained/greedy/ttr", "pretrained/top_p/ttr",
                     "finetuned/greedy/ttr", "pretrained/heldout/entropy",
                     "finetuned/heldout/entropy", "pretrained/loss",
                     "finetuned/loss", "finetuned/train/loss")
  c.study.metric_labels = {
      "pretrained/greedy/ttr": "base greedy TTR",
      "pretrained/top_p/ttr": "base top-p TTR",
      "finetuned/greedy/ttr": "hyperfitted greedy TTR",
      "pretrained/heldout/entropy": "base entropy",
      "finetuned/heldout/entropy": "hyperfitted entropy",
      "pretrained/loss": "base held-out loss",
      "finetuned/loss": "hyperfitted held-out loss",
      "finetuned/train/loss": "hyperfitted train loss"}
  c.study.tables = _tables(4)

  if variant == "stdlib":
    # The stdlib docstrings (English prose): pretraining sees ~1 epoch of
    # their ~1.6M byte tokens; hyperfitting the first 16 rows of 128.
    c.data.kwargs.max_train_rows = 16
    c.model.kwargs.update(num_layers=2, d_model=128, num_heads=4,
                          num_kv_heads=4, d_ff=384, max_len=256,
                          dropout=0.0)
    # Hyperfitting: 16 rows, batch 8 (2 steps an epoch), 100 epochs.
    c.train.update(steps=-1, num_epochs=100, eval_batch_size=64,
                   log_every_steps=20, eval_every_epochs=0)
    c.pretrain.overrides = (
        "data.kwargs.max_train_rows=0", "train.batch_size=16",
        "train.steps=800", "schedule.name=cosine",
        "schedule.learning_rate=0.003", "optim.weight_decay=0.1")
    c.study.seeds = (0, 1)
    c.smoke.enabled = True
  else:
    # The paper's recipe on a GPT-2-small-shaped model pretrained on lm1b:
    # 2000 x 256 tokens, 20 epochs, Adam 1e-6, batch 8, no dropout.
    c.data.kwargs.update(seq_len=256, max_train_rows=2000)
    c.model.kwargs.update(dropout=0.0)
    c.schedule.learning_rate = 1e-6
    c.train.update(batch_size=8, steps=-1, num_epochs=20,
                   eval_batch_size=64, log_every_steps=50,
                   eval_every_epochs=0)
    c.pretrain.overrides = (
        "data.kwargs.max_train_rows=0", "data.kwargs.seq_len=1024",
        "model.kwargs.dropout=0.1", "train.batch_size=512",
        "train.steps=100000", "schedule.name=cosine",
        "schedule.learning_rate=0.0006", "optim.weight_decay=0.1")
    c.study.seeds = (0,)
  return c
