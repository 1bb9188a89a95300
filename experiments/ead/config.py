"""Entropy Adaptive Decoding: a small and a large LM, switched by entropy.

Paper: Entropy Adaptive Decoding: Dynamic Model Switching for Efficient
Inference, Toby Simonds 2025 (arXiv, Feb 2025); no official code found.
Decoder: `algos/lm/ead.py`; the sweep: the `ead_sweep` probe
(`experiments/ead/sweep.py`).

Protocol `probe`: two byte-level transformers are trained through the
harness (`next_token`, loss on completions, 1500 steps of 64 rows of 64
tokens) on the generated addition scratchpads (`arithmetic/add`: 30000
problems, three formats each), shared by the arms of a seed:

* `small`: 2 layers, d 64, 4 heads (the `tiny` preset, ~0.1M
  non-embedding parameters);
* `large`: 4 layers, d 128, 4 heads (~0.8M; the lm_rl studies' base
  model),

then greedy-decode the first `prompts_per_task` held-out addition problems
(the test problems of `arithmetic/standard`) with each model alone, with
EAD at each threshold (nats) and with random switching at EAD's measured
large-model share.

Variants: `arithmetic` (default, CPU). `llama_math` documents the paper's
setting (Llama-3.2-3B -> Llama-3.2-11B on MATH, third_party_configs/ead):
not runnable here (the pair is not in the zoo's checkpoints; the probe
trains its models), so it is only the recipe.

Examples:
  python -m common run ead --seeds=0,1
"""

import ml_collections as mlc

from common.protocols import probe
from experiments import lm_common
from experiments.ead import sweep  # pylint: disable=unused-import

VARIANTS = ("arithmetic",)

# The `tiny` preset (2 layers, d 64): a 1-layer d 64 model solved 1.3% of
# the problems (seed 0), too weak to be the paper's capable small model.
_SMALL = ("model.kwargs={'size': 'tiny', 'max_len': 128, 'dropout': 0.0}",)
# The lm_rl studies' base model (lm_rl.ARITHMETIC_MODEL), trained the same
# way (1500 steps of 64 rows of 64 tokens), here through the probe.
_LARGE = ("model.kwargs={'size': 'tiny', 'max_len': 128, 'num_layers': 4, "
          "'d_model': 128, 'num_heads': 4, 'd_ff': 512, 'dropout': 0.0}",)


def get_config(variant: str = "arithmetic"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  base = lm_common.lm_config("ead", dataset="arithmetic/add", text_key="",
                             size="tiny", seq_len=64, batch_size=64,
                             steps=1500, learning_rate=3e-3,
                             warmup_epochs=0.05)
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
      split="test", prompts_per_task=150, max_new_tokens=64, window=4,
      monitor="small",
      # competent models are confident: the large model's mean token
      # entropy on its samples is ~0.16 nats
      thresholds=(0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 1.6, 2.0),
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
  c.study.seeds = (0, 1)
  c.study.artifacts = "experiments.ead.tables:artifacts"
  c.smoke.update(enabled=True, steps=2)
  return c
