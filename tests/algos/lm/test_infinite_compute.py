"""infinite_compute: log-mean-softmax, distillation loss, per-member clipping,
the vmapped `ensemble` model and its weight-decay mask."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from algos.lm import infinite_compute as ic
from common import models
from common.core import optim

_K, _B, _T, _V = 3, 2, 5, 7


def _logits(seed=0):
  return jax.random.normal(jax.random.PRNGKey(seed), (_K, _B, _T, _V)) * 2.0


def test_log_mean_softmax_and_the_ensemble_nll():
  logits = _logits()
  targets = jax.random.randint(jax.random.PRNGKey(1), (_B, _T), 0, _V)
  probs = np.asarray(jax.nn.softmax(logits, -1)).mean(0)
  np.testing.assert_allclose(np.exp(ic.log_mean_softmax(logits)), probs,
                             rtol=1e-5)
  np.testing.assert_allclose(ic.log_mean_softmax(logits[:1]),
                             jax.nn.log_softmax(logits[0]), atol=1e-6)
  nll = ic.ensemble_token_nll(logits, targets)
  want = -np.log(np.take_along_axis(probs, np.asarray(targets)[..., None],
                                    -1)[..., 0])
  np.testing.assert_allclose(nll, want, rtol=1e-5)
  # The ensemble's NLL is at most the members' mean (Jensen).
  assert np.all(nll <= ic.member_token_nll(logits, targets).mean(0) + 1e-6)


def test_distill_loss_limits_and_one_hot_teacher():
  s = _logits(2)[0]
  teacher = jax.nn.log_softmax(_logits(3)[0], -1)
  targets = jax.random.randint(jax.random.PRNGKey(4), (_B, _T), 0, _V)
  hard = ic.member_token_nll(s[None], targets)[0]
  np.testing.assert_allclose(ic.distill_token_loss(s, teacher, targets, 0.0),
                             hard, rtol=1e-6)
  np.testing.assert_allclose(ic.distill_token_loss(s, teacher, targets, 1.0),
                             ic.soft_cross_entropy(s, teacher), rtol=1e-6)
  one_hot = jnp.log(jax.nn.one_hot(targets, _V) + 1e-30)
  np.testing.assert_allclose(ic.soft_cross_entropy(s, one_hot), hard,
                             rtol=1e-5)


def test_clip_per_member_equals_optax_clip_on_each_member():
  grads = {"a": jax.random.normal(jax.random.PRNGKey(5), (_K, 4, 3)),
           "b": jax.random.normal(jax.random.PRNGKey(6), (_K, 3)) * 5}
  clipped = ic.clip_per_member(grads, jnp.float32(2.0))
  tx = optax.clip_by_global_norm(2.0)
  for k in range(_K):
    member = jax.tree.map(lambda g: g[k], grads)
    want, _ = tx.update(member, tx.init(member))
    got = jax.tree.map(lambda g: g[k], clipped)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5),
                 got, want)
  same = ic.clip_per_member(grads, jnp.float32(0.0))
  jax.tree.map(np.testing.assert_array_equal, same, grads)


@functools.cache
def _ensemble():
  model = models.get_model("ensemble", _V, members=_K, base="transformer",
                           size="tiny", num_layers=1, d_model=8, num_heads=2,
                           num_kv_heads=2, d_ff=16, max_len=_T)
  tokens = jax.random.randint(jax.random.PRNGKey(7), (_B, _T), 0, _V)
  params = model.init({"params": jax.random.PRNGKey(8),
                       "dropout": jax.random.PRNGKey(8)}, tokens)["params"]
  return model, tokens, params


def test_ensemble_member_k_is_the_base_model_with_params_k():
  model, tokens, params = _ensemble()
  out = model.apply({"params": params}, tokens)
  base = model.template.module
  for k in range(_K):
    p_k = jax.tree.map(lambda x: x[k], params["members"])
    np.testing.assert_allclose(
        out["logits"][k], base.apply({"params": p_k}, tokens)["logits"],
        rtol=1e-5, atol=1e-6)
  assert not np.allclose(out["logits"][0], out["logits"][1])  # own inits


def test_kernel_weight_decay_mask_skips_stacked_norm_scales():
  _, _, params = _ensemble()
  tx = optim.make_optimizer("adamw", weight_decay_mask="kernels")
  state = tx.init(params)
  state = optim.set_hyperparams(state, {"learning_rate": jnp.float32(0.1),
                                        "weight_decay": jnp.float32(1.0)})
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, state, params)
  m = params["members"]
  u = updates["members"]
  assert np.all(np.asarray(u["final_norm"]["scale"]) == 0)    # [K, D]
  np.testing.assert_allclose(u["layer_0"]["attn"]["q"]["kernel"],
                             -0.1 * m["layer_0"]["attn"]["q"]["kernel"],
                             rtol=1e-6)
