"""Rethinking conventional wisdom: three probes on a small byte-level LM.

Paper: Rethinking Conventional Wisdom in Machine Learning: From
Generalization to Scaling, Lechao Xiao 2024, arXiv:2409.15156 (position
paper, no official code). Tools: `algos/analysis/rethinking_wisdom.py` and
the shared fits `algos/analysis/scaling_laws.py`.

Every arm trains a 2-layer byte transformer with the next-token loss on
the CPython-stdlib docstrings for the same budget of 131,072 tokens.

* p1 (regularisation and repetition): d32, weight decay 0 vs 0.8, on 4,096
  unique tokens repeated 32 times (`multi`) vs 131,072 unique tokens seen
  once (`onepass`);
* p2 (small batch + large LR vs large batch, equal tokens, one pass): the
  d32 arms of p3;
* p3 (scaling-law crossover): sizes d16 / d32 / d64, recipe `b8` (batch 8,
  learning rate 6e-3, 256 steps) vs recipe `b64` (batch 64, 3e-3, 32
  steps), one pass; the fitted laws' crossover with a bootstrap CI.

Variants: `stdlib` (CPU, the study). Example:
  python -m common run rethinking_wisdom --seeds=0,1
"""

from __future__ import annotations

from algos.analysis import rethinking_wisdom as rw
from algos.lm import token_crisis
from experiments import lm_common

VARIANTS = ("stdlib",)

SEQ = 64
TOKENS = 128 * 16 * SEQ          # 131,072 tokens per arm
MULTI_UNIQUE = 4_096             # p1 multi-epoch: 32 epochs
SIZES = {"d16": 16, "d32": 32, "d64": 64}
RECIPES = {"b8": (8, 6e-3), "b64": (64, 3e-3)}


def _size(d: int) -> list[str]:
  return [f"model.kwargs.d_model={d}", f"model.kwargs.d_ff={3 * d}"]


def _rows(unique: int) -> str:
  return f"data.kwargs.max_train_rows={token_crisis.rows_for_unique_tokens(unique, SEQ)}"


def arms() -> dict[str, str]:
  out = {}
  for regime, unique in (("multi", MULTI_UNIQUE), ("onepass", TOKENS)):
    for label, wd in (("wd0", 0.0), ("wd08", 0.8)):
      out[f"p1/{regime}/{label}"] = ",".join(
          _size(32) + [_rows(unique), f"optim.weight_decay={wd}"]
          + rw.equal_token_overrides(TOKENS, 16, SEQ))
  for size, d in SIZES.items():
    for recipe, (batch, lr) in RECIPES.items():
      out[f"p3/{size}/{recipe}"] = ",".join(
          _size(d) + [_rows(TOKENS)]
          + rw.equal_token_overrides(TOKENS, batch, SEQ, lr))
  return out


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = lm_common.lm_config("rethinking_wisdom", dataset="python_stdlib",
                          text_key="docstrings", seq_len=SEQ, batch_size=16,
                          steps=TOKENS // (16 * SEQ), learning_rate=3e-3,
                          warmup_epochs=0.0)
  c.model.kwargs.update(num_layers=2, d_model=32, num_heads=4,
                        num_kv_heads=4, d_ff=96)
  c.data.kwargs.max_train_rows = token_crisis.rows_for_unique_tokens(
      TOKENS, SEQ)
  c.train.update(eval_batch_size=64, log_every_steps=64,
                 checkpoint_every_steps=10_000)
  c.study.arms = arms()
  c.study.metrics = ("loss",)
  c.study.metric_labels = {"loss": "held-out loss (nats/token)"}
  c.study.formats = {"loss": ".4f"}
  c.study.seeds = (0, 1)
  c.study.artifacts = "experiments.rethinking_wisdom.analysis:probes_artifact"
  # Test budget: this path (transformer + next_token + the lm evaluator on
  # stdlib docstrings) is the one token_crisis's and lm_common's smoke runs
  # already exercise; the probes' tools are unit-tested.
  c.smoke.enabled = False
  return c
