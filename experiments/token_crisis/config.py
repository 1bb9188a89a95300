"""Token crisis: repeated vs unique pre-training tokens at an equal budget.

Paper: To Repeat or Not To Repeat: Insights from Scaling LLM under
Token-Crisis, Xue et al., NeurIPS 2023, arXiv:2305.13230 (no official code).

Every arm trains a decoder-only LM with the next-token loss for the same
token budget (`train.steps` x batch x seq_len). `unique` arms draw the
budget from as many distinct training tokens (one epoch); `repeated` arms
from the first budget/`_EPOCHS` tokens only (`_EPOCHS` epochs), the data
option `algos/lm/token_crisis.py:rows_for_unique_tokens`. Two model sizes,
dropout 0 and 0.1. The multi-epoch degradation is the held-out loss of a
repeated arm minus its unique twin, paired by seed
(`study.artifacts` writes it to `degradation.md`).

Variants (`--config=experiments/token_crisis/config.py:<variant>`):
  stdlib  (default) CPU: byte-level LMs of ~0.1M and ~0.5M parameters on
          the CPython-stdlib corpus, 0.5M-token budget, 16 epochs repeated.
  c4      full scale: decoder-only LMs of T5-Base and T5-Large width on
          TFDS `c4/en` (from `data_dir`), a 2^35-token budget, repeated
          arms on 2^31 unique tokens (16 epochs); our choice of budget, see
          third_party_configs/token_crisis for the paper's settings.

Examples:
  python -m common run token_crisis --seeds=0,1
  python -m common run token_crisis --config=experiments/token_crisis/config.py:c4 \
      --config.data.data_dir=/data/tfds --seeds=0
"""

from algos.lm import token_crisis
from experiments import lm_common

VARIANTS = ("stdlib", "c4")

_EPOCHS = 16


def _arms(models: dict[str, list[str]], total: int, batch: int,
          seq_len: int) -> dict[str, str]:
  data = {
      "unique": token_crisis.repetition_overrides(total, total, batch,
                                                  seq_len),
      "repeated": token_crisis.repetition_overrides(total // _EPOCHS, total,
                                                    batch, seq_len)}
  return token_crisis.arm_grid(models, (0.0, 0.1), data)


def type_of(override: str):
  """The value of a "model.kwargs.<key>=<int>" override."""
  return int(override.split("=")[1])


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "stdlib":
    seq_len, batch, total = 64, 16, 16 * 64 * 512   # 524,288 tokens
    # The stdlib docstrings (English prose, ~1.6M byte tokens in train):
    # the unique arm's budget is one epoch of its first 524,288 tokens.
    c = lm_common.lm_config("token_crisis", dataset="python_stdlib",
                            text_key="docstrings", size="tiny",
                            seq_len=seq_len, batch_size=batch,
                            steps=total // (batch * seq_len),
                            learning_rate=3e-3, warmup_epochs=0.0)
    models = {
        "d64": ["model.kwargs.num_layers=2", "model.kwargs.d_model=64",
                "model.kwargs.num_heads=4", "model.kwargs.num_kv_heads=4",
                "model.kwargs.d_ff=192"],
        "d128": ["model.kwargs.num_layers=2", "model.kwargs.d_model=128",
                 "model.kwargs.num_heads=4", "model.kwargs.num_kv_heads=4",
                 "model.kwargs.d_ff=384"]}
    c.train.update(eval_batch_size=64, log_every_steps=64)
    c.study.seeds = (0, 1)
  else:
    seq_len, batch, total = 512, 256, 2**35
    c = lm_common.get_config("c4_gpt2")
    c.experiment = "token_crisis"
    c.data.kwargs.update(seq_len=seq_len)
    c.model.kwargs.update(max_len=seq_len)
    c.train.update(batch_size=batch, steps=total // (batch * seq_len))
    c.schedule.update(learning_rate=1e-3, warmup_epochs=0.0)
    models = {
        "base_220m": ["model.kwargs.num_layers=12",
                      "model.kwargs.d_model=768"],
        "large_770m": ["model.kwargs.num_layers=24",
                       "model.kwargs.d_model=1024",
                       "model.kwargs.num_heads=16",
                       "model.kwargs.num_kv_heads=16",
                       "model.kwargs.d_ff=4096"]}
    c.study.seeds = (0,)
  c.data.kwargs.max_train_rows = 0
  # Every key an arm overrides exists in the base config (the first model).
  c.model.kwargs.update(dropout=0.0, **{
      o.split("=")[0].split(".")[-1]: type_of(o) for o in
      next(iter(models.values()))})
  c.study.arms = _arms(models, total, batch, seq_len)
  c.study.metrics = ("loss",)
  c.study.metric_labels = {"loss": "held-out loss (nats/token)"}
  c.study.formats = {"loss": ".4f"}
  c.study.artifacts = "algos.lm.token_crisis:degradation_artifact"
  c.study.tables = (dict(
      title="held-out loss (nats/token) at an equal token budget",
      rows=tuple(f"{m}/{token_crisis.dropout_label(p)}" for m in models
                 for p in (0.0, 0.1)),
      arm="{row}/{col}", metric="loss", row_label="model / dropout (%)",
      cols=(("unique (1 epoch)", "unique"),
            (f"repeated ({_EPOCHS} epochs)", "repeated")), fmt=".4f"),)
  return c
