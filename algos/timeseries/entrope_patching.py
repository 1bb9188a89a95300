"""EntroPE's tokenizer and entropy-based dynamic patcher, as pure jnp.

Paper: EntroPE: Entropy-Guided Dynamic Patch Encoder for Time Series
Forecasting, Abeywickrama et al. 2025, arXiv:2509.26157. Official code:
github.com/Sachithx/EntroPE (`layers/Tokenizer.py`: MeanScaleUniformBins;
`layers/Patcher.py`: `find_entropy_patch_start_ids`,
`patch_start_mask_from_entropy_with_monotonicity`, `split_large_numbers`).

Boundaries (official, `include_next_token=True`): with `H_t` the entropy of
the entropy model's prediction of token t+1,

* rule "global": the rule fires at t when `H_t` exceeds the series' own
  `q`-quantile of `H` (the `patching_threshold` percentile);
* rule "relative" (official `monotonicity=1`): fires at t >= 1 when
  `H_t - H_{t-1}` exceeds the `q`-quantile of those differences, and at
  t = 0 (the official mask sets position 0);

a patch starts at 0 and at t + 1 for every firing t < L - 1 (a firing at
L - 1 would start a patch after the context, which holds no token), then
patches longer than `max_patch_length` are cut into pieces of that length
from their start (official `split_large_numbers`). All shapes are static:
boundaries are a bool mask `[N, L]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

N_SPECIAL = 4          # official: pad, bos, eos, boe ids below the bins
RULES = ("global", "relative")


def quantize(series: jax.Array, vocab_size: int, low: float, high: float
             ) -> jax.Array:
  """Official MeanScaleUniformBins: `series [N, L]` -> token ids [N, L].

  Each series is divided by its mean absolute value (1 if that is 0) and
  bucketed into `vocab_size - 5` uniform bins centred on
  `linspace(low, high)`; ids start at `N_SPECIAL + 1`.
  """
  scale = jnp.abs(series).mean(-1, keepdims=True)
  scale = jnp.where(scale > 0, scale, 1.0)
  centers = jnp.linspace(low, high, vocab_size - N_SPECIAL - 1)
  edges = jnp.concatenate([jnp.array([-1e20]), (centers[1:] + centers[:-1])
                           / 2, jnp.array([1e20])])
  ids = jnp.searchsorted(edges, series / scale, side="right") + N_SPECIAL
  return jnp.clip(ids, 0, vocab_size - 1).astype(jnp.int32)


def token_entropy(logits: jax.Array) -> jax.Array:
  """Entropy (nats) of softmax(logits) over the last axis: [..., V] -> [...]."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
  return -(jnp.exp(logp) * logp).sum(-1)


def rule_fires(entropy: jax.Array, quantile: jax.Array, rule: str
               ) -> jax.Array:
  """Where the boundary rule fires, bool [N, L] (see the module doc)."""
  if rule == "global":
    thr = jnp.quantile(entropy, quantile, axis=-1, keepdims=True)
    return entropy > thr
  if rule == "relative":
    diff = entropy[:, 1:] - entropy[:, :-1]
    thr = jnp.quantile(diff, quantile, axis=-1, keepdims=True)
    first = jnp.ones_like(entropy[:, :1], bool)
    return jnp.concatenate([first, diff > thr], 1)
  raise ValueError(f"boundary rule {rule!r}; allowed: {RULES}")


def split_long_patches(starts: jax.Array, max_len: int) -> jax.Array:
  """Adds starts every `max_len` steps inside longer patches, [N, L] bool."""
  t = jnp.arange(starts.shape[-1])
  last = jax.lax.cummax(jnp.where(starts, t, 0), axis=starts.ndim - 1)
  return (t - last) % max_len == 0


def entropy_starts(entropy: jax.Array, quantile: jax.Array, rule: str,
                   max_patch_length: int) -> jax.Array:
  """Patch starts [N, L] bool of entropies `[N, L]`."""
  fires = rule_fires(entropy, quantile, rule)
  first = jnp.ones_like(fires[:, :1])
  starts = jnp.concatenate([first, fires[:, :-1]], 1)
  return split_long_patches(starts, max_patch_length)


def static_starts(n: int, length: int, patch_size: int) -> jax.Array:
  """Fixed-size patches (official `static` mode), [n, L] bool."""
  return jnp.broadcast_to(jnp.arange(length) % patch_size == 0, (n, length))


def patch_membership(starts: jax.Array, max_patches: int):
  """Patch ids `[N, L]`, membership `[N, P, L]` bool and the number of
  patches that did not fit `[N]` (merged into the last slot)."""
  pid = jnp.cumsum(starts, -1) - 1
  overflow = jnp.maximum(pid[:, -1] + 1 - max_patches, 0)
  pid = jnp.minimum(pid, max_patches - 1)
  member = pid[:, None, :] == jnp.arange(max_patches)[None, :, None]
  return pid, member, overflow


def _dilate(mask: jax.Array, tol: int) -> jax.Array:
  """True within `tol` steps of a True entry, along the last axis."""
  out = mask
  for s in range(1, tol + 1):
    pad = jnp.zeros_like(mask[..., :s])
    out = out | jnp.concatenate([mask[..., s:], pad], -1)
    out = out | jnp.concatenate([pad, mask[..., :-s]], -1)
  return out


def boundary_counts(starts: jax.Array, switches: jax.Array, tol: int
                    ) -> dict[str, jax.Array]:
  """Counts for precision/recall of boundaries against true switch points.

  Args:
    starts: predicted patch starts `[..., L]` (position 0 ignored: every
      series starts a patch there).
    switches: true switch points `[..., L]` (position 0 ignored).
    tol: a boundary within `tol` steps of a switch is a hit.

  Returns:
    `predicted`, `hits` (predicted boundaries near a switch), `switches`,
    `found` (switches with a boundary within `tol`), summed.
  """
  starts, switches = starts[..., 1:], switches[..., 1:]
  return {"predicted": starts.sum(), "switches": switches.sum(),
          "hits": (starts & _dilate(switches, tol)).sum(),
          "found": (switches & _dilate(starts, tol)).sum()}
