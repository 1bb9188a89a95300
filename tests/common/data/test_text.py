"""Text data: the corpora's determinism, arithmetic answers, packed rows."""

from __future__ import annotations

import re

import ml_collections as mlc
import numpy as np
import pytest

from common import config as config_lib
from common.data import loader
from common.data import sources
from common.data import tokenizers
from common.data.text import arithmetic
from common.data.text import packing
from common.data.text import source as text_source
from common.data.text import stdlib_corpus

def _data_config(data_dir, **kwargs):
  return mlc.ConfigDict(dict(
      name="arithmetic/tiny", data_dir=data_dir, train_split="train",
      eval_split="test", kwargs=mlc.ConfigDict(kwargs)))


def _docs(texts, prompts=None):
  return packing.tokenize_documents(tokenizers.get_tokenizer("byte"), texts,
                                    prompts)


def test_packed_rows_hold_every_pair_once_with_document_masks():
  tok = tokenizers.get_tokenizer("byte")
  texts = ["abcdefghij", "xy", "klmnopqrstuvwxyz0123", "q"]
  docs = _docs(texts, ["P:", "", "Q", ""])
  seq = 8
  n = packing.num_rows(docs, seq)
  rows = packing.pack_rows(docs, seq, np.arange(n), tok.pad_id,
                           packing.token_byte_lengths(tok))
  valid = rows["segment_ids"] > 0
  assert valid.sum() == docs.num_pairs   # every pair exactly once
  assert valid[:-1].all()                # only the last row is padded
  # Concatenating the rows' segments gives back every document's pairs.
  seen, prev = [], None
  for r in range(n):
    for t in range(seq):
      if not valid[r, t]:
        continue
      key = (r, rows["segment_ids"][r, t])
      if key != prev:
        seen.append([])
        prev = key
        assert rows["positions"][r, t] == 0   # each piece starts at 0
      seen[-1].append((rows["tokens"][r, t], rows["targets"][r, t],
                       rows["loss_mask"][r, t]))
  flat = [p for piece in seen for p in piece]
  expected = []
  for text, prompt in zip(texts, ["P:", "", "Q", ""]):
    doc = [tok.bos_id] + tok.encode(prompt) + tok.encode(text) + [tok.eos_id]
    head = 1 + len(tok.encode(prompt))
    expected += [(doc[i], doc[i + 1], float(i + 1 >= head))
                 for i in range(len(doc) - 1)]
  assert flat == expected
  # Bytes per target: 1 per text byte, 0 for eos and masked targets.
  assert rows["target_bytes"].sum() == sum(len(t) for t in texts)
  # A row is a pure function of its number.
  again = packing.pack_rows(docs, seq, np.array([2, 0]), tok.pad_id,
                            packing.token_byte_lengths(tok))
  for k in rows:
    np.testing.assert_array_equal(again[k], rows[k][[2, 0]])


def test_arithmetic_scratchpads_are_correct_and_verifiable():
  rng = np.random.default_rng(0)
  step = re.compile(r"^(\d+)([-+*]|//)(\d+)(?:\+(\d+))?=(\d+)$")
  for task in arithmetic.TASKS:
    for ood in (False, True):
      for _ in range(30):
        prompt, answer, formats = arithmetic.make_problem(rng, task, ood)
        assert len(formats) == 3 and formats["direct"] == ""
        lhs = prompt.rstrip("=").replace("%", " % ")
        assert eval(lhs) == answer  # pylint: disable=eval-used
        for scratch in formats.values():
          text = arithmetic.completion(scratch, answer)
          assert arithmetic.is_correct(text, answer)
          assert not arithmetic.is_correct(text, answer + 1)
          for eq in filter(None, scratch.split(",")):
            lhs, rhs = eq.rsplit("=", 1)
            assert eval(lhs) == int(rhs), eq  # pylint: disable=eval-used
  assert arithmetic.parse_answer("garbage") is None


def test_arithmetic_held_out_prompts_never_in_train():
  held = {p for s in ("validation", "test")
          for _, p, _, _ in arithmetic.problems(s, "tiny")}
  train = arithmetic.problems("train", "tiny")
  assert not held & {p for _, p, _, _ in train}
  assert train == arithmetic.problems("train", "tiny")  # deterministic


def test_add_config_shares_standard_held_out_addition_and_extends_train():
  # `arithmetic/add` (the RL studies' SFT data) must score on exactly the
  # addition problems `standard` holds out, and never train on them.
  for split in ("validation", "test", "test_ood"):
    standard = [p for p in arithmetic.problems(split, "standard")
                if p[0] == "add"]
    assert arithmetic.problems(split, "add") == standard
  train = arithmetic.problems("train", "add")
  assert {t for t, _, _, _ in train} == {"add"}
  assert len(train) == arithmetic.SIZES["add"]["train"]
  assert train[:3000] == [p for p in arithmetic.problems("train", "standard")
                          if p[0] == "add"]
  held = {p for s in ("validation", "test")
          for _, p, _, _ in arithmetic.problems(s, "add")}
  assert not held & {p for _, p, _, _ in train}


