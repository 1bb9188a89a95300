"""Hyperfitting: the generation-and-prediction evaluator of a (hyperfitted) LM.

The Hyperfitting Phenomenon: Sharpening and Stabilizing LLMs for Open-Ended
Text Generation. Carlsson, Liu, Ward, Kurfali, Nivre. ICLR 2025.
arXiv:2412.04318. Official code (PyTorch / transformers):
https://github.com/FreddeFrallan/Hyperfitting

Hyperfitting is a training regime, not a loss: fine-tune a pretrained LM
with the plain next-token loss (`next_token`) to near-zero training loss on
a tiny set of sequences (the paper: 2000 sequences of 256 tokens, 20
epochs, Adam at 1e-6, batch 8). The pretrain -> fine-tune chain is the
`finetune` protocol (`common/protocols/finetune.py`); the tiny set is a data
option of the text source. What is paper-specific is what it measures,
registered here as the evaluator `"hyperfitting"`:

* open-ended generation from held-out prompts (`prompt_len` tokens of the
  eval split), greedy and nucleus (top-p) sampling, `new_tokens` tokens:
  the type-token ratio of the last `ttr_window` generated tokens (the
  official `_generation_validation`: `gen_seq[context_len:][-96:]`), the
  repeated n-gram rate of all generated tokens (Welleck et al.'s rep-n),
  and the mean entropy of the sampling distributions met while
  generating: `greedy/ttr`, `greedy/rep<n>`, `greedy/entropy`, `top_p/...`;
* the predictive distribution on held-out text (teacher forcing, every
  target the batch's `loss_mask` counts): mean entropy (the official
  `_validate_model_perplexity`'s `val_entropy`, there averaged per batch)
  and mean top-1 probability: `heldout/entropy`, `heldout/top1_prob`;
* the held-out loss of the `"lm"` evaluator (loss per token, perplexity,
  bits), merged unchanged;
* `train/loss`: the loss per token on the whole training split when it is
  the tiny hyperfitting set (at most `train_rows` rows): "near zero".

Settings: `config.eval.generation` (see `GENERATION_DEFAULTS`).
Differences from the official code: TTR is on our tokenizer's tokens (bytes
for the CPU study), the prompts are chunks of packed held-out rows that lie
inside one document, and top-p runs on the same prompts with a fixed key.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common.core import sharding as sharding_lib
from common.eval import evaluators
from common.eval import lm_metrics
from common.models import decoding

GENERATION_DEFAULTS = dict(
    num_prompts=32,      # held-out prompts (official: 32 generation samples)
    prompt_len=32,       # official gen_context_len
    new_tokens=224,      # official: up to seq_len 256 in total
    ttr_window=96,       # official gen_ttr_window_size
    ngram=4,             # repeated n-gram rate of the generations
    top_p=0.9,           # the nucleus-sampling baseline
    heldout_batches=8,   # eval batches for the entropy (0: all)
    train_rows=64,       # `train/loss` when the train split has <= this many
    seed=0)


def generation_config(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.eval.generation` over `GENERATION_DEFAULTS` (unknown keys are
  an error naming the allowed ones)."""
  given = (config.eval.generation.to_dict()
           if "generation" in config.eval else {})
  unknown = sorted(set(given) - set(GENERATION_DEFAULTS))
  if unknown:
    raise ValueError(f"config.eval.generation has {unknown}; allowed: "
                     f"{sorted(GENERATION_DEFAULTS)}")
  return {**GENERATION_DEFAULTS, **given}


def held_out_prompts(batches: Iterable[dict[str, Any]], num: int,
                     length: int) -> np.ndarray:
  """`[num, length]` int32 prompts: the first `length` tokens of held-out
  rows whose first `length` tokens lie in one document (`segment_ids`)."""
  found = []
  for batch in batches:
    tokens = np.asarray(sharding_lib.gather_to_host(batch["tokens"]))
    seg = np.asarray(sharding_lib.gather_to_host(batch["segment_ids"]))
    one_doc = np.all(seg[:, :length] == seg[:, :1], axis=1) & (seg[:, 0] > 0)
    found.extend(tokens[one_doc, :length])
    if len(found) >= num:
      break
  if len(found) < num:
    raise ValueError(
        f"the eval split has only {len(found)} rows whose first "
        f"{length} tokens lie in one document; lower "
        f"config.eval.generation.num_prompts ({num}) or prompt_len")
  return np.stack(found[:num]).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("prompt_len", "ttr_window",
                                             "ngram"))
