"""Pre-training under infinite compute: wd tuning, scaling, ensembles.

Paper: Pre-training under infinite compute, Kim, Kotha, Liang, Hashimoto
2025, arXiv:2509.14786; official code marin-community/marin,
`experiments/data_efficiency` (see third_party_configs/infinite_compute).

Every arm trains on the same few unique tokens for many epochs (a fixed
data budget, compute not limiting). Every model is the `ensemble` model
(`common/models/ensemble.py`): K byte-level transformers with stacked
parameters, trained together in one jitted step by the `lm_ensemble`
method (`algos/lm/infinite_compute.py`; K = 1 is a single model), evaluated
by the log-mean-softmax of the members.

Variants (`--config=experiments/infinite_compute/config.py:<variant>`):
  stdlib          (default) CPU: sizes d32/d48/d64 x weight decay 0.1 / 0.8
                  / 3.2 (the default and 8x / 32x it), then ensembles of
                  K = 2, 3, 4 d32 members at weight decay 0.8; 16,384
                  unique docstring tokens, 16 epochs.
  stdlib_distill  CPU: the distill protocol; a K = 4 ensemble of d32
                  members (the teacher, trained once per seed) distilled
                  into one d32 student vs the same student without it.
  c4              full scale: Llama-150M-shaped members (marin's `150m4k`,
                  6 x 512; byte tokens instead of Llama 3's tokenizer)
                  on 200M unique tokens of `c4/en` from `data_dir`
                  (DCLM, the paper's corpus, is not a TFDS dataset), 16
                  epochs, weight decay 0.8, lr 3e-3, batch 64 x 4096.

Example:
  python -m common run infinite_compute --seeds=0,1
"""

from __future__ import annotations

from algos.lm import token_crisis
from experiments import lm_common

VARIANTS = ("stdlib", "stdlib_distill", "c4")

_SEQ, _BATCH = 64, 16
_UNIQUE = 8_192             # unique training tokens (128 rows of 64)
_EPOCHS = 32
SIZES = {"d16": 16, "d32": 32, "d64": 64}
WEIGHT_DECAYS = {"wd1x": 0.1, "wd8x": 0.8, "wd32x": 3.2}   # x the 0.1 default
ENSEMBLE_WD = "wd8x"
ENSEMBLE_SIZES = (2, 4)


def member_kwargs(d_model: int) -> dict:
  """A 2-layer byte transformer of width `d_model` (d_ff = 3 d)."""
  return dict(base="transformer", size="tiny", num_layers=2,
              d_model=d_model, num_heads=4, num_kv_heads=4,
              d_ff=3 * d_model, max_len=_SEQ)


def _model_overrides(d_model: int, members: int) -> list[str]:
  return [f"model.kwargs.d_model={d_model}", f"model.kwargs.d_ff={3 * d_model}",
          f"model.kwargs.members={members}"]


def arm_label(size: str, wd: str, members: int = 1) -> str:
  return f"{size}/{wd}/k{members}"


def _arms() -> dict[str, str]:
  arms = {}
  for size, d in SIZES.items():
    for wd, value in WEIGHT_DECAYS.items():
      arms[arm_label(size, wd)] = ",".join(
          _model_overrides(d, 1) + [f"optim.weight_decay={value}"])
  for k in ENSEMBLE_SIZES:
    arms[arm_label("d32", ENSEMBLE_WD, k)] = ",".join(
        _model_overrides(32, k)
        + [f"optim.weight_decay={WEIGHT_DECAYS[ENSEMBLE_WD]}"])
  return arms


