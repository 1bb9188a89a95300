"""The GRPO core: answer parser = the host parser, pass@k, advantages,
the clipped loss (values and gradients), bad inputs, and one RL iteration
through the shared train step that a hyperparameter sweep never
recompiles."""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.rl import grpo
from common.data.text import arithmetic
from common.data.text import rl_prompts
from common.eval import verifiable


def _tiny_rl_config(name="grpo", **method):
  from common.protocols import lm_rl  # pylint: disable=g-import-not-at-top
  from algos.rl import aepo  # pylint: disable=g-import-not-at-top
  c = lm_rl.base_config()
  c.experiment = "grpo_test"
  c.data.kwargs = dict(size="tiny", prompt_len=16)
  c.model.kwargs = dict(size="tiny", num_layers=1, d_model=32, num_heads=2,
                        num_kv_heads=2, d_ff=64, max_len=24)
  c.method.name = name
  c.method[name] = grpo.method_config(
      {"group_size": 2, "max_new_tokens": 8, **method},
      aepo.EXTRA if name == "aepo" else None)
  c.train.batch_size = 2
  c.lock()
  return c


@functools.cache
def _setup():
  from common.protocols import build  # pylint: disable=g-import-not-at-top
  from common.protocols import lm_rl  # pylint: disable=g-import-not-at-top
  # AEPO = GRPO + a regulariser that resamples: one compile covers both.
  config = _tiny_rl_config("aepo", reference=True, kl_coef=0.01,
                           reinforce_samples=2.0)
  lm_rl.validate(config)
  return build.setup(config)


def _encode(texts, width):
  tok = np.full((len(texts), width), 256, np.int32)
  mask = np.zeros((len(texts), width), np.float32)
  for i, t in enumerate(texts):
    b = list(t.encode())[:width]
    tok[i, :len(b)] = b
    mask[i, :len(b)] = 1
  return tok, mask


def test_jax_parser_equals_the_host_parser():
  rng = np.random.default_rng(0)
  alphabet = list("#-0123456789 \n\tx+=,")
  texts = ["1+2=3#3", "#42", "# -7 ", "#007", "#-0", "a#1#2", "#1 2", "#",
           "#-", "--#5", "#5-", "12", "#12345678901", "#000000000012",
           "3#\n99\n"]
  texts += ["".join(rng.choice(alphabet, size=rng.integers(0, 12)))
            for _ in range(300)]
  tok, mask = _encode(texts, 16)
  tok[0, 7] = 258          # an eos after the answer is not text
  mask[0, 7] = 1
  value, ok, over = jax.jit(verifiable.parse_answers)(tok, mask)
  for i, t in enumerate(texts):
    want = arithmetic.parse_answer(t[:16])
    assert bool(ok[i]) == (want is not None), t
    if want is not None and abs(want) < 10**9:
      assert int(value[i]) == want and not over[i], t
    elif want is not None:
      assert bool(over[i]), t


def test_pass_at_k_is_the_unbiased_estimator():
  n, c = 8, np.arange(9)
  for k in (1, 3, 8):
    want = [1 - math.comb(n - ci, k) / math.comb(n, k) for ci in c]
    np.testing.assert_allclose(verifiable.pass_at_k(n, c, k), want,
                               atol=1e-12)
  np.testing.assert_allclose(verifiable.pass_at_k(n, jnp.asarray(c), 3),
                             verifiable.pass_at_k(n, c, 3), atol=1e-6)
  with pytest.raises(ValueError, match="1 <= k <= n"):
    verifiable.pass_at_k(4, c, 5)


