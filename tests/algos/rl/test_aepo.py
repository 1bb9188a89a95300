"""AEPO: the temperature rule, the swapped-in REINFORCE rows, the target
range check, and parity of the update batch and loss with the official
trainer (skipped without REGJAX_OFFICIAL_AEPO_DIR)."""

from __future__ import annotations

import ast
import os
import types

import jax.numpy as jnp
import numpy as np
import pytest

from algos.rl import aepo
from algos.rl import grpo


def _rollout(n, width=5, slots=3, fill=0):
  return {"tokens": jnp.full((n, width), fill, jnp.int32),
          "prompt_lengths": jnp.full((n,), 2 + fill, jnp.int32),
          "lengths": jnp.full((n,), 5, jnp.int32),
          "completion_mask": jnp.ones((n, slots)) * (fill + 1),
          "logprobs": jnp.zeros((n, slots)) + fill,
          "entropies": jnp.zeros((n, slots)) + fill,
          "rewards": jnp.zeros((n,)), "advantages": jnp.full((n,), -0.5)}


def test_temperature_rule_and_swapped_rows():
  t = aepo.aepo_temperature(jnp.asarray([0.2, 0.5, 0.9]), 0.5, 0.8, 1.2)
  np.testing.assert_allclose(t, [1.2, 1.2, 0.8])
  main, aux = _rollout(8), _rollout(4, fill=1)
  adv = jnp.asarray([-1.0, 0.7, 0.04, 1.5])    # rows 1 and 3 selected
  rewards = jnp.asarray([0.0, 1.0, 0.5, 1.0])
  for above, limit, k in ((False, 60.0, 2), (True, 60.0, 1),
                          (False, 1.0, 1)):
    out, m = aepo.swap_in(main, aux, rewards, adv, 0.05, limit,
                          jnp.asarray(above))
    assert float(m["aepo/reinforce_rows"]) == k
    np.testing.assert_array_equal(out["tokens"][:k], 1)
    np.testing.assert_array_equal(out["tokens"][k:], 0)
    np.testing.assert_allclose(out["advantages"][:k], 1.0)
    np.testing.assert_allclose(out["advantages"][k:], -0.5)
  np.testing.assert_allclose(out["rewards"][0], 1.0)


def test_target_entropy_outside_zero_to_log_vocab():
  run = types.SimpleNamespace(num_classes=259)
  for bad in (-0.1, 5.6):
    ctx = types.SimpleNamespace(config={"target_entropy": bad}, run=run)
    with pytest.raises(ValueError, match=r"outside \[0, log V\]"):
      aepo._init(ctx)  # pylint: disable=protected-access
  ctx = types.SimpleNamespace(config={"target_entropy": 5.5}, run=run)
  assert float(aepo._init(ctx)["entropy"]) == 0.0  # pylint: disable=protected-access


def _official_select_by_advantage(path):
  """`_select_by_advantage` exactly as in the official ray_trainer.py."""
  import torch  # pylint: disable=g-import-not-at-top
  source = open(path, encoding="utf-8").read()
  node = next(n for n in ast.parse(source).body if isinstance(
      n, ast.FunctionDef) and n.name == "_select_by_advantage")
  scope = {"torch": torch}
  exec(compile(ast.Module([node], []), path, "exec"), scope)  # pylint: disable=exec-used
  return scope["_select_by_advantage"]


class _Proto:
  """The slice of DataProto the official selection and concat use."""

  def __init__(self, batch):
    self.batch = batch

  def select_by_index(self, index_list):
    return _Proto({k: v[index_list] for k, v in self.batch.items()})

  def __len__(self):
    return len(next(iter(self.batch.values())))

  def __getitem__(self, s):
    return _Proto({k: v[s] for k, v in self.batch.items()})


@pytest.mark.skipif(not os.environ.get("REGJAX_OFFICIAL_AEPO_DIR"),
                    reason="set REGJAX_OFFICIAL_AEPO_DIR to the official "
                    "597358816/AEPO checkout for the parity test")