def test_stdlib_corpus_files_and_splits_are_deterministic():
  files = stdlib_corpus.stdlib_files()
  assert files == sorted(files) and len(files) > 300
  assert not any(re.search(r"(^|/)(tests?|site-packages)/", f)
                 for f in files)
  splits = [stdlib_corpus.split_of(f) for f in files]
  share = {s: splits.count(s) / len(files) for s in stdlib_corpus.SPLITS}
  assert 0.85 < share["train"] < 0.95 and share["test"] > 0.02
  assert stdlib_corpus.split_of("os.py") == stdlib_corpus.split_of("os.py")
  docs = stdlib_corpus.docstrings('"""Mod."""\nclass A:\n  """Cls."""\n'
                                  '  def f(self):\n    """Fn.\n\n    x"""')
  assert docs == ["Mod.", "Cls.", "Fn.\n\nx"]
  assert stdlib_corpus.version_tag().startswith("py3")
  records = dict(stdlib_corpus.examples(["json/__init__.py", "this.py"]))
  assert records[0]["path"] == "json/__init__.py" and records[1]["index"] == 1
  assert "JSON" in records[0]["docstrings"] and "import" in records[0]["text"]
  assert records[1]["docstrings"] == ""      # this.py has no docstrings


def test_text_source_batches_are_resumable(tfds_data_dir):
  train, evals = text_source.open_data(
      _data_config(tfds_data_dir, seq_len=32))
  assert train.num_classes == tokenizers.get_tokenizer("byte").vocab_size
  first = [loader.train_batch(train, 4, seed=3, step=s) for s in range(5)]
  resumed = loader.TrainIterator(train, 4, seed=3, start_step=2, prefetch=0)
  for s in range(2, 5):
    b = next(resumed)
    for k in first[s]:
      np.testing.assert_array_equal(b[k], first[s][k])
  b = first[0]
  assert b["tokens"].shape == (4, 32) and b["loss_mask"].dtype == np.float32
  # Prompt targets carry no loss; completions do.
  assert 0 < b["loss_mask"].mean() < 1
  limited, _ = text_source.open_data(
      _data_config(tfds_data_dir, seq_len=32, max_train_rows=3))
  assert len(limited) == 3 and len(evals) > 0
  _, few = text_source.open_data(
      _data_config(tfds_data_dir, seq_len=32, max_eval_rows=2))
  assert len(few) == min(2, len(evals))
  np.testing.assert_array_equal(few.get(np.arange(len(few)))["tokens"],
                                evals.get(np.arange(len(few)))["tokens"])


def test_rows_packing_reads_records_on_demand(tfds_data_dir):
  src, _ = text_source.open_data(_data_config(
      tfds_data_dir, seq_len=64, packing="rows", docs_per_row=2))
  assert len(src) == 40 * 3 * 3 // 2   # problems x tasks x formats / k
  row = src.get(np.array([0]))
  assert set(np.unique(row["segment_ids"])) <= {0, 1, 2}


def test_missing_dataset_is_one_line_naming_what_is_allowed(tmp_path):
  config = _data_config(str(tmp_path), seq_len=32)
  config.name = "lm1b"
  with pytest.raises(sources.DatasetNotFoundError) as e:
    text_source.open_data(config)
  msg = str(e.value)
  assert "\n" not in msg and "'lm1b'" in msg and "python_stdlib" in msg
  config.name = "no_such_corpus"
  with pytest.raises(sources.DatasetNotFoundError, match="no_such_corpus"):
    text_source.open_data(config)


def test_unknown_text_settings_are_config_errors():
  with pytest.raises(config_lib.ConfigError, match="seq_lenn"):
    text_source.settings(_data_config("", seq_lenn=3))
  with pytest.raises(config_lib.ConfigError, match="packing"):
    text_source.settings(_data_config("", packing="greedy"))



def test_a_trained_bpe_tokenizer_file_feeds_the_rows(tfds_data_dir, tmp_path):
  texts = [arithmetic.completion(f, a) for _, _, a, fs in
           arithmetic.problems("train", "tiny") for f in fs.values()]
  path = str(tmp_path / "tokenizer.json")
  tokenizers.train_bpe(texts, 300).save(path)
  src, _ = text_source.open_data(_data_config(tfds_data_dir, seq_len=16,
                                              tokenizer=path))
  assert src.vocab_size == 300
  row = src.get(np.arange(len(src)))
  assert row["tokens"].max() < 300 and row["target_bytes"].sum() > 0
  with pytest.raises(config_lib.ConfigError, match="tokenizer"):
    text_source.settings(_data_config("", tokenizer="/no/such.json"))
