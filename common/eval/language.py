"""The `lm` evaluator: held-out next-token loss of a language model.

Sums the method's per-token negative log-likelihoods (`Method.predict`
returns `token_nll [B, T]`, as `algos/lm/next_token` does) over every
counted target of the eval split (`loss_mask`, and `mask` for the padding
rows of the last batch), so the result is the exact split mean whatever
the batch size or device count:

* `loss`: nats per token; `perplexity` = exp(loss);
* `bits_per_token` = loss / ln 2;
* `bits_per_byte` = summed nats / ln 2 / UTF-8 bytes of the targets (when
  the batches carry `target_bytes`, as packed text rows do);
* `tokens`: the number of targets counted.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common.core import sharding as sharding_lib
from common.eval import evaluators


@jax.jit
def _sums(nll: jax.Array, batch: dict[str, jax.Array]) -> jax.Array:
  """`[nats, tokens, bytes]` of one batch (reduced on device)."""
  mask = batch["loss_mask"].astype(jnp.float32)
  if "mask" in batch:
    mask = mask * batch["mask"].astype(jnp.float32)[:, None]
  nbytes = (jnp.sum(batch["target_bytes"] * mask) if "target_bytes" in batch
            else jnp.float32(0))
  return jnp.stack([jnp.sum(nll * mask), jnp.sum(mask), nbytes])


@evaluators.register_evaluator("lm")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Held-out loss per token, perplexity, bits per token and per byte."""
  total = np.zeros(3, np.float64)
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("token_nll",))
    keys = ("loss_mask", "mask", "target_bytes")
    total += sharding_lib.gather_to_host(_sums(
        out["token_nll"], {k: batch[k] for k in keys if k in batch}))
  nats, tokens, nbytes = total
  loss = nats / max(tokens, 1.0)
  result = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_token": loss / math.log(2.0), "tokens": tokens}
  if nbytes > 0:
    result["bits_per_byte"] = nats / math.log(2.0) / nbytes
  return result
