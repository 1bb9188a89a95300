"""Entropy Adaptive Decoding: a small and a large LM, switched by entropy.

Paper: Entropy Adaptive Decoding: Dynamic Model Switching for Efficient
Inference, Toby Simonds 2025 (arXiv, Feb 2025); no official code found.
Decoder: `algos/lm/ead.py`; the sweep: the `ead_sweep` probe
(`experiments/ead/sweep.py`).

Protocol `probe`: two byte-level transformers are trained through the
harness (`next_token`, loss on completions) on the generated arithmetic
scratchpads (`arithmetic/standard`: add, mul, mod, three formats each),
shared by the arms of a seed:

* `small`: 1 layer, d 64, 2 heads (~0.05M non-embedding parameters);
* `large`: 3 layers, d 128, 4 heads (~0.6M),

then greedy-decode the first `prompts_per_task` test problems of each task
with each model alone, with EAD at each threshold (nats) and with random
switching at EAD's measured large-model share.

Variants: `arithmetic` (default, CPU). `llama_math` documents the paper's
setting (Llama-3.2-3B -> Llama-3.2-11B on MATH, third_party_configs/ead):
not runnable here (the pair is not in the zoo's checkpoints; the probe
trains its models), so it is only the recipe.

Examples:
  python -m common run ead --seeds=0
"""

import ml_collections as mlc

from common.protocols import probe
from experiments import lm_common
from experiments.ead import sweep  # pylint: disable=unused-import

VARIANTS = ("arithmetic",)

_SMALL = ("model.kwargs={'size': 'small', 'max_len': 128, 'num_layers': 1, "
          "'d_model': 64, 'num_heads': 2, 'num_kv_heads': 2, 'd_ff': 128, "
          "'dropout': 0.0}", "train.steps=300")
_LARGE = ("model.kwargs={'size': 'small', 'max_len': 128, 'num_layers': 3, "
          "'d_model': 128, 'num_heads': 4, 'num_kv_heads': 4, 'd_ff': 384, "
          "'dropout': 0.0}",)


def get_config(variant: str = "arithmetic"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  base = lm_common.lm_config("ead", dataset="arithmetic", text_key="",
                             size="small", seq_len=128, batch_size=16,
                             steps=600, learning_rate=3e-3,
                             warmup_epochs=0.02)
  c = probe.base_config()
  c.experiment = "ead"
  for section in ("data", "model", "method", "optim", "schedule", "train",
                  "eval"):
    setattr(c, section, base[section])
  c.data.eval_split = "test"
  c.train.update(eval_batch_size=64, log_every_steps=50)
  c.probe.name = "ead_sweep"
  c.probe.models = mlc.ConfigDict({"small": _SMALL, "large": _LARGE})
  c.ead = mlc.ConfigDict(dict(
      split="test", prompts_per_task=60, max_new_tokens=96, window=4,
      monitor="small",
      thresholds=(1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
      random_repeats=1, max_share=0.5))
  c.study.arms = {"EAD": ""}
  c.study.metrics = ("small/acc", "large/acc", "best/threshold",
                     "best/share", "best/acc", "best/random_acc",
                     "best/kept", "mean_gap")
  c.study.metric_labels = {
      "small/acc": "small alone", "large/acc": "large alone",
      "best/threshold": "threshold (nats)",
      "best/share": "large-model share", "best/acc": "EAD accuracy",
      "best/random_acc": "random switching, same share",
      "best/kept": "fraction of large accuracy kept",
      "mean_gap": "EAD - random (mean over thresholds)"}
  c.study.formats = {k: ".3f" for k in c.study.metrics}
  c.study.paper = {"EAD": {"best/kept": 0.967, "best/share": 0.43}}
  c.study.paper_source = ("arXiv abstract: MATH, Llama 3B -> 11B keeps "
                          "96.7% of the 11B accuracy with the 11B on 43% "
                          "of tokens (Qwen 0.5B -> 14B: 92.9% at 25%)")
  c.study.seeds = (0,)
  c.study.artifacts = "experiments.ead.tables:artifacts"
  c.smoke.update(enabled=True, steps=2)
  return c
