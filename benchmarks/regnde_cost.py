"""RegNeuralDE: training-step and prediction time of the trained arms, side
by side in one process.

Restores the final state of each arm of a finished `regjax run regnde`
study (one seed) and times, in alternating blocks
(`bench_lib.time_interleaved`), (a) one harness train step on a fixed
training batch (forward solve + discretise-then-optimise backward; the
state keeps training during the timing) and (b) one prediction pass over
the whole eval split (the eval-mode `while_loop` solve). Ratios are to the
plain NODE arm; NFE is the solver's count on the same batch.

    python -m common run regnde --seeds=0        # the study first
    python -m benchmarks.regnde_cost --seed=0 \
        [--runs=runs/regnde-default --arms=NODE,ERNODE,SRNODE,STEER]
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import ml_collections as mlc

from benchmarks import bench_lib
from common.core import checkpoint as checkpoint_lib
from common.protocols import build


def _args() -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--runs", default="runs/regnde-default")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--arms", default="NODE,ERNODE,SRNODE,STEER")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--rounds", type=int, default=5)
  return p.parse_args()


def _restore(workdir: str):
  """`(setup, state)` of a finished run's final checkpoint."""
  with open(os.path.join(workdir, "config.json")) as f:
    config = mlc.ConfigDict(json.load(f))
  s = build.setup(config)
  ckpt = checkpoint_lib.Checkpointer(workdir)
  state = ckpt.restore_latest(s.abstract_state)
  ckpt.close()
  if state is None:
    raise SystemExit(f"no checkpoint in {workdir}: run the study first")
  return s, state


def main():
  args = _args()
  arms = args.arms.split(",")
  train_fns, predict_fns, nfe = {}, {}, {}
  for arm in arms:
    s, state = _restore(os.path.join(args.runs, arm, f"seed_{args.seed}"))
    train_batch = next(s.train_batches(0))
    eval_batches = list(s.eval_batches())
    # The train step donates its state: prediction keeps its own copy.
    box = {"state": jax.tree.map(jnp.copy, state)}

    def train(s=s, box=box, batch=train_batch):
      box["state"], metrics, _ = s.train_step(box["state"], batch,
                                              s.hparams)
      return metrics["loss"]

    def predict(s=s, state=state, batches=eval_batches):
      return [s.eval_step(state, b, s.hparams, output_keys=("logits", "nfe"))
              for b in batches]
    train_fns[arm], predict_fns[arm] = train, predict
    nfe[arm] = float(predict()[0]["nfe"][0])
  load_before = open("/proc/loadavg").read().split()[:3]
  t_train = bench_lib.time_interleaved(train_fns, args.steps, args.rounds)
  t_pred = bench_lib.time_interleaved(predict_fns, args.steps, args.rounds)
  load_after = open("/proc/loadavg").read().split()[:3]
  base = arms[0]
  print(f"device: {bench_lib.device_name()}; {args.runs} seed {args.seed}; "
        f"load average before {' '.join(load_before)}, after "
        f"{' '.join(load_after)}\n")
  print(f"| arm | train step ms | x {base} | prediction ms (eval split) "
        f"| x {base} | prediction NFE |")
  print("|---|---|---|---|---|---|")
  for arm in arms:
    print(f"| {arm} | {1e3 * t_train[arm]:.1f} | "
          f"{t_train[arm] / t_train[base]:.2f} | {1e3 * t_pred[arm]:.1f} | "
          f"{t_pred[arm] / t_pred[base]:.2f} | {nfe[arm]:.0f} |")
  jax.effects_barrier()


if __name__ == "__main__":
  main()
