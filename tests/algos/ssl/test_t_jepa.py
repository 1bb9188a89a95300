"""T-JEPA: masks, loss, padding = variable length, EMA, official parity."""

import functools
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.ssl import t_jepa
from algos.ssl import tjepa_net
from common import config as config_lib
from common.core import method as method_lib

D, R, P = 10, 1, 3
BOUNDS = t_jepa.mask_bounds(D, 0.2, 0.5, 0.2, 0.4)   # (2, 5, 2, 4)


NET = tjepa_net.TJEPANet(num_classes=2, num_features=D,
                         cat_cardinalities=(3, 4), hidden=8, layers=1,
                         heads=2, ffn=16, reg_tokens=R, pred_dim=8,
                         pred_layers=1, pred_heads=2, pred_ffn=16)


def _x(b, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(b, D)).astype(np.float32)
  x[:, -2] = rng.integers(0, 3, b)
  x[:, -1] = rng.integers(0, 4, b)
  return jnp.asarray(x)


def test_mask_bounds_round_like_python_and_reject_bad_shares():
  assert BOUNDS == (2, 5, 2, 4)
  assert t_jepa.mask_bounds(25, 0.1, 0.3, 0.1, 0.5) == (2, 8, 2, 12)  # 2.5->2
  with pytest.raises(config_lib.ConfigError, match="min context"):
    t_jepa.mask_bounds(10, 0.5, 0.9, 0.6, 0.8)


def test_masks_are_disjoint_in_range_and_offset_by_the_reg_tokens():
  kw = dict(batch=16, num_features=D, bounds=BOUNDS, num_preds=P,
            reg_tokens=R)
  sample = jax.jit(lambda k: (
      t_jepa.sample_masks(k, indexing="features", **kw),
      t_jepa.sample_masks(k, indexing="official", **kw)))
  for seed in range(3):
    m, off = jax.tree.map(np.asarray, sample(jax.random.PRNGKey(seed)))
    n_ctx, n_tgt = int(m["n_ctx"]), int(m["n_tgt"])
    assert 2 <= n_ctx <= 5 and 2 <= n_tgt <= 4 and n_ctx + n_tgt <= D
    assert (m["context_pos"][:, :R] == np.arange(R)).all()   # reg tokens
    assert m["context_valid"].sum(1).tolist() == [R + n_ctx] * 16
    assert (m["target_valid"].sum(-1) == n_tgt).all()
    for i in range(16):
      ctx = set(m["context_pos"][i][m["context_valid"][i]]) - set(range(R))
      assert len(ctx) == n_ctx and min(ctx) >= R and max(ctx) < R + D
      for p in range(P):
        tgt = set(m["target_pos"][i, p][m["target_valid"][i, p]])
        assert len(tgt) == n_tgt and not tgt & ctx and min(tgt) >= R
    assert off["context_pos"].shape == (16, 5)   # no reg tokens, no offset
    assert int(off["target_pos"].max()) < D


def test_padded_context_and_targets_equal_the_unpadded_computation():
  net = NET
  ctx = jnp.array([[0, 3, 5, 2], [0, 7, 1, 9]])
  tgt = jnp.array([[[4, 6, 8]], [[2, 3, 4]]])
  ones = jnp.ones((2, 1, 2), bool)
  pad_c = jnp.broadcast_to(jnp.arange(4) < 3, (2, 4))
  pad_t = jnp.broadcast_to(jnp.arange(3) < 2, (2, 1, 3))

  @jax.jit
  def run(key, x):
    params = net.init(key, x)["params"]
    apply = functools.partial(net.apply, {"params": params}, x)
    full = apply(context_pos=ctx[:, :3], context_valid=jnp.ones((2, 3), bool),
                 target_pos=tgt[..., :2], target_valid=ones)["prediction"]
    padded = apply(context_pos=ctx, context_valid=pad_c, target_pos=tgt,
                   target_valid=pad_t)["prediction"]
    enc = apply()
    tok = enc["tokens"]
    loss_full = t_jepa.jepa_loss(full, tok, tgt[..., :2], ones)
    loss_pad = t_jepa.jepa_loss(padded.at[..., 2, :].set(99.0), tok, tgt,
                                pad_t)
    grads = jax.grad(t_jepa.jepa_loss, argnums=(0, 1))(full, tok,
                                                       tgt[..., :2], ones)
    return full, padded, tok, loss_full, loss_pad, grads, enc["features"]

  full, padded, tok, loss_full, loss_pad, (g_pred, g_tok), feats = run(
      jax.random.PRNGKey(0), _x(2))
  np.testing.assert_allclose(padded[..., :2, :], full, atol=1e-5)
  np.testing.assert_allclose(loss_pad, loss_full, rtol=1e-6)
  diff = np.asarray(full) - np.asarray(tok)[
      np.arange(2)[:, None, None], np.asarray(tgt[..., :2])]
  np.testing.assert_allclose(loss_full, np.mean(diff ** 2), rtol=1e-5)
  # The target side carries no gradient; the prediction's is 2 (z - h) / N.
  assert float(jnp.abs(g_tok).max()) == 0.0
  np.testing.assert_allclose(g_pred, 2 * diff / diff.size, rtol=1e-4,
                             atol=1e-7)
  assert feats.shape == (2, (R + D) * 8)


