"""Held-out metrics of a Koopman autoencoder: evaluator `koopman_rollout`.

On `eval.test_trajectories` clean trajectories of `eval.test_length`
states, drawn by the run's own generator (`dynamical_system`, same system,
dt and standardisation) from a key no train step uses:

* `pred_rmse_1`, `rmse_window`, `rollout_rmse`, `rollout_rmse_h`: RMSE of
  the latent rollout psi(phi(x_t) K^n) against x_{t+n} from every start t
  (`dynamics_metrics.prediction_error_curve`, mean over starts): at n = 1,
  at n = T (the training window, `data.kwargs.length - 1`), averaged over
  n = 1..`eval.horizon`, and at n = `eval.horizon` (standardised units:
  the attractor's std is 1 per coordinate);
* `valid_steps`: the number of leading rollout steps whose RMSE stays
  below `VALID_RMSE` (capped at the horizon), a measure that an exploding
  rollout cannot dominate;
* `d_stsp`, `d_h`: state-space divergence and power-spectrum Hellinger
  distance of a free run of `test_length` steps from each trajectory's
  first state (mean over the runs that stay finite; `free_run_diverged`
  is the fraction that did not, and the two are left out when none did);
* `latent_erank`, `latent_vn_entropy`: Roy-Vetterli effective rank and von
  Neumann entropy of phi(x) over all test states;
* `koopman_radius`: spectral radius of K.

K is the trained parameter, or with `operator="least_squares"` the fitted
test-time operator the method keeps in its state (the last epoch's mean,
as the official `C_forward.pt`). Least-squares runs also report the
prediction metrics and radius with the last training batch's fit
(suffix `_last`), the operator the final encoder was trained with.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.dynamics import info_koopman
from common import config as config_lib
from common.data import cfd_fields
from common.data import procedural
from common.eval import dynamics_metrics
from common.eval import evaluators

_HELD_OUT_STREAM = 20_000
VALID_RMSE = 0.5   # half the attractor's std


def test_trajectories(config: Any) -> np.ndarray:
  """`[n, L, d]` clean held-out trajectories of the run's system."""
  e = config.eval
  cfg = config_lib.apply_overrides(
      config, {"data.kwargs.length": int(e.test_length)})
  gen = procedural.make(cfg)
  key = jax.random.PRNGKey(_HELD_OUT_STREAM + int(config.seed))
  return np.asarray(gen.sample(key, int(e.test_trajectories))["clean"])


def koopman_of(state: Any) -> jax.Array:
  """The operator `[m, m]` a trained state predicts with: the fitted one in
  the method state ("least_squares") or else the parameter K."""
  fitted = (state.method_state or {}).get("koopman")
  return state.params["koopman"] if fitted is None else fitted


def model_functions(model: Any, variables: Any, koop: jax.Array):
  """Jitted `(curve(x [L, d], horizon), free_run(x0 [n, d], steps),
  encode(x [..., d]))` of a trained `koopman_ae` with operator `koop`."""
  apply = lambda method, *a, **k: model.apply(variables, *a, method=method,
                                              **k)

  def curve(x, horizon):
    return dynamics_metrics.prediction_error_curve(
        lambda z: z @ koop, x, horizon,
        init=lambda s: apply("encode", s),
        observe=lambda z: apply("decode", z, x.shape[-1]))
  return (jax.jit(curve, static_argnums=1),
          jax.jit(lambda x0, steps: apply("rollout", x0, steps, koop),
                  static_argnums=1),
          jax.jit(lambda x: apply("encode", x)))


def rollout_metrics(model: Any, variables: Any, koop: jax.Array,
                    test: np.ndarray, horizon: int, window: int
                    ) -> dict[str, float]:
  """The metrics listed in the module docstring on `test` `[n, L, d]`,
  predicting with the operator `koop` `[m, m]`."""
  curve_fn, free_run, encode = model_functions(model, variables, koop)
  curve = np.mean([np.asarray(curve_fn(jnp.asarray(x), horizon))
                   for x in test], axis=0)
  rmse = np.sqrt(curve)
  bad = np.flatnonzero(~(rmse < VALID_RMSE))
  out = {"pred_rmse_1": float(rmse[0]),
         "rmse_window": float(rmse[min(window, horizon) - 1]),
         "rollout_rmse": float(np.sqrt(curve.mean())),
         "rollout_rmse_h": float(rmse[-1]),
         "valid_steps": float(bad[0] if len(bad) else horizon)}
  runs = np.asarray(free_run(jnp.asarray(test[:, 0]), test.shape[1] - 1))
  d_stsp, d_h = [], []
  for true, gen in zip(test, runs):
    if not np.all(np.isfinite(gen)) or np.abs(gen).max() > 1e3:
      continue
    kl = float(dynamics_metrics.state_space_divergence(true, gen))
    hd = float(dynamics_metrics.power_spectrum_error(true, gen))
    if np.isfinite(kl) and np.isfinite(hd):
      d_stsp.append(kl)
      d_h.append(hd)
  out["free_run_diverged"] = 1.0 - len(d_stsp) / len(test)
  if d_stsp:
    out.update(d_stsp=float(np.mean(d_stsp)), d_h=float(np.mean(d_h)))
  z = encode(jnp.asarray(test.reshape(-1, test.shape[-1])))
  out["latent_erank"] = float(info_koopman.effective_rank(z))
  out["latent_vn_entropy"] = float(info_koopman.von_neumann_entropy(z))
  koop = np.asarray(koop, np.float64)
  out["koopman_radius"] = float(np.abs(np.linalg.eigvals(koop)).max())
  return out


