"""Tokenizers: byte and BPE round trips, tokenizer.json files written by
`transformers` load and encode as the library does, one-line errors."""

from __future__ import annotations

import pytest

from common.data import tokenizers as tok_lib

TEXT = "Grüße, 世界! def f(x):\n    return x ** 2  # ∑ 🙂"
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "import os\nimport sys\nprint(os.path.join('a', 'b'))\n",
] * 4


def test_byte_round_trip_unicode():
  tok = tok_lib.get_tokenizer(None)
  ids = tok.encode(TEXT)
  assert len(ids) == len(TEXT.encode("utf-8")) and max(ids) < 256
  assert tok.decode([tok.bos_id, *ids, tok.eos_id, tok.pad_id]) == TEXT
  assert tok.vocab_size == 259 and tok.byte_level
  # A cut multi-byte character decodes to U+FFFD, not an exception.
  assert tok.decode(tok.encode("é")[:1]) == "\ufffd"


def test_bpe_round_trip_and_reload(tmp_path):
  tok = tok_lib.train_bpe(CORPUS, vocab_size=300)
  assert tok.vocab_size == 300
  assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
  ids = tok.encode(TEXT)
  assert tok.decode(ids) == TEXT
  # Merges learned: the corpus compresses below one token per byte.
  assert len(tok.encode(CORPUS[1])) < len(CORPUS[1].encode()) / 2
  tok.save(str(tmp_path / "tokenizer.json"))
  again = tok_lib.get_tokenizer({"name": "bpe", "path": str(tmp_path)})
  assert again.encode(TEXT) == ids and again.eos_id == 2


def test_transformers_tokenizer_json_encodes_as_the_library(tmp_path):
  transformers = pytest.importorskip("transformers")
  inner = tok_lib.train_bpe(CORPUS, vocab_size=280).tokenizer
  fast = transformers.PreTrainedTokenizerFast(
      tokenizer_object=inner, bos_token="<bos>", eos_token="<eos>",
      pad_token="<pad>")
  fast.save_pretrained(str(tmp_path))
  lib = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
  ours = tok_lib.load_tokenizer(str(tmp_path / "tokenizer.json"))
  for text in (TEXT, *CORPUS[:3]):
    assert ours.encode(text) == lib.encode(text, add_special_tokens=False)
    assert ours.decode(ours.encode(text)) == lib.decode(
        lib.encode(text, add_special_tokens=False), skip_special_tokens=True)
  assert (ours.bos_id, ours.eos_id, ours.pad_id) == (
      lib.bos_token_id, lib.eos_token_id, lib.pad_token_id)
  assert ours.vocab_size == len(lib)
  # An explicit null special (Qwen2 has no bos) stays None.
  config = (tmp_path / "tokenizer_config.json")
  config.write_text(config.read_text().replace('"bos_token": "<bos>"',
                                               '"bos_token": null'))
  assert tok_lib.load_tokenizer(str(tmp_path)).bos_id is None


def test_bad_tokenizer_files_are_one_line(tmp_path):
  (tmp_path / "bad.json").write_text("{\"not\": \"a tokenizer\"}")
  (tmp_path / "junk.json").write_text("\x00garbage")
  for path, pattern in ((tmp_path / "none.json", "no tokenizer file"),
                        (tmp_path / "bad.json", "cannot read tokenizer"),
                        (tmp_path / "junk.json", "cannot read tokenizer"),
                        (tmp_path, "no tokenizer file")):
    with pytest.raises(ValueError, match=pattern) as e:
      tok_lib.load_tokenizer(str(path))
    assert "\n" not in str(e.value)
  with pytest.raises(ValueError, match="allowed"):
    tok_lib.get_tokenizer({"name": "sentencepiece"})
  with pytest.raises(ValueError, match="at least 259"):
    tok_lib.train_bpe(CORPUS, vocab_size=100)
