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
A run's metrics `pretrained/<m>` are the base model's, `<m>` the
hyperfitted model's.

Variants (`--config=experiments/hyperfitting/config.py:<variant>`):
  stdlib    (default) CPU, minutes: a 4-layer byte-level transformer
            pretrained on the CPython-stdlib corpus, hyperfitted on 16
            rows of 128 bytes.
  wikipedia full scale: a GPT-2-small-shaped transformer pretrained on
            TFDS `wikipedia/20230601.en` (from `data_dir`), hyperfitted
            with the paper's recipe (2000 sequences of 256 tokens, 20
            epochs, Adam 1e-6, batch 8; third_party_configs/hyperfitting).

Examples:
  python -m common run hyperfitting --seeds=0,1,2
  python -m common run hyperfitting \
      --config=experiments/hyperfitting/config.py:wikipedia \
      --config.data.data_dir=/data/tfds --seeds=0
"""

import ml_collections as mlc

from common.protocols import finetune

VARIANTS = ("stdlib", "wikipedia")

_ROWS = ("pretrained/greedy", "pretrained/top_p", "greedy", "top_p")


def _tables(ngram: int) -> tuple:
  return (
      dict(title="generation from held-out prompts (pretrained/ = the base "
                 "model; no prefix = hyperfitted)",
           rows=_ROWS, arm="hyperfit", metric="{row}/{col}",
           row_label="model / decoding",
           cols=(("TTR (last 96)", "ttr"), (f"rep-{ngram}", f"rep{ngram}"),
                 ("sampling entropy (nats)", "entropy")), fmt=".3f"),
      dict(title="held-out predictions and losses",
           rows=("pretrained/", ""), arm="hyperfit", metric="{row}{col}",
           row_label="model (pretrained/ = base)",
           cols=(("entropy (nats)", "heldout/entropy"),
                 ("top-1 prob", "heldout/top1_prob"),
                 ("held-out loss", "loss"),
                 ("train-set loss", "train/loss")), fmt=".3f"))


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = finetune.base_config()
  c.experiment = "hyperfitting"
  c.data.update(source="text", input_key="tokens", preprocess="none",
                train_split="train", eval_split="validation")
  c.model.name = "transformer"
  c.method.name = "next_token"
  c.method.next_token = mlc.ConfigDict(dict(loss="naive"))
  c.eval.name = "hyperfitting"
  c.eval.generation = mlc.ConfigDict(dict(
      num_prompts=32, prompt_len=32, new_tokens=224, ttr_window=96, ngram=4,
      top_p=0.9, heldout_batches=8, train_rows=64, seed=0))
  c.optim.update(name="adamw", weight_decay=0.0, b1=0.9, b2=0.999,
                 clip_grad_norm=1.0)
  c.schedule.update(name="constant", warmup_epochs=0.0)
  c.study.arms = dict(hyperfit="")
  c.study.metrics = ("pretrained/greedy/ttr", "pretrained/top_p/ttr",
                     "greedy/ttr", "pretrained/heldout/entropy",
                     "heldout/entropy", "pretrained/loss", "loss",
                     "train/loss")
  c.study.metric_labels = {
      "pretrained/greedy/ttr": "base greedy TTR",
      "pretrained/top_p/ttr": "base top-p TTR",
      "greedy/ttr": "hyperfitted greedy TTR",
      "pretrained/heldout/entropy": "base entropy",
      "heldout/entropy": "hyperfitted entropy",
      "pretrained/loss": "base held-out loss",
      "loss": "hyperfitted held-out loss",
      "train/loss": "hyperfitted train loss"}
  c.study.tables = _tables(4)

  if variant == "stdlib":
    c.data.name = "python_stdlib"
    c.data.kwargs = mlc.ConfigDict(dict(tokenizer="byte", seq_len=128,
                                        max_train_rows=16))
    # ~0.4M parameters: pretraining takes minutes on 2 CPU cores.
    c.model.kwargs = mlc.ConfigDict(dict(
        size="small", num_layers=4, d_model=128, num_heads=4, num_kv_heads=4,
        d_ff=384, max_len=256, dropout=0.0))
    # Hyperfitting: 16 rows, batch 8 (2 steps an epoch), 100 epochs.
    c.schedule.learning_rate = 1e-3
    c.train.update(batch_size=8, num_epochs=100, eval_batch_size=64,
                   log_every_steps=20, eval_every_epochs=0,
                   checkpoint_every_steps=1000)
    c.pretrain.overrides = (
        "data.kwargs.max_train_rows=0", "train.batch_size=32",
        "train.steps=1500", "schedule.name=cosine",
        "schedule.learning_rate=0.003", "schedule.warmup_epochs=0.0",
        "optim.weight_decay=0.01")
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = True
  else:
    c.data.name = "wikipedia/20230601.en"
    c.data.kwargs = mlc.ConfigDict(dict(
        tokenizer="byte", seq_len=256, packing="rows", docs_per_row=1,
        max_train_rows=2000))
    c.model.kwargs = mlc.ConfigDict(dict(size="gpt2_124m", dropout=0.0,
                                         max_len=1024))
    # The paper's recipe: 2000 x 256, 20 epochs, Adam 1e-6, batch 8.
    c.schedule.learning_rate = 1e-6
    c.train.update(batch_size=8, num_epochs=20, eval_batch_size=64,
                   log_every_steps=50, eval_every_epochs=0,
                   checkpoint_every_steps=1000)
    c.pretrain.overrides = (
        "data.kwargs.max_train_rows=0", "model.kwargs.dropout=0.1",
        "train.batch_size=256", "train.steps=100000",
        "schedule.name=cosine", "schedule.learning_rate=0.0006",
        "schedule.warmup_epochs=0.01", "optim.weight_decay=0.1")
    c.study.seeds = (0,)
  return c
