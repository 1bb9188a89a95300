"""DC-PDD: pretraining-data detection on a small LM trained on known rows.

Paper: Pretraining Data Detection for Large Language Models: A
Divergence-based Calibration Method, Zhang et al. 2024,
arXiv:2409.14781 (official code zhang-wei-chao/DC-PDD).
Scores: `algos/analysis/dc_pdd.py`; evaluator `membership`
(`algos/analysis/membership_eval.py`).

The LM (`experiments/lm_common.py`'s recipe, byte tokens) is trained on
the first `data.kwargs.max_train_rows` rows of the CPython-stdlib
docstrings: those rows are the members. Non-members are the first rows of
the validation files (never trained on); the reference token frequencies
come from the test files. Arms: the same member set trained for 10 or 40
epochs (weak and strong memorisation).

Variants (`--config=experiments/dc_pdd/config.py:<variant>`):
  stdlib  (default) the CPU study: 128 member rows of 128 bytes (batch
          16), a 2-layer d=128 LM (0.46M parameters), 10 or 40 epochs.
  stdlib_bpe  the same with the 2,048-token BPE of
          `experiments/dc_pdd/bpe2048` (written by `make_tokenizer.py`):
          subword tokens, as in the paper; 2, 4 or 10 epochs.
  c4_gpt2  full scale: a GPT-2-124M-shaped LM trained on 2^17 rows of
          1024 tokens of TFDS `c4/en` for 4 epochs, members and
          non-members 1000 rows each, frequencies from C4 validation; our
          setting (the paper attacks released LLMs: see
          third_party_configs/dc_pdd).

Examples:
  python -m common run dc_pdd --seeds=0,1
"""

import os

from algos.analysis import membership_eval as membership
from experiments import lm_common

VARIANTS = ("stdlib", "stdlib_bpe", "c4_gpt2")
_BPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpe2048")


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant in ("stdlib", "stdlib_bpe"):
    rows, batch = 128, 16
    c = lm_common.lm_config("dc_pdd", size="tiny", seq_len=128,
                            batch_size=batch, steps=rows // batch * 40,
                            learning_rate=3e-3, warmup_epochs=1.0)
    c.data.kwargs.update(max_train_rows=rows, max_eval_rows=rows)
    c.model.kwargs.update(num_layers=2, d_model=128, d_ff=384, num_heads=4,
                          num_kv_heads=4, dropout=0.0)
    c.eval.membership = dict(num_rows=rows, reference_split="test",
                             nonmembers="train_rows")
    epochs = (10, 40) if variant == "stdlib" else (2, 4, 10)
    cols = tuple((f"{e} epochs", f"e{e}") for e in epochs)
    c.study.arms = {f"e{e}": f"train.steps={rows // batch * e}"
                    for e in epochs}
    if variant == "stdlib_bpe":
      c.data.kwargs.tokenizer = _BPE
    c.study.seeds = (0, 1)
    c.smoke.update(steps=2)
  else:
    rows = 2**17
    c = lm_common.get_config("c4_gpt2")
    c.experiment = "dc_pdd"
    c.data.kwargs.update(max_train_rows=rows, max_eval_rows=1000)
    c.train.update(steps=rows // c.train.batch_size * 4)
    c.eval.membership = dict(num_rows=1000, reference_split="validation",
                             nonmembers="train_rows")
    c.study.seeds = (0,)
    cols = (("ours", c.method.name),)
  c.train.update(eval_every_epochs=0, eval_batch_size=64)
  c.eval.name = "membership"
  c.study.metrics = tuple(f"{kind}/{s}" for kind in ("auroc", "auroc_common",
                                                      "tpr5")
                          for s in membership.SCORES) + ("loss",)
  c.study.formats = {m: ".3f" for m in c.study.metrics}
  titles = {"auroc": "AUROC, members vs non-members",
            "auroc_common": "AUROC, members vs common-words non-members",
            "tpr5": "TPR at 5% FPR, members vs non-members"}
  if variant != "c4_gpt2":
    c.study.artifacts = "experiments.dc_pdd.figures:auroc_figure"
  c.study.tables = tuple(dict(
      title=title, rows=membership.SCORES, arm="{col}",
      metric=kind + "/{row}", row_label="score (higher = member)",
      cols=cols, fmt=".3f")
                         for kind, title in titles.items())
  return c
