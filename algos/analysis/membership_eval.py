"""The `membership` evaluator: pretraining-data detection (for `dc_pdd`).

The run trains an LM on its whole train split (`data.kwargs.max_train_rows`
caps it: those rows are the members). This evaluator scores

* members: the first `n` train rows;
* non-members (`config.eval.membership.nonmembers`): `"train_rows"`, the
  next `n` rows of the same train split (the run trains on the first
  `data.kwargs.max_train_rows` only: same distribution, never trained on,
  so only membership separates them), or `"eval_split"`, the first `n`
  rows of the eval split (other documents: a distribution shift that
  detection scores also pick up, as on benchmarks built by date);
* the reference token frequencies: token counts over the
  `config.eval.membership.reference_split` of the same corpus (disjoint
  from both), Laplace-smoothed, as the official `com_fre_dis.py` counts a
  reference corpus (C4 there);

and reports, for DC-PDD and the baselines of `algos/analysis/dc_pdd.py`
(`dc_pdd`, `loss`, `min_k`, `zlib`): `auroc/<score>`, `tpr5/<score>`
(TPR at 5% FPR), and `auroc_common/<score>`: members against the
"common-words" non-members, the quarter whose tokens have the highest
mean log reference frequency (the case the paper says fools Min-K%).
It also returns the `lm` metrics of the eval split.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from algos.analysis import dc_pdd
from common.core import sharding as sharding_lib
from common.data import loader as loader_lib
from common.data import sources
from common.data.text import source as text_source
from common.eval import evaluators
from common.eval import language

SCORES = ("dc_pdd", "loss", "min_k", "zlib")
_DEFAULTS = {"num_rows": 256, "reference_split": "test", "a": 0.01,
             "k": 0.2, "common_fraction": 0.25, "nonmembers": "train_rows"}
_NONMEMBERS = ("train_rows", "eval_split")


class _Rows:
  """Rows `[start, start + n)` of a source (what `eval_batches` reads)."""

  def __init__(self, source: Any, n: int, start: int = 0):
    self._source, self._start = source, start
    self._n = max(0, min(n, len(source) - start))

  def __len__(self) -> int:
    return self._n

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    return self._source.get(np.asarray(indices) + self._start)


def _open_split(config: Any, split: str) -> text_source.TextSource:
  """All rows of a split of the run's corpus (no row limit)."""
  kw = text_source.settings(config.data)
  data_dir = os.fspath(config.data.data_dir or sources.default_data_dir())
  return text_source.TextSource(config.data.name, split, data_dir, kw)


def settings(config: Any) -> dict[str, Any]:
  """`config.eval.membership` over the defaults, checked."""
  s = evaluators.section_settings(config, "membership", _DEFAULTS)
  if int(s["num_rows"]) < 2:
    raise ValueError(f"config.eval.membership.num_rows={s['num_rows']}; "
                     "allowed: an integer >= 2")
  if s["nonmembers"] not in _NONMEMBERS:
    raise ValueError(f"config.eval.membership.nonmembers="
                     f"{s['nonmembers']!r}; allowed: {_NONMEMBERS}")
  if not 0.0 < float(s["common_fraction"]) <= 1.0:
    raise ValueError("config.eval.membership.common_fraction must be in "
                     f"(0, 1], got {s['common_fraction']}")
  return s


