"""Packing tokenized documents into fixed-length rows with document masks.

A document is `[bos] + prompt + text + [eos]` as token ids; its next-token
pairs are `(d[i], d[i+1])` for `i < len(d) - 1`. All pairs of a split, in
document order, are cut into rows of `seq_len` pairs (concatenate and
chunk: no padding but at the end of the last row), so row `r` is a pure
function of `r`. Within a row:

* `tokens [T] int32`: the model input; `targets [T] int32`: the next token;
* `segment_ids [T] int32`: 1, 2, ... for the documents (or pieces of
  documents) in the row, 0 on padding: attention stays inside a segment;
* `positions [T] int32`: position within the segment, from 0 (a document
  cut by a row boundary restarts at 0 in the next row);
* `loss_mask [T] float32`: 1 where the target counts: not padding, and
  not a target inside the prompt (the prompt is context only);
* `target_bytes [T] int32`: UTF-8 bytes of the target token (0 for special
  tokens and padding): the denominator of bits per byte.
"""

from __future__ import annotations

import dataclasses

import numpy as np

Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Documents:
  """Tokenized documents of one split, concatenated.

  Attributes:
    ids: int `[n_tokens]`, every document with its bos and eos.
    starts: int64 `[n_docs + 1]`: document d is `ids[starts[d]:starts[d+1]]`.
    prompt_lengths: int64 `[n_docs]`: tokens (bos included) of the prompt;
      targets at positions `< prompt_length` get no loss (1: only bos).
  """
  ids: np.ndarray
  starts: np.ndarray
  prompt_lengths: np.ndarray

  @property
  def pair_starts(self) -> np.ndarray:
    """int64 `[n_docs + 1]`: the first next-token pair of each document."""
    return np.concatenate([[0], np.cumsum(np.diff(self.starts) - 1)])

  @property
  def num_pairs(self) -> int:
    return int(len(self.ids) - (len(self.starts) - 1))


def tokenize_documents(tokenizer, texts: list[str],
                       prompts: list[str] | None = None) -> Documents:
  """`Documents` of `texts` (each after its prompt, when given)."""
  prompts = prompts or [""] * len(texts)
  pieces, lengths, prompt_lengths = [], [], []
  ids_dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.int32
  # A tokenizer without bos/eos (some checkpoints' files) gets none.
  bos = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
  eos = [] if tokenizer.eos_id is None else [tokenizer.eos_id]
  for prompt, text in zip(prompts, texts):
    head = bos + (tokenizer.encode(prompt) if prompt else [])
    doc = np.asarray(head + tokenizer.encode(text) + eos, ids_dtype)
    pieces.append(doc)
    lengths.append(len(doc))
    prompt_lengths.append(len(head))
  starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
  ids = np.concatenate(pieces) if pieces else np.zeros(0, ids_dtype)
  return Documents(ids, starts.astype(np.int64),
                   np.asarray(prompt_lengths, np.int64))


def num_rows(docs: Documents, seq_len: int) -> int:
  return -(-docs.num_pairs // seq_len)


def pack_rows(docs: Documents, seq_len: int, rows: np.ndarray, pad_id: int,
              byte_lengths: np.ndarray) -> Batch:
  """Rows `rows` of the packed split (see the module docstring).

  Args:
    docs: the split's documents.
    seq_len: T, pairs per row.
    rows: int `[b]` row numbers (repeats allowed).
    pad_id: the token written on padding positions (None: 0).
    byte_lengths: int `[vocab]`, UTF-8 bytes of each token.

  Returns:
    `{tokens, targets, segment_ids, positions, target_bytes}` int32 and
    `loss_mask` float32, each `[b, T]`.
  """
  rows = np.asarray(rows, np.int64)
  pad_id = 0 if pad_id is None else pad_id
  pair_starts = docs.pair_starts
  total = docs.num_pairs
  row_start = rows[:, None] * seq_len
  p = row_start + np.arange(seq_len)[None, :]                  # [b, T]
  valid = p < total
  pc = np.minimum(p, max(total - 1, 0))
  doc = np.searchsorted(pair_starts, pc, side="right") - 1     # [b, T]
  offset = pc - pair_starts[doc]                               # in the doc
  flat = docs.starts[doc] + offset
  tokens = docs.ids[flat].astype(np.int32)
  targets = docs.ids[flat + 1].astype(np.int32)
  first = np.maximum(pair_starts[doc], row_start)
  segment = doc - doc[:, :1] + 1
  mask = valid & (offset + 1 >= docs.prompt_lengths[doc])
  return {
      "tokens": np.where(valid, tokens, pad_id).astype(np.int32),
      "targets": np.where(valid, targets, pad_id).astype(np.int32),
      "segment_ids": np.where(valid, segment, 0).astype(np.int32),
      "positions": np.where(valid, p - first, 0).astype(np.int32),
      "loss_mask": mask.astype(np.float32),
      "target_bytes": np.where(mask, byte_lengths[targets], 0).astype(
          np.int32),
  }


def token_byte_lengths(tokenizer) -> np.ndarray:
  """int32 `[vocab]`: UTF-8 bytes each token stands for (0: specials).

  Exact for byte-level tokenizers; for others the length of the token
  decoded alone (a byte-level BPE token holding part of a multi-byte
  character counts its replacement character's bytes).
  """
  special = {tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id} - {None}
  out = np.zeros(tokenizer.vocab_size, np.int32)
  if getattr(tokenizer, "byte_level", False):  # ids 0..255 are the bytes
    out[:256] = 1
    out[list(special)] = 0
    return out
  for i in range(tokenizer.vocab_size):
    if i not in special:
      try:
        out[i] = len(tokenizer.decode([i]).encode("utf-8"))
      except Exception:  # pylint: disable=broad-except
        out[i] = 0  # an id the tokenizer cannot decode alone
  return out
