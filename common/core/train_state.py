"""The one pytree a run carries between steps, checkpoints and resumes."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training.

  Attributes:
    step: int32 scalar, number of optimizer steps taken.
    params: model parameters (`{"params": ...}` collection of flax).
    opt_state: optax state (holds the injected hyperparameter numbers too).
    model_state: other flax collections, e.g. `{"batch_stats": ...}`.
    method_state: the method's own state (PS-KD's prediction table, EMA
      teachers, ...); `{}` for stateless methods.
    rng: uint32 `[2]` base key; step `t` uses `fold_in(rng, t)`, so no key is
      ever carried forward and a resumed run draws the same numbers.
  """
  step: jax.Array
  params: PyTree
  opt_state: PyTree
  model_state: PyTree
  method_state: PyTree
  rng: jax.Array
