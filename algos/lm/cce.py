"""Cut Cross-Entropy: the linear cross-entropy without the `[N, V]` logits.

Wijmans, Huval, Hertzberg, Koltun, Kraehenbuehl, "Cut Your Losses in
Large-Vocabulary Language Models" (ICLR 2025, arXiv:2411.09009); official
PyTorch/Triton code: https://github.com/apple/ml-cross-entropy.

`nll_i = logsumexp_j(<e_i, c_j>) - <e_i, c_{y_i}>` for embeddings `E [N, D]`
and a classifier `C [V, D]`. The forward pass walks `(vocabulary block,
token tile)` pairs and keeps a running (max, sum of exp) per token, so only
one `[block_n, block_v]` tile of logits exists at a time; the backward pass
recomputes each tile's logits from `E`, `C` and the saved log-sum-exp and
skips the two gradient matmuls of a tile whose every entry of
`softmax - onehot` is below `filter_eps` (the paper's gradient filtering,
Sec. 4.3; on by default, with the official `"auto"` threshold
`finfo(dtype).eps / 32`, i.e. 2^-12 in bfloat16). With filtering, the
vocabulary is visited in order of the average logit of the forward pass
(the paper's vocabulary sorting), which gathers the rarely-likely tokens into
whole blocks that can be skipped.

That is four `N x V x D` matmuls to the naive loss's three. `fused=True`
trades memory for the fourth: the forward pass holds one token tile's
logits over the whole vocabulary (`[block_n, V]` fp32), takes their exact
log-sum-exp and computes the gradients of `sum(nll)` right away; the
backward pass scales them by the cotangent (exact when it is one value on
the counted rows, as for a mean; otherwise it recomputes the tiles where it
differs). No vocabulary sorting there: the order must be known before the
first tile.

Tiles group tokens with a stride (`row = i * num_tiles + t` is row `i` of
tile `t`), so a batch sharded over its leading axis keeps every device busy
on its own rows in every tile.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax import lax

from algos.lm import losses

# Default tile sizes, tuned on CPU (benchmarks/cce_memory.py). The fused
# pass holds a `[block_n, V]` fp32 tile (128 MiB at V = 131072), so fewer
# tokens per tile.
BLOCK_N = 1024
FUSED_BLOCK_N = 256
BLOCK_V = 1024


@dataclasses.dataclass(frozen=True)
class _Plan:
  """The static layout of one call: sizes, tiles and options."""
  n: int            # tokens
  v: int            # vocabulary
  block_n: int      # rows per token tile
  num_tiles: int    # token tiles (n padded to block_n * num_tiles)
  block_v: int      # columns per vocabulary block
  num_blocks: int   # vocabulary blocks (v padded to block_v * num_blocks)
  softcap: float | None
  filter_eps: float | None
  sort_vocab: bool
  fused: bool       # gradients for a unit cotangent in the forward pass


def _plan(n, v, dtype, softcap, block_n, block_v, filter_eps, sort_vocab,
          fused=False):
  num_tiles = max(1, -(-n // block_n))
  # A multiple of 8 rows per tile, so that an 8-way sharded batch splits
  # evenly inside every tile.
  rows = -(-n // num_tiles)
  rows = -(-rows // 8) * 8
  block_v = min(block_v, v)
  if filter_eps == "auto":
    filter_eps = float(jnp.finfo(dtype).eps) / 32.0
  return _Plan(n, v, rows, num_tiles, block_v, -(-v // block_v),
               None if softcap is None else float(softcap),
               None if filter_eps is None else float(filter_eps),
               bool(sort_vocab) and filter_eps is not None and not fused,
               bool(fused))


def _capped(logits: jax.Array, softcap: float | None) -> jax.Array:
  return logits if softcap is None else softcap * jnp.tanh(logits / softcap)


def _to_tiles(x: jax.Array, plan: _Plan, fill) -> jax.Array:
  """`[n, ...]` -> `[block_n, num_tiles, ...]` (row i * num_tiles + t)."""
  pad = plan.block_n * plan.num_tiles - plan.n
  if pad:
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)
  return x.reshape(plan.block_n, plan.num_tiles, *x.shape[1:])


def _from_tiles(x: jax.Array, plan: _Plan) -> jax.Array:
  return x.reshape(plan.block_n * plan.num_tiles, *x.shape[2:])[:plan.n]


def _block(classifier, order, b, plan):
  """Vocabulary block `b`: its ids `[block_v]` (>= v for padding), their
  classifier rows `[block_v, D]` and a column mask."""
  ids = lax.dynamic_slice_in_dim(order, b * plan.block_v, plan.block_v)
  rows = jnp.take(classifier, jnp.minimum(ids, plan.v - 1), axis=0)
  return ids, rows, ids < plan.v


def _tile_logits(e_tile, c_block, columns, plan):
  """Soft-capped fp32 logits `[block_n, block_v]`, -inf on padding."""
  logits = jnp.dot(e_tile, c_block.T, preferred_element_type=jnp.float32)
  return jnp.where(columns[None, :], _capped(logits, plan.softcap), -jnp.inf)


def _orders(plan: _Plan, logit_sum: jax.Array | None):
  """Vocabulary order of the backward pass, padded to `block_v` blocks."""
  if logit_sum is None:
    order = jnp.arange(plan.v, dtype=jnp.int32)
  else:  # most likely tokens first; unlikely ones fill whole blocks
    order = jnp.argsort(-logit_sum).astype(jnp.int32)
  pad = plan.block_v * plan.num_blocks - plan.v
  return jnp.pad(order, (0, pad), constant_values=plan.v)


def _nll(features, classifier, targets, lse, plan):
  """`lse - capped target logit` `[n]` (0 for ignored targets)."""
  target_rows = jnp.take(classifier, jnp.clip(targets, 0, plan.v - 1), axis=0)
  target_logit = _capped(jnp.sum(
      features.astype(jnp.float32) * target_rows.astype(jnp.float32), -1),
      plan.softcap)
  ok = (targets >= 0) & (targets < plan.v)
  return jnp.where(ok, lse - target_logit, 0.0)


def _forward(features, classifier, targets, plan, with_logit_sum):
  """`(nll [n], lse [n], logit_sum [v] or None)`."""
  e = _to_tiles(features, plan, 0)
  y = _to_tiles(targets, plan, -1)
  valid = (y >= 0) & (y < plan.v)
  order = _orders(plan, None)

  def vocab_block(carry, b):
    ids, c_block, columns = _block(classifier, order, b, plan)

    def token_tile(carry, t):
      run_max, run_sum = carry
      logits = _tile_logits(e[:, t], c_block, columns, plan)
      new_max = jnp.maximum(run_max[:, t], jnp.max(logits, axis=1))
      new_sum = (run_sum[:, t] * jnp.exp(run_max[:, t] - new_max)
                 + jnp.sum(jnp.exp(logits - new_max[:, None]), axis=1))
      col_sum = None
      if with_logit_sum:
        col_sum = jnp.sum(jnp.where(valid[:, t, None] & columns[None, :],
                                    logits, 0.0), axis=0)
      return (run_max.at[:, t].set(new_max),
              run_sum.at[:, t].set(new_sum)), col_sum

    carry, col_sums = lax.scan(token_tile, carry, jnp.arange(plan.num_tiles))
    return carry, None if col_sums is None else jnp.sum(col_sums, axis=0)

  init = (jnp.full(y.shape, -jnp.inf, jnp.float32),
          jnp.zeros(y.shape, jnp.float32))
  (run_max, run_sum), block_sums = lax.scan(
      vocab_block, init, jnp.arange(plan.num_blocks))
  lse = _from_tiles(run_max + jnp.log(run_sum), plan)
  nll = _nll(features, classifier, targets, lse, plan)
  logit_sum = None
  if with_logit_sum:
    logit_sum = block_sums.reshape(-1)[:plan.v]
  return nll, lse, logit_sum


def _residual(logits, y_tile, lse_tile, ok_tile, ids, columns):
  """`softmax - onehot` `[block_n, block_v]` of a tile's capped logits (0
  on padding and ignored rows)."""
  probs = jnp.exp(logits - lse_tile[:, None])
  onehot = (y_tile[:, None] == ids[None, :]).astype(jnp.float32)
  keep = ok_tile[:, None] & columns[None, :]
  return jnp.where(keep, probs - onehot, 0.0)


def _tile_residual(e_tile, y_tile, lse_tile, ok_tile, c_block, ids, columns,
                   plan):
  """`softmax - onehot` of one tile `[block_n, block_v]` (0 on padding and
  ignored rows) and the tile's capped logits."""
  logits = _tile_logits(e_tile, c_block, columns, plan)
  return _residual(logits, y_tile, lse_tile, ok_tile, ids, columns), logits