def generation_metrics(tokens: jax.Array, lengths: jax.Array,
                       entropies: jax.Array, *, prompt_len: int,
                       ttr_window: int, ngram: int) -> dict[str, jax.Array]:
  """Means over rows of the repetition metrics of generated text.

  Args:
    tokens: `[B, P + N]` prompt and generation.
    lengths: `[B]` valid tokens of each row (prompt included; shorter than
      P + N when the row stopped at EOS).
    entropies: `[B, N]` entropy of each sampling distribution.
    prompt_len: P.
    ttr_window: the TTR counts the last `ttr_window` generated tokens.
    ngram: n of the repeated n-gram rate.
  """
  gen = tokens[:, prompt_len:]
  n_gen = jnp.clip(lengths - prompt_len, 0, gen.shape[1])
  pos = jnp.arange(gen.shape[1])[None]
  mask = pos < n_gen[:, None]
  window = mask & (pos >= n_gen[:, None] - ttr_window)
  return {
      "ttr": jnp.mean(lm_metrics.type_token_ratio(gen, window)),
      f"rep{ngram}": jnp.mean(lm_metrics.repeated_ngram_rate(gen, mask,
                                                             ngram)),
      "entropy": jnp.mean(lm_metrics.masked_row_mean(entropies, mask)),
  }


@functools.partial(jax.jit, static_argnums=0)
def _prediction_sums(model: Any, params: Any, batch: dict[str, jax.Array]
                     ) -> jax.Array:
  """`[4]`: summed entropy, top-1 probability and NLL of the targets, and
  the count, over the targets `loss_mask` counts (one eval forward)."""
  out = model.apply({"params": params}, batch["tokens"], train=False,
                    segment_ids=batch["segment_ids"],
                    positions=batch["positions"])
  logits = out["logits"]
  mask = batch["loss_mask"].astype(jnp.float32)
  if "mask" in batch:   # padding rows of a last, partial batch
    mask = mask * batch["mask"].astype(jnp.float32)[:, None]
  return jnp.stack([
      jnp.sum(lm_metrics.token_entropy(logits) * mask),
      jnp.sum(lm_metrics.top_token_probability(logits) * mask),
      -jnp.sum(lm_metrics.token_log_likelihood(logits, batch["targets"])
               * mask),
      jnp.sum(mask)])


_KEYS = ("tokens", "targets", "segment_ids", "positions", "loss_mask",
         "mask")


def _sums(setup: Any, params: Any, batches: Iterable[dict[str, Any]],
          max_batches: int = 0) -> np.ndarray:
  sums = np.zeros(4)
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    batch = {k: batch[k] for k in _KEYS if k in batch}
    sums += np.asarray(jax.device_get(_prediction_sums(
        setup.model, params, batch)), np.float64)
  return sums


def heldout_prediction_metrics(setup: Any, state: Any,
                               max_batches: int) -> dict[str, float]:
  """Mean entropy and top-1 probability of the model's next-token
  distributions on held-out text, over the targets `loss_mask` counts
  (the first `max_batches` eval batches; 0: all)."""
  sums = _sums(setup, state.params, setup.eval_batches(), max_batches)
  count = max(sums[3], 1.0)
  return {"heldout/entropy": sums[0] / count,
          "heldout/top1_prob": sums[1] / count}


def train_set_loss(setup: Any, state: Any, max_rows: int
                   ) -> dict[str, float]:
  """`{"train/loss"}`: mean NLL per counted target over every row of a
  training split of at most `max_rows` rows (`{}` for a larger one)."""
  source = setup.train_source
  if source is None or len(source) > max_rows:
    return {}
  batch = source.get(np.arange(len(source)))
  sums = _sums(setup, state.params, [jax.tree.map(jnp.asarray, batch)])
  return {"train/loss": sums[2] / max(sums[3], 1.0)}


@evaluators.register_evaluator("hyperfitting")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Generation repetition (greedy, top-p), held-out entropy and loss."""
  g = generation_config(setup.config)
  prompts = held_out_prompts(setup.eval_batches(), g["num_prompts"],
                             g["prompt_len"])
  lengths = np.full((len(prompts),), g["prompt_len"], np.int32)
  params = jax.device_get(state.params)
  rng = jax.random.PRNGKey(g["seed"])
  metrics = {}
  for name, kwargs in (("greedy", dict(greedy=True)),
                       ("top_p", dict(top_p=g["top_p"]))):
    out = decoding.generate(setup.model, params, jnp.asarray(prompts),
                            jnp.asarray(lengths), rng,
                            max_new_tokens=g["new_tokens"], **kwargs)
    values = generation_metrics(
        out["tokens"], out["lengths"], out["entropies"],
        prompt_len=g["prompt_len"], ttr_window=g["ttr_window"],
        ngram=g["ngram"])
    metrics.update({f"{name}/{k}": float(v) for k, v in values.items()})
  metrics.update(heldout_prediction_metrics(setup, state,
                                            g["heldout_batches"]))
  metrics.update(train_set_loss(setup, state, g["train_rows"]))
  metrics.update(evaluators.get_evaluator("lm")(setup, state))
  return metrics