def field_metrics(model: Any, variables: Any, koop: jax.Array,
                  windows: np.ndarray, chunk: int = 32) -> dict[str, float]:
  """Prediction metrics on windows of 2-D fields `[N, T+1, H, W, C]`.

  There is no attractor to compare a free run with, so: `rollout_rmse`
  (RMSE of psi(phi(x_0) K^k) against x_k over k = 1..T and all windows),
  `rmse_window` (at k = T), `pred_rmse_1` (one step from every state,
  psi(phi(x_t) K) against x_{t+1}, the official forward), `recon_rmse`,
  the latent effective rank and S_vN, and K's spectral radius.
  """
  apply = lambda method, *a, **k: model.apply(variables, *a, method=method,
                                              **k)

  @jax.jit
  def errors(x):
    z = apply("encode", x)                                   # [b, T+1, m]
    channels, steps = x.shape[-1], x.shape[1] - 1
    roll = apply("decode", apply("advance", z[:, 0], steps, koop), channels)
    one = apply("decode", z[:, :-1] @ koop, channels)
    sq = lambda a, b: jnp.mean(jnp.square(a - b), axis=(2, 3, 4))  # [b, T]
    recon = sq(apply("decode", z, channels), x)
    return sq(roll, x[:, 1:]), sq(one, x[:, 1:]), recon, z

  rolls, ones, recons, zs = [], [], [], []
  for start in range(0, len(windows), chunk):
    r, o, c, z = errors(jnp.asarray(windows[start:start + chunk]))
    rolls.append(np.asarray(r))
    ones.append(np.asarray(o))
    recons.append(np.asarray(c))
    zs.append(np.asarray(z).reshape(-1, z.shape[-1]))
  roll = np.concatenate(rolls)                                # [N, T]
  z = jnp.asarray(np.concatenate(zs))
  koop = np.asarray(koop, np.float64)
  return {"rollout_rmse": float(np.sqrt(roll.mean())),
          "rmse_window": float(np.sqrt(roll[:, -1].mean())),
          "pred_rmse_1": float(np.sqrt(np.concatenate(ones).mean())),
          "recon_rmse": float(np.sqrt(np.concatenate(recons).mean())),
          "latent_erank": float(info_koopman.effective_rank(z)),
          "latent_vn_entropy": float(info_koopman.von_neumann_entropy(z)),
          "koopman_radius": float(np.abs(np.linalg.eigvals(koop)).max())}


@evaluators.register_evaluator("koopman_rollout")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Rollout, attractor and latent-rank metrics of the trained model
  (prediction metrics only on `cfd_fields` windows: `field_metrics`)."""
  cfg = setup.config
  if cfg.data.name == "cfd_fields":
    windows = cfd_fields.eval_windows(cfg)
    keep = int(cfg.eval.get("test_windows", 0)) or len(windows)
    pick = np.random.default_rng(0).permutation(len(windows))[:keep]
    variables = {"params": state.params, **state.model_state}
    return field_metrics(setup.model, variables, koopman_of(state),
                         windows[np.sort(pick)])
  variables = {"params": state.params, **state.model_state}
  test = test_trajectories(cfg)
  args = (test, int(cfg.eval.horizon), int(cfg.data.kwargs.length) - 1)
  out = rollout_metrics(setup.model, variables, koopman_of(state), *args)
  last = (state.method_state or {}).get("koopman_last")
  if last is not None:
    more = rollout_metrics(setup.model, variables, last, *args)
    out.update({f"{k}_last": v for k, v in more.items()
                if not k.startswith("latent_")})
  return out