def test_ema_schedule_and_update_are_traced():
  method = method_lib.get_method("t_jepa", {})
  run = method_lib.RunInfo(num_examples=0, num_classes=2, steps_per_epoch=10,
                           num_epochs=1, total_steps=10, global_batch_size=8)
  traces = []

  @jax.jit
  def update(hp, step, target, online):
    traces.append(1)
    ctx = types.SimpleNamespace(step=step)
    return method.after_update(hp, ctx, {"encoder": online},
                               {"target": target}, None)[1]["target"]

  hp = jax.tree.map(jnp.asarray, method.hparams({}, run))
  t, o = jnp.ones(3), jnp.zeros(3)
  # official run.py: m_i = start + i (end - start) / (ipe epochs ipe_scale)
  np.testing.assert_allclose(update(hp, jnp.int32(0), t, o), 0.996, rtol=1e-6)
  np.testing.assert_allclose(update(hp, jnp.int32(5), t, o), 0.998, rtol=1e-6)
  hp2 = dict(hp, ema_start=jnp.asarray(0.5))
  np.testing.assert_allclose(update(hp2, jnp.int32(0), t, o), 0.5)
  assert len(traces) == 1


# ------------------------------------------------------------- official
_OFFICIAL = os.environ.get("REGJAX_OFFICIAL_TJEPA_DIR", "")


@pytest.mark.skipif(not _OFFICIAL, reason=(
    "set REGJAX_OFFICIAL_TJEPA_DIR to a checkout of jose-melo/t-jepa "
    "(fetch, then git archive HEAD | tar -x) to compare with its encoder, "
    "predictor, masks and loss"))
