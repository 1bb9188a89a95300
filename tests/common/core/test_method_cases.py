"""Method v2 covers what the coming papers need (WORKSPACE.md, "Method v2").

Each test builds the real harness step with a small method written the way
a paper would, and checks it against a hand-written computation:
teacher/student init from loaded weights, PGD inside the step, two views,
token batches with loss masks and gradient accumulation, alternating
(GAN-style) updates of a second player, and an unrolled inner loop.
"""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import optax

from common import config as config_lib
from common.core import method as method_lib
from common.core import optim
from common.core import train_step as train_step_lib
from common.eval import attacks
from common.models import registry as model_registry
from common.protocols import build
from common.protocols import supervised
from tests.conftest import tiny_config


def _blobs_config(method: str, **overrides) -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "test"
  c.data.update(name="gaussian_blobs", source="generator", input_key="x",
                preprocess="none")
  c.model.update(name="mlp")
  c.model.kwargs = dict(hidden_sizes=(16,))
  c.method.name = method
  if method not in c.method:
    c.method[method] = {}
  c.optim.update(name="sgd", momentum=0.0, nesterov=False, weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=0.1)
  c.train.update(batch_size=32, steps=4, eval_batch_size=64,
                 tensorboard=False, eval_every_epochs=0)
  c.lock()
  return config_lib.apply_overrides(c, overrides)


def _register(name: str, method: method_lib.Method) -> None:
  method_lib.register_method(name)(lambda cfg: method)


def _ce(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         labels).mean()


def test_student_initialised_from_a_loaded_teacher():
  """`load` reads weights on the host, `init` sets the student to them and
  keeps the teacher frozen in method_state."""
  base = build.setup(_blobs_config("cross_entropy"))
  teacher = jax.device_get(base.init_state().params)
  teacher = jax.tree.map(lambda p: p + 0.5, teacher)   # not the init

  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, rng
    out, model_state = ctx.forward(params)
    t_out, _ = ctx.forward(method_state["teacher"], train=False)
    kl = optax.kl_divergence(jax.nn.log_softmax(out["logits"]),
                             jax.nn.softmax(t_out["logits"])).mean()
    loss = _ce(out["logits"], batch["label"]) + kl
    return loss, method_lib.StepAux({"kl": kl}, model_state, method_state)

  def init(rng, ctx):
    del rng
    return method_lib.InitOutput(method_state={"teacher": ctx.extras},
                                 params=ctx.extras)

  _register("test_distill", method_lib.Method(
      name="test_distill", apply=apply, init=init,
      load=lambda cfg, run: teacher))
  s = build.setup(_blobs_config("test_distill"))
  state = s.init_state()
  chex.assert_trees_all_close(state.params, teacher)
  state, metrics, _ = s.train_step(state, {}, s.hparams)
  assert float(metrics["method/kl"]) < 1e-6   # student == teacher at step 0
  chex.assert_trees_all_close(state.method_state["teacher"], teacher)
  assert not jax.tree.all(jax.tree.map(jnp.array_equal, state.params,
                                       teacher))


def _pgd(model_apply, params, x, labels, eps, alpha, steps):
  """Hand-written L-inf PGD from x (sign steps, projected), no random
  start."""
  def body(_, xa):
    g = jax.grad(lambda z: _ce(model_apply(params, z), labels))(xa)
    xa = xa + alpha * jnp.sign(g)
    return x + jnp.clip(xa - x, -eps, eps)
  return jax.lax.fori_loop(0, steps, body, x)


def test_pgd_inside_the_step_matches_a_hand_written_attack():
  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    # The library attack inside the step; `_pgd` is the reference.
    fwd = lambda z: ctx.forward(params, z, train=False)[0]["logits"]
    x_adv = attacks.pgd(attacks.cross_entropy_loss(fwd, batch["label"]),
                        ctx.inputs, eps=hp["eps"], step_size=hp["alpha"],
                        steps=3, start="none", bounds=None)
    out, model_state = ctx.forward(params, x_adv)
    loss = _ce(out["logits"], batch["label"])
    return loss, method_lib.StepAux({}, model_state, method_state)

  _register("test_pgd", method_lib.Method(name="test_pgd", apply=apply))
  config = _blobs_config("test_pgd")
  config = config_lib.apply_overrides(config, {"method.test_pgd": {
      "eps": 0.3, "alpha": 0.1}})
  s = build.setup(config)
  state = s.init_state()
  params = jax.tree.map(jnp.array, state.params)
  batch = s.generator.sample(train_step_lib.procedural_key(state.rng, 0), 32)
  state, metrics, _ = s.train_step(state, {}, s.hparams)
  fwd = lambda p, z: s.model.apply({"params": p}, z, train=False)["logits"]
  x_adv = _pgd(fwd, params, batch["x"], batch["label"], 0.3, 0.1, 3)
  ref_loss = _ce(fwd(params, x_adv), batch["label"])
  assert float(ref_loss) > float(_ce(fwd(params, batch["x"]),
                                     batch["label"]))
  np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-5)
  assert float(jnp.max(jnp.abs(x_adv - batch["x"]))) <= 0.3 + 1e-6


