"""The WDM study's evaluator: a linear probe of the frozen codes.

A logistic regression on the standardised codes of one view predicts each
of the n digits (`data.kwargs.probe_train` tuples from the training pool,
scored on `data.kwargs.probe_test` tuples from the held-out pool), as the
paper's downstream evaluation does. Also the InfoNCE bound `log b - L_NCE`
on held-out pairs, in blocks of `train.batch_size` pairs (b = the batch
size). The probe sets are fixed per seed: keys `fold_in(seed, 10**6 + 1)`
(fit) and `10**6 + 2` (test), streams no train step draws from.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from sklearn import linear_model

from algos.ot import wdm
from common.eval import evaluators
from experiments.wdm import data as wdm_data

_PROBE_STREAM = 10**6


def _codes(setup: Any, state: Any, batch: dict[str, Any]
           ) -> tuple[np.ndarray, np.ndarray]:
  """Codes `[m, d_z]` of both views of a batch."""
  out = evaluators.predict(setup, state, batch, ("features",))["features"]
  other = dict(batch, x=batch["y"])
  return out, evaluators.predict(setup, state, other, ("features",))[
      "features"]


@evaluators.register_evaluator("wdm_probe")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """probe_acc / probe_all_acc (%), held-out InfoNCE bound and accuracy."""
  cfg, gen = setup.config, setup.generator
  kw = wdm_data.settings(cfg)
  key = jax.random.PRNGKey(cfg.seed)
  fit = gen.sample(jax.random.fold_in(key, _PROBE_STREAM + 1),
                   kw["probe_train"])
  test = gen.eval_sample(jax.random.fold_in(key, _PROBE_STREAM + 2),
                         kw["probe_test"])
  z_fit, _ = _codes(setup, state, fit)
  z_test, z_test_y = _codes(setup, state, test)
  labels_fit = np.asarray(fit["label"])
  labels_test = np.asarray(test["label"])
  mu, sd = z_fit.mean(0), z_fit.std(0) + 1e-6
  correct = []
  for pos in range(labels_fit.shape[1]):
    clf = linear_model.LogisticRegression(max_iter=2000, C=1.0)
    clf.fit((z_fit - mu) / sd, labels_fit[:, pos])
    correct.append(clf.predict((z_test - mu) / sd) == labels_test[:, pos])
  correct = np.stack(correct, 1)
  # The contrastive bound of the trained critic on held-out pairs.
  b = cfg.train.batch_size
  bounds, accs = [], []
  for start in range(0, len(z_test) - b + 1, b):
    scores = wdm.critic_scores(z_test[start:start + b],
                               z_test_y[start:start + b])
    nce = float(wdm.infonce_loss(scores))
    bounds.append(np.log(b) - nce)
    accs.append(float(np.mean(np.argmax(scores, 1) == np.arange(b))))
  return {"probe_acc": 100.0 * float(correct.mean()),
          "probe_all_acc": 100.0 * float(correct.all(1).mean()),
          "mi_lower_bound": float(np.mean(bounds)) if bounds else np.nan,
          "contrastive_acc": 100.0 * float(np.mean(accs)) if accs else np.nan}
