"""The EAD probe (`probe.name = "ead_sweep"`): accuracy vs large-model share.

Given a small and a large LM trained through the harness on the generated
arithmetic scratchpads (`probe.models`), greedy-decodes held-out problems
(`config.ead.split`, the first `prompts_per_task` of each task) with

* the small model alone and the large model alone;
* EAD (`algos/lm/ead.py`) at every threshold of `config.ead.thresholds`;
* for each threshold, the random control at the *measured* large-model
  share of that threshold (same share, no entropy), `random_repeats` keys;

and scores exact-match answers (`arithmetic.is_correct`). Metrics:
`small/acc`, `large/acc`, `ead/t<k>/{acc,share,compute}` and
`random/t<k>/acc` (k = index of the threshold), `best/...` (the EAD point
with share <= `max_share` keeping the most accuracy: its threshold, share,
accuracy, fraction of the large model's accuracy), and `mean_gap` (EAD
minus random accuracy averaged over the thresholds with 0 < share < 1).
Writes `ead_tradeoff.png` (accuracy vs large-model share) to the run's
workdir.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np

from algos.lm import ead
from common import config as config_lib
from common.data import tokenizers
from common.data.text import arithmetic
from common.protocols import probe

RULES = {"ead.prompts_per_task": config_lib.at_least(1, integer=True),
         "ead.max_new_tokens": config_lib.at_least(1, integer=True),
         "ead.window": config_lib.at_least(1, integer=True),
         "ead.monitor": config_lib.one_of(*ead.MONITORS),
         "ead.max_share": config_lib.between(0.0, 1.0),
         "ead.random_repeats": config_lib.at_least(1, integer=True),
         "ead.split": config_lib.one_of(*arithmetic.SPLITS)}


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)
  vocab = tokenizers.ByteTokenizer.vocab_size
  for t in config.ead.thresholds:
    ead.check_threshold(t, vocab)


def _size(dataset: str) -> str:
  """The `arithmetic` config the models were trained on ("standard")."""
  name = dataset.split("/", 1)
  return name[1] if len(name) == 2 else "standard"


def _prompts(split: str, per_task: int, size: str = "standard"):
  """`(prompt tokens [B, P] right-padded, lengths [B], answers)`: the
  first `per_task` problems of each task of `arithmetic/<size>`."""
  tok = tokenizers.ByteTokenizer()
  chosen, counts = [], {}
  for task, prompt, answer, _ in arithmetic.problems(split, size):
    if counts.get(task, 0) < per_task:
      counts[task] = counts.get(task, 0) + 1
      chosen.append(([tok.bos_id] + tok.encode(prompt), answer))
  p = max(len(ids) for ids, _ in chosen)
  tokens = np.full((len(chosen), p), tok.pad_id, np.int32)
  for i, (ids, _) in enumerate(chosen):
    tokens[i, :len(ids)] = ids
  lengths = np.array([len(ids) for ids, _ in chosen], np.int32)
  return tokens, lengths, [a for _, a in chosen]


def _accuracy(out: dict[str, Any], lengths: np.ndarray,
              answers: list[int]) -> float:
  tok = tokenizers.ByteTokenizer()
  tokens = np.asarray(out["tokens"])
  ends = np.asarray(out["lengths"])
  right = 0
  for row, start, end, answer in zip(tokens, lengths, ends, answers):
    ids = [int(t) for t in row[start:end] if t < 256]   # drop eos / pad
    right += arithmetic.is_correct(tok.decode(ids), answer)
  return right / len(answers)


def run(config: mlc.ConfigDict, models: Mapping[str, probe.Trained],
        workdir: str) -> dict[str, float]:
  e = config.ead
  small, large = models["small"], models["large"]
  tokens, lengths, answers = _prompts(e.split, e.prompts_per_task,
                                      _size(config.data.name))
  c_s = ead.flops_per_token(small.state.params)
  c_l = ead.flops_per_token(large.state.params)
  eos = tokenizers.ByteTokenizer.eos_id
  vocab = small.setup.model.config.vocab_size

  def decode(threshold, mode="entropy", p_large=0.0, seed=0):
    out = ead.ead_generate(
        small.setup.model, small.state.params, large.setup.model,
        large.state.params, tokens, lengths, jax.random.PRNGKey(seed),
        max_new_tokens=e.max_new_tokens, threshold=threshold,
        window=e.window, monitor=e.monitor, mode=mode, p_large=p_large,
        eos_id=eos)
    cost = ead.compute_cost(out["use_large"], out["new_tokens"], c_s, c_l,
                            e.monitor)
    return _accuracy(out, lengths, answers), cost

  top = float(np.log(vocab))
  acc_small, _ = decode(top)                         # never switches
  acc_large, _ = decode(top, "random", 1.0)          # always large
  metrics = {"small/acc": acc_small, "large/acc": acc_large,
             "compute_ratio": c_s / c_l}
  points, gaps = [], []
  for k, threshold in enumerate(e.thresholds):
    acc, cost = decode(float(threshold))
    share = cost["large_share"]
    rand = float(np.mean([decode(top, "random", share, seed=1 + r)[0]
                          for r in range(e.random_repeats)]))
    metrics.update({f"ead/t{k}/threshold": float(threshold),
                    f"ead/t{k}/acc": acc, f"ead/t{k}/share": share,
                    f"ead/t{k}/compute": cost["relative_compute"],
                    f"random/t{k}/acc": rand})
    points.append((share, acc, rand, float(threshold)))
    if 0.0 < share < 1.0:
      gaps.append(acc - rand)
  metrics["mean_gap"] = float(np.mean(gaps)) if gaps else 0.0
  allowed = [p for p in points if p[0] <= e.max_share] or [min(points)]
  best = max(allowed, key=lambda p: (p[1], -p[0]))
  metrics.update({"best/threshold": best[3], "best/share": best[0],
                  "best/acc": best[1], "best/random_acc": best[2],
                  "best/kept": best[1] / max(acc_large, 1e-9)})
  _plot(points, acc_small, acc_large, os.path.join(workdir,
                                                   "ead_tradeoff.png"))
  return metrics


def _plot(points, acc_small, acc_large, path):
  points = sorted(points)
  fig, ax = plt.subplots(figsize=(4.8, 3.6))
  ax.plot([p[0] for p in points], [p[1] for p in points], "o-",
          label="EAD (entropy switching)")
  ax.plot([p[0] for p in points], [p[2] for p in points], "s--",
          label="random switching, same share")
  ax.scatter([0.0, 1.0], [acc_small, acc_large], c="k", marker="*", s=80,
             label="small / large alone", zorder=3)
  ax.set_xlabel("large-model share of generated tokens")
  ax.set_ylabel("exact-match accuracy")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


_TINY = ("model.kwargs={'size': 'small', 'max_len': 128, 'num_layers': 1, "
         "'d_model': 16, 'num_heads': 2, 'num_kv_heads': 2, 'd_ff': 32}",)
# `arithmetic/tiny`: the suite need not build the 90k-record `add` config.
SMOKE = {"data.name": "arithmetic/tiny", "ead.prompts_per_task": 2,
         "ead.max_new_tokens": 4, "ead.thresholds": (1.0,),
         "ead.random_repeats": 1, "probe.models.small": _TINY,
         "probe.models.large": _TINY}


@probe.register_probe("ead_sweep")
def make() -> probe.Probe:
  return probe.Probe(run=run, validate=validate, smoke=SMOKE)