def test_two_augmented_views_of_one_batch():
  """`ctx.preprocess(batch, key)` gives a method a second view."""
  def apply(hp, ctx, params, method_state, batch, rng):
    del hp
    k1, k2 = jax.random.split(rng)
    v1, v2 = ctx.preprocess(batch, k1), ctx.preprocess(batch, k2)
    o1, model_state = ctx.forward(params, v1)
    o2, model_state = ctx.forward(params, v2, model_state=model_state)
    loss = jnp.mean(jnp.square(jax.nn.softmax(o1["logits"])
                               - jax.nn.softmax(o2["logits"])))
    loss += _ce(o1["logits"], batch["label"])
    return loss, method_lib.StepAux({"views_differ": jnp.any(v1 != v2)
                                     .astype(jnp.float32)}, model_state,
                                    method_state)

  _register("test_views", method_lib.Method(name="test_views", apply=apply))
  c = tiny_config(**{"data.crop_padding": 2, "data.flip": True})
  with c.unlocked():
    c.method.test_views = {}
  s = build.setup(config_lib.apply_overrides(c, {"method.name":
                                                  "test_views"}))
  batches = s.train_batches(0)
  state, metrics, _ = s.train_step(s.init_state(), next(batches), s.hparams)
  batches.close()
  assert float(metrics["method/views_differ"]) == 1.0
  assert np.isfinite(metrics["loss"])


@model_registry.register_model("test_tiny_lm")
class TinyLM(nn.Module):
  """Embedding -> causal mean of the prefix -> logits (a toy LM)."""
  num_classes: int = 0
  vocab_size: int = 16
  dim: int = 8
  dtype: str = "float32"

  @nn.compact
  def __call__(self, tokens, train: bool = False):
    del train
    h = nn.Embed(self.vocab_size, self.dim)(tokens)
    prefix = jnp.cumsum(h, axis=1) / jnp.arange(1, h.shape[1] + 1)[None, :,
                                                                   None]
    logits = nn.Dense(self.vocab_size)(jnp.concatenate([h, prefix], -1))
    return {"logits": logits, "features": prefix}


def _lm_loss(hp, method_state, outputs, batch, params, rng):
  del hp, params, rng
  logits = outputs["logits"][:, :-1]
  targets = batch["tokens"][:, 1:]
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
  loss = method_lib.masked_mean(ce, batch["loss_mask"][:, :-1])
  return loss, {}, method_state


def test_token_batches_with_loss_masks_accumulate_to_the_global_mean():
  """Micro-batches with different token counts weigh by their counts."""
  _register("test_lm", method_lib.Method(name="test_lm", loss=_lm_loss))

  def config(micro):
    c = supervised.base_config()
    c.experiment = "test"
    c.data.update(name="token_copy", source="generator", input_key="tokens",
                  preprocess="none")
    c.model.name = "test_tiny_lm"
    c.method.name = "test_lm"
    c.method.test_lm = {}
    c.optim.update(name="adamw", weight_decay=0.0)
    c.schedule.update(name="constant", learning_rate=1e-2)
    c.train.update(batch_size=16, steps=3, micro_batches=micro,
                   eval_batch_size=16, tensorboard=False)
    c.lock()
    return c

  one, four = build.setup(config(1)), build.setup(config(4))
  s1, s4 = one.init_state(), four.init_state()
  batch = one.generator.sample(train_step_lib.procedural_key(s1.rng, 0), 16)
  counts = batch["loss_mask"].reshape(4, 4, -1).transpose(1, 0, 2).sum((1, 2))
  assert len(set(np.asarray(counts).tolist())) > 1   # unequal micro-batches
  for _ in range(3):
    s1, m1, _ = one.train_step(s1, {}, one.hparams)
    s4, m4, _ = four.train_step(s4, {}, four.hparams)
    np.testing.assert_allclose(m4["loss"], m1["loss"], rtol=1e-5)
  chex.assert_trees_all_close(s4.params, s1.params, rtol=1e-4, atol=1e-6)


