"""EPO pieces: corridor gradients, phase weight, history; the corridor env."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.rl import epo
from common.envs import text_corridor as tc

HP = dict(entropy_coeff=0.5, smooth_coeff=1.0, min_ratio=0.5, max_ratio=1.5,
          out_range_penalty=0.1, gate_turn=1.0, max_epochs=10.0,
          smooth_weights=1.0)


def test_corridor_gradients_weight_and_history():
  ent = jnp.array([[0.2, 1.0, 3.0], [0.2, 1.0, 3.0]])
  mask = jnp.ones_like(ent)
  turn = jnp.array([0, 1])

  def terms(e):
    out = {}
    for g in epo.PENALTY_GRADS:
      pen = lambda x: jnp.sum(epo.entropy_corridor_penalty(
          x, jnp.ones(2), 0.5, 1.5, 0.1, "token", g))
      out[g] = jax.grad(pen)(e)
    half = mask.at[1].set(0.0)       # turn 1 did not happen
    hist = epo.update_entropy_history(epo.init_entropy_history(2),
                                      *epo.turn_entropy(e[None], half[None]))
    reg = lambda x: epo.epo_regulariser(x, mask, turn, jnp.ones(2), 0, HP,
                                        penalty_grad="distance")[0]
    w = jax.vmap(epo.epo_phase_weight, (0, None))(jnp.arange(11), 10)
    return out, epo.entropy_history_mean(hist), jax.grad(reg)(e), w

  grads, hmean, greg, w = jax.jit(terms)(ent)
  # official: a constant penalty, no gradient; distance: back into [0.5, 1.5]
  np.testing.assert_array_equal(grads["official"], 0.0)
  np.testing.assert_allclose(grads["distance"][0], [-0.1, 0.0, 0.1])
  np.testing.assert_allclose(hmean, [1.4, 0.0], rtol=1e-6)
  # gate: only row 1 (turn 1 >= gate_turn) is penalised; weight at epoch 0 = 1
  tok = 1 / 6
  np.testing.assert_allclose(
      greg, -0.5 * tok + 0.5 * tok * np.array([[0, 0, 0], [-0.1, 0, 0.1]]),
      rtol=1e-5)
  assert w[0] == 1.0 and np.all(np.diff(np.asarray(w)) < 0)
  np.testing.assert_allclose([w[5], w[10]], [1 - 0.2 * (1 - np.exp(-2.0)),
                                             0.8 * np.exp(-3.0)],
                             rtol=1e-6)


def test_bad_modes():
  with pytest.raises(ValueError, match="allowed"):
    epo.entropy_corridor_mask(jnp.ones((1, 2)), jnp.ones(1), 0, 2, 0.1, "x")
  with pytest.raises(ValueError, match="allowed"):
    epo.agg(jnp.ones((1, 2)), jnp.ones((1, 2)), "sum")
  with pytest.raises(ValueError, match="max_turns"):
    tc.check(4, 7, 5)


def test_corridor_env_scripted_episode():
  # a length-5 world with the key at 2: right, pick(wrong cell), right,
  # pick, another word (parsed to pick: a no-op now), right, right, open ->
  # reward 1 on the last step
  state = {"length": np.int32(5), "key_pos": np.int32(2), "pos": np.int32(0),
           "has_key": False, "done": False, "success": False}
  acts = np.array([tc.RIGHT, tc.PICK, tc.RIGHT, tc.PICK, tc.EMPTY,
                    tc.RIGHT, tc.RIGHT, tc.OPEN, tc.OPEN])

  play = jax.jit(lambda s, a: (lambda s, r: (s, r, tc.observe(s)))(
      *tc.step(s, a)))
  rewards, obs = [], []
  for a in np.asarray(acts):
    state, r, o = play(state, a)
    rewards.append(float(r))
    obs.append(o)
  final, obs = state, np.asarray(obs)
  np.testing.assert_array_equal(rewards, [0, 0, 0, 0, 0, 0, 0, 1, 0])
  assert bool(final["success"]) and int(final["pos"]) == 4
  assert obs[2].tolist() == [tc.KEY, tc.NO_KEY]      # on the key, not held
  assert obs[3].tolist() == [tc.EMPTY, tc.KEY_HELD]  # picked: key gone
  assert obs[6].tolist() == [tc.DOOR, tc.KEY_HELD]
