"""Hugging Face Llama- and Qwen2-family checkpoints -> `Transformer` params.

A checkpoint directory holds `config.json` and the weights as
`model.safetensors` or shards listed in `model.safetensors.index.json`
(what `save_pretrained` writes; nothing is downloaded). The architecture
maps one to one onto `common.models.transformer` (RMSNorm pre-norm, SwiGLU,
RoPE in the rotate-half layout, grouped-query attention, qkv bias for
Qwen2, Llama 3 RoPE scaling):

  model.embed_tokens.weight [V, D]              -> embed/embedding
  model.layers.{i}.input_layernorm.weight       -> layer_{i}/attn_norm/scale
  model.layers.{i}.self_attn.{q,k,v,o}_proj.*   -> layer_{i}/attn/{q,k,v,o}/*
  model.layers.{i}.post_attention_layernorm.*   -> layer_{i}/mlp_norm/scale
  model.layers.{i}.mlp.{gate,up,down}_proj.*    -> layer_{i}/mlp/{gate,up,down}
  model.norm.weight                             -> final_norm/scale
  lm_head.weight [V, D] (untied only)           -> head/kernel [D, V]

(linear `weight [out, in]` -> `kernel [in, out]`). A config value the
architecture cannot express (another model type, activation, RoPE scaling
type, sliding-window attention, biases Llama does not have) is a one-line
`HFCheckpointError` naming the key and what is allowed; so is a missing,
unexpected or mis-shaped tensor.

  config, params = load_hf_checkpoint("/ckpt/Qwen2.5-0.5B")
  model = Transformer(config)
  logits = model.apply({"params": params}, tokens)["logits"]
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import jax
import jax.numpy as jnp
from common.models import transformer as transformer_lib

_FAMILIES = ("llama", "qwen2")
_ROPE_TYPES = ("default", "llama3")


class HFCheckpointError(ValueError):
  """The checkpoint cannot be expressed by (or loaded into) `Transformer`."""


def _fail(message: str):
  raise HFCheckpointError(message)


def config_from_hf(hf: dict[str, Any], dtype: str = "float32",
                   param_dtype: str = "float32"
                   ) -> transformer_lib.TransformerConfig:
  """The `TransformerConfig` of a Llama/Qwen2 `config.json` dict."""
  family = hf.get("model_type")
  if family not in _FAMILIES:
    _fail(f"config.json model_type={family!r}; allowed: {_FAMILIES}")
  act = hf.get("hidden_act", "silu")
  if act != "silu":
    _fail(f"config.json hidden_act={act!r}; allowed: 'silu' (SwiGLU)")
  if hf.get("mlp_bias"):
    _fail("config.json mlp_bias=true; allowed: false")
  if family == "llama" and hf.get("attention_bias"):
    _fail("config.json attention_bias=true (Llama's o_proj bias); allowed: "
          "false")
  if family == "qwen2" and hf.get("use_sliding_window"):
    _fail("config.json use_sliding_window=true (sliding-window attention); "
          "allowed: false")
  layer_types = hf.get("layer_types") or []
  if any(t != "full_attention" for t in layer_types):
    _fail(f"config.json layer_types={sorted(set(layer_types))}; allowed: "
          "['full_attention']")
  if hf.get("partial_rotary_factor", 1.0) != 1.0:
    _fail(f"config.json partial_rotary_factor="
          f"{hf['partial_rotary_factor']}; allowed: 1.0")
  scaling = hf.get("rope_scaling") or {}
  rope_type = scaling.get("rope_type", scaling.get("type", "default"))
  if rope_type not in _ROPE_TYPES:
    _fail(f"config.json rope_scaling rope_type={rope_type!r}; allowed: "
          f"{_ROPE_TYPES} or null")
  rope_scaling = () if rope_type == "default" else (
      float(scaling["factor"]), float(scaling["low_freq_factor"]),
      float(scaling["high_freq_factor"]),
      int(scaling["original_max_position_embeddings"]))
  heads = hf["num_attention_heads"]
  head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
  return transformer_lib.TransformerConfig(
      vocab_size=hf["vocab_size"], num_layers=hf["num_hidden_layers"],
      d_model=hf["hidden_size"], num_heads=heads,
      num_kv_heads=hf.get("num_key_value_heads") or heads,
      d_ff=hf["intermediate_size"], max_len=hf["max_position_embeddings"],
      norm="rmsnorm", norm_eps=hf.get("rms_norm_eps", 1e-6), ffn="swiglu",
      tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
      rope_theta=float(hf.get("rope_theta", 10000.0)),
      qkv_bias=family == "qwen2", dropout=0.0,
      head_dim=0 if head_dim * heads == hf["hidden_size"] else head_dim,
      rope_scaling=rope_scaling, dtype=dtype, param_dtype=param_dtype)


def _target_name(name: str) -> tuple[str, ...] | None:
  """Our param path of an HF tensor name (None: not ours to load)."""
  if name == "model.embed_tokens.weight":
    return ("embed", "embedding")
  if name == "model.norm.weight":
    return ("final_norm", "scale")
  if name == "lm_head.weight":
    return ("head", "kernel")
  m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
  if m is None:
    return None
  layer, module, kind = f"layer_{m.group(1)}", m.group(2), m.group(3)
  norms = {"input_layernorm": "attn_norm",
           "post_attention_layernorm": "mlp_norm"}
  if module in norms and kind == "weight":
    return (layer, norms[module], "scale")
  m2 = re.fullmatch(r"(self_attn|mlp)\.(\w+)_proj", module)
  if m2 is None:
    return None
  group = "attn" if m2.group(1) == "self_attn" else "mlp"
  return (layer, group, m2.group(2), "kernel" if kind == "weight" else "bias")


def _read_tensors(path: str) -> dict[str, Any]:
  """name -> array of every tensor in the checkpoint's safetensors files."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  index = os.path.join(path, "model.safetensors.index.json")
  if os.path.exists(index):
    with open(index) as f:
      files = sorted(set(json.load(f)["weight_map"].values()))
  elif os.path.exists(os.path.join(path, "model.safetensors")):
    files = ["model.safetensors"]
  else:
    _fail(f"no model.safetensors or model.safetensors.index.json in {path}")
  tensors = {}
  for name in files:
    # The flax framework reads bfloat16 too (numpy has no bfloat16).
    with safe_open(os.path.join(path, name), framework="flax") as f:
      for key in f.keys():
        tensors[key] = f.get_tensor(key)
  return tensors