def _d_logits(residual, g_tile, logits, columns, plan, dtype):
  """d loss / d (uncapped logits) of a tile for cotangents `g_tile
  [block_n]`, in the dtype of the gradient matmuls."""
  d_logits = residual * g_tile[:, None]
  if plan.softcap is not None:
    capped = jnp.where(columns[None, :], logits, 0.0) / plan.softcap
    d_logits = d_logits * (1.0 - capped * capped)
  return d_logits.astype(dtype)


def _needed(residual: jax.Array, plan: _Plan) -> jax.Array | None:
  """False when the whole tile is below the filtering threshold; None when
  filtering is off."""
  if plan.filter_eps is None:
    return None
  return jnp.any(jnp.abs(residual) >= plan.filter_eps)


def _backward(features, classifier, targets, lse, logit_sum, g, plan):
  """`(d features [n, D], d classifier [v, D])` for cotangent `g [n]`."""
  e = _to_tiles(features, plan, 0)
  y = _to_tiles(targets, plan, -1)
  ok = (y >= 0) & (y < plan.v)
  lse_t = _to_tiles(lse, plan, 0.0)
  g_t = _to_tiles(g.astype(jnp.float32), plan, 0.0)
  order = _orders(plan, logit_sum if plan.sort_vocab else None)
  dim = features.shape[-1]

  def vocab_block(carry, b):
    d_e, d_c = carry
    ids, c_block, columns = _block(classifier, order, b, plan)

    def token_tile(d_c_block, t):
      residual, logits = _tile_residual(e[:, t], y[:, t], lse_t[:, t],
                                        ok[:, t], c_block, ids, columns, plan)

      d_logits = _d_logits(residual, g_t[:, t], logits, columns, plan,
                           features.dtype)
      d_e_tile, d_c_tile = _filtered(
          _needed(residual, plan),
          lambda: _grad_block(d_logits, c_block, e[:, t]),
          ((plan.block_n, dim), (plan.block_v, dim)))
      return d_c_block + d_c_tile, d_e_tile

    d_c_block, d_e_tiles = lax.scan(
        token_tile, jnp.zeros((plan.block_v, dim), jnp.float32),
        jnp.arange(plan.num_tiles))
    # Rows of this block back to their vocabulary ids (padding dropped).
    d_c = d_c.at[ids].set(d_c_block.astype(d_c.dtype), mode="drop")
    return (d_e + jnp.moveaxis(d_e_tiles, 0, 1), d_c), None

  (d_e, d_c), _ = lax.scan(
      vocab_block, (jnp.zeros(e.shape, jnp.float32),
                    jnp.zeros(classifier.shape, classifier.dtype)),
      jnp.arange(plan.num_blocks))
  return _from_tiles(d_e, plan).astype(features.dtype), d_c


