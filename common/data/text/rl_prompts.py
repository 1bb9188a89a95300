"""Generator `arithmetic_prompts`: verifiable prompts for RL fine-tuning.

The prompts of the in-repo `arithmetic` tasks (`common.data.text.
arithmetic.problems`, no TFDS build needed) tokenized as the supervised
rows start them (`[bos] + prompt`, so a model fine-tuned on
`arithmetic` continues with a scratchpad, `#<answer>` and eos), padded to
`prompt_len`, with the integer answer. A batch:

  {"prompt": [n, P] int32 right-padded, "prompt_length": [n] int32,
   "answer": [n] int32, "task": [n] int32 (index into TASKS),
   "label": [n] (= answer), "mask": [n] bool}

drawn without replacement from the split (the whole split, padded and
masked, when n covers it). Settings (`config.data.kwargs`): `size`
("tiny" / "standard"), `split`, `eval_split`, `tasks`, `prompt_len`,
`tokenizer` ("byte" or a tokenizer.json path), `vocab_size` (the model's
vocabulary = the run's num_classes; 0: the tokenizer's; a checkpoint's
embedding may be padded beyond its tokenizer, Qwen2.5: 151936).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import numpy as np

from common import config as config_lib
from common.data import procedural
from common.data import tokenizers
from common.data.text import arithmetic

DEFAULTS = {"size": "tiny", "split": "train", "eval_split": "test",
            "tasks": arithmetic.TASKS, "prompt_len": 24, "tokenizer": "byte",
            "vocab_size": 0}
RULES = {"size": config_lib.one_of(*arithmetic.SIZES),
         "split": config_lib.one_of(*arithmetic.SPLITS),
         "eval_split": config_lib.one_of(*arithmetic.SPLITS),
         "prompt_len": config_lib.at_least(2, integer=True),
         "vocab_size": config_lib.at_least(0, integer=True)}


@functools.lru_cache(maxsize=16)
def prompt_table(size: str = "tiny", split: str = "train",
                 tasks: tuple[str, ...] = arithmetic.TASKS,
                 prompt_len: int = 24, tokenizer: str = "byte"
                 ) -> dict[str, np.ndarray]:
  """Host arrays of every prompt of a split (see the module docstring).

  Raises:
    ValueError: a prompt longer than `prompt_len` tokens, or a task not in
      `arithmetic.TASKS`.
  """
  bad = [t for t in tasks if t not in arithmetic.TASKS]
  if bad:
    raise ValueError(f"data.kwargs.tasks has {bad}; allowed "
                     f"{arithmetic.TASKS}")
  if tokenizer != "byte" and not os.path.exists(tokenizer):
    raise FileNotFoundError(f"no tokenizer at {tokenizer!r} "
                            "(data.kwargs.tokenizer: 'byte' or a "
                            "tokenizer.json / checkpoint directory)")
  tok = tokenizers.get_tokenizer(tokenizer)
  bos = [] if tok.bos_id is None else [tok.bos_id]
  pad = 0 if tok.pad_id is None else tok.pad_id
  rows, lengths, answers, task_ids = [], [], [], []
  for task, prompt, answer, _ in arithmetic.problems(split, size):
    if task not in tasks:
      continue
    ids = bos + tok.encode(prompt)
    if len(ids) > prompt_len:
      raise ValueError(
          f"prompt {prompt!r} is {len(ids)} tokens; data.kwargs.prompt_len="
          f"{prompt_len} allows at most {prompt_len} (raise prompt_len)")
    rows.append(ids + [pad] * (prompt_len - len(ids)))
    lengths.append(len(ids))
    answers.append(int(answer))
    task_ids.append(arithmetic.TASKS.index(task))
  answers = np.asarray(answers, np.int32)
  return {"prompt": np.asarray(rows, np.int32),
          "prompt_length": np.asarray(lengths, np.int32),
          "answer": answers, "task": np.asarray(task_ids, np.int32),
          "label": answers}


def settings(config: Any) -> dict[str, Any]:
  kw = procedural.settings(config, DEFAULTS, RULES)
  kw["tasks"] = tuple(kw["tasks"])
  return kw


@procedural.register_generator("arithmetic_prompts")
def make(config: Any) -> procedural.Generator:
  kw = settings(config)
  table = prompt_table(kw["size"], kw["split"], kw["tasks"],
                       kw["prompt_len"], kw["tokenizer"])
  held = prompt_table(kw["size"], kw["eval_split"], kw["tasks"],
                      kw["prompt_len"], kw["tokenizer"])
  sample = procedural.split_sampler(table)
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=(kw["vocab_size"] or  # pylint: disable=g-long-ternary
                   tokenizers.get_tokenizer(kw["tokenizer"]).vocab_size),
      epoch_size=len(table["answer"]),
      eval_sample=procedural.split_sampler(held),
      eval_examples=len(held["answer"]))


def example_prompts(n: int = 2, prompt_len: int = 24) -> dict[str, Any]:
  """A small device batch of training prompts (tests, benchmarks)."""
  table = prompt_table(prompt_len=prompt_len)
  return {k: jax.numpy.asarray(v[:n]) for k, v in table.items()}
