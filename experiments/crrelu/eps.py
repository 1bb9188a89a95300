"""Evaluator `classification_crrelu`: classification metrics plus the
learned CRReLU `eps` of every activation layer (none for other models).

`eps_mean`, `eps_min`, `eps_max` over the model's CRReLU layers; the claim
is that the learned corrections stay small (they start at 0.01).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from common.eval import evaluators
from common.models import activations


@evaluators.register_evaluator("classification_crrelu")
def classification_crrelu(setup: Any, state: Any) -> dict[str, float]:
  """`classification` + `eps_mean` / `eps_min` / `eps_max` (CRReLU only)."""
  out = evaluators.classification(setup, state)
  eps = activations.eps_values(jax.device_get(state.params))
  if eps:
    out.update(eps_mean=float(np.mean(eps)), eps_min=float(np.min(eps)),
               eps_max=float(np.max(eps)))
  return out
