"""The `dse` evaluator: DSE and DSMI of a model's features during training.

Called by the supervised loop every `train.eval_every_epochs` epochs (and at
the end). Besides the held-out classification metrics (`error`, ...) and
the training accuracy against the labels trained on (`train_fit_acc`,
memorisation of random labels), it reads the model's `features` (the
penultimate layer, as the paper) on the first `eval.dse.points` examples of

  the test split:      `dse_test` = DSE(Z), `dsmi_test` = DSMI(Z; Y true)
  the training split:  `dse_train`, `dsmi_train` = DSMI(Z; Y true) and
                       `dsmi_train_fit` = DSMI(Z; labels trained on)

(bits; `algos/analysis/dse.py`) on the raw features with bandwidth
`sigma` (the official code), and the same five measures with suffix `_rms`
on features divided by their root-mean-square norm with bandwidth
`rms_sigma` (ours: a fixed raw sigma reads the growth of the features'
scale during training as growing entropy; after the rescaling the kernel
sees the same relative neighbourhood at every epoch). Config `eval.dse`:
`points`, `sigma`, `rms_sigma`, `t`, `alpha`, `repetitions` (reference
subsets per class).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from algos.analysis import dse as dse_lib
from common import config as config_lib
from common.eval import evaluators
from common.eval import memorisation

def default_config() -> mlc.ConfigDict:
  """`eval.dse`: official sigma 10, t 1 (alpha 0 = its eigenvalue path)."""
  return mlc.ConfigDict(dict(points=360, sigma=10.0, rms_sigma=0.5, t=1.0,
                             alpha=0.0, repetitions=5))


def check(cfg: mlc.ConfigDict) -> None:
  """One-line errors for an `eval.dse` section that cannot run."""
  p = "config.eval.dse"
  for key, low in (("points", 4), ("repetitions", 1)):
    if int(cfg[key]) < low:
      raise config_lib.ConfigError(f"{p}.{key}={cfg[key]}: expected an "
                                   f"integer >= {low}")
  if min(cfg.sigma, cfg.rms_sigma, cfg.t) <= 0:
    raise config_lib.ConfigError(f"{p}: sigma={cfg.sigma}, rms_sigma="
                                 f"{cfg.rms_sigma}, t={cfg.t}: all must be > 0")


def _features(setup: Any, state: Any, source: Any, n: int
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """`(features [n, d], batch)` of the first n examples of `source`."""
  n = min(n, len(source))
  batch = source.get(np.arange(n))
  key = setup.config.data.input_key
  feats = evaluators.predict(setup, state, {key: batch[key if key in batch
                                                       else "image"]},
                             ("features",))["features"]
  return np.asarray(feats, np.float32).reshape(n, -1), batch


def measures(feats: np.ndarray, labels: dict[str, np.ndarray],
             cfg: mlc.ConfigDict, key: jax.Array, suffix: str
             ) -> dict[str, float]:
  """`dse_<suffix>` and `dsmi_<name><suffix>` of features `[n, d]`."""
  sigma = cfg.sigma
  if suffix.endswith("_rms"):
    feats = feats / (np.sqrt(np.mean(np.sum(feats ** 2, 1))) + 1e-12)
    sigma = cfg.rms_sigma
  z = jnp.asarray(feats)
  out = {f"dse{suffix}": float(dse_lib.dse(z, sigma, cfg.t, cfg.alpha))}
  for name, y in labels.items():
    mi = dse_lib.dsmi(z, np.asarray(y, np.int64), key, sigma, cfg.t,
                      cfg.alpha, int(cfg.repetitions))
    out[f"dsmi_{name}{suffix.replace('_test', '').replace('_train', '')}"] = (
        float(mi["dsmi"]))
  return out


@evaluators.register_evaluator("dse")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  cfg = setup.config.eval.dse
  check(cfg)
  if setup.train_source is None:
    raise ValueError("evaluator dse needs dataset splits (data.source="
                     "'tfds'), not a generator")
  result = evaluators.classification(setup, state)
  pred, fit, _ = memorisation.train_predictions(setup, state)
  result["train_fit_acc"] = float(np.mean(pred == fit))
  key = jax.random.fold_in(jax.random.key(setup.config.seed),
                           int(jax.device_get(state.step)))
  feats, batch = _features(setup, state, setup.eval_source, cfg.points)
  for suffix in ("_test", "_test_rms"):
    result.update(measures(feats, {"test": batch["label"]}, cfg, key, suffix))
  feats, batch = _features(setup, state, setup.train_source, cfg.points)
  labels = {"train": batch.get("clean_label", batch["label"]),
            "train_fit": batch["label"]}
  for suffix in ("_train", "_train_rms"):
    result.update(measures(feats, labels, cfg, key, suffix))
  return result