def load_hf_checkpoint(path: str, dtype: str = "float32",
                       param_dtype: str = "float32"
                       ) -> tuple[transformer_lib.TransformerConfig, Any]:
  """Loads a Llama/Qwen2 checkpoint directory.

  Args:
    path: directory with `config.json` and safetensors weights.
    dtype: the model's compute dtype.
    param_dtype: the dtype the parameters are cast to.

  Returns:
    `(config, params)`: `Transformer(config).apply({"params": params}, ...)`
    reproduces the checkpoint's logits.

  Raises:
    HFCheckpointError: a one-line reason (see the module docstring).
  """
  config_path = os.path.join(path, "config.json")
  if not os.path.exists(config_path):
    _fail(f"no config.json in {path}; expected a save_pretrained directory")
  with open(config_path) as f:
    config = config_from_hf(json.load(f), dtype, param_dtype)
  expected = jax.eval_shape(
      lambda: transformer_lib.Transformer(config).init(
          jax.random.PRNGKey(0), jnp.zeros((1, 1), jnp.int32)))["params"]
  params: dict[str, Any] = {}
  for name, tensor in _read_tensors(path).items():
    target = _target_name(name)
    if name.endswith("rotary_emb.inv_freq") or (
        target == ("head", "kernel") and config.tie_embeddings):
      continue  # recomputed / the tied embedding itself
    node = expected
    for key in target or ():
      node = node.get(key) if isinstance(node, dict) else None
      if node is None:
        break
    if target is None or node is None:
      _fail(f"unexpected tensor {name!r} in {path}; the architecture has "
            "no place for it")
    value = tensor.T if target[-1] == "kernel" else tensor
    if value.shape != node.shape:
      want = node.shape[::-1] if target[-1] == "kernel" else node.shape
      _fail(f"tensor {name!r} has shape {tuple(tensor.shape)}; config.json "
            f"implies {tuple(want)}")
    sub = params
    for key in target[:-1]:
      sub = sub.setdefault(key, {})
    sub[target[-1]] = jnp.asarray(value, jnp.dtype(param_dtype))
  missing = [
      "/".join(str(getattr(k, "key", k)) for k in p)
      for p, _ in jax.tree_util.tree_flatten_with_path(expected)[0]
      if _lookup(params, p) is None]
  if missing:
    _fail(f"checkpoint {path} lacks {len(missing)} tensor(s), e.g. "
          f"{missing[:3]}")
  return config, params


def _lookup(tree: dict[str, Any], path) -> Any:
  for k in path:
    tree = tree.get(getattr(k, "key", k)) if isinstance(tree, dict) else None
    if tree is None:
      return None
  return tree

