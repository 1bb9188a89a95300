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

Both are registered curricula (`common/envs/interfaces.py`: "linear" and
"self_paced_gamma", numbers from `config.curriculum.<name>`). The teacher
update runs on the host between jitted training chunks of the RL protocol
(`common/protocols/rl.py`); the jitted loop is in
`algos/rl/adversarial_sac.py` (the adversary reads alpha from each sample's
observation there).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from absl import logging
import numpy as np
from scipy import optimize
from scipy import special

from common import config as config_lib
from common.envs import interfaces


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


# ------------------------------------------------------------ curricula
class LinearCurriculum(interfaces.Curriculum):
  """QARL-linear: every episode of iteration i at `linear_temperature(i)`."""

  def __init__(self, n_iterations: int, initial: float, target: float,
               start_frac: float, end_frac: float):
    self.n_iterations = n_iterations
    self.initial, self.target = initial, target
    self.start_frac, self.end_frac = start_frac, end_frac

  def temperatures(self, state, seeds, start, iterations, n_envs):
    t = linear_temperature(np.arange(start, start + iterations),
                           self.n_iterations, self.initial, self.target,
                           self.start_frac, self.end_frac)
    out = np.zeros((len(seeds), iterations, 2, n_envs), np.float32)
    out[:] = t[None, :, None, None]
    return out

  def eval_temperature(self, state, n_runs):
    return np.full((n_runs,), self.target, np.float32)


@interfaces.register_curriculum("linear")
def make_linear(config) -> LinearCurriculum:
  c = config.curriculum.linear
  return LinearCurriculum(config.train.iterations, c.initial, c.target,
                          c.start_frac, c.end_frac)


class SelfPacedGammaCurriculum(interfaces.Curriculum):
  """QARL: per-episode alpha ~ Gamma(nu, rate), nu moved by the teacher.

  State per run: `conc` (nu), `above` (the performance bound was reached
  once) and a buffer of (temperature, discounted protagonist return) pairs
  that is emptied into a teacher update once it holds `n_samples` (pairs
  arrive 2 * n_envs per iteration, as the official per-iteration buffer).
  """

  def __init__(self, settings: GammaCurriculum, capacity: int):
    self.settings = settings
    self.capacity = capacity

  def init(self, seeds):
    r, p = len(seeds), self.capacity
    return dict(conc=np.full((r,), self.settings.initial_conc, np.float32),
                above=np.zeros((r,), np.bool_),
                pair_temps=np.zeros((r, p), np.float32),
                pair_returns=np.zeros((r, p), np.float32),
                pair_count=np.zeros((r,), np.int32))

  def temperatures(self, state, seeds, start, iterations, n_envs):
    conc = np.asarray(state["conc"])
    out = np.zeros((len(seeds), iterations, 2, n_envs), np.float32)
    for r, seed in enumerate(seeds):
      # Stateless: a chunk's draws depend on (seed, first iteration) only,
      # never on the other runs of the study.
      rng = np.random.default_rng([seed, start])
      out[r] = self.settings.sample(rng, float(conc[r]),
                                    (iterations, 2, n_envs))
    return out

  def after_chunk(self, state, seeds, temps, disc_returns):
    state = {k: np.array(v) for k, v in state.items()}   # host copies
    conc, above, count = state["conc"], state["above"], state["pair_count"]
    pt, pr = state["pair_temps"], state["pair_returns"]
    logs = []
    for r, seed in enumerate(seeds):
      for t_it, j_it in zip(temps[r], disc_returns[r]):
        t_it, j_it = t_it.ravel(), j_it.ravel()
        c = count[r]
        pt[r, c:c + t_it.size] = t_it
        pr[r, c:c + t_it.size] = j_it
        count[r] = c + t_it.size
        if count[r] >= self.settings.n_samples:
          new, flag, info = self_paced_update(
              self.settings, float(conc[r]), bool(above[r]),
              pt[r, :count[r]], pr[r, :count[r]])
          conc[r], above[r], count[r] = new, flag, 0
          if info["status"].startswith(("failed", "kept")):
            logging.warning("QARL teacher (seed %d): %s", seed,
                            info["status"])
          logs.append((r, info))
    return state, logs

  def eval_temperature(self, state, n_runs):
    conc = np.asarray(state["conc"], np.float64)
    return np.asarray([self.settings.mean(float(c)) for c in conc],
                      np.float32)

  def describe(self, state):
    return {"conc": np.asarray(state["conc"])}


def pair_capacity(n_envs: int, chunk_iterations: int) -> int:
  """Room for the pairs of 8 chunks (a teacher update empties it)."""
  return 2 * n_envs * chunk_iterations * 8


@interfaces.register_curriculum("self_paced_gamma")
def make_self_paced_gamma(config) -> SelfPacedGammaCurriculum:
  c = config.curriculum.self_paced_gamma
  settings = GammaCurriculum(
      initial_conc=c.initial_conc, target_conc=c.target_conc, rate=c.rate,
      max_kl=c.max_kl, perf_lb=c.perf_lb, conc_lb=c.conc_lb,
      target_kl_threshold=c.target_kl_threshold, n_samples=c.n_samples)
  capacity = pair_capacity(config.agent.n_envs, config.train.chunk_iterations)
  # Pairs arrive 2 * n_envs per iteration; the buffer empties at n_samples.
  most = capacity + 1 - 2 * config.agent.n_envs
  if not 1 <= c.n_samples <= most:
    raise config_lib.ConfigError(
        f"config.curriculum.self_paced_gamma.n_samples={c.n_samples} is not "
        f"allowed: expected an int in [1, {most}] (the pair buffer holds "
        f"{capacity} = 16 * agent.n_envs * train.chunk_iterations)")
  return SelfPacedGammaCurriculum(settings, capacity)