def token_log_probs(setup: Any, state: Any, source: Any
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Host `(log_probs [n, T], targets [n, T], mask [n, T])` of `source`."""
  lps, tgts, masks = [], [], []
  for local in loader_lib.eval_batches(
      source, setup.config.train.eval_batch_size, jax.process_index(),
      jax.process_count()):
    batch = sharding_lib.shard_batch(local, setup.mesh)
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("token_nll",))
    host = {k: sharding_lib.gather_to_host(batch[k])
            for k in ("targets", "loss_mask", "mask") if k in batch}
    rows = host["mask"].astype(bool) if "mask" in host else slice(None)
    lps.append(-sharding_lib.gather_to_host(out["token_nll"])[rows])
    tgts.append(host["targets"][rows])
    masks.append(host["loss_mask"].astype(bool)[rows])
  return tuple(np.concatenate(x) for x in (lps, tgts, masks))


def reference_counts(config: Any, split: str, vocab_size: int) -> np.ndarray:
  """`[V]` token counts of the corpus split `split`."""
  ref = _open_split(config, split)
  counts = np.zeros(vocab_size, np.int64)
  for lo in range(0, len(ref), 256):
    rows = ref.get(np.arange(lo, min(lo + 256, len(ref))))
    counts += np.bincount(rows["targets"][rows["loss_mask"].astype(bool)],
                          minlength=vocab_size)[:vocab_size]
  return counts


def scores(log_probs: np.ndarray, targets: np.ndarray, mask: np.ndarray,
           freqs: np.ndarray, tokenizer: Any, a: float, k: float
           ) -> dict[str, np.ndarray]:
  """`{score name: [n]}` (higher = member) of the rows."""
  texts = [tokenizer.decode(t[m].tolist()) for t, m in zip(targets, mask)]
  return {
      "dc_pdd": np.asarray(dc_pdd.dc_pdd_score(log_probs, targets, mask,
                                               freqs, np.float32(a))),
      "loss": np.asarray(dc_pdd.loss_score(log_probs, mask)),
      "min_k": np.asarray(dc_pdd.min_k_score(log_probs, mask, k)),
      "zlib": dc_pdd.zlib_score(log_probs, mask, texts)}


@evaluators.register_evaluator("membership")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Membership AUROC / TPR@5%FPR of each score, and the `lm` metrics."""
  s = settings(setup.config)
  n = min(int(s["num_rows"]), len(setup.train_source))
  if s["nonmembers"] == "train_rows":
    # The rows right after the trained ones; the run must not reach them.
    start = len(setup.train_source)
    others = _Rows(_open_split(setup.config, setup.config.data.train_split),
                   n, start)
  else:
    others = _Rows(setup.eval_source, n)
  if len(others) < 2:
    raise ValueError(f"membership: only {len(others)} non-member rows; "
                     "allowed: a split with at least 2 rows beyond the "
                     "members")
  n = min(n, len(others))
  member = token_log_probs(setup, state, _Rows(setup.train_source, n))
  other = token_log_probs(setup, state, others)
  vocab = setup.train_source.vocab_size
  counts = reference_counts(setup.config, s["reference_split"], vocab)
  freqs = dc_pdd.smoothed_frequencies(counts).astype(np.float32)
  tok = setup.train_source.tokenizer
  got_m = scores(*member, freqs, tok, s["a"], s["k"])
  got_n = scores(*other, freqs, tok, s["a"], s["k"])
  # Common-words non-members: highest mean log reference frequency.
  logf = np.log(freqs)[other[1]]
  commonness = (logf * other[2]).sum(1) / np.maximum(other[2].sum(1), 1)
  n_common = max(2, int(round(len(commonness) * s["common_fraction"])))
  common = np.argsort(-commonness)[:n_common]
  out = language.evaluate(setup, state)
  label = np.r_[np.ones(len(got_m["loss"])), np.zeros(len(got_n["loss"]))]
  label_c = np.r_[np.ones(len(got_m["loss"])), np.zeros(n_common)]
  for name in SCORES:
    both = np.r_[got_m[name], got_n[name]]
    out[f"auroc/{name}"] = dc_pdd.auroc(both, label)
    out[f"tpr5/{name}"] = dc_pdd.tpr_at_fpr(both, label)
    out[f"auroc_common/{name}"] = dc_pdd.auroc(
        np.r_[got_m[name], got_n[name][common]], label_c)
  out["members"] = float(len(got_m["loss"]))
  return out
