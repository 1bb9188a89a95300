"""EVOL-RL: label-free rewards from majority selection and novelty.

Evolving Language Models without Labels: Majority Drives Selection, Novelty
Promotes Variation. Zhou et al. 2025, arXiv:2509.15194.
Official code (PyTorch, verl + vLLM): https://github.com/YujunZhou/EVOL-RL
(reward manager `verl/verl/workers/reward_manager/semantic_novelty.py`,
majority vote `verl/verl/utils/reward_score/ttrl/ttt_metrics.py`).

Both rewards score the G responses of one prompt (a group) without labels:

* **TTRL** (the baseline, `ttrl_rewards`): the majority answer among the
  group is the pseudo-label; a response scores 1 if its answer equals it,
  else 0 (`test_time_train_metrics`).
* **EVOL-RL** (`evol_rl_rewards`): the majority split decides the sign, and
  the novelty of the response's reasoning decides the value inside its
  band. With `S = clip(cos(e_i, e_j), 0, 1)` between the embeddings of the
  valid responses, novelty is
  `u_i = 1 - (alpha * mean_{j in same side, j != i} S_ij
              + (1 - alpha) * max_{j != i} S_ij)`
  (alpha = 0.5 officially; the mean falls back to all other valid responses
  when i is alone on its side, and both terms to 0.5 when there is no other
  valid response). Each side is min-max rescaled separately: the majority
  side into [0.5, 1], the minority side into [-1, -0.5]; a side whose
  novelties are all equal gets its midpoint (0.75 / -0.75), a lone majority
  response 1.0 and a lone minority response -0.5. Invalid responses (no
  parsable answer: the official "no number in \\boxed{}") get -1 and take no
  part in the similarities; when at most one response is valid every
  response gets -1 (the official `n_answers <= 1` branch).

Embeddings are an input (the official code queries Qwen3-Embedding-4B on the
text after `</think>`); `bag_of_ngrams_embedding` is the encoder-free one the
CPU study uses. Everything is jittable for a fixed G and vmaps over prompts.

Difference from the official code: the official majority vote counts the
unparsable answers as one more candidate answer (`Counter` over the
extracted strings, `None` included); here the vote is over parsable answers
only, so an unparsable majority never becomes the pseudo-label. Ties go to
the answer met first, as `Counter.most_common` does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.rl import grpo
from common.core import method as method_lib

# official bands and fall-backs (`_compute_similarity_based_rewards`)
MAJORITY_BAND = (0.5, 1.0)
MINORITY_BAND = (-1.0, -0.5)
INVALID_REWARD = -1.0


def _check_group(answers: jax.Array, valid: jax.Array) -> None:
  if answers.ndim != 1 or valid.shape != answers.shape:
    raise ValueError(f"answers {answers.shape} and valid {valid.shape} must "
                     "be one group [G] of the same shape (vmap over prompts)")
  if answers.shape[0] < 2:
    raise ValueError(f"group size G={answers.shape[0]}: majority vote and "
                     "group advantages need G >= 2")


def majority_vote(answers: jax.Array, valid: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
  """The group's pseudo-label and who agrees with it.

  Args:
    answers: [G] integer answers (any value where invalid).
    valid: [G] bool, whether the answer was parsed.

  Returns:
    `(label, agrees)`: the majority answer (scalar; ties to the first met)
    and [G] bool, valid and equal to it (all False if nothing is valid).
  """
  _check_group(answers, valid)
  valid = valid.astype(bool)
  same = (answers[:, None] == answers[None, :]) & valid[None, :]
  counts = jnp.where(valid, same.sum(-1), -1)
  first = jnp.argmax(counts)           # first index of the largest count
  label = answers[first]
  agrees = valid & (answers == label) & jnp.any(valid)
  return label, agrees


def ttrl_rewards(answers: jax.Array, valid: jax.Array) -> jax.Array:
  """[G] TTRL reward: 1 where the answer is the group's majority, else 0."""
  return majority_vote(answers, valid)[1].astype(jnp.float32)


