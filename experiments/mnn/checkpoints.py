"""The paper's experiment: MNN and Matrix Entropy of released checkpoints.

Analysis `mnn_checkpoints` (protocol `analysis`, no training): for every
Llama / Qwen2-family checkpoint directory `checkpoints.root/<name>`
(`config.json`, safetensors, `tokenizer.json`; loaded by
`common/convert/hf_checkpoint.py`), it tokenizes the first
`checkpoints.num_texts` texts of a text split with the checkpoint's own
tokenizer (truncated to `max_len`), runs the model on each text alone and
scores the final hidden states `[T, d]` as the official `MNN.py` does
(`algos/analysis/matrix_nuclear_norm.py`). Texts are right-padded to a
power-of-two length (causal attention: padding never reaches a real
token; the scores mask it), so at most log2(max_len) shapes compile.

Metrics per checkpoint `<name>/...`: `mnn` and `matrix_entropy` (means
over texts), and seconds spent in the forward passes and in each metric
(`seconds_forward`, `seconds_mnn`, `seconds_me`: the paper's speed claim
compares the metrics, both after the same inference).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from algos.analysis import matrix_nuclear_norm as mnn_lib
from common import config as config_lib
from common.convert import hf_checkpoint
from common.data import sources
from common.data import tokenizers
from common.data.text import source as text_source
from common.models import transformer as transformer_lib
from common.protocols import analysis

RULES = {"checkpoints.num_texts": config_lib.at_least(1, integer=True),
         "checkpoints.max_len": config_lib.at_least(2, integer=True)}


def section() -> mlc.ConfigDict:
  """`config.checkpoints`: what the analysis reads."""
  return mlc.ConfigDict(dict(
      root="", names=(), dataset="python_stdlib", split="validation",
      text_key="", data_dir="", num_texts=1000, max_len=2048,
      dtype="float32"))


def _bucket(n: int, max_len: int) -> int:
  return min(max_len, 1 << max(n - 1, 1).bit_length())


def score_checkpoint(path: str, texts: list[str], max_len: int,
                     dtype: str = "float32") -> dict[str, float]:
  """`score_texts` with the checkpoint (and tokenizer) at `path`."""
  config, params = hf_checkpoint.load_hf_checkpoint(path, dtype=dtype)
  return score_texts(transformer_lib.Transformer(config), params,
                     tokenizers.load_tokenizer(path), texts, max_len)


def score_texts(model: Any, params: Any, tok: Any, texts: list[str],
                max_len: int) -> dict[str, float]:
  """Mean MNN / Matrix Entropy of `texts` (each run alone, cut to
  `max_len` tokens; texts under 2 tokens are skipped), and the seconds of
  the forward passes and of each metric."""
  forward = jax.jit(lambda p, t: model.apply(
      {"params": p}, t, compute_logits=False)["features"][0])
  mnn_fn = jax.jit(mnn_lib.mnn_score)
  me_fn = jax.jit(mnn_lib.matrix_entropy)
  secs = {"forward": 0.0, "mnn": 0.0, "me": 0.0}
  got = {"mnn": [], "matrix_entropy": []}
  for text in texts:
    ids = tok.encode(text)[:max_len]
    if len(ids) < 2:
      continue
    t = _bucket(len(ids), max_len)
    tokens = np.full((1, t), tok.pad_id or 0, np.int32)
    tokens[0, :len(ids)] = ids
    mask = jnp.arange(t) < len(ids)
    start = time.perf_counter()
    feats = jax.block_until_ready(forward(params, tokens)).astype(jnp.float32)
    secs["forward"] += time.perf_counter() - start
    for key, fn, out in (("mnn", mnn_fn, "mnn"),
                         ("me", me_fn, "matrix_entropy")):
      start = time.perf_counter()
      got[out].append(float(fn(feats, mask)))
      secs[key] += time.perf_counter() - start
  if not got["mnn"]:
    raise ValueError("no text of at least 2 tokens to score")
  return {"mnn": float(np.mean(got["mnn"])),
          "matrix_entropy": float(np.mean(got["matrix_entropy"])),
          "texts": float(len(got["mnn"])),
          **{f"seconds_{k}": v for k, v in secs.items()}}


def run(config: mlc.ConfigDict) -> dict[str, float]:
  c = config.checkpoints
  missing = [n for n in c.names
             if not os.path.isfile(os.path.join(c.root, n, "config.json"))]
  if missing:
    raise sources.DatasetNotFoundError(
        f"config.checkpoints: no config.json under {c.root!r} for "
        f"{missing}; allowed: Llama / Qwen2 checkpoint directories "
        "(config.json, safetensors, tokenizer.json)")
  data_dir = os.fspath(c.data_dir or sources.default_data_dir())
  texts = text_source.read_texts(c.dataset, c.split, data_dir, c.text_key,
                                 c.num_texts)
  out = {}
  for name in c.names:
    for key, value in score_checkpoint(os.path.join(c.root, name), texts,
                                       c.max_len, c.dtype).items():
      out[f"{name}/{key}"] = value
  return out


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)
  c = config.checkpoints
  if not c.names:
    raise config_lib.ConfigError(
        "config.checkpoints.names is empty; allowed: checkpoint directory "
        "names under config.checkpoints.root")


@analysis.register_analysis("mnn_checkpoints")
def make() -> analysis.Analysis:
  return analysis.Analysis(run=run, validate=validate,
                           smoke={"checkpoints.num_texts": 2,
                                  "checkpoints.max_len": 64})