def test_alternating_updates_of_a_second_player():
  """GAN-style: a critic in method_state takes its own optimizer step
  (through the core `optimizer_step`) inside the step, then the model's
  gradient is taken against the updated critic."""
  critic_tx = optim.make_optimizer("sgd")
  sched = {"learning_rate": 0.05, "warmup_steps": 0.0, "total_steps": 1.0,
           "boundaries": jnp.zeros((1,)), "decay_factor": 1.0}
  critic_hp = {"schedule": sched, "optim": {"momentum": 0.0,
                                            "weight_decay": 0.0,
                                            "max_norm": 1.0}}

  def critic_loss(w, feats, labels):
    return jnp.mean(jnp.square(feats @ w - labels.astype(jnp.float32)))

  def init(rng, ctx):
    w = 0.1 * jax.random.normal(rng, (16,))
    return {"w": w, "opt": critic_tx.init(w)}

  def value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn):
    del hp, rng, loss_fn
    feats = ctx.forward(params, train=False)[0]["features"]
    g_w = jax.grad(critic_loss)(method_state["w"],
                                jax.lax.stop_gradient(feats), batch["label"])
    w, opt, _ = train_step_lib.optimizer_step(
        critic_tx, "constant", critic_hp, ctx.step, method_state["w"],
        method_state["opt"], g_w)

    def model_loss(p):
      out, model_state = ctx.forward(p)
      loss = _ce(out["logits"], batch["label"]) - critic_loss(
          w, out["features"], batch["label"])
      return loss, method_lib.StepAux({}, model_state, {"w": w, "opt": opt})
    return ctx.value_and_grad(model_loss, params)

  _register("test_gan", method_lib.Method(name="test_gan", init=init,
                                          value_and_grad=value_and_grad))
  s = build.setup(_blobs_config("test_gan"))
  state = s.init_state()
  params, w = jax.tree.map(jnp.array, (state.params, state.method_state["w"]))
  batch = s.generator.sample(train_step_lib.procedural_key(state.rng, 0), 32)
  state, _, _ = s.train_step(state, {}, s.hparams)
  # By hand: critic SGD step, then the model's SGD step against it.
  apply = lambda p: s.model.apply({"params": p}, batch["x"], train=False)
  w_ref = w - 0.05 * jax.grad(critic_loss)(w, apply(params)["features"],
                                           batch["label"])
  g_p = jax.grad(lambda p: _ce(apply(p)["logits"], batch["label"])
                 - critic_loss(w_ref, apply(p)["features"], batch["label"]))(
                     params)
  p_ref = jax.tree.map(lambda p, g: p - 0.1 * g, params, g_p)
  chex.assert_trees_all_close(state.method_state["w"], w_ref, rtol=1e-5)
  chex.assert_trees_all_close(state.params, p_ref, rtol=1e-5, atol=1e-6)


def test_unrolled_inner_loop_differentiates_through_the_solution():
  """Bilevel: the loss of an inner ridge solution found by k unrolled GD
  steps; the harness gradient equals the one of the same unrolled loop
  written by hand."""
  def inner(theta_feats, y, k):
    w = jnp.zeros(theta_feats.shape[1])

    def gd(w, _):
      g = theta_feats.T @ (theta_feats @ w - y) / y.shape[0] + 0.1 * w
      return w - 0.02 * g, None
    return jax.lax.scan(gd, w, None, length=k)[0]

  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, rng
    out, model_state = ctx.forward(params)
    y = batch["label"].astype(jnp.float32)
    w = inner(out["features"], y, 20)
    loss = jnp.mean(jnp.square(out["features"] @ w - y))
    return loss, method_lib.StepAux({}, model_state, method_state)

  _register("test_bilevel", method_lib.Method(name="test_bilevel",
                                              apply=apply))
  s = build.setup(_blobs_config("test_bilevel"))
  state = s.init_state()
  params = jax.tree.map(jnp.array, state.params)
  batch = s.generator.sample(train_step_lib.procedural_key(state.rng, 0), 32)
  state, metrics, _ = s.train_step(state, {}, s.hparams)

  def ref(p):
    f = s.model.apply({"params": p}, batch["x"], train=False)["features"]
    y = batch["label"].astype(jnp.float32)
    return jnp.mean(jnp.square(f @ inner(f, y, 20) - y))
  value, g = jax.value_and_grad(ref)(params)
  np.testing.assert_allclose(metrics["loss"], value, rtol=1e-5)
  chex.assert_trees_all_close(
      state.params, jax.tree.map(lambda p, gi: p - 0.1 * gi, params, g),
      rtol=1e-5, atol=1e-6)
