"""Residual-stream activations of a trained language-model run, as a dataset.

The vSAE paper trains SAEs on Pythia-70M residual-stream activations; at
CPU scale the substrate is the repo's small transformer trained by the
shared LM recipe (`experiments/lm_common.py`). This script (a forward pass,
no gradients) restores a finished LM run, runs it in eval mode on its
training split's packed rows, keeps the residual stream after block
`--layer` (`hidden_states[layer]`, `[B, T, D]`) at every non-padding
position, and saves the first `--max_rows` vectors as float32 `[N, D]`
with `np.save`: the `activation_rows` generator's input
(`common/data/superposition.py`; the SAE config's `tinylm` variant).

    python -m common train --config=experiments/lm_common.py:stdlib_tiny \
        --workdir=runs/vsae_lm_tiny
    python -m experiments.vsae.extract_lm --lm_workdir=runs/vsae_lm_tiny \
        --out=runs/vsae_acts/tinylm_resid.npy
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from common import config as config_lib
from common.protocols import supervised


def extract(lm_config: str, lm_workdir: str, layer: int, max_rows: int
            ) -> np.ndarray:
  """`[<= max_rows, D]` residual-stream vectors of the run in `lm_workdir`."""
  config = config_lib.load_config(lm_config)
  setup, state = supervised.restore(config, lm_workdir)
  variables = {"params": state.params, **state.model_state}

  @jax.jit
  def hidden(batch):
    out = setup.model.apply(
        variables, {k: batch[k] for k in ("tokens", "positions",
                                          "segment_ids")},
        train=False, compute_logits=False)
    return out["hidden_states"][layer], batch["segment_ids"] > 0

  rows, total = [], 0
  for batch in setup.train_batches(0):
    h, valid = jax.device_get(hidden(batch))
    rows.append(np.asarray(h, np.float32)[np.asarray(valid)])
    total += len(rows[-1])
    if total >= max_rows:
      break
  return np.concatenate(rows)[:max_rows]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lm_config",
                      default="experiments/lm_common.py:stdlib_tiny")
  parser.add_argument("--lm_workdir", required=True)
  parser.add_argument("--layer", type=int, default=1)
  parser.add_argument("--max_rows", type=int, default=262144)
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  acts = extract(args.lm_config, args.lm_workdir, args.layer, args.max_rows)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  np.save(args.out, acts)
  print(f"saved {acts.shape} to {args.out}; mean ||x||^2 = "
        f"{float(np.mean(np.sum(acts.astype(np.float64) ** 2, -1))):.3f}")


if __name__ == "__main__":
  main()