def test_loss_and_mask_bounds_equal_the_official_code():
  torch = pytest.importorskip("torch")
  if "tabulate" not in sys.modules:   # only used for printing
    sys.modules["tabulate"] = types.SimpleNamespace(tabulate=lambda *a, **k: "")
  sys.path.insert(0, _OFFICIAL)
  from src import encoder as enc_mod  # pylint: disable=import-outside-toplevel
  from src import mask as mask_mod  # pylint: disable=import-outside-toplevel
  from src import predictors as pred_mod  # pylint: disable=import-outside-toplevel
  from src.utils import train_utils  # pylint: disable=import-outside-toplevel
  for d, shares in ((D, (0.2, 0.5, 0.2, 0.4)), (25, (0.1, 0.3, 0.1, 0.5)),
                    (54, (0.13628, 0.36819, 0.15563, 0.62223))):
    coll = mask_mod.MaskCollator(False, *shares, 4, 1, d, [])
    assert (coll.min_context, coll.max_context, coll.min_target,
            coll.max_target) == t_jepa.mask_bounds(d, *shares)

  torch.manual_seed(0)
  args = types.SimpleNamespace(n_cls_tokens=R, model_act_func="relu")
  ctx_enc = enc_mod.Encoder(
      idx_num_features=list(range(D - 2)),
      cardinalities=[(D - 2, 3), (D - 1, 4)], hidden_dim=8, num_layers=1,
      num_heads=2, p_dropout=0.0, layer_norm_eps=1e-5, gradient_clipping=0,
      feature_type_embedding=False, feature_index_embedding=False,
      dim_feedforward=16, device="cpu", args=args).eval()
  pred = pred_mod.Predictors(
      pred_type="transformer", hidden_dim=8, pred_embed_dim=8,
      num_features=D, num_layers=1, num_heads=2, p_dropout=0.0,
      layer_norm_eps=1e-5, activation="relu", device="cpu",
      cardinalities=[], pred_dim_feedforward=16).eval()
  sd = {k: v.detach().numpy() for k, v in ctx_enc.state_dict().items()}
  sp = {k: v.detach().numpy() for k, v in pred.state_dict().items()}

  def block(s, pre):
    ln = lambda n: {"scale": s[f"{pre}{n}.weight"], "bias": s[f"{pre}{n}.bias"]}
    lin = lambda n: {"kernel": s[f"{pre}{n}.weight"].T,
                     "bias": s[f"{pre}{n}.bias"]}
    return {"in_proj": {"kernel": s[f"{pre}self_attn.in_proj_weight"].T,
                        "bias": s[f"{pre}self_attn.in_proj_bias"]},
            "out_proj": lin("self_attn.out_proj"), "linear1": lin("linear1"),
            "linear2": lin("linear2"), "norm1": ln("norm1"),
            "norm2": ln("norm2")}

  def tab(s, pre):
    lin = lambda n: {"kernel": s[f"{pre}{n}.weight"].T,
                     "bias": s[f"{pre}{n}.bias"]}
    ln = lambda n: {"scale": s[f"{pre}{n}.weight"], "bias": s[f"{pre}{n}.bias"]}
    return {"layer0": block(s, f"{pre}transformer.layers.0."),
            "layernorm1": ln("layernorm1"), "layernorm2": ln("layernorm2"),
            "fc": lin("fc")}

  pp = "predictors."
  params = {
      "encoder": {
          "weight": sd["tokenizer.weight"], "bias": sd["tokenizer.bias"],
          "cat_embed0": sd["tokenizer.category_embeddings.0.weight"],
          "cat_embed1": sd["tokenizer.category_embeddings.1.weight"],
          "body": tab(sd, "encoder.")},
      "predictor": {
          "predictor_emb": {"kernel": sp[pp + "predictor_emb.weight"].T,
                            "bias": sp[pp + "predictor_emb.bias"]},
          "mask_token": sp[pp + "mask_token"].reshape(-1),
          "transformer": tab(sp, pp + "transformer."),
          "predictor_norm": {"scale": sp[pp + "predictor_norm.weight"],
                             "bias": sp[pp + "predictor_norm.bias"]},
          "predictor_proj": {"kernel": sp[pp + "predictor_proj.weight"].T,
                             "bias": sp[pp + "predictor_proj.bias"]}}}
  net = NET
  ours = jax.eval_shape(net.init, jax.random.PRNGKey(0), _x(2))["params"]
  params = jax.tree.map(jnp.asarray, params)
  assert jax.tree.structure(params) == jax.tree.structure(ours)

  x = np.asarray(_x(6, seed=1))
  rng = np.random.default_rng(0)
  ctx = np.stack([rng.permutation(D)[:4] for _ in range(6)])
  tgt = np.stack([[np.setdiff1d(np.arange(D), c)[rng.permutation(D - 4)[:3]]
                   for _ in range(P)] for c in ctx])          # [b, P, 3]
  with torch.no_grad():
    xt = torch.tensor(x)
    h = train_utils.apply_masks_from_idx(
        ctx_enc(xt), [torch.tensor(tgt[:, p]) for p in range(P)])
    z = ctx_enc(xt, [torch.tensor(ctx)])
    zp = pred(z, [torch.tensor(ctx)], [torch.tensor(tgt[:, p])
                                        for p in range(P)])
    official = float(torch.nn.MSELoss()(zp, h))
  masks = dict(context_pos=jnp.asarray(ctx),
               context_valid=jnp.ones(ctx.shape, bool),
               target_pos=jnp.asarray(tgt), target_valid=jnp.ones(tgt.shape,
                                                                  bool))

  @jax.jit
  def ours_fn(params, x):
    out = net.apply({"params": params}, x, **masks)
    tokens = net.apply({"params": params}, x)["tokens"]
    return out, t_jepa.jepa_loss(out["prediction"], tokens,
                                 masks["target_pos"], masks["target_valid"])

  out, ours_loss = ours_fn(params, jnp.asarray(x))
  np.testing.assert_allclose(float(ours_loss), official, rtol=1e-5)
  np.testing.assert_allclose(
      np.asarray(out["prediction"]).transpose(1, 0, 2, 3).reshape(zp.shape),
      zp.numpy(), atol=1e-5)
