"""CCE vs the naive loss: the same LM training, a fraction of the memory.

Paper: Cut Your Losses in Large-Vocabulary Language Models, Wijmans et al.,
ICLR 2025, arXiv:2411.09009; code apple/ml-cross-entropy.

Two arms train the same transformer on the same batches from the same
initialisation through the shared train step; only `method.next_token.loss`
differs ("naive": the `[N, V]` logits; "cce": `algos/lm/cce.py`, gradient
filtering and vocabulary sorting on, as the paper's default). The paper's
claim is that the loss curves coincide; `study.artifacts` writes the
per-seed gap between the two train-loss curves to `curves.md`, next to the
gap a float-rounding-only change makes (the control arm: the naive loss
over 2 micro-batches). The memory
and time side is `benchmarks/cce_memory.py`.

Variants (`--config=experiments/cce/config.py:<variant>`):
  stdlib_tiny  (default) CPU, minutes: the ~0.1M-parameter byte-level
               transformer on the CPython-stdlib docstrings.
  lm1b_gpt2    full scale: GPT-2 124M shape on TFDS `lm1b` (from
               `data_dir`), bf16 compute, FSDP parameters (the shared LM
               recipe of `experiments/lm_common.py`).

Examples:
  python -m common run cce --seeds=0,1
  python -m common run cce --config=experiments/cce/config.py:lm1b_gpt2 \
      --config.data.data_dir=/data/tfds --seeds=0
"""

from experiments import lm_common

VARIANTS = ("stdlib_tiny", "lm1b_gpt2")


def get_config(variant: str = "stdlib_tiny"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = lm_common.get_config(variant)
  c.experiment = "cce"
  c.method.next_token = dict(loss="cce")
  if variant == "stdlib_tiny":
    # 200 steps of 32 x 128 tokens, the loss logged every 10 steps.
    c.train.update(steps=200, log_every_steps=10)
    c.study.seeds = (0, 1)
  else:
    c.study.seeds = (0,)
  # The control: the naive loss summed in another order (2 micro-batches,
  # the same global mean up to rounding), i.e. the drift that float
  # rounding alone causes in this training.
  c.study.arms = {"naive": "method.next_token.loss=naive",
                  "cce": "method.next_token.loss=cce",
                  "naive (2 micro-batches)":
                      "method.next_token.loss=naive,train.micro_batches=2"}
  c.study.metrics = ("loss", "perplexity", "bits_per_byte")
  c.study.metric_labels = dict(loss="held-out loss (nats/token)",
                               bits_per_byte="bits/byte")
  c.study.formats = dict(loss=".5f", perplexity=".4f", bits_per_byte=".5f")
  c.study.artifacts = "experiments.cce.curves:artifacts"
  return c