def similarity_matrix(emb: jax.Array) -> jax.Array:
  """[G, G] cosine similarities of `emb` [G, D], clipped to [0, 1]."""
  emb = emb.astype(jnp.float32)
  norms = jnp.maximum(jnp.linalg.norm(emb, axis=-1, keepdims=True), 1e-8)
  unit = emb / norms
  return jnp.clip(unit @ unit.T, 0.0, 1.0)


def novelty_scores(emb: jax.Array, side: jax.Array, valid: jax.Array,
                   alpha: float | jax.Array = 0.5) -> jax.Array:
  """[G] raw novelty `1 - (alpha * mean same-side sim + (1-alpha) * max sim)`.

  Args:
    emb: [G, D] embeddings of the responses' reasoning.
    side: [G] bool, True on the majority side.
    valid: [G] bool; invalid responses are left out of every similarity
      (their own score is meaningless and masked by the caller).
    alpha: weight of the mean (official 0.5).
  """
  g = emb.shape[0]
  # float32 cosines as the official code; the rest in the default float
  # (float64 under x64, as the official numpy rescaling)
  sim = similarity_matrix(emb).astype(jnp.result_type(float))
  other = valid[None, :] & valid[:, None] & ~jnp.eye(g, dtype=bool)
  same = other & (side[None, :] == side[:, None])
  n_other, n_same = other.sum(-1), same.sum(-1)
  mean_other = (sim * other).sum(-1) / jnp.maximum(n_other, 1)
  mean_same = (sim * same).sum(-1) / jnp.maximum(n_same, 1)
  avg = jnp.where(n_same > 0, mean_same,
                  jnp.where(n_other > 0, mean_other, 0.5))
  mx = jnp.where(n_other > 0, jnp.max(jnp.where(other, sim, -jnp.inf), -1),
                 0.5)
  return 1.0 - (alpha * avg + (1.0 - alpha) * mx)


def _rescale_side(u: jax.Array, member: jax.Array, band: tuple[float, float],
                  lone: float) -> jax.Array:
  """Min-max of `u` over `member` into `band` (the official edge cases)."""
  lo, hi = band
  n = member.sum()
  u_min = jnp.min(jnp.where(member, u, jnp.inf))
  u_max = jnp.max(jnp.where(member, u, -jnp.inf))
  spread = u_max - u_min
  scaled = lo + (hi - lo) * (u - u_min) / jnp.where(spread > 0, spread, 1.0)
  out = jnp.where(spread > 0, scaled, 0.5 * (lo + hi))
  return jnp.where(n == 1, lone, out)


def evol_rl_rewards(answers: jax.Array, valid: jax.Array, emb: jax.Array,
                    alpha: float | jax.Array = 0.5) -> jax.Array:
  """[G] EVOL-RL rewards of one group (see the module docstring).

  Args:
    answers: [G] integer answers.
    valid: [G] bool, parsed or not.
    emb: [G, D] embeddings of the responses (reasoning text).
    alpha: novelty's weight on the same-side mean similarity.
  """
  if emb.ndim != 2 or emb.shape[0] != answers.shape[0]:
    raise ValueError(f"emb {emb.shape} must be [G, D] with G = "
                     f"{answers.shape[0]} (one row per response)")
  valid = valid.astype(bool)
  _, agrees = majority_vote(answers, valid)
  u = novelty_scores(emb, agrees, valid, alpha)
  maj = _rescale_side(u, agrees, MAJORITY_BAND, MAJORITY_BAND[1])
  mino = _rescale_side(u, valid & ~agrees, MINORITY_BAND, MINORITY_BAND[1])
  r = jnp.where(agrees, maj, mino)
  r = jnp.where(valid, r, INVALID_REWARD)
  return jnp.where(valid.sum() <= 1, INVALID_REWARD, r)


def bag_of_ngrams_embedding(tokens: jax.Array, mask: jax.Array,
                            dim: int = 256, n: int = 3) -> jax.Array:
  """[..., dim] hashed bag of token n-grams of `tokens` [..., T] (mask [..., T]).

  The encoder-free stand-in for the official sentence embedder: two
  reasonings with the same steps get cosine 1, disjoint steps cosine 0.
  """
  t = tokens.shape[-1]
  if t < n:
    raise ValueError(f"sequence length {t} < n-gram order n={n}")
  tok = tokens.astype(jnp.uint32)
  h = jnp.zeros(tokens.shape[:-1] + (t - n + 1,), jnp.uint32)
  ok = jnp.ones(h.shape, bool)
  for k in range(n):
    h = h * jnp.uint32(1000003) + tok[..., k:t - n + 1 + k]
    ok = ok & mask[..., k:t - n + 1 + k].astype(bool)
  bucket = (h ^ (h >> 15)) % jnp.uint32(dim)
  onehot = jax.nn.one_hot(bucket.astype(jnp.int32), dim) * ok[..., None]
  return onehot.sum(-2)