def _slice_block(classifier, b, plan):
  """Vocabulary block `b` in natural order, sliced without padding the
  classifier: the last block is shifted back to end at `v` and masks the
  ids its predecessor covers. `(ids, rows [block_v, D], columns, start)`."""
  start = jnp.minimum(b * plan.block_v, plan.v - plan.block_v)
  ids = start + jnp.arange(plan.block_v, dtype=jnp.int32)
  rows = lax.dynamic_slice_in_dim(classifier, start, plan.block_v)
  return ids, rows, ids >= b * plan.block_v, start


def _add_rows(d_c, rows, start):
  """`d_c[start:start + len(rows)] += rows` in place."""
  old = lax.dynamic_slice_in_dim(d_c, start, rows.shape[0])
  return lax.dynamic_update_slice_in_dim(d_c, old + rows, start, 0)


def _grad_block(d_logits, c_block, e_tile):
  """`(d_logits @ C_block [block_n, D], d_logits^T @ E_tile [block_v, D])`,
  fp32."""
  return (jnp.dot(d_logits, c_block, preferred_element_type=jnp.float32),
          jnp.dot(d_logits.T, e_tile, preferred_element_type=jnp.float32))


def _filtered(needed, compute, shapes):
  """`compute()` unless `needed` is False (then zeros of `shapes`)."""
  if needed is None:
    return compute()
  return lax.cond(needed, compute, lambda: tuple(
      jnp.zeros(shape, jnp.float32) for shape in shapes))


