"""WDM (WPC, gradient penalty) vs CPC (InfoNCE) as mutual information grows.

Paper: Ozair et al., "Wasserstein Dependency Measure for Representation
Learning", NeurIPS 2019, arXiv:1903.11780 (no official code).

Task ("multi-digits", `experiments/wdm/data.py`): x = n sklearn digits
side by side, y = other images of the same n classes, each view with its
own pixel noise; the views share I(x; y) = n log 10 nats, which passes
CPC's log(batch) ceiling at n = 2 (batch 64: log 64 = 4.16 nats). The MLP
encoder (`wdm_encoder`) is trained on the shared train step with the
Method `wdm` (`algos/ot/wdm.py`); a linear probe of the frozen codes
(`experiments/wdm/probe.py`) then predicts all n digits. Arms: objective x
n, e.g. "CPC n=1", "WPC (GP) n=4".

Variants:
  digits  (default) CPU, minutes: n in {1, 2, 3, 4}, 1000 steps, batch 64.

Example:
  regjax run wdm --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("digits",)
NUM_DIGITS = (1, 2, 3, 4)
# gp_weight 10 as in WGAN-GP; 0 is CPC.
OBJECTIVES = {"CPC": 0.0, "WPC (GP)": 10.0}


def arm_name(objective: str, n: int) -> str:
  return f"{objective} n={n}"


def _tables() -> tuple[dict, ...]:
  """The README's layout: rows = objectives, two columns per n."""
  cols = []
  for n in NUM_DIGITS:
    cols += [(f"n={n}: per digit", (n, "probe_acc")),
             (f"n={n}: all", (n, "probe_all_acc"))]
  probe = dict(title="Linear-probe accuracy (%): per digit / all n digits "
                     "right", rows=tuple(OBJECTIVES), cols=tuple(cols),
               arm="{row} n={col[0]}", metric="{col[1]}", fmt=".1f",
               row_label="objective")
  bound = dict(title="Held-out InfoNCE bound log(64) - L_NCE (nats)",
               rows=tuple(OBJECTIVES),
               cols=tuple((f"n={n}", n) for n in NUM_DIGITS),
               arm="{row} n={col}", metric="mi_lower_bound", fmt=".2f",
               row_label="objective")
  return (probe, bound)


def get_config(variant: str = "digits") -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "wdm"
  c.data.update(name="multi_digits", source="generator", input_key="x",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(
      num_digits=2, view_noise=0.3,
      train_pool=1200,     # first 1200 sklearn digits train, the rest test
      probe_train=2000, probe_test=1000))
  c.model = mlc.ConfigDict(dict(name="wdm_encoder", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(hidden=(256, 256), out_dim=64,
                                       spectral_norm=False))
  c.method = mlc.ConfigDict(dict(name="wdm"))
  c.method.wdm = mlc.ConfigDict(dict(gp_weight=10.0, one_sided=False))
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.train.update(batch_size=64, steps=1000, log_every_steps=250,
                 eval_every_epochs=0, checkpoint_every_steps=500,
                 tensorboard=False)
  c.eval.name = "wdm_probe"
  c.study.arms = {
      arm_name(obj, n): f"method.wdm.gp_weight={gp},data.kwargs.num_digits={n}"
      for obj, gp in OBJECTIVES.items() for n in NUM_DIGITS}
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ()          # the layout tables below
  c.study.tables = _tables()
  c.study.artifacts = "experiments.wdm.figures:artifacts"
  c.study.name = "digits"
  c.smoke.enabled = True
  return c
