"""Verifiable rewards for generated arithmetic, pass@k, and the evaluator.

* `parse_answers(tokens, mask)`: the JAX twin of
  `common.data.text.arithmetic.parse_answer` for byte-level tokens: the
  integer after the last `#` when everything after it is
  `\\s*-?\\d+\\s*` (ASCII; special tokens dropped like the tokenizer's
  `decode`). Returns the value, whether the text parses and whether the
  number overflows int32 (more than 9 significant digits: parsed, never
  equal to an answer). Non-ASCII digits / spaces (which Python's `\\d`,
  `\\s` also accept) count as unparsable here.
* `host_parse_answers`: the same through `jax.pure_callback` and any
  tokenizer's `decode` (subword checkpoints such as Qwen2.5).
* `pass_at_k(n, c, k)`: the unbiased estimator 1 - C(n-c, k) / C(n, k)
  (Chen et al. 2021), numpy and jnp.
* evaluator `verifiable`: greedy accuracy and sampled pass@1 / pass@k,
  token entropy, parse rate and distinct completions of a model on the
  prompts of `arithmetic_prompts` splits (`config.eval.verifiable`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common.data import tokenizers
from common.data.text import arithmetic
from common.data.text import rl_prompts
from common.eval import evaluators
from common.models import rollout as rollout_lib

_WHITESPACE = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32)  # ASCII \s
_HASH, _MINUS, _ZERO = ord(arithmetic.ANSWER_MARK), ord("-"), ord("0")
MAX_DIGITS = 9
_POW10 = np.asarray([10**i for i in range(MAX_DIGITS + 1)], np.int32)


def parse_answers(tokens: jax.Array, mask: jax.Array
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Parses the answer of each byte-token completion (jittable).

  Args:
    tokens: `[N, L]` int completion tokens (ids < 256 are bytes).
    mask: `[N, L]` which slots belong to the completion.

  Returns:
    `(value [N] int32, parsable [N] bool, overflow [N] bool)`.
  """
  n_slots = tokens.shape[1]
  keep = (mask > 0) & (tokens >= 0) & (tokens < 256)
  order = jnp.argsort(~keep, axis=1, stable=True)       # kept bytes first
  c = jnp.take_along_axis(tokens, order, axis=1)
  n = jnp.sum(keep, axis=1, keepdims=True)
  idx = jnp.arange(n_slots)[None]
  valid = idx < n
  h = jnp.max(jnp.where(valid & (c == _HASH), idx, -1), axis=1,
              keepdims=True)
  tail = valid & (idx > h)
  ws = jnp.isin(c, jnp.asarray(_WHITESPACE))
  digit = (c >= _ZERO) & (c <= _ZERO + 9)
  core_mark = tail & ~ws
  a = jnp.min(jnp.where(core_mark, idx, n_slots), axis=1, keepdims=True)
  z = jnp.max(jnp.where(core_mark, idx, -1), axis=1, keepdims=True)
  core = (idx >= a) & (idx <= z)
  negative = jnp.take_along_axis(c, jnp.minimum(a, n_slots - 1), axis=1
                                 ) == _MINUS
  digits = core & ~((idx == a) & negative)
  ok = ((h >= 0) & (z >= a) & jnp.any(digits, axis=1, keepdims=True)
        & jnp.all(~digits | digit, axis=1, keepdims=True)
        & jnp.all(~core | ~ws, axis=1, keepdims=True))[:, 0]
  first = jnp.min(jnp.where(digits & (c != _ZERO), idx, n_slots), axis=1,
                  keepdims=True)
  significant = digits & (idx >= first)
  overflow = jnp.sum(significant, axis=1) > MAX_DIGITS
  power = jnp.asarray(_POW10)[jnp.clip(z - idx, 0, MAX_DIGITS)]
  value = jnp.sum(jnp.where(significant, (c - _ZERO) * power, 0), axis=1)
  value = jnp.where(negative[:, 0], -value, value).astype(jnp.int32)
  value = jnp.where(ok & ~overflow, value, 0)
  return value, ok, ok & overflow


def _host_parse(tokenizer: Any, tokens: np.ndarray, mask: np.ndarray):
  values, ok, over = [], [], []
  for row, m in zip(np.asarray(tokens), np.asarray(mask)):
    text = tokenizer.decode([int(t) for t, k in zip(row, m) if k > 0])
    v = arithmetic.parse_answer(text)
    big = v is not None and abs(v) >= 10**MAX_DIGITS
    values.append(0 if v is None or big else v)
    ok.append(v is not None)
    over.append(big)
  return (np.asarray(values, np.int32), np.asarray(ok, bool),
          np.asarray(over, bool))