def _fused_forward(features, classifier, targets, plan):
  """Loss and unit-cotangent gradients in one pass over the logits.

  Each token tile's logits over the whole vocabulary (`[block_n, V]` fp32,
  the only large temporary) are computed once, their exact log-sum-exp
  taken, and `softmax - onehot` multiplied into both gradient matmuls at
  once: three `N x V x D` matmuls, as the naive loss, instead of the
  recomputing backward's four.

  Returns:
    `(nll [n], lse [n], d_e [n, D] f32, d_c [v, D] f32)`: the gradients of
    `sum(nll)`.
  """
  e = _to_tiles(features, plan, 0)
  y = _to_tiles(targets, plan, -1)
  ok = (y >= 0) & (y < plan.v)
  dim = features.shape[-1]
  blocks = jnp.arange(plan.num_blocks)

  def token_tile(d_c, t):
    e_t, y_t, ok_t = e[:, t], y[:, t], ok[:, t]
    logits = lax.map(lambda b: _tile_logits(
        e_t, _slice_block(classifier, b, plan)[1],
        _slice_block(classifier, b, plan)[2], plan), blocks)
    row_max = jnp.max(logits, axis=(0, 2))
    lse_t = row_max + jnp.log(jnp.sum(
        jnp.exp(logits - row_max[None, :, None]), axis=(0, 2)))

    def vocab_block(carry, xs):
      d_e_t, d_c = carry
      b, logits_b = xs
      ids, c_block, columns, start = _slice_block(classifier, b, plan)
      residual = _residual(logits_b, y_t, lse_t, ok_t, ids, columns)
      d_logits = _d_logits(residual, jnp.ones_like(lse_t), logits_b, columns,
                           plan, features.dtype)
      d_e_blk, d_c_blk = _filtered(
          _needed(residual, plan), lambda: _grad_block(d_logits, c_block, e_t),
          ((plan.block_n, dim), (plan.block_v, dim)))
      return (d_e_t + d_e_blk, _add_rows(d_c, d_c_blk, start)), None

    (d_e_t, d_c), _ = lax.scan(
        vocab_block, (jnp.zeros((plan.block_n, dim), jnp.float32), d_c),
        (blocks, logits))
    return d_c, (lse_t, d_e_t)

  d_c, (lse, d_e) = lax.scan(
      token_tile, jnp.zeros((plan.v, dim), jnp.float32),
      jnp.arange(plan.num_tiles))
  lse = _from_tiles(lse.T, plan)
  return (_nll(features, classifier, targets, lse, plan), lse,
          _from_tiles(jnp.moveaxis(d_e, 0, 1), plan), d_c)


