"""Text splits as random-access sources of packed token rows.

`open_data(data_config)` opens `config.data.train_split` and `eval_split`
of a text dataset (`config.data.source = "text"`) as sources the
deterministic loader (`common.data.loader`) batches like image splits: a
row is a pure function of its number, so a batch is a pure function of
`(seed, step)` and a resumed run sees the same batches. The text settings
live in `config.data.kwargs` (`DEFAULTS`):

* `tokenizer`: what `common.data.tokenizers.get_tokenizer` takes
  (`"byte"`, the default; a `tokenizer.json` path);
* `seq_len`: T, next-token pairs per row;
* `text_key` / `prompt_key`: record features ("" = the dataset's default:
  `python_stdlib` text, `arithmetic` prompt + completion, else `text`);
  targets inside the prompt get no loss;
* `packing`: `"stream"` tokenizes the whole split once and packs it
  without padding (`common.data.text.packing`; splits that fit in memory:
  the in-repo corpora); `"rows"` packs row r from records
  `[r k, (r+1) k)`, `k = docs_per_row`, cut to T and padded, tokenized on
  demand (full-scale `lm1b`, `c4`, `wikipedia` read from `data_dir`);
* `max_train_rows`: keep only the first n training rows (0 = all): a
  unique-data budget that epochs then repeat;
* `max_eval_rows`: evaluate on the first n rows of the eval split only
  (0 = all).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import numpy as np
import tensorflow_datasets as tfds

from common import config as config_lib
from common.data import sources
from common.data import tokenizers
from common.data.text import packing

DEFAULTS = {"tokenizer": "byte", "seq_len": 128, "text_key": "",
            "prompt_key": "", "packing": "stream", "docs_per_row": 8,
            "max_train_rows": 0, "max_eval_rows": 0}
RULES = {"seq_len": config_lib.at_least(2, integer=True),
         "packing": config_lib.one_of("stream", "rows"),
         "docs_per_row": config_lib.at_least(1, integer=True),
         "max_train_rows": config_lib.at_least(0, integer=True),
         "max_eval_rows": config_lib.at_least(0, integer=True)}
IN_REPO_TEXT = ("python_stdlib", "arithmetic")
CATALOGUE_EXAMPLES = ("lm1b", "c4/en", "wikipedia/20230601.en")
_DEFAULT_KEYS = {"python_stdlib": ("text", ""),
                 "arithmetic": ("completion", "prompt")}


def settings(data_config: Any) -> dict[str, Any]:
  """`config.data.kwargs` over `DEFAULTS`, checked (`ConfigError`)."""
  given = data_config.kwargs.to_dict()
  unknown = set(given) - set(DEFAULTS)
  if unknown:
    raise config_lib.ConfigError(
        f"config.data.kwargs has {sorted(unknown)}, which text data does not "
        f"read; it reads {sorted(DEFAULTS)}")
  kw = {**DEFAULTS, **given}
  spec = kw["tokenizer"]
  if not isinstance(spec, str) or (spec != "byte" and
                                   not os.path.exists(spec)):
    raise config_lib.ConfigError(
        f"config.data.kwargs.tokenizer={spec!r} is neither 'byte' nor an "
        "existing tokenizer.json (or a directory holding one)")
  for key, rule in RULES.items():
    if not rule.test(kw[key]):
      raise config_lib.ConfigError(
          f"config.data.kwargs.{key}={kw[key]!r} is not allowed: expected "
          f"{rule.allowed}")
  return kw


def _builder(name: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """The prepared builder of `name`; a one-line error when it is not."""
  if sources._base_name(name) in sources.IN_REPO_BUILDERS:  # pylint: disable=protected-access
    sources.prepare_in_repo(name, data_dir)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = builder.is_prepared()
  except (tfds.core.registered.DatasetNotFoundError, ValueError):
    prepared = False
  if not prepared:
    raise sources.DatasetNotFoundError(
        f"text dataset {name!r} is not prepared in data_dir {data_dir!r}; "
        f"allowed: the in-repo {list(IN_REPO_TEXT)} (built on first use) or "
        f"a TFDS text dataset such as {list(CATALOGUE_EXAMPLES)} prepared "
        "there with `tfds build <name> --file_format=array_record "
        "--data_dir=<data_dir>`")
  return builder


def _records(name: str, split: str, data_dir: str):
  builder = _builder(name, data_dir)
  sources._check_split(split, list(builder.info.splits.keys()), name)  # pylint: disable=protected-access
  try:
    return builder.as_data_source(split=split)
  except NotImplementedError as e:
    raise sources.DatasetNotFoundError(
        f"text dataset {name!r} is prepared as "
        f"{builder.info.file_format.value}; rebuild it with --file_format="
        "array_record (random access without TensorFlow)") from e


def _read(records, indices) -> list[Any]:
  keys = [int(i) for i in indices]
  if hasattr(records, "__getitems__"):  # one batched read
    return list(records.__getitems__(keys))
  return [records[i] for i in keys]


def _text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _keys(name: str, kw: dict[str, Any]) -> tuple[str, str]:
  text_key, prompt_key = _DEFAULT_KEYS.get(sources._base_name(name),  # pylint: disable=protected-access
                                           ("text", ""))
  return kw["text_key"] or text_key, kw["prompt_key"] or prompt_key


def _documents(tokenizer, records, keys: tuple[str, str]
               ) -> packing.Documents:
  text_key, prompt_key = keys
  # Records with no text (a file without docstrings) are no documents.
  records = [r for r in records if _text(r[text_key])]
  texts = [_text(r[text_key]) for r in records]
  prompts = [_text(r[prompt_key]) for r in records] if prompt_key else None
  return packing.tokenize_documents(tokenizer, texts, prompts)


def read_texts(name: str, split: str, data_dir: str, text_key: str = "",
               limit: int = 0) -> list[str]:
  """The first `limit` (0 = all) non-empty texts of a split, untokenized
  (for tools that tokenize with a checkpoint's own tokenizer)."""
  records = _records(name, split, data_dir)
  key = _keys(name, {"text_key": text_key, "prompt_key": ""})[0]
  out, start = [], 0
  while start < len(records) and (not limit or len(out) < limit):
    stop = min(len(records), start + max(limit, 256))
    out += [t for t in (_text(r[key]) for r in
                        _read(records, range(start, stop))) if t]
    start = stop
  return out[:limit] if limit else out


@functools.lru_cache(maxsize=8)
def _stream_documents(name: str, split: str, data_dir: str, tokenizer: str,
                      keys: tuple[str, str]) -> packing.Documents:
  """The tokenized split (cached: every seed of a study reuses it)."""
  records = _records(name, split, data_dir)
  everything = _read(records, range(len(records)))
  return _documents(tokenizers.get_tokenizer(tokenizer), everything, keys)


class TextSource:
  """Packed rows of one split: `len` rows, `get(rows)` -> token batch.

  Attributes:
    tokenizer: the split's tokenizer.
    seq_len: T.
    example: `{"tokens": ShapeDtypeStruct([1, T], int32)}` (model init).
  """

  def __init__(self, name: str, split: str, data_dir: str,
               kw: dict[str, Any], limit: int = 0):
    self.name, self.split, self.seq_len = name, split, kw["seq_len"]
    self.tokenizer = tokenizers.get_tokenizer(kw["tokenizer"])
    self._keys = _keys(name, kw)
    self._bytes = packing.token_byte_lengths(self.tokenizer)
    self._k = kw["docs_per_row"]
    if kw["packing"] == "stream":
      self._docs = _stream_documents(name, split, data_dir, kw["tokenizer"],
                                     self._keys)
      self._records = None
      n = packing.num_rows(self._docs, self.seq_len)
    else:
      self._docs = None
      self._records = _records(name, split, data_dir)
      n = -(-len(self._records) // self._k)
    self._len = min(n, limit) if limit else n
    if self._len == 0:
      raise ValueError(f"text split {name}:{split} has no tokens")
    self.example = {"tokens": jax.ShapeDtypeStruct((1, self.seq_len),
                                                   np.int32)}

  def __len__(self) -> int:
    return self._len

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  num_classes = vocab_size

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Rows `indices` as `{tokens, targets, ...}` `[b, T]` arrays."""
    indices = np.asarray(indices, np.int64)
    if self._docs is not None:
      return packing.pack_rows(self._docs, self.seq_len, indices,
                               self.tokenizer.pad_id, self._bytes)
    rows = []
    for r in indices:
      lo = int(r) * self._k
      recs = _read(self._records,
                   range(lo, min(lo + self._k, len(self._records))))
      docs = _documents(self.tokenizer, recs, self._keys)
      rows.append(packing.pack_rows(docs, self.seq_len, np.zeros(1),
                                    self.tokenizer.pad_id, self._bytes))
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def open_data(data_config: Any) -> tuple[TextSource, TextSource]:
  """`(train, eval)` sources of `config.data` (source `"text"`)."""
  kw = settings(data_config)
  data_dir = os.fspath(data_config.data_dir or sources.default_data_dir())
  train = TextSource(data_config.name, data_config.train_split, data_dir, kw,
                     limit=kw["max_train_rows"])
  evals = TextSource(data_config.name, data_config.eval_split, data_dir, kw,
                     limit=kw["max_eval_rows"])
  return train, evals
