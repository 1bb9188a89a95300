"""The language-model recipe shared by the LM experiments (not a paper).

`lm_config(...)` is the supervised protocol set up for next-token training
of the registered `transformer` on packed text rows (`data.source =
"text"`, `common.data.text`), evaluated with the `lm` evaluator (held-out
loss per token, perplexity, bits per token and byte). Experiments
(cce, hyperfitting, token_crisis, ...) start from it and change what
their paper varies. Loadable as a config too:

    python -m common train --config=experiments/lm_common.py:stdlib_tiny \\
        --workdir=/tmp/lm

Variants: `stdlib_tiny` (~0.1M parameters, 300 steps of 32 x 128 bytes of
docstrings: held-out 3.95 bits per byte, seed 0; 4.7 min on 2 CPU cores
at load average ~15),
`stdlib_small` (~1.8M, CPU studies), `arithmetic_small` (supervised
fine-tuning on the arithmetic scratchpads, loss on completions only) and
the full-scale `lm1b_gpt2` / `c4_gpt2` (GPT-2 124M shape, bf16 compute
with float32 master weights, parameters sharded over the data axis;
`lm1b` / `c4/en` must be prepared as ArrayRecord in `data_dir`).
"""

from __future__ import annotations

from common.protocols import supervised

VARIANTS = ("stdlib_tiny", "stdlib_small", "arithmetic_small", "lm1b_gpt2",
            "c4_gpt2")


def lm_config(experiment: str = "lm", *, dataset: str = "python_stdlib",
              text_key: str = "docstrings", size: str = "tiny",
              seq_len: int = 128, batch_size: int = 32, steps: int = 300,
              learning_rate: float = 3e-3, warmup_epochs: float = 0.05,
              loss: str = "naive"):
  """Next-token training of a `size` transformer on `dataset`.

  AdamW (b2 0.95, weight decay 0.1 on matrices only, global-norm clip 1),
  cosine schedule after a linear warmup (in epochs of the packed train
  split: stdlib docstrings at T=128 are ~12.7k rows, 397 steps of 32),
  byte tokenizer; eval on `validation`.
  """
  c = supervised.base_config()
  c.experiment = experiment
  c.data.update(name=dataset, source="text", input_key="tokens",
                preprocess="none", train_split="train",
                eval_split="validation")
  c.data.kwargs = dict(tokenizer="byte", seq_len=seq_len, text_key=text_key)
  c.model.update(name="transformer", dtype="float32")
  c.model.kwargs = dict(size=size, max_len=seq_len)
  c.method.name = "next_token"
  c.method.next_token = dict(loss=loss)
  c.optim.update(name="adamw", b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.1,
                 weight_decay_mask="kernels", clip_grad_norm=1.0)
  c.schedule.update(name="cosine", learning_rate=learning_rate,
                    warmup_epochs=warmup_epochs)
  c.train.update(batch_size=batch_size, steps=steps, eval_batch_size=64,
                 log_every_steps=25, eval_every_epochs=0,
                 checkpoint_every_steps=1000, tensorboard=False)
  c.eval.name = "lm"
  c.study.metrics = ("loss", "perplexity", "bits_per_byte")
  c.smoke.update(enabled=True, steps=3)
  return c


def get_config(variant: str = "stdlib_tiny"):
  if variant == "stdlib_tiny":
    return lm_config()
  if variant == "stdlib_small":
    return lm_config(size="small", seq_len=256, steps=2000,
                     learning_rate=1e-3, warmup_epochs=0.5)
  if variant == "arithmetic_small":
    c = lm_config(dataset="arithmetic", text_key="", size="small",
                  seq_len=128, steps=2000, learning_rate=1e-3,
                  warmup_epochs=0.2)
    c.data.eval_split = "test"
    return c
  if variant in ("lm1b_gpt2", "c4_gpt2"):
    c = lm_config(dataset="lm1b" if variant == "lm1b_gpt2" else "c4/en",
                  text_key="text", size="gpt2_124m", seq_len=1024,
                  batch_size=512, steps=100_000, learning_rate=6e-4,
                  warmup_epochs=0.0)
    c.data.eval_split = "test" if variant == "lm1b_gpt2" else "validation"
    c.data.kwargs.update(packing="rows",
                         docs_per_row=32 if variant == "lm1b_gpt2" else 2)
    c.model.dtype = "bfloat16"
    c.train.update(param_sharding="fsdp", eval_batch_size=512,
                   log_every_steps=100, checkpoint_every_steps=2000,
                   tensorboard=True)
    c.smoke.enabled = False
    return c
  raise ValueError(f"unknown variant {variant!r}; allowed {VARIANTS}")