def _fused_backward(features, classifier, targets, lse, d_e_unit, d_c_unit,
                    g, plan):
  """Gradients for cotangent `g [n]` from the unit-cotangent ones.

  `dE = g * dE_unit` exactly. `dC = sum_i g_i r_i E_i^T` does not factor
  through `dC_unit = sum_i r_i E_i^T` unless `g` is one value `s` on the
  counted rows (a mean over them): `dC = s dC_unit + sum_i (g_i - s) r_i
  E_i^T`, the correction recomputing the logits of only the token tiles
  with a row where `g_i != s`.
  """
  g = g.astype(jnp.float32)
  counted = (targets >= 0) & (targets < plan.v)
  scale = g[jnp.argmax(counted)]   # g of the first counted row
  d_e = (g[:, None] * d_e_unit).astype(features.dtype)
  e = _to_tiles(features, plan, 0)
  y = _to_tiles(targets, plan, -1)
  ok = (y >= 0) & (y < plan.v)
  lse_t = _to_tiles(lse, plan, 0.0)
  delta = _to_tiles(jnp.where(counted, g - scale, 0.0), plan, 0.0)
  dim = features.shape[-1]

  def token_tile(d_c, t):
    tile_differs = jnp.any(delta[:, t] != 0.0)

    def vocab_block(d_c, b):
      ids, c_block, columns, start = _slice_block(classifier, b, plan)

      def correction():
        residual, logits = _tile_residual(e[:, t], y[:, t], lse_t[:, t],
                                          ok[:, t], c_block, ids, columns,
                                          plan)
        d_logits = _d_logits(residual, delta[:, t], logits, columns, plan,
                             features.dtype)
        needed = _needed(residual, plan)
        keep = tile_differs if needed is None else tile_differs & needed
        return _filtered(keep, lambda: (jnp.dot(
            d_logits.T, e[:, t], preferred_element_type=jnp.float32),),
                         ((plan.block_v, dim),))

      (d_c_blk,) = _filtered(tile_differs, correction, ((plan.block_v, dim),))
      return _add_rows(d_c, d_c_blk, start), None

    return lax.scan(vocab_block, d_c, jnp.arange(plan.num_blocks))[0], None

  d_c, _ = lax.scan(token_tile, scale * d_c_unit, jnp.arange(plan.num_tiles))
  return d_e, d_c.astype(classifier.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _cce(features, classifier, targets, plan):
  return _forward(features, classifier, targets, plan, False)[0]


def _cce_fwd(features, classifier, targets, plan):
  if plan.fused:
    nll, lse, d_e, d_c = _fused_forward(features, classifier, targets, plan)
    return nll, (features, classifier, targets, lse, (d_e, d_c))
  nll, lse, logit_sum = _forward(features, classifier, targets, plan,
                                 plan.sort_vocab)
  return nll, (features, classifier, targets, lse, logit_sum)


def _cce_bwd(plan, residuals, g):
  features, classifier, targets, lse, extra = residuals
  if plan.fused:
    d_e, d_c = _fused_backward(features, classifier, targets, lse, *extra,
                               g, plan)
  else:
    d_e, d_c = _backward(features, classifier, targets, lse, extra, g, plan)
  return d_e, d_c, None


_cce.defvjp(_cce_fwd, _cce_bwd)


def cce(features: jax.Array, classifier: jax.Array, targets: jax.Array, *,
        softcap: float | None = None, block_n: int | None = None,
        block_v: int = BLOCK_V, filter_eps: float | str | None = "auto",
        sort_vocab: bool = True, fused: bool = False) -> jax.Array:
  """Per-token negative log-likelihood of `targets` under
  `softmax(softcap(features @ classifier.T))`, without the `[N, V]` logits.

  Args:
    features: `[N, D]` embeddings (the model's final normed hidden states).
    classifier: `[V, D]` unembedding.
    targets: `[N]` int token ids; ids outside `[0, V)` (e.g. -100) are
      ignored: NLL 0 and no gradient.
    softcap: logits become `softcap * tanh(logits / softcap)` (Gemma 2).
    block_n: tokens per tile (default `BLOCK_N`, `FUSED_BLOCK_N` fused).
    block_v: vocabulary entries per tile.
    filter_eps: the backward pass skips a tile whose every `|softmax -
      onehot|` is below this; `"auto"` = `finfo(features.dtype).eps / 32`
      as in the official code; None computes every tile.
    sort_vocab: with filtering, visit the vocabulary in order of its
      average logit (the paper's vocabulary sorting); not with `fused`.
    fused: compute the gradients in the forward pass from each token
      tile's logits over the whole vocabulary (a `[block_n, V]` fp32
      temporary) instead of recomputing them in the backward pass: three
      `N x V x D` matmuls instead of four, exact for any cotangent (one
      that is not a single value on the counted rows, as a mean over them,
      makes the backward recompute the tiles where it differs). Filtering
      applies, in natural vocabulary order.

  Returns:
    `[N]` float32 per-token NLL.
  """
  if features.ndim != 2 or classifier.ndim != 2 or targets.ndim != 1:
    raise ValueError(
        f"cce: expected features [N, D], classifier [V, D], targets [N]; got "
        f"{features.shape}, {classifier.shape}, {targets.shape}")
  if (features.shape[1] != classifier.shape[1]
      or features.shape[0] != targets.shape[0]):
    raise ValueError(
        f"cce: shapes do not match: features {features.shape}, classifier "
        f"{classifier.shape}, targets {targets.shape}")
  if block_n is None:
    block_n = FUSED_BLOCK_N if fused else BLOCK_N
  if block_n < 1 or block_v < 1:
    raise ValueError(f"cce: block sizes must be >= 1, got block_n={block_n}, "
                     f"block_v={block_v}")
  if not (filter_eps is None or filter_eps == "auto"
          or (isinstance(filter_eps, (int, float)) and filter_eps >= 0)):
    raise ValueError(f"cce: filter_eps must be 'auto', None or a float >= 0, "
                     f"got {filter_eps!r}")
  plan = _plan(features.shape[0], classifier.shape[0], features.dtype,
               softcap, block_n, block_v, filter_eps, sort_vocab, fused)
  return _cce(features, classifier, targets.astype(jnp.int32), plan)


@losses.register_loss("cce")
def cce_loss(features: jax.Array, classifier: jax.Array, targets: jax.Array,
             *, softcap: float | None = None) -> jax.Array:
  """`cce` with its defaults (filtering and sorting on), as an LM loss."""
  return cce(features, classifier, targets, softcap=softcap)


def needed_tile_fraction(features, classifier, targets, *, softcap=None,
                         block_n=BLOCK_N, block_v=BLOCK_V, filter_eps="auto",
                         sort_vocab=True) -> jax.Array:
  """Fraction of `(token tile, vocabulary block)` pairs whose gradient
  matmuls the backward pass of `cce` runs (1 - the filtered fraction)."""
  plan = _plan(features.shape[0], classifier.shape[0], features.dtype,
               softcap, block_n, block_v, filter_eps, sort_vocab)
  targets = targets.astype(jnp.int32)
  _, lse, logit_sum = _forward(features, classifier, targets, plan,
                               plan.sort_vocab)
  e, y = _to_tiles(features, plan, 0), _to_tiles(targets, plan, -1)
  ok, lse_t = (y >= 0) & (y < plan.v), _to_tiles(lse, plan, 0.0)
  order = _orders(plan, logit_sum)

  def count(b):
    ids, c_block, columns = _block(classifier, order, b, plan)
    return jnp.sum(jnp.stack([_needed(_tile_residual(
        e[:, t], y[:, t], lse_t[:, t], ok[:, t], c_block, ids, columns,
        plan)[0], plan) for t in range(plan.num_tiles)]))

  needed = lax.map(count, jnp.arange(plan.num_blocks))
  return jnp.sum(needed) / (plan.num_blocks * plan.num_tiles)