group_evol_rl_rewards = jax.vmap(evol_rl_rewards, in_axes=(0, 0, 0, None))
group_ttrl_rewards = jax.vmap(ttrl_rewards)


# ------------------------------------------------ the GRPO-core plug-ins
# Hyperparameters of the `evol_rl` / `ttrl` methods beyond GRPO's (traced).
EXTRA = {"novelty_alpha": 0.5}
_EVOL_RL = {**EXTRA, "reward": "evol_rl"}   # method defaults over GRPO's
_TTRL = {**EXTRA, "reward": "ttrl"}
EMBED_DIM, EMBED_NGRAM = 256, 3


def _reward_inputs(inputs) -> tuple[jax.Array, jax.Array, int]:
  g = inputs.group_size
  valid = inputs.parsable & ~inputs.overflow
  return inputs.parsed.reshape(-1, g), valid.reshape(-1, g), g


def _embed(inputs) -> jax.Array:
  """[prompts, G, EMBED_DIM] byte-trigram embeddings of the completions."""
  emb = bag_of_ngrams_embedding(inputs.completion, inputs.mask, EMBED_DIM,
                                EMBED_NGRAM)
  return emb.reshape(-1, inputs.group_size, EMBED_DIM)


def _label_metrics(inputs, agrees: jax.Array, emb: jax.Array
                   ) -> dict[str, jax.Array]:
  """Monitoring only (labels never reach the reward): how often the
  majority is right, the majority's share of the group, and the mean
  pairwise (clipped cosine) similarity of the group's completions."""
  g = inputs.group_size
  answers, valid, _ = _reward_inputs(inputs)
  label = jax.vmap(majority_vote)(answers, valid)[0]
  truth = inputs.answer.reshape(-1, g)[:, 0]
  sim = jax.vmap(similarity_matrix)(emb)
  off = 1.0 - jnp.eye(g)
  return {"label_accuracy": jnp.mean((label == truth) & valid.any(1)),
          "majority_ratio": jnp.mean(agrees.reshape(-1, g).mean(1)),
          "parse_rate": jnp.mean(valid),
          "mean_similarity": jnp.mean(jnp.sum(sim * off, -1) / (g - 1))}


@grpo.register_reward("ttrl")
def ttrl_reward(hp, inputs):
  """TTRL: 1 for the group's majority answer, else 0 (label-free)."""
  del hp
  answers, valid, _ = _reward_inputs(inputs)
  r = group_ttrl_rewards(answers, valid).reshape(-1)
  return r, _label_metrics(inputs, r > 0, _embed(inputs))


@grpo.register_reward("evol_rl")
def evol_rl_reward(hp, inputs):
  """EVOL-RL with a hashed byte-trigram embedding of each completion."""
  answers, valid, _ = _reward_inputs(inputs)
  emb = _embed(inputs)
  r = group_evol_rl_rewards(answers, valid, emb,
                            hp["novelty_alpha"]).reshape(-1)
  agrees = jax.vmap(majority_vote)(answers, valid)[1].reshape(-1)
  return r.astype(jnp.float32), _label_metrics(inputs, agrees, emb)


@method_lib.register_method("evol_rl")
def make_evol_rl(cfg: dict) -> method_lib.Method:
  """GRPO with the EVOL-RL reward (a different `reward` may be named)."""
  return grpo.make_method("evol_rl", cfg, extra=_EVOL_RL)


@method_lib.register_method("ttrl")
def make_ttrl(cfg: dict) -> method_lib.Method:
  """GRPO with the TTRL majority-vote reward (the baseline)."""
  return grpo.make_method("ttrl", cfg, extra=_TTRL)