def test_group_advantages_and_group_size_one():
  r = jnp.asarray([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
  adv = grpo.group_advantages(r, 3)
  g = np.asarray(r).reshape(2, 3)
  want = (g - g.mean(1, keepdims=True)) / (g.std(1, ddof=1, keepdims=True)
                                           + 1e-6)
  np.testing.assert_allclose(adv, want.reshape(-1), rtol=1e-6)
  with pytest.raises(ValueError, match="group_size >= 2"):
    grpo.group_advantages(r, 1)
  with pytest.raises(ValueError, match="group_size >= 2"):
    grpo.make({"group_size": 1})


def test_clipped_loss_values_and_asymmetric_gradient():
  logp = jnp.log(jnp.asarray([[0.5, 0.9, 0.1], [0.3, 0.3, 0.6]]))
  old = jnp.log(jnp.asarray([[0.4, 0.5, 0.2], [0.5, 0.2, 0.6]]))
  adv = jnp.asarray([1.0, -2.0])
  mask = jnp.asarray([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
  lo, hi, dual = 0.2, 0.28, 3.0

  def loss(lp):
    return grpo.clipped_policy_loss(lp, old, adv, mask, lo, hi, dual)[0]

  ratio = np.exp(np.asarray(logp - old))
  a = np.asarray(adv)[:, None]
  clip = np.clip(ratio, 1 - lo, 1 + hi)
  per = np.maximum(-a * ratio, -a * clip)
  per = np.where(a < 0, np.minimum(per, -a * dual), per)
  want = (per * mask).sum() / mask.sum()
  value, grad = jax.value_and_grad(loss)(logp)
  np.testing.assert_allclose(value, want, rtol=1e-6)
  # A > 0 and ratio above 1 + eps_high (0.9 / 0.5): no gradient; A < 0 and
  # ratio above 1 + eps_high (0.3 / 0.2 = 1.5): the unclipped side counts.
  assert grad[0, 1] == 0.0 and grad[0, 0] != 0.0
  assert grad[1, 1] != 0.0 and grad[1, 2] == 0.0


def test_prompt_longer_than_its_width_and_the_context():
  with pytest.raises(ValueError, match="prompt_len=4 allows at most 4"):
    rl_prompts.prompt_table(prompt_len=4)
  config = _tiny_rl_config(max_new_tokens=12)   # 16 + 12 > max_len 24
  from common.protocols import build  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="exceed the model's context"):
    build.setup(config).init_state()


def test_non_finite_rewards_stop_with_the_reward_name():
  @grpo.register_reward("nan_for_test")
  def _nan(hp, inputs):
    del hp
    return jnp.where(inputs.parsable, jnp.nan, 0.0), {}

  spec = grpo.Spec(2, 4, True, "nan_for_test", "single_turn", "token_mean",
                   False, "jax", "byte", 258)
  env = grpo.RolloutEnv(None, None, spec, {})
  tok, mask = _encode(["#1", "#2", "x", "y"], 4)
  ro = {"tokens": jnp.concatenate([jnp.full((4, 1), 257), tok], 1),
        "prompt_lengths": jnp.ones(4, jnp.int32),
        "completion_mask": jnp.asarray(mask)}
  with pytest.raises(Exception, match="non-finite rewards"):
    jax.block_until_ready(jax.jit(env.score)(ro, jnp.asarray([1, 2])))


def test_one_rl_iteration_compiles_once_over_a_sweep():
  s = _setup()
  state = s.init_state()
  params0 = jax.tree.map(jnp.copy, state.params)
  seen = []
  for eps_high, coef, temp, target in ((0.28, 0.0, 1.0, 0.5),
                                       (0.5, 0.01, 0.7, 5.0),
                                       (0.1, 0.1, 1.3, 0.0)):
    hp = jax.tree.map(lambda x: x, s.hparams)
    hp["method"].update(eps_high=jnp.float32(eps_high),
                        entropy_coef=jnp.float32(coef),
                        temperature=jnp.float32(temp),
                        target_entropy=jnp.float32(target))
    state, metrics, _ = s.train_step(state, {}, hp)
    seen.append(jax.device_get(metrics))
  assert s.train_step._cache_size() == 1
  for m in seen:
    assert all(np.isfinite(v) for v in m.values())
    assert 0.0 <= m["method/entropy"] <= np.log(259) + 1e-4
  assert "method/kl" in seen[0]
  # AEPO's rule from the previous update's entropy estimate (0 at first).
  previous = [0.0] + [float(m["method/aepo/entropy_estimate"])
                      for m in seen[:-1]]
  for m, h, target in zip(seen, previous, (0.5, 5.0, 0.0)):
    want = 1.2 if h <= target else 0.8
    assert float(m["method/aepo/temperature"]) == pytest.approx(want)
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), params0,
                       state.params)
  assert max(jax.tree.leaves(moved)) > 0.0


@pytest.mark.skipif(not os.environ.get("REGJAX_OFFICIAL_AEPO_DIR"),
                    reason="set REGJAX_OFFICIAL_AEPO_DIR to the official "
                    "597358816/AEPO checkout for the parity test")
def test_loss_and_advantages_equal_the_official_core_algos():
  import sys  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.environ["REGJAX_OFFICIAL_AEPO_DIR"])
  core_algos = pytest.importorskip("verl.trainer.core_algos")
  rng = np.random.default_rng(1)
  n, length, g = 8, 6, 4
  logp = rng.normal(-1.0, 0.5, (n, length)).astype(np.float32)
  old = logp + rng.normal(0, 0.3, (n, length)).astype(np.float32)
  mask = (rng.random((n, length)) < 0.8).astype(np.float32)
  scores = rng.integers(0, 2, n).astype(np.float32)
  token_rewards = np.zeros((n, length), np.float32)
  token_rewards[:, 0] = scores
  index = np.repeat(np.arange(n // g), g)
  adv_t, _ = core_algos.compute_grpo_outcome_advantage(
      torch.tensor(token_rewards), torch.tensor(mask), index)
  adv = grpo.group_advantages(jnp.asarray(scores), g)
  np.testing.assert_allclose(np.asarray(adv)[:, None] * mask,
                             adv_t.numpy(), atol=1e-5)
  want = core_algos.compute_policy_loss(
      torch.tensor(old), torch.tensor(logp), adv_t, torch.tensor(mask),
      0.2, 0.28, 3.0)
  got, m = grpo.clipped_policy_loss(jnp.asarray(logp), jnp.asarray(old),
                                    adv, jnp.asarray(mask), 0.2, 0.28, 3.0)
  np.testing.assert_allclose(got, want[0].item(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m["clipfrac_higher"], want[1].item(), atol=1e-6)
  np.testing.assert_allclose(m["ppo_kl"], want[3].item(), atol=1e-6)
