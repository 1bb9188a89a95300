"""Tokenizers: bytes by default, BPE trained offline, any tokenizer.json.

* `ByteTokenizer`: the UTF-8 bytes 0..255 plus pad (256), bos (257) and
  eos (258); no vocabulary file to ship, vocab_size 259 (the "tiny"
  transformer preset's).
* `train_bpe(texts, vocab_size)`: a byte-level BPE trained with the
  `tokenizers` library on the given texts (offline), with the same three
  specials at ids 0, 1, 2; `.save(path)` writes a tokenizer.json.
* `load_tokenizer(path)`: any tokenizer.json (a trained BPE or a real
  checkpoint's), its bos/eos/pad read from a `tokenizer_config.json` beside
  it when there is one, else from well-known special-token names.

All follow the `Tokenizer` protocol; `encode` adds no special tokens (the
data pipeline places bos/eos itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
import os
from typing import Any, Protocol

_SPECIALS = ("<pad>", "<bos>", "<eos>")
# Special-token names of common checkpoints (first match wins).
_KNOWN = {
    "bos": ("<bos>", "<s>", "<|begin_of_text|>", "<|endoftext|>"),
    "eos": ("<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>",
            "<|im_end|>"),
    "pad": ("<pad>", "<|finetune_right_pad_id|>", "<|endoftext|>"),
}


class Tokenizer(Protocol):
  """Text <-> token ids."""
  vocab_size: int
  bos_id: int | None
  eos_id: int | None
  pad_id: int | None
  byte_level: bool   # one token per byte (bits per byte = bits per token)

  def encode(self, text: str) -> list[int]: ...

  def decode(self, ids: Iterable[int]) -> str: ...


class ByteTokenizer:
  """UTF-8 bytes, plus pad=256, bos=257, eos=258."""
  vocab_size = 259
  pad_id, bos_id, eos_id = 256, 257, 258
  byte_level = True

  def encode(self, text: str) -> list[int]:
    return list(text.encode("utf-8"))

  def decode(self, ids: Iterable[int]) -> str:
    """Drops the specials; invalid UTF-8 (a cut multi-byte character)
    becomes U+FFFD."""
    return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode(
        "utf-8", errors="replace")


class LibraryTokenizer:
  """A `tokenizers.Tokenizer` behind the `Tokenizer` protocol."""
  byte_level = False

  def __init__(self, tokenizer: Any, specials: Mapping[str, str | None]):
    self.tokenizer = tokenizer
    self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    ids = {k: (None if v is None else tokenizer.token_to_id(v))
           for k, v in specials.items()}
    self.bos_id, self.eos_id, self.pad_id = ids["bos"], ids["eos"], ids["pad"]

  def encode(self, text: str) -> list[int]:
    return self.tokenizer.encode(text, add_special_tokens=False).ids

  def decode(self, ids: Iterable[int]) -> str:
    return self.tokenizer.decode([int(i) for i in ids],
                                 skip_special_tokens=True)

  def save(self, path: str) -> None:
    """Writes the tokenizer.json to `path` (a file name)."""
    self.tokenizer.save(path)


def train_bpe(texts: Iterable[str], vocab_size: int) -> LibraryTokenizer:
  """A byte-level BPE of `vocab_size` tokens trained on `texts` (offline;
  deterministic for the same texts)."""
  # pylint: disable=g-import-not-at-top
  import tokenizers
  from tokenizers import decoders
  from tokenizers import models
  from tokenizers import pre_tokenizers
  from tokenizers import trainers
  # pylint: enable=g-import-not-at-top
  alphabet = pre_tokenizers.ByteLevel.alphabet()
  if vocab_size < len(alphabet) + len(_SPECIALS):
    raise ValueError(
        f"BPE vocab_size={vocab_size}; allowed: at least "
        f"{len(alphabet) + len(_SPECIALS)} (the 256 bytes and 3 specials)")
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                special_tokens=list(_SPECIALS),
                                initial_alphabet=alphabet,
                                show_progress=False)
  tok.train_from_iterator(texts, trainer=trainer)
  return LibraryTokenizer(tok, dict(zip(("pad", "bos", "eos"), _SPECIALS)))


def _configured_specials(directory: str, vocab: Mapping[str, int]
                         ) -> dict[str, str | None]:
  """bos/eos/pad token strings from tokenizer_config.json, else (for keys
  it does not set) by well-known names."""
  found: dict[str, str | None] = {}
  path = os.path.join(directory, "tokenizer_config.json")
  if os.path.exists(path):
    with open(path) as f:
      cfg = json.load(f)
    for key in ("bos", "eos", "pad"):
      if f"{key}_token" not in cfg:
        continue
      value = cfg[f"{key}_token"]
      if isinstance(value, dict):
        value = value.get("content")
      # An explicit null (Qwen2's bos) means none: no guessing by name.
      found[key] = value if value in vocab else None
  for key, names in _KNOWN.items():
    if key not in found:
      found[key] = next((n for n in names if n in vocab), None)
  return found


def load_tokenizer(path: str) -> LibraryTokenizer:
  """A tokenizer.json (or a directory holding one), written by the
  `tokenizers` library or `transformers`' `save_pretrained`.

  Raises:
    ValueError: one line, when the file is missing or not a tokenizer.json.
  """
  import tokenizers  # pylint: disable=g-import-not-at-top
  file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else (
      path)
  if not os.path.isfile(file):
    raise ValueError(f"no tokenizer file at {file}; allowed: a "
                     "tokenizer.json or a directory holding one")
  try:
    tok = tokenizers.Tokenizer.from_file(file)
  except Exception as e:  # pylint: disable=broad-except
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ValueError(
        f"cannot read tokenizer file {file} ({reason}); allowed: a "
        "tokenizer.json written by the tokenizers library") from None
  vocab = tok.get_vocab(with_added_tokens=True)
  return LibraryTokenizer(tok, _configured_specials(os.path.dirname(file),
                                                    vocab))


def get_tokenizer(config: str | Mapping[str, Any] | None = None
                  ) -> Tokenizer:
  """The tokenizer a config names: None or "byte" -> `ByteTokenizer`; a
  path -> `load_tokenizer(path)`; or a mapping {"name": "byte"} /
  {"name": "bpe" | "file", "path": tokenizer.json}."""
  if config is None or config == "byte":
    return ByteTokenizer()
  if isinstance(config, str):
    return load_tokenizer(config)
  name = config.get("name", "byte")
  if name == "byte":
    return ByteTokenizer()
  if name in ("bpe", "file") and config.get("path"):
    return load_tokenizer(config["path"])
  raise ValueError(
      f"tokenizer config {dict(config)}; allowed: name 'byte', or name "
      "'bpe'/'file' with a path to a tokenizer.json")

