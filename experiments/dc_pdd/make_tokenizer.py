"""Writes experiments/dc_pdd/bpe2048/tokenizer.json: a 2,048-token byte-level
BPE trained (offline, deterministically) on the training files of the
CPython-stdlib docstrings corpus, for the `stdlib_bpe` variant.

DC-PDD calibrates each token's probability by its corpus frequency; with
bytes as tokens every row shares the same few dozen frequent symbols, so
the paper's setting (a subword vocabulary) needs a subword tokenizer.

    python -m experiments.dc_pdd.make_tokenizer
"""

from __future__ import annotations

import os

from common.data import sources
from common.data import tokenizers
from common.data.text import source as text_source

VOCAB_SIZE = 2048
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpe2048")


def main() -> None:
  texts = text_source.read_texts("python_stdlib", "train",
                                 os.fspath(sources.default_data_dir()),
                                 text_key="docstrings")
  os.makedirs(PATH, exist_ok=True)
  tokenizers.train_bpe(texts, VOCAB_SIZE).save(
      os.path.join(PATH, "tokenizer.json"))
  print(f"wrote {PATH}/tokenizer.json from {len(texts)} texts")


if __name__ == "__main__":
  main()