@pytest.mark.parametrize("entropy", [0.3, 0.9])
def test_update_batch_and_loss_equal_the_official(entropy):
  import sys  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  root = os.environ["REGJAX_OFFICIAL_AEPO_DIR"]
  sys.path.insert(0, root)
  core_algos = pytest.importorskip("verl.trainer.core_algos")
  select = _official_select_by_advantage(
      os.path.join(root, "verl/trainer/ray_trainer.py"))
  rng = np.random.default_rng(2)
  n, g, slots, target, limit = 16, 4, 5, 0.5, 3
  mask = (rng.random((n, slots)) < 0.8).astype(np.float32)
  logp = rng.normal(-1.0, 0.4, (n, slots)).astype(np.float32)
  old = logp + rng.normal(0, 0.2, (n, slots)).astype(np.float32)
  scores = rng.integers(0, 2, n).astype(np.float32)
  aux_scores = np.asarray([1, 0, 0, 1], np.float32)   # one aux group
  aux_mask = (rng.random((g, slots)) < 0.9).astype(np.float32)
  aux_logp = rng.normal(-1.0, 0.4, (g, slots)).astype(np.float32)
  aux_old = aux_logp + rng.normal(0, 0.2, (g, slots)).astype(np.float32)

  def adv_of(s, m):
    r = np.zeros_like(m)
    r[:, 0] = s
    idx = np.repeat(np.arange(len(s) // g), g)
    return core_algos.compute_grpo_outcome_advantage(
        torch.tensor(r), torch.tensor(m), idx)[0]

  # The official branch (ray_trainer.py:802-808), on torch tensors.
  bak = _Proto({"advantages": adv_of(aux_scores, aux_mask),
                "mask": torch.tensor(aux_mask),
                "logp": torch.tensor(aux_logp),
                "old": torch.tensor(aux_old)})
  main = _Proto({"advantages": adv_of(scores, mask),
                 "mask": torch.tensor(mask), "logp": torch.tensor(logp),
                 "old": torch.tensor(old)})
  ctrl = select(bak, threshold=0.05, absolute=False)
  ctrl.batch["advantages"] = torch.ones_like(ctrl.batch["advantages"])
  k = min(limit, len(ctrl)) if entropy <= target else min(limit,
                                                          len(ctrl)) // 2
  batch = {key: torch.cat([ctrl[:k].batch[key], main[k:].batch[key]])
           for key in main.batch}
  want = core_algos.compute_policy_loss(
      batch["old"], batch["logp"], batch["advantages"], batch["mask"],
      0.2, 0.28, 3.0)[0].item()

  # Ours: the same rows through swap_in, the same loss.
  def ro(m, lp, o, s, a):
    return {"tokens": jnp.zeros((len(s), 2), jnp.int32),
            "prompt_lengths": jnp.ones(len(s), jnp.int32),
            "lengths": jnp.ones(len(s), jnp.int32),
            "completion_mask": jnp.asarray(m), "logprobs": jnp.asarray(lp),
            "entropies": jnp.asarray(o), "rewards": jnp.asarray(s),
            "advantages": a}
  aux_adv = grpo.group_advantages(jnp.asarray(aux_scores), g)
  main_adv = grpo.group_advantages(jnp.asarray(scores), g)
  out, _ = aepo.swap_in(
      ro(mask, logp, old, scores, main_adv),
      ro(aux_mask, aux_logp, aux_old, aux_scores, aux_adv),
      jnp.asarray(aux_scores), aux_adv, 0.05, float(limit),
      jnp.asarray(entropy > target))
  got, _ = grpo.clipped_policy_loss(
      out["logprobs"], out["entropies"], out["advantages"],
      out["completion_mask"], 0.2, 0.28, 3.0)
  np.testing.assert_allclose(out["completion_mask"], batch["mask"].numpy())
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
