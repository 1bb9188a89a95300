"""The decoder-only transformer: causality, packed segments, GQA, KV cache,
presets, the registered constructor and its one-line errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common import config as config_lib
from common import models
from common.models import transformer as tm

CONFIG = tm.TransformerConfig(vocab_size=50, num_layers=2, d_model=32,
                              num_heads=4, num_kv_heads=2, d_ff=48,
                              max_len=32)




class _Jitted:
  """`model.apply` jitted (eager flax dispatches op by op: slow on CPU)."""

  def __init__(self, model):
    self.config = model.config
    self._apply = jax.jit(model.apply, static_argnames=(
        "train", "return_attention", "compute_logits"))

  def apply(self, variables, tokens, train=False, **kwargs):
    return self._apply(variables, tokens, train=train, **kwargs)


@pytest.fixture(scope="module")
def model_and_params():
  model = tm.Transformer(CONFIG)
  tokens = jnp.zeros((1, 8), jnp.int32)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens)["params"]
  return _Jitted(model), params


def _tokens(seed, shape=(2, 12)):
  return jax.random.randint(jax.random.PRNGKey(seed), shape, 0, 50)


def _full(model, params, tokens):
  """The plain forward; every test calls it on `[2, 12]` tokens, so one
  compilation serves them all."""
  return model.apply({"params": params}, tokens, return_attention=True)


def test_outputs_and_causality(model_and_params):
  model, params = model_and_params
  tokens = _tokens(1)
  out = _full(model, params, tokens)
  assert out["logits"].shape == (2, 12, 50)
  assert out["features"].shape == (2, 12, 32)
  assert len(out["hidden_states"]) == 3 and len(out["attention"]) == 2
  attn = np.asarray(out["attention"][0])
  assert attn.shape == (2, 4, 12, 12)
  np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=1e-5)
  assert np.all(np.triu(attn, 1) == 0)
  # Changing the future leaves every earlier logit unchanged.
  changed = tokens.at[:, 7:].set((tokens[:, 7:] + 1) % 50)
  out2 = _full(model, params, changed)
  np.testing.assert_array_equal(out["logits"][:, :7], out2["logits"][:, :7])
  assert not np.allclose(out["logits"][:, 7:], out2["logits"][:, 7:])
  # logits = features @ unembedding.T
  np.testing.assert_allclose(
      out["logits"], out["features"] @ tm.unembedding(params).T, atol=1e-5)


def test_packed_segments_equal_separate_documents(model_and_params):
  model, params = model_and_params
  docs = _tokens(2)
  packed = jnp.concatenate([docs[:1], docs[1:], jnp.zeros((1, 4), jnp.int32)],
                           1)
  segments = jnp.array([[1] * 12 + [2] * 12 + [0] * 4])
  out = model.apply({"params": params}, {"tokens": packed,
                                         "segment_ids": segments})["logits"]
  alone = _full(model, params, docs)["logits"]
  np.testing.assert_allclose(out[0, :12], alone[0], atol=1e-5)
  np.testing.assert_allclose(out[0, 12:24], alone[1], atol=1e-5)
  assert np.all(np.isfinite(out))


def test_gqa_equals_mha_with_repeated_kv_heads(model_and_params):
  model, params = model_and_params
  mha = _Jitted(tm.Transformer(tm.TransformerConfig(**{**CONFIG.to_dict(),
                                               "num_kv_heads": 4})))
  hd, group = CONFIG.head_size, 2
  def repeat(kernel):  # [D, KV*hd] -> [D, H*hd], each KV head `group` times
    k = kernel.reshape(kernel.shape[0], -1, 1, hd)
    return jnp.repeat(k, group, axis=2).reshape(kernel.shape[0], -1)
  mha_params = jax.tree.map(lambda x: x, params)
  for i in range(CONFIG.num_layers):
    attn = mha_params[f"layer_{i}"]["attn"]
    for name in ("k", "v"):
      attn[name] = {"kernel": repeat(attn[name]["kernel"])}
  tokens = _tokens(4)
  np.testing.assert_allclose(
      mha.apply({"params": mha_params}, tokens)["logits"],
      _full(model, params, tokens)["logits"], atol=1e-5)


def test_kv_cache_prefill_and_steps_equal_full_forward(model_and_params):
  model, params = model_and_params
  tokens = _tokens(5)
  full = _full(model, params, tokens)["logits"]
  cache = tm.init_cache(CONFIG, 2, 16)
  out = model.apply({"params": params}, tokens[:, :9], cache=cache)
  pieces = [out["logits"]]
  for t in range(9, 12):
    out = model.apply({"params": params}, tokens[:, t:t + 1],
                      cache=out["cache"])
    pieces.append(out["logits"])
  assert int(out["cache"]["index"]) == 12
  np.testing.assert_allclose(jnp.concatenate(pieces, 1), full, atol=1e-5)


def test_knobs_build_and_run():
  tokens = _tokens(6, (1, 6))
  for fields in ({"norm": "none", "ffn": "linear", "learn_temperature": True,
                  "tie_embeddings": False},
                 {"norm": "layernorm", "ffn": "gelu", "qkv_bias": True,
                  "remat": True, "dropout": 0.1, "logit_softcap": 5.0}):
    model = models.get_model("transformer", 50, dtype="float32", **{
        "num_layers": 1, "d_model": 16, "num_heads": 2, "d_ff": 16,
        **fields})

    @jax.jit
    def run(model=model, fields=fields):
      # One compilation per model: init, a train-mode gradient (remat
      # only matters under one), a forward without logits.
      params = model.init(jax.random.PRNGKey(0), tokens)["params"]
      def loss(p):
        out = model.apply({"params": p}, tokens, train=True,
                          rngs={"dropout": jax.random.PRNGKey(1)})
        return out["logits"].mean(), out
      if fields.get("remat"):
        (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
      else:
        out, grads = loss(params)[1], {}
      no_logits = model.apply({"params": params}, tokens,
                              compute_logits=False)
      return params, out, grads, no_logits

    params, out, grads, no_logits = run()
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    assert out["features"].shape == (1, 6, 16)
    assert "logits" not in no_logits
    if fields.get("learn_temperature"):
      assert params["layer_0"]["attn"]["log_temperature"].shape == (2,)
      assert tm.unembedding(params).shape == (50, 16)
      assert "attn_norm" not in params["layer_0"]
    if fields.get("logit_softcap"):
      assert float(jnp.abs(out["logits"]).max()) <= 5.0


def test_preset_parameter_counts():
  counts = {name: tm.num_params(c) for name, c in tm.TRANSFORMER_SIZES.items()}
  assert 0.08e6 < counts["tiny"] < 0.12e6
  assert 1e6 < counts["small"] < 5e6
  assert abs(counts["gpt2_124m"] - 124e6) < 1.5e6
  assert counts["llama_1b"] == 1_235_814_400      # Llama 3.2 1B
  assert counts["qwen2_0.5b"] == 494_032_768      # Qwen2.5-0.5B


def test_bad_input_is_one_line(model_and_params):
  model, params = model_and_params
  with pytest.raises(ValueError, match="exceeds the model's max_len 32"):
    model.apply({"params": params}, jnp.zeros((1, 33), jnp.int32))
  with pytest.raises(ValueError, match="max_len 32"):
    tm.init_cache(CONFIG, 1, 64)
  for fields, pattern in (({"size": "huge"}, "unknown transformer size"),
                          ({"n_layers": 2}, "unknown transformer config key"),
                          ({"norm": "batchnorm"}, "allowed"),
                          ({"num_kv_heads": 3}, "multiple of num_kv_heads")):
    with pytest.raises(config_lib.ConfigError, match=pattern) as e:
      models.get_model("transformer", 50, **fields)
    assert "\n" not in str(e.value)