def host_parse_answers(tokens: jax.Array, mask: jax.Array,
                       tokenizer: str = "byte"
                       ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`parse_answers` for any tokenizer, on the host (`pure_callback`)."""
  tok = tokenizers.get_tokenizer(tokenizer)
  n = tokens.shape[0]
  shapes = (jax.ShapeDtypeStruct((n,), jnp.int32),
            jax.ShapeDtypeStruct((n,), bool), jax.ShapeDtypeStruct((n,), bool))
  return jax.pure_callback(functools.partial(_host_parse, tok), shapes,
                           tokens, mask)


def verify(value: jax.Array, parsable: jax.Array, overflow: jax.Array,
           answer: jax.Array) -> jax.Array:
  """`[N]` bool: the parsed answer equals `answer` (exact match)."""
  return parsable & ~overflow & (value == answer.astype(jnp.int32))


def pass_at_k(n: int, c: np.ndarray | jax.Array, k: int):
  """Unbiased pass@k of `c` correct among `n` samples (per problem).

  1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i), exact
  when n - c < k (then 1). Works on numpy or jnp arrays `c`.

  Raises:
    ValueError: k outside 1..n.
  """
  if not 1 <= k <= n:
    raise ValueError(f"pass@k with k={k} from n={n} samples; allowed "
                     f"1 <= k <= n")
  xp = jnp if isinstance(c, jax.Array) else np
  c = xp.asarray(c)
  i = xp.arange(1, n + 1)
  factors = xp.where(i[None] > n - c[..., None], 1.0 - k / i[None], 1.0)
  return 1.0 - xp.prod(factors, axis=-1)


# ------------------------------------------------------------- evaluator
DEFAULTS = dict(splits=("test", "test_ood"), n_samples=8, k=(1, 4, 8),
                temperature=1.0, max_new_tokens=48, max_prompts=64,
                prompt_batch=32, seed=0)


@functools.partial(jax.jit, static_argnames=("model", "group_size",
                                             "max_new_tokens", "greedy"))
def _score(model, params, prompt, lengths, answer, rng, temperature, eos_id,
           *, group_size, max_new_tokens, greedy):
  from common.models import decoding  # pylint: disable=g-import-not-at-top
  if greedy:
    out = decoding.generate(model, params, prompt, lengths, rng,
                            max_new_tokens=max_new_tokens, greedy=True,
                            eos_id=eos_id)
    n_new = out["lengths"] - lengths
    ro = {"tokens": out["tokens"], "prompt_lengths": lengths,
          "completion_mask": (jnp.arange(max_new_tokens)[None]
                              < n_new[:, None]).astype(jnp.float32),
          "entropies": out["entropies"]}
    reps = 1
  else:
    ro = rollout_lib.sample_groups(
        model, params, prompt, lengths, rng, group_size=group_size,
        max_new_tokens=max_new_tokens, temperature=temperature,
        eos_id=eos_id)
    reps = group_size
  comp = rollout_lib.completion_tokens(ro)
  mask = ro["completion_mask"]
  value, ok, over = parse_answers(comp, mask)
  correct = verify(value, ok, over, jnp.repeat(answer, reps))
  ent = jnp.sum(ro["entropies"] * mask, 1) / jnp.maximum(jnp.sum(mask, 1), 1)
  return correct, ok, ent, comp * mask.astype(comp.dtype)


def evaluate_prompts(model, params, table: dict[str, np.ndarray],
                     eos_id: int, settings: dict[str, Any], prefix: str
                     ) -> dict[str, float]:
  """Greedy accuracy and sampled pass@k on the prompts of `table`."""
  m = min(len(table["answer"]), settings["max_prompts"])
  bsz, g = settings["prompt_batch"], settings["n_samples"]
  rng = jax.random.PRNGKey(settings["seed"])
  greedy, sampled, parsed, ents, distinct = [], [], [], [], []
  for start in range(0, m, bsz):
    sl = slice(start, min(start + bsz, m))
    args = (jnp.asarray(table["prompt"][sl]),
            jnp.asarray(table["prompt_length"][sl]),
            jnp.asarray(table["answer"][sl]), jax.random.fold_in(rng, start),
            jnp.float32(settings["temperature"]), jnp.int32(eos_id))
    correct, _, _, _ = jax.device_get(_score(
        model, params, *args, group_size=g,
        max_new_tokens=settings["max_new_tokens"], greedy=True))
    greedy.append(correct)
    c, ok, ent, comp = jax.device_get(_score(
        model, params, *args, group_size=g,
        max_new_tokens=settings["max_new_tokens"], greedy=False))
    sampled.append(c.reshape(-1, g))
    parsed.append(ok)
    ents.append(ent)
    comp = comp.reshape(-1, g, comp.shape[-1])
    distinct.extend(len({r.tobytes() for r in rows}) / g for rows in comp)
  sampled = np.concatenate(sampled)
  out = {f"{prefix}greedy_acc": float(np.mean(np.concatenate(greedy))),
         f"{prefix}parse_rate": float(np.mean(np.concatenate(parsed))),
         f"{prefix}entropy": float(np.mean(np.concatenate(ents))),
         f"{prefix}distinct": float(np.mean(distinct))}
  for k in settings["k"]:
    if k <= g:
      out[f"{prefix}pass@{k}"] = float(np.mean(pass_at_k(
          g, sampled.sum(1), k)))
  return out


def eval_settings(config: Any) -> dict[str, Any]:
  return evaluators.section_settings(config, "verifiable", DEFAULTS)


@evaluators.register_evaluator("verifiable")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Per split of `eval.verifiable.splits`: `<split>/greedy_acc`,
  `/pass@k`, `/entropy` (nats per sampled token), `/parse_rate`,
  `/distinct` (distinct completions per prompt / n_samples)."""
  s = eval_settings(setup.config)
  kw = rl_prompts.settings(setup.config)
  eos = tokenizers.get_tokenizer(kw["tokenizer"]).eos_id
  out = {}
  for split in s["splits"]:
    table = rl_prompts.prompt_table(kw["size"], split, kw["tasks"],
                                    kw["prompt_len"], kw["tokenizer"])
    out.update(evaluate_prompts(setup.model, state.params, table, eos, s,
                                f"{split}/"))
  return out
