"""QARL: the adversary's temperature curricula.

Paper: Robust Adversarial Reinforcement Learning via Bounded Rationality
Curricula. Reddi, Tölle, Peters, Chalvatzaki, D'Eramo. ICLR 2024,
arXiv:2311.01642. Official code (PyTorch + MushroomRL + dm_control):
https://github.com/AryamanReddi99/quantal-adversarial-rl (read at aae57b7).

The protagonist plays an entropy-regularised zero-sum game against an
adversary whose entropy temperature alpha sets its rationality (quantal
response equilibrium; alpha -> 0 is the Nash, fully rational adversary).
Training starts against a boundedly rational (high-temperature) adversary
and moves towards a rational one:

* QARL-linear (`qarl_linear_experiment.py`): alpha falls linearly from 0.05
  to 0.001 between `start_frac` and `end_frac` (0 and 2/3) of the iterations.
* QARL (`self_paced_gamma_teacher_fixed_beta.py`): each episode's alpha is
  drawn from p_nu = Gamma(concentration nu, rate 1000). When the
  importance-weighted expected discounted return of the *protagonist* under
  p_nu is at least `perf_lb`, nu is moved towards the target (nu = 1, mean
  0.001) by minimising KL(p_nu || p_target) subject to
  KL(p_nu || p_old) <= max_kl (0.5) and the performance constraint; until
  the performance bound has been reached once, the distribution is frozen
  (the official code's "optimise performance" branch is commented out).
  Solved with SciPy's `trust-constr`, as the official teacher; a failed or
  unsuccessful optimisation keeps the old nu and is reported (the official
  code prints it; we return it to be logged).

The teacher update runs on the host between jitted training chunks; the
jitted loop is in `algos/rl/adversarial_sac.py` (the adversary reads alpha
from each sample's observation there). Not a `common.method.Method`: RL
does not fit the classification train step (see WORKSPACE invariant 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import optimize
from scipy import special


def linear_temperature(iteration: int | np.ndarray, n_iterations: int,
                       initial: float = 0.05, target: float = 0.001,
                       start_frac: float = 0.0,
                       end_frac: float = 2.0 / 3.0) -> np.ndarray:
  """The linear schedule of `qarl_linear_experiment.py` at `iteration`."""
  start, end = start_frac * n_iterations, end_frac * n_iterations
  frac = np.clip((np.asarray(iteration, np.float64) - start)
                 / max(end - start, 1e-12), 0.0, 1.0)
  return initial + frac * (target - initial)


def gamma_log_pdf(x: np.ndarray, conc: float, rate: float) -> np.ndarray:
  """log Gamma(x; concentration, rate) for x `[n]`."""
  x = np.asarray(x, np.float64)
  return (conc * np.log(rate) - special.gammaln(conc)
          + (conc - 1.0) * np.log(x) - rate * x)


def gamma_kl(conc_p: float, conc_q: float, rate: float) -> float:
  """KL(Gamma(conc_p, rate) || Gamma(conc_q, rate)) (same rate)."""
  return float((conc_p - conc_q) * special.digamma(conc_p)
               - special.gammaln(conc_p) + special.gammaln(conc_q))


def gamma_kl_grad(conc_p: float, conc_q: float) -> float:
  """d KL(Gamma(a, b) || Gamma(conc_q, b)) / d a at a = conc_p."""
  return float((conc_p - conc_q) * special.polygamma(1, conc_p))


@dataclasses.dataclass(frozen=True)
class GammaCurriculum:
  """Settings of the self-paced Gamma teacher (official defaults)."""
  initial_conc: float = 50.0
  target_conc: float = 1.0
  rate: float = 1000.0
  max_kl: float = 0.5
  perf_lb: float = 10.0          # official default; re-tune per reward scale
  conc_lb: float = 1e-8
  target_kl_threshold: float = 0.01
  n_samples: int = 30            # (alpha, return) pairs per update

  def mean(self, conc: float) -> float:
    return conc / self.rate

  def sample(self, rng: np.random.Generator, conc: float,
             shape: tuple[int, ...]) -> np.ndarray:
    return rng.gamma(conc, 1.0 / self.rate, size=shape).astype(np.float32)


def expected_performance(conc: float, temps: np.ndarray, old_log_pdf:
                         np.ndarray, returns: np.ndarray,
                         rate: float) -> float:
  """Importance-weighted E_{p_conc}[J] from samples of the old Gamma."""
  w = np.exp(gamma_log_pdf(temps, conc, rate) - old_log_pdf)
  return float(np.mean(w * returns))


def self_paced_update(cur: GammaCurriculum, conc: float, above_perf_lb: bool,
                      temps: np.ndarray, returns: np.ndarray
                      ) -> tuple[float, bool, dict[str, Any]]:
  """One teacher step: new concentration, flag, and a log record.

  Args:
    cur: the curriculum settings.
    conc: current concentration nu_old.
    above_perf_lb: whether the performance bound was ever reached.
    temps: `[n]` temperatures the episodes were played at (from p_old).
    returns: `[n]` the protagonist's discounted returns of those episodes.

  Returns:
    (new concentration, new flag, info) where info["status"] is one of
    "moved", "frozen", "kept (<reason>)" or "failed (<error>)".
  """
  temps = np.asarray(temps, np.float64)
  returns = np.asarray(returns, np.float64)
  old_log_pdf = gamma_log_pdf(temps, conc, cur.rate)

  def perf(x):
    return expected_performance(float(x[0]), temps, old_log_pdf, returns,
                                cur.rate)

  def perf_grad(x):
    w = np.exp(gamma_log_pdf(temps, x[0], cur.rate) - old_log_pdf)
    dlog = np.log(cur.rate) - special.digamma(x[0]) + np.log(temps)
    return np.array([np.mean(w * dlog * returns)])

  def kl_old(x):
    return gamma_kl(float(x[0]), conc, cur.rate)

  def objective(x):
    return (gamma_kl(float(x[0]), cur.target_conc, cur.rate),
            np.array([gamma_kl_grad(float(x[0]), cur.target_conc)]))

  info: dict[str, Any] = dict(perf_before=perf([conc]))
  x0 = np.array([max(conc, cur.conc_lb)])
  if info["perf_before"] < cur.perf_lb:
    info["status"] = "frozen" if not above_perf_lb else "kept (below bound)"
    return conc, above_perf_lb, _finish(info, conc, conc, cur, perf)
  above_perf_lb = True
  constraints = [
      optimize.NonlinearConstraint(
          kl_old, -np.inf, cur.max_kl, keep_feasible=True,
          jac=lambda x: np.array([[gamma_kl_grad(float(x[0]), conc)]])),
      optimize.NonlinearConstraint(
          perf, cur.perf_lb, np.inf, keep_feasible=True,
          jac=lambda x: perf_grad(x)[None]),
  ]
  bounds = None
  if gamma_kl(conc, cur.target_conc, cur.rate) > cur.target_kl_threshold:
    bounds = optimize.Bounds([cur.conc_lb], [np.inf], keep_feasible=True)
  try:
    res = optimize.minimize(objective, x0, method="trust-constr", jac=True,
                            bounds=bounds, constraints=constraints,
                            options={"gtol": 1e-4, "xtol": 1e-6})
  except Exception as e:  # pylint: disable=broad-except
    info["status"] = f"failed ({type(e).__name__}: {e})"
    return conc, above_perf_lb, _finish(info, conc, conc, cur, perf)
  new = float(res.x[0])
  feasible = (kl_old([new]) <= cur.max_kl + 1e-9 and perf([new]) >= cur.perf_lb
              and new >= cur.conc_lb)
  if res.success and feasible:
    info["status"] = "moved"
  elif feasible and objective([new])[0] < objective([conc])[0]:
    info["status"] = f"moved (unsuccessful but improved: {res.message})"
  else:
    info["status"] = f"kept ({res.message}; feasible={feasible})"
    new = conc
  return new, above_perf_lb, _finish(info, conc, new, cur, perf)


def _finish(info, old, new, cur, perf):
  info.update(conc_old=old, conc=new, mean_temp=cur.mean(new),
              kl_old=gamma_kl(new, old, cur.rate),
              kl_target=gamma_kl(new, cur.target_conc, cur.rate),
              perf_after=perf([new]))
  return info
