"""MNN: Matrix Nuclear-Norm vs Matrix Entropy of a small LM's hidden states.

Paper: Large Language Model Evaluation via Matrix Nuclear-Norm, Li et al.
2024, arXiv:2410.10672 (official code MLGroupJLU/MatrixNuclearNorm).
Metrics: `algos/analysis/matrix_nuclear_norm.py`; evaluator `hidden_rank`
(`algos/analysis/hidden_rank_eval.py`): the `lm` held-out loss plus the mean MNN / T
and Matrix Entropy of the final hidden states of the first
`eval.hidden_rank.max_rows` validation rows, at every evaluation (each
epoch: the "checkpoints").

Arms: byte-level LMs of three widths (2 layers), trained with the shared
LM recipe (`experiments/lm_common.py`) on 1,600 rows of 128 bytes of the
CPython-stdlib docstrings for 4 epochs (batch 16). The study hook
(`experiments/mnn/ranking.py`) ranks the (arm, checkpoint) points by MNN,
Matrix Entropy and validation loss and writes Kendall / Spearman
correlations to `ranking.md`.

Variants (`--config=experiments/mnn/config.py:<variant>`):
  stdlib  (default) the CPU study above.
  c4_gpt2  full scale: GPT-2-124M-shaped LMs of three widths on TFDS
          `c4/en` (from `data_dir`), MNN of 256 validation rows of 1024
          tokens; our setting (the paper scores released Cerebras-GPT /
          Pythia checkpoints on Dolly, Wikipedia, OpenWebText2 and
          hh-rlhf: third_party_configs/mnn).
  qwen25  the paper's experiment on a family we can load: MNN and Matrix
          Entropy of released Qwen2.5 base checkpoints (0.5B-7B, from
          `checkpoints.root`, e.g. --config.checkpoints.root=/ckpt) on the
          first 10,000 texts of TFDS `wikipedia/20230601.en`, up to 2048
          tokens each; analysis `mnn_checkpoints`
          (`experiments/mnn/checkpoints.py`), no training.

Examples:
  python -m common run mnn --seeds=0,1
"""

from common.protocols import analysis
from experiments import lm_common
from experiments.mnn import checkpoints

VARIANTS = ("stdlib", "c4_gpt2", "qwen25")
_QWEN = ("Qwen2.5-0.5B", "Qwen2.5-1.5B", "Qwen2.5-3B", "Qwen2.5-7B")

_WIDTHS = {"d32": 32, "d64": 64, "d128": 128}


def _model(width: int) -> list[str]:
  return [f"model.kwargs.d_model={width}", f"model.kwargs.d_ff={3 * width}",
          "model.kwargs.num_heads=4", "model.kwargs.num_kv_heads=4"]


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "qwen25":
    c = analysis.base_config()
    c.experiment = "mnn"
    c.analysis.name = "mnn_checkpoints"
    c.checkpoints = checkpoints.section()
    c.checkpoints.update(root="/checkpoints", names=_QWEN,
                         dataset="wikipedia/20230601.en", split="train",
                         text_key="text", num_texts=10_000, max_len=2048,
                         dtype="bfloat16")
    c.study.seeds = (0,)
    c.study.metrics = tuple(f"{n}/{m}" for n in _QWEN for m in (
        "mnn", "matrix_entropy", "seconds_mnn", "seconds_me"))
    return c
  if variant == "stdlib":
    rows, batch, epochs = 1600, 16, 4
    c = lm_common.lm_config("mnn", size="tiny", seq_len=128,
                            batch_size=batch, steps=rows // batch * epochs,
                            learning_rate=3e-3, warmup_epochs=0.1)
    c.data.kwargs.update(max_train_rows=rows, max_eval_rows=256)
    c.model.kwargs.update(num_layers=2, d_model=64, d_ff=192, num_heads=4,
                          num_kv_heads=4)
    c.train.update(eval_every_epochs=1, eval_batch_size=64)
    c.eval.hidden_rank = dict(max_rows=64)
    c.study.plots = ("loss", "mnn", "matrix_entropy")
    widths = _WIDTHS
    c.study.seeds = (0, 1)
    c.smoke.update(steps=2)
  else:
    c = lm_common.get_config("c4_gpt2")
    c.experiment = "mnn"
    c.train.update(steps=20_000, eval_every_epochs=0)
    c.eval.hidden_rank = dict(max_rows=256)
    widths = {"d384": 384, "d768": 768, "d1024": 1024}
    c.study.seeds = (0,)
  c.eval.name = "hidden_rank"
  c.study.arms = {name: ",".join(_model(w)) for name, w in widths.items()}
  c.study.metrics = ("loss", "mnn", "matrix_entropy")
  c.study.metric_labels = {"loss": "held-out loss (nats/token)",
                           "mnn": "MNN / T", "matrix_entropy":
                           "Matrix Entropy (normalised)"}
  c.study.formats = {"loss": ".4f", "mnn": ".4f", "matrix_entropy": ".4f"}
  c.study.artifacts = "experiments.mnn.ranking:ranking_artifact"
  return c