def _base(experiment: str):
  steps = _UNIQUE * _EPOCHS // (_BATCH * _SEQ)
  c = lm_common.lm_config(experiment, dataset="python_stdlib",
                          text_key="docstrings", seq_len=_SEQ,
                          batch_size=_BATCH, steps=steps,
                          learning_rate=3e-3, warmup_epochs=0.0)
  c.data.kwargs.max_train_rows = token_crisis.rows_for_unique_tokens(
      _UNIQUE, _SEQ)
  c.model.name = "ensemble"
  c.model.kwargs = dict(members=1, **member_kwargs(32))
  c.method.name = "lm_ensemble"
  c.method.lm_ensemble = dict(member_clip_norm=1.0)
  c.optim.update(clip_grad_norm=0.0, weight_decay=0.1)   # clip per member
  c.train.update(eval_batch_size=64, log_every_steps=64,
                 checkpoint_every_steps=10_000)
  c.study.metrics = ("loss",)
  c.study.metric_labels = {"loss": "held-out loss (nats/token)"}
  c.study.formats = {"loss": ".4f"}
  c.study.seeds = (0, 1)
  c.smoke.update(enabled=True, steps=2)
  return c


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "stdlib":
    c = _base("infinite_compute")
    c.study.arms = _arms()
    c.study.artifacts = ("experiments.infinite_compute.analysis:"
                         "scaling_artifact")
    c.study.tables = (dict(
        title="held-out loss (nats/token): size x weight decay (K = 1)",
        rows=tuple(SIZES), arm="{row}/{col}/k1", metric="loss",
        row_label="model", cols=tuple((w, w) for w in WEIGHT_DECAYS),
        fmt=".4f"),)
    return c
  if variant == "stdlib_distill":
    from common.protocols import distill   # noqa: F401  (schema below)
    c = _base("infinite_compute")
    base = c
    c = distill.base_config()
    for key in ("experiment", "data", "model", "optim", "schedule", "train",
                "eval", "study", "smoke"):
      setattr(c, key, base[key])
    c.method = base.method
    c.optim.weight_decay = WEIGHT_DECAYS[ENSEMBLE_WD]
    teacher = dict(members=4, **member_kwargs(32))
    # The teacher trains for the `stdlib` budget (32 epochs); the students
    # for half of it (16 epochs: a distilled step runs the 4 members too).
    c.teachers = {"ensemble": (
        "method.name=lm_ensemble", "model.kwargs.members=4",
        f"train.steps={c.train.steps}")}
    c.train.steps //= 2
    c.method.lm_distill = dict(weight=0.9, teacher_model=dict(
        name="ensemble", kwargs=teacher))
    c.study.arms = {"d32/k1/plain": "method.name=lm_ensemble",
                    "d32/k1/distilled": "method.name=lm_distill"}
    c.study.metrics = ("loss", "teacher/ensemble/loss")
    c.study.metric_labels = {
        "loss": "student held-out loss",
        "teacher/ensemble/loss": "teacher (K=4) held-out loss"}
    c.study.formats = {"loss": ".4f", "teacher/ensemble/loss": ".4f"}
    c.study.artifacts = ("experiments.infinite_compute.analysis:"
                         "distill_artifact")
    # Teacher + student per smoke run: over the test budget; the pieces are
    # unit-tested and the `stdlib` smoke runs the ensemble model and method.
    c.smoke.enabled = False
    return c
  # c4: marin's 150m4k members (Llama 150M), 200M unique tokens x 16
  # epochs (model_scaling_dclm_200m.py: (750 steps, 16 epochs, lr 3e-3,
  # wd 0.8, "150m4k"), batch 64 x 4096).
  seq = 4096
  c = lm_common.get_config("c4_gpt2")
  c.experiment = "infinite_compute"
  c.data.kwargs.update(seq_len=seq, max_train_rows=750 * 64)
  c.model.name = "ensemble"
  # marin experiments/llama.py `llama_150m`: 6 x 512, intermediate 1792,
  # 8 heads (150M with Llama 3's 128k vocabulary; byte tokens here).
  c.model.kwargs = dict(members=1, base="transformer", size="gpt2_124m",
                        num_layers=6, d_model=512, num_heads=8,
                        num_kv_heads=8, d_ff=1792, norm="rmsnorm",
                        ffn="swiglu", dropout=0.0, max_len=seq,
                        tie_embeddings=False)
  c.method.name = "lm_ensemble"
  c.method.lm_ensemble = dict(member_clip_norm=1.0)
  c.optim.update(clip_grad_norm=0.0, weight_decay=0.8)
  c.schedule.update(learning_rate=3e-3, warmup_epochs=0.0)
  c.train.update(batch_size=64, steps=750 * 16, eval_batch_size=64)
  c.study.arms = {f"150m/k{k}": f"model.kwargs.members={k}"
                  for k in (1, 2, 4)}
  c.study.metrics = ("loss",)
  c.study.seeds = (0,)
  c.smoke.enabled = False
  return c
