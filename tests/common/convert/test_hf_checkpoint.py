"""Llama and Qwen2 checkpoints written by `transformers` load into our
transformer with equal logits (fp32, 1e-5), with and without the KV cache;
configs the architecture cannot express fail in one line."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common.convert import hf_checkpoint
from common.models import transformer as tm

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

_SHAPE = dict(vocab_size=64, hidden_size=32, intermediate_size=48,
              num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64)
_LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16}


def _save_random(path, family: str):
  """A tiny random `family` checkpoint (every tensor random, biases and
  norm scales included, so a mis-mapped tensor shows) at `path`."""
  torch.manual_seed(0)
  if family == "llama":
    config = transformers.LlamaConfig(
        **_SHAPE, rope_theta=500.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False, rope_scaling=_LLAMA3_ROPE)
    model = transformers.LlamaForCausalLM(config)
  else:
    config = transformers.Qwen2Config(**_SHAPE, rope_theta=1e6,
                                      tie_word_embeddings=True)
    model = transformers.Qwen2ForCausalLM(config)
  with torch.no_grad():
    for name, p in model.named_parameters():
      p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in name else
              0.1 * torch.randn_like(p))
  # Llama in shards with an index, Qwen2 in one file: both layouts.
  model.save_pretrained(path, max_shard_size="20KB" if family == "llama"
                        else "1GB")
  return model.eval()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_logits_equal_transformers(tmp_path, family):
  hf_model = _save_random(tmp_path, family)
  if family == "llama":
    assert os.path.exists(tmp_path / "model.safetensors.index.json")
  config, params = hf_checkpoint.load_hf_checkpoint(str(tmp_path))
  assert config.qkv_bias == (family == "qwen2")
  tokens = np.random.RandomState(0).randint(0, 64, (2, 24))
  with torch.no_grad():
    want = hf_model(torch.tensor(tokens)).logits.numpy()
  model = tm.Transformer(config)
  apply = jax.jit(model.apply)
  got = apply({"params": params}, jnp.asarray(tokens))["logits"]
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  # Prefill 20 tokens (past the llama3 scaling's original length), then
  # one token at a time through the cache.
  out = apply({"params": params}, jnp.asarray(tokens[:, :20]),
              cache=tm.init_cache(config, 2, 32))
  pieces = [out["logits"]]
  for t in range(20, 24):
    out = apply({"params": params}, jnp.asarray(tokens[:, t:t + 1]),
                cache=out["cache"])
    pieces.append(out["logits"])
  np.testing.assert_allclose(jnp.concatenate(pieces, 1), want, atol=1e-5,
                             rtol=0)


_BASE = dict(model_type="llama", vocab_size=64, hidden_size=32,
             intermediate_size=48, num_hidden_layers=1,
             num_attention_heads=4, max_position_embeddings=64)


@pytest.mark.parametrize("change, key", [
    ({"model_type": "gpt2"}, "model_type"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_type"),
    ({"model_type": "qwen2", "use_sliding_window": True},
     "use_sliding_window"),
    ({"attention_bias": True}, "attention_bias"),
    ({"mlp_bias": True}, "mlp_bias"),
])
def test_inexpressible_config_is_one_line_error(tmp_path, change, key):
  with open(tmp_path / "config.json", "w") as f:
    json.dump({**_BASE, **change}, f)
  with pytest.raises(hf_checkpoint.HFCheckpointError, match=key) as e:
    hf_checkpoint.load_hf_checkpoint(str(tmp_path))
  assert "\n" not in str(e.value) and "allowed" in str(e.value)


def test_mismatched_tensor_shape_names_the_tensor(tmp_path):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  with open(tmp_path / "config.json", "w") as f:
    json.dump({**_BASE, "tie_word_embeddings": True}, f)
  save_file({"model.embed_tokens.weight": np.zeros((64, 16), np.float32)},
            str(tmp_path / "model.safetensors"))
  with pytest.raises(hf_checkpoint.HFCheckpointError,
                     match="model.embed_tokens.weight.*implies"):
    hf_checkpoint.load_hf_checkpoint(str(tmp_path))
