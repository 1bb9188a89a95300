"""info_koopman's figures: the study's artifacts hook (`study.artifacts`).

For the first seed of every arm, restores the trained Koopman autoencoder
and draws, per system, into `<study>/figures/`:
* `<system>_rollouts.png`: rows = arms; left, the first coordinate of a
  held-out trajectory and of the latent rollout psi(phi(x_0) K^n) from its
  first state; right, the attractor projection of the truth and of the
  free run (Lorenz-63: x-z plane; Van der Pol: position-velocity);
* `<system>_curves.png`: left, n-step RMSE against n for every arm; right,
  the normalised singular values of the latents of all held-out states (a
  collapsed latent has one or two large values).
"""

from __future__ import annotations

import collections
import os
from typing import Any

import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from common.study import engine
from experiments.info_koopman import evaluate

_PLANE = {"lorenz63": (0, 2)}   # attractor projection; default (0, 1)
_SHOW_STEPS = 400


def _arm_data(setup: Any, state: Any) -> dict[str, np.ndarray]:
  cfg = setup.config
  variables = {"params": state.params, **state.model_state}
  test = evaluate.test_trajectories(cfg)
  curve_fn, free_run, encode = evaluate.model_functions(
      setup.model, variables, evaluate.koopman_of(state))
  horizon = int(cfg.eval.horizon)
  curve = np.mean([np.asarray(curve_fn(jnp.asarray(x), horizon))
                   for x in test], axis=0)
  run = np.asarray(free_run(jnp.asarray(test[:1, 0]), test.shape[1] - 1))[0]
  z = np.asarray(encode(jnp.asarray(test.reshape(-1, test.shape[-1]))))
  sv = np.linalg.svd(z - z.mean(0), compute_uv=False)
  return {"truth": test[0], "run": run, "rmse": np.sqrt(curve),
          "spectrum": sv / sv.sum()}


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`{"<system>/rollouts": path, "<system>/curves": path}`."""
  by_system = collections.defaultdict(dict)
  for arm, _, cfg, setup, state in engine.restore_first_seeds(configs, runs):
    system = cfg.data.kwargs.system
    by_system[system][arm.partition(": ")[2] or arm] = _arm_data(setup,
                                                                 state)
  out_dir = os.path.join(workdir, "figures")
  os.makedirs(out_dir, exist_ok=True)
  paths = {}
  for system, arms in by_system.items():
    paths[f"{system}/rollouts"] = _rollouts(system, arms, out_dir)
    paths[f"{system}/curves"] = _curves(system, arms, out_dir)
  return paths


def _rollouts(system: str, arms: dict[str, Any], out_dir: str) -> str:
  a, b = _PLANE.get(system, (0, 1))
  fig, axes = plt.subplots(len(arms), 2, figsize=(9, 2.4 * len(arms)),
                           squeeze=False)
  for row, (name, d) in enumerate(arms.items()):
    n = min(_SHOW_STEPS, len(d["truth"]))
    # A diverging rollout is drawn until it leaves 1.5x the truth's range.
    span = 1.5 * np.abs(d["truth"]).max()
    run = np.where(np.abs(d["run"]) <= span, d["run"], np.nan)
    ax = axes[row, 0]
    ax.plot(d["truth"][:n, 0], "k-", lw=1, label="truth")
    ax.plot(run[:n, 0], "r--", lw=1, label="Koopman rollout")
    ax.set_ylim(-span, span)
    ax.set_ylabel(name)
    ax.set_xlabel("step")
    ax = axes[row, 1]
    ax.plot(d["truth"][:, a], d["truth"][:, b], "k-", lw=0.4, label="truth")
    ax.plot(run[:, a], run[:, b], "r-", lw=0.6, label="free run")
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_xlabel(f"x{a}")
    ax.set_ylabel(f"x{b}")
  axes[0, 0].legend(fontsize=7)
  axes[0, 1].legend(fontsize=7)
  return _save(fig, f"{system}: held-out trajectory (seed of the first run)",
               os.path.join(out_dir, f"{system}_rollouts.png"))


def _curves(system: str, arms: dict[str, Any], out_dir: str) -> str:
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
  for name, d in arms.items():
    axes[0].semilogy(np.arange(1, len(d["rmse"]) + 1), d["rmse"], label=name)
    axes[1].semilogy(np.arange(1, len(d["spectrum"]) + 1), d["spectrum"],
                     "o-", ms=3, label=name)
  axes[0].set_xlabel("rollout step n")
  axes[0].set_ylabel("RMSE (standardised)")
  axes[1].set_xlabel("latent singular value index")
  axes[1].set_ylabel("normalised singular value")
  axes[0].legend(fontsize=7)
  return _save(fig, f"{system}: n-step error and latent spectrum",
               os.path.join(out_dir, f"{system}_curves.png"))


def _save(fig: Any, title: str, path: str) -> str:
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path
