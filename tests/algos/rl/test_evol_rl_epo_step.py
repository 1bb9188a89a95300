"""The EVOL-RL / TTRL reward hooks, and EPO through the shared train step.

The reward hooks on a hand-made group; then two jitted RL iterations of the
`epo` method at tiny shapes (the multi-turn corridor rollout, GRPO update
and the history-carrying regulariser): a sweep of EPO's traced corridor
bound does not recompile, and the per-turn history advances.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from algos.rl import epo
from algos.rl import evol_rl
from algos.rl import grpo
from common.protocols import build
from common.protocols import lm_rl


def _config(method, section, **data):
  c = lm_rl.base_config()
  c.experiment = f"{method}_test"
  c.sft.enabled = False
  c.model.kwargs = dict(size="tiny", num_layers=1, d_model=32, num_heads=2,
                        num_kv_heads=2, d_ff=64, max_len=24)
  c.method.name = method
  c.method[method] = section
  c.train.batch_size = 2
  for k, v in data.items():
    c.data[k] = v
  c.lock()
  lm_rl.validate(c)
  return c


def _sweep(config, key, values):
  s = build.setup(config)
  state = s.init_state()
  seen = []
  for v in values:
    hp = jax.tree.map(lambda x: x, s.hparams)
    hp["method"][key] = jnp.float32(v)
    state, metrics, _ = s.train_step(state, {}, hp)
    seen.append(jax.device_get(metrics))
  assert s.train_step._cache_size() == 1
  return state, seen


def test_reward_hooks_on_a_rollout():
  # the registered hooks on a hand-made group of 4 byte completions
  texts = ["1+2=3#3", "1+2=3#3", "12#3", "abc"]
  width = 8
  comp = np.zeros((4, width), np.int32)
  mask = np.zeros((4, width), np.float32)
  for i, t in enumerate(texts):
    comp[i, :len(t)] = list(t.encode())
    mask[i, :len(t)] = 1
  hp = {"novelty_alpha": jnp.float32(0.5)}

  def both(comp, mask):
    inputs = grpo.RewardInputs(
        rollout={}, completion=comp, mask=mask, answer=jnp.full((4,), 3),
        parsed=jnp.array([3, 3, 3, 0]),
        parsable=jnp.array([True, True, True, False]),
        overflow=jnp.zeros(4, bool), group_size=4, forward=None)
    return (grpo.REWARDS.get("evol_rl")(hp, inputs),
            grpo.REWARDS.get("ttrl")(hp, inputs))

  (r_evol, m_evol), (r_ttrl, _) = jax.jit(both)(jnp.asarray(comp),
                                                jnp.asarray(mask))
  np.testing.assert_array_equal(r_ttrl, [1, 1, 1, 0])
  # all three valid answers agree; the two duplicates are the least novel
  np.testing.assert_allclose(r_evol, [0.5, 0.5, 1.0, -1.0])
  assert m_evol["label_accuracy"] == 1.0 and m_evol["majority_ratio"] == 0.75


def test_epo_step_compiles_once_and_keeps_history():
  section = grpo.method_config(
      {"group_size": 2, "max_new_tokens": 7, "rollout": "text_corridor",
       "regularizer": "epo_distance", "entropy_coef": 0.01,
       "history_turns": 3.0}, extra=epo.EXTRA)
  config = _config("epo", section, name="corridor_worlds",
                   kwargs=dict(min_length=3, max_length=3))
  state, seen = _sweep(config, "max_ratio", (2.0, 1.1))
  hist = jax.device_get(state.method_state["reg"])
  assert hist["step"] == 2 and hist["count"][0] == 2
  for m in seen:
    assert 0.0 <= m["method/success"] <= 1.0
    assert 0.0 <= m["method/entropy"] <= np.log(11) + 1e-4
