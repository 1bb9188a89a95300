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


@jax.jit
def _ensemble_quantities(logits, targets):
  return (jnp.exp(ic.log_mean_softmax(logits)),
          ic.log_mean_softmax(logits[:1]), jax.nn.log_softmax(logits[0]),
          ic.ensemble_token_nll(logits, targets),
          ic.member_token_nll(logits, targets).mean(0))


def test_log_mean_softmax_and_the_ensemble_nll():
  logits = _logits()
  targets = jax.random.randint(jax.random.PRNGKey(1), (_B, _T), 0, _V)
  probs = np.asarray(jax.nn.softmax(logits, -1)).mean(0)
  mean_p, one, log_softmax, nll, member_mean = _ensemble_quantities(
      logits, targets)
  np.testing.assert_allclose(mean_p, probs, rtol=1e-5)
  np.testing.assert_allclose(one, log_softmax, atol=1e-6)
  want = -np.log(np.take_along_axis(probs, np.asarray(targets)[..., None],
                                    -1)[..., 0])
  np.testing.assert_allclose(nll, want, rtol=1e-5)
  # The ensemble's NLL is at most the members' mean (Jensen).
  assert np.all(nll <= member_mean + 1e-6)


@jax.jit
def _distill_quantities(s, teacher, targets):
  one_hot = jnp.log(jax.nn.one_hot(targets, _V) + 1e-30)
  return (ic.member_token_nll(s[None], targets)[0],
          ic.distill_token_loss(s, teacher, targets, 0.0),
          ic.distill_token_loss(s, teacher, targets, 1.0),
          ic.soft_cross_entropy(s, teacher),
          ic.soft_cross_entropy(s, one_hot))


def test_distill_loss_limits_and_one_hot_teacher():
  s = _logits(2)[0]
  teacher = jax.nn.log_softmax(_logits(3)[0], -1)
  targets = jax.random.randint(jax.random.PRNGKey(4), (_B, _T), 0, _V)
  hard, w0, w1, soft, soft_one_hot = _distill_quantities(s, teacher, targets)
  np.testing.assert_allclose(w0, hard, rtol=1e-6)
  np.testing.assert_allclose(w1, soft, rtol=1e-6)
  np.testing.assert_allclose(soft_one_hot, hard, rtol=1e-5)


@jax.jit
def _clips(grads):
  tx = optax.clip_by_global_norm(2.0)
  per_member = jax.vmap(lambda m: tx.update(m, tx.init(m))[0])(grads)
  return (ic.clip_per_member(grads, jnp.float32(2.0)), per_member,
          ic.clip_per_member(grads, jnp.float32(0.0)))


def test_clip_per_member_equals_optax_clip_on_each_member():
  grads = {"a": jax.random.normal(jax.random.PRNGKey(5), (_K, 4, 3)),
           "b": jax.random.normal(jax.random.PRNGKey(6), (_K, 3)) * 5}
  got, want, unclipped = _clips(grads)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5),
               got, want)
  jax.tree.map(np.testing.assert_allclose, unclipped, grads)


@functools.cache
def _ensemble():
  model = models.get_model("ensemble", _V, members=_K, base="transformer",
                           size="tiny", num_layers=1, d_model=8, num_heads=2,
                           num_kv_heads=2, d_ff=16, max_len=_T)
  tokens = jax.random.randint(jax.random.PRNGKey(7), (_B, _T), 0, _V)
  params = jax.jit(lambda r: model.init({"params": r, "dropout": r},
                                        tokens)["params"])(
                                            jax.random.PRNGKey(8))
  return model, tokens, params


def test_ensemble_member_k_is_the_base_model_with_params_k():
  model, tokens, params = _ensemble()
  base = model.template.module

  @jax.jit
  def both(params):
    out = model.apply({"params": params}, tokens)["logits"]
    last = jax.tree.map(lambda x: x[_K - 1], params["members"])
    return out, base.apply({"params": last}, tokens)["logits"]

  out, ref = both(params)
  np.testing.assert_allclose(out[_K - 1], ref, rtol=1e-5, atol=1e-6)
  assert not np.allclose(out[0], out[1])       # each member its own init


def test_kernel_weight_decay_mask_skips_stacked_norm_scales():
  _, _, params = _ensemble()
  tx = optim.make_optimizer("adamw", weight_decay_mask="kernels")

  @jax.jit
  def decay_only(params):
    state = optim.set_hyperparams(tx.init(params), {
        "learning_rate": jnp.float32(0.1), "weight_decay": jnp.float32(1.0)})
    return tx.update(jax.tree.map(jnp.zeros_like, params), state, params)[0]

  u = decay_only(params)["members"]
  m = params["members"]
  assert np.all(np.asarray(u["final_norm"]["scale"]) == 0)    # [K, D]
  np.testing.assert_allclose(u["layer_0"]["attn"]["q"]["kernel"],
                             -0.1 * m["layer_0"]["attn"]["q"]["kernel"],
                             rtol=1e-6)
