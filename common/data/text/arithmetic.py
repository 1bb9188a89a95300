"""In-repo TFDS dataset `arithmetic`: verifiable arithmetic with scratchpads.

Three task families, each problem written in several valid scratchpad
formats (the RL papers need diverse correct reasoning; supervised
fine-tuning sees all of them):

* `add`: `a+b=` with k-digit operands (k = 1..4; 5 in `test_ood`);
  formats `direct`, `carries` (digit by digit from the right with the
  carry), `place_values` (add b's place values one at a time).
* `mul`: `a*b=` with a of k digits (1..3; 4 in `test_ood`), b of 1-2
  digits; formats `direct`, `by_b_digits` (partial products of b's digits),
  `by_a_digits` (a's place values times b).
* `mod`: `(a+b)%p=` / `(a*b)%p=` with a, b < p for primes p < 100 (p in
  101..199 in `test_ood`); formats `direct`, `quotient` (compute, then
  subtract p times the quotient), `reduce_steps` (subtract p until below).

A record is one (problem, format): `prompt` (e.g. `"47+385="`),
`completion` (`"<scratchpad>#<answer>"`, the scratchpad empty for
`direct`), `answer`, `task`, `format`, `problem` (the problem's id within
its split) and `index`. `parse_answer` / `is_correct` verify any
completion, so sampled answers are checked exactly.

Generation is a pure function of fixed seeds: one numpy generator per split
(`_SEEDS`); held-out prompts (validation, test) never appear in train.
Configs: `arithmetic/standard` (the default: 3000 train problems per task),
`arithmetic/tiny` (40; tests and smoke runs) and `arithmetic/add` (addition
only, 30000 train problems: supervised fine-tuning of the RL studies' base
models; its validation, test and test_ood problems are exactly the
addition problems of `standard`, so their scores compare).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

TASKS = ("add", "mul", "mod")
ANSWER_MARK = "#"
# problems per task and split, by builder config: `arithmetic` is
# `arithmetic/standard`; `arithmetic/tiny` is for tests and smoke runs.
SIZES = {"standard": {"train": 3000, "validation": 300, "test": 300,
                      "test_ood": 300},
         "tiny": {"train": 40, "validation": 6, "test": 6, "test_ood": 6},
         "add": {"train": 30000, "validation": 300, "test": 300,
                 "test_ood": 300}}
# Tasks of a config (default: all). Addition is generated first from each
# split's generator, so `add`'s held-out splits equal `standard`'s
# addition problems and its train split extends `standard`'s.
CONFIG_TASKS = {"add": ("add",)}
SPLITS = ("train", "validation", "test", "test_ood")
_SEEDS = {"train": 0, "validation": 1, "test": 2, "test_ood": 3}
_PRIMES = tuple(p for p in range(2, 200)
                if all(p % q for q in range(2, int(p**0.5) + 1)))
_ANSWER = re.compile(rf"{ANSWER_MARK}\s*(-?\d+)\s*$")


def _digits_value(x: int) -> list[int]:
  """Place values of x, highest first: 305 -> [300, 5] (zeros dropped)."""
  s = str(x)
  vals = [int(c) * 10**(len(s) - 1 - i) for i, c in enumerate(s)]
  return [v for v in vals if v] or [0]


def _add_formats(a: int, b: int) -> dict[str, str]:
  sa, sb = str(a)[::-1], str(b)[::-1]
  steps, carry = [], 0
  for i in range(max(len(sa), len(sb))):
    da = int(sa[i]) if i < len(sa) else 0
    db = int(sb[i]) if i < len(sb) else 0
    s = da + db + carry
    steps.append(f"{da}+{db}+{carry}={s}")
    carry = s // 10
  partial, total = [], a
  for v in _digits_value(b):
    partial.append(f"{total}+{v}={total + v}")
    total += v
  return {"direct": "", "carries": ",".join(steps),
          "place_values": ",".join(partial)}


def _mul_formats(a: int, b: int) -> dict[str, str]:
  by_b = [f"{a}*{v}={a * v}" for v in _digits_value(b)]
  by_a = [f"{v}*{b}={v * b}" for v in _digits_value(a)]
  sum_b = "+".join(str(a * v) for v in _digits_value(b))
  sum_a = "+".join(str(v * b) for v in _digits_value(a))
  return {"direct": "",
          "by_b_digits": ",".join(by_b + [f"{sum_b}={a * b}"]),
          "by_a_digits": ",".join(by_a + [f"{sum_a}={a * b}"])}


def _mod_formats(a: int, b: int, op: str, p: int) -> dict[str, str]:
  x = a + b if op == "+" else a * b
  q = x // p
  steps, y = [], x
  while y >= p:
    steps.append(f"{y}-{p}={y - p}")
    y -= p
  return {"direct": "",
          "quotient": f"{a}{op}{b}={x},{x}//{p}={q},{x}-{q * p}={x % p}",
          "reduce_steps": ",".join([f"{a}{op}{b}={x}"] + steps)}


def make_problem(rng: np.random.Generator, task: str, ood: bool = False
                 ) -> tuple[str, int, dict[str, str]]:
  """One random problem: `(prompt, answer, {format: scratchpad})`."""
  def number(k):
    return int(rng.integers(10**(k - 1) if k > 1 else 0, 10**k))
  if task == "add":
    k = 5 if ood else int(rng.integers(1, 5))
    a, b = number(k), number(int(rng.integers(1, k + 1)))
    return f"{a}+{b}=", a + b, _add_formats(a, b)
  if task == "mul":
    k = 4 if ood else int(rng.integers(1, 4))
    a, b = number(k), number(int(rng.integers(1, 3)))
    return f"{a}*{b}=", a * b, _mul_formats(a, b)
  if task == "mod":
    primes = [p for p in _PRIMES if (p > 100 if ood else 2 < p < 100)]
    p = int(rng.choice(primes))
    a, b = int(rng.integers(0, p)), int(rng.integers(0, p))
    op = "+*"[int(rng.integers(0, 2))]
    x = a + b if op == "+" else a * b
    return f"({a}{op}{b})%{p}=", x % p, _mod_formats(a, b, op, p)
  raise ValueError(f"unknown arithmetic task {task!r}; allowed {TASKS}")


def completion(scratchpad: str, answer: int) -> str:
  return f"{scratchpad}{ANSWER_MARK}{answer}"


def parse_answer(text: str) -> int | None:
  """The integer after the last answer mark at the end of `text`, or None."""
  m = _ANSWER.search(text)
  return int(m.group(1)) if m else None


def is_correct(text: str, answer: int | str) -> bool:
  """Whether a completion ends with the right answer (exact match)."""
  return parse_answer(text) == int(answer)


def problems(split: str, size: str = "standard"
             ) -> list[tuple[str, str, int, dict[str, str]]]:
  """`[(task, prompt, answer, formats)]` of a split, deterministic."""
  rng = np.random.default_rng(_SEEDS[split])
  held_out = set()
  if split == "train":
    held_out = {p for s in ("validation", "test") for _, p, _, _ in
                problems(s, size)}
  out = []
  for task in CONFIG_TASKS.get(size, TASKS):
    n = 0
    while n < SIZES[size][split]:
      prompt, answer, formats = make_problem(rng, task, split == "test_ood")
      if prompt in held_out:
        continue
      out.append((task, prompt, answer, formats))
      n += 1
  return out


class Arithmetic(tfds.core.GeneratorBasedBuilder):
  """Arithmetic problems with verifiable answers (`arithmetic`)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "add / mul / mod, three formats each."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name=n, description=f"{SIZES[n]} problems per task of "
          f"{CONFIG_TASKS.get(n, TASKS)}") for n in ("standard", "tiny", "add")]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    text = tfds.features.Text
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            "prompt": text(), "completion": text(), "answer": text(),
            "task": text(), "format": text(), "problem": np.int64,
            "index": np.int64}),
        disable_shuffling=True)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager
    return {s: self._generate_examples(s) for s in SPLITS}

  def _generate_examples(self, split: str
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    i = 0
    size = self.builder_config.name
    for pid, (task, prompt, answer, formats) in enumerate(
        problems(split, size)):
      for name, scratch in formats.items():
        yield i, {"prompt": prompt, "completion": completion(scratch, answer),
                  "answer": str(answer), "task": task, "format": name,
                  "problem": pid, "index": i}
        i += 1

