"""QARL study runner: every arm x seed as one vmapped, jitted program.

`config.runner = "experiments.qarl.run"` (see common/runners.py). The arms
(SAC, RARL, QARL-linear, QARL) differ only in traced numbers (adversary on,
temperature from the observation) and in the temperatures the host feeds
each episode, so all arms and seeds of a study train together: one
`jax.vmap` over runs of `adversarial_sac.train_chunk`. Between chunks the
host samples the temperatures (linear schedule, or the Gamma teacher of
each QARL run, updated with SciPy as the official code), logs, and saves
an orbax checkpoint of the whole study (agents, buffers, teacher state), so
an interrupted study resumes to the same result.

After training: a fresh rational adversary (SAC, learned temperature) is
trained against each frozen protagonist (the worst case), then every
protagonist is evaluated against its own trained adversary, against the
worst case, without adversary, and over an 11 x 11 grid of two physical
parameters without adversary (official `evaluate_robustness`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Sequence

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from algos.rl import adversarial_sac as asac
from algos.rl import qarl
from common.core import checkpoint as checkpoint_lib
from common import config as config_lib
from common.core import logging_utils
from common.study import engine as study_lib
from common.envs import base as envs

METHODS = ("sac", "rarl", "qarl_linear", "qarl")
# (adversary_on, adversary temperature from the observation)
_FLAGS = {"sac": (0.0, 0.0), "rarl": (1.0, 0.0), "qarl_linear": (1.0, 1.0),
          "qarl": (1.0, 1.0)}


@flax.struct.dataclass
class StudyState:
  """Everything a study needs to resume: runs stacked on axis 0 `[R]`."""
  step: jax.Array            # iterations done
  runs: asac.RunState
  conc: jax.Array            # [R] Gamma concentration (QARL runs)
  above: jax.Array           # [R] performance bound reached once
  pair_temps: jax.Array      # [R, P] buffered (temperature, return) pairs
  pair_returns: jax.Array    # [R, P]
  pair_count: jax.Array      # [R]


@dataclasses.dataclass
class Plan:
  """The runs of a study: arm label, method and seed of each."""
  labels: list[str]
  methods: list[str]
  seeds: list[int]


def validate(config: mlc.ConfigDict) -> None:
  if config.env.name not in ("point_mass", "pendulum") and not (
      config.env.name.startswith("brax_")):
    raise ValueError(f"env.name={config.env.name!r}; allowed: point_mass, "
                     f"pendulum, brax_<hopper|halfcheetah|walker2d|ant>")
  for label, over in config.study.arms.items():
    cfg = config_lib.apply_overrides(config, _split(over))
    if cfg.qarl.method not in METHODS:
      raise ValueError(f"arm {label!r}: qarl.method={cfg.qarl.method!r}; "
                       f"allowed: {METHODS}")
  rl = config.rl
  if rl.iterations <= 0 or rl.chunk_iterations <= 0:
    raise ValueError("rl.iterations and rl.chunk_iterations must be > 0")
  if rl.iterations % rl.chunk_iterations:
    raise ValueError(f"rl.iterations={rl.iterations} must be a multiple of "
                     f"rl.chunk_iterations={rl.chunk_iterations}")
  if rl.buffer_size % rl.n_envs:
    raise ValueError(f"rl.buffer_size={rl.buffer_size} must be a multiple of "
                     f"rl.n_envs={rl.n_envs}")
  # Pairs arrive 2 * n_envs per iteration; the buffer empties at n_samples.
  if config.qarl.n_samples - 1 + 2 * rl.n_envs > _pair_capacity(config):
    raise ValueError(f"qarl.n_samples={config.qarl.n_samples} does not fit "
                     f"the pair buffer ({_pair_capacity(config)}); allowed: "
                     f"<= {_pair_capacity(config) + 1 - 2 * rl.n_envs}")


def _split(over: str) -> list[str]:
  return [o for o in over.split(",") if o.strip()] if over else []


def make_spec(config: mlc.ConfigDict) -> asac.Spec:
  rl = config.rl
  env = envs.make(config.env.name, horizon=config.env.horizon)
  return asac.Spec(env=env, hidden=tuple(rl.hidden), n_envs=rl.n_envs,
                   batch_size=rl.batch_size, buffer_size=rl.buffer_size,
                   updates_per_step=rl.updates_per_step,
                   learning_starts=rl.learning_starts)


def make_hparams(config: mlc.ConfigDict, method: str,
                 env_params: dict[str, float]) -> asac.HParams:
  rl = config.rl
  on, from_obs = _FLAGS[method]
  f = lambda x: jnp.asarray(x, jnp.float32)
  return asac.HParams(
      gamma=f(rl.gamma), tau=f(rl.tau), lr_actor=f(rl.lr_actor),
      lr_critic=f(rl.lr_critic), lr_alpha=f(rl.lr_alpha),
      init_log_alpha=f(rl.init_log_alpha), adversary_on=f(on),
      adv_alpha_from_obs=f(from_obs), prot_learns=f(1.0),
      env_params=envs.as_params(env_params, env_params))


def make_plan(config: mlc.ConfigDict, seeds: Sequence[int],
              arms: Sequence[str] = ()) -> tuple[Plan, list]:
  arm_overrides = study_lib.study_arms(config, arms)
  plan, hps = Plan([], [], []), []
  env_params = dict(config.env.params)
  for label, over in arm_overrides.items():
    method = config_lib.apply_overrides(config, over).qarl.method
    for seed in seeds:
      plan.labels.append(label)
      plan.methods.append(method)
      plan.seeds.append(int(seed))
      hps.append(make_hparams(config, method, env_params))
  return plan, hps


def _stack(trees):
  return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def _curriculum(config) -> qarl.GammaCurriculum:
  q = config.qarl
  return qarl.GammaCurriculum(
      initial_conc=q.initial_conc, target_conc=q.target_conc, rate=q.rate,
      max_kl=q.max_kl, perf_lb=q.perf_lb, conc_lb=q.conc_lb,
      target_kl_threshold=q.target_kl_threshold, n_samples=q.n_samples)


def _pair_capacity(config) -> int:
  return 2 * config.rl.n_envs * config.rl.chunk_iterations * 8


class Trainer:
  """Builds, trains (in chunks, checkpointed) and evaluates a study."""

  def __init__(self, config: mlc.ConfigDict, seeds: Sequence[int],
               arms: Sequence[str] = ()):
    self.config = config
    self.spec = make_spec(config)
    self.plan, hps = make_plan(config, seeds, arms)
    self.hp = _stack(hps)
    self.cur = _curriculum(config)
    self.fns = asac.compiled(self.spec)
    self._init = self.fns["init"]
    self._chunk = self.fns["train_chunk"]

  @property
  def n_runs(self) -> int:
    return len(self.plan.seeds)

  def init_state(self) -> StudyState:
    keys = jnp.stack([jax.random.PRNGKey(s) for s in self.plan.seeds])
    r, p = self.n_runs, _pair_capacity(self.config)
    return StudyState(
        step=jnp.zeros((), jnp.int32), runs=self._init(keys, self.hp),
        conc=jnp.full((r,), self.cur.initial_conc, jnp.float32),
        above=jnp.zeros((r,), jnp.bool_), pair_temps=jnp.zeros((r, p)),
        pair_returns=jnp.zeros((r, p)),
        pair_count=jnp.zeros((r,), jnp.int32))

  def temperatures(self, state: StudyState) -> np.ndarray:
    """`[R, K, 2, N]` temperatures of the next chunk's episodes."""
    rl, q = self.config.rl, self.config.qarl
    k, n = rl.chunk_iterations, rl.n_envs
    start = int(state.step)
    conc = np.asarray(state.conc)
    out = np.zeros((self.n_runs, k, 2, n), np.float32)
    for r, (method, seed) in enumerate(zip(self.plan.methods,
                                           self.plan.seeds)):
      if method == "qarl_linear":
        t = qarl.linear_temperature(np.arange(start, start + k),
                                    rl.iterations, q.linear_initial,
                                    q.linear_target, q.linear_start_frac,
                                    q.linear_end_frac)
        out[r] = t[:, None, None]
      elif method == "qarl":
        # Stateless: the draws of a chunk depend on (seed, run, step).
        rng = np.random.default_rng([seed, r, start])
        out[r] = self.cur.sample(rng, float(conc[r]), (k, 2, n))
    return out

  def _teacher(self, state: StudyState, temps: np.ndarray,
               disc_returns: np.ndarray) -> tuple[StudyState, list[dict]]:
    """Buffers (temperature, protagonist return) pairs; updates nu."""
    conc, above = np.asarray(state.conc).copy(), np.asarray(state.above).copy()
    pt, pr = np.asarray(state.pair_temps).copy(), np.asarray(
        state.pair_returns).copy()
    count = np.asarray(state.pair_count).copy()
    logs = []
    for r, method in enumerate(self.plan.methods):
      if method != "qarl":
        continue
      # Official: pairs buffered per iteration, update when >= n_samples.
      for t_it, j_it in zip(temps[r], disc_returns[r]):
        t_it, j_it = t_it.ravel(), j_it.ravel()
        c = count[r]
        pt[r, c:c + t_it.size] = t_it
        pr[r, c:c + t_it.size] = j_it
        count[r] = c + t_it.size
        if count[r] >= self.cur.n_samples:
          new, flag, info = qarl.self_paced_update(
              self.cur, float(conc[r]), bool(above[r]), pt[r, :count[r]],
              pr[r, :count[r]])
          conc[r], above[r], count[r] = new, flag, 0
          info.update(run=r, seed=self.plan.seeds[r])
          if info["status"].startswith(("failed", "kept")):
            logging.warning("QARL teacher (run %d, seed %d): %s", r,
                            self.plan.seeds[r], info["status"])
          logs.append(info)
    return state.replace(conc=jnp.asarray(conc), above=jnp.asarray(above),
                         pair_temps=jnp.asarray(pt),
                         pair_returns=jnp.asarray(pr),
                         pair_count=jnp.asarray(count)), logs

  def train(self, workdir: str, stop_after_chunks: int | None = None,
            progress: bool = True) -> tuple[StudyState, str]:
    """Trains (resuming from `workdir`); 'finished' or 'stopped'."""
    rl = self.config.rl
    ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "train"),
                                       max_to_keep=2)
    abstract = jax.eval_shape(self.init_state)
    state = ckpt.restore_latest(abstract) or self.init_state()
    writer = logging_utils.MetricWriter(workdir, tensorboard=False)
    chunks_done, t0 = 0, time.time()
    try:
      while int(state.step) < rl.iterations:
        if stop_after_chunks is not None and chunks_done >= stop_after_chunks:
          return state, "stopped"
        temps = self.temperatures(state)
        step = int(state.step)
        runs, metrics = self._chunk(state.runs, self.hp, jnp.asarray(temps),
                                    jnp.int32(step))
        state = state.replace(runs=runs, step=state.step + rl.chunk_iterations)
        metrics = jax.device_get(metrics)
        state, teacher_logs = self._teacher(state, temps,
                                            metrics["disc_return"])
        self._log(writer, step + rl.chunk_iterations, temps, metrics,
                  teacher_logs)
        chunks_done += 1
        if progress:
          ret = metrics["return"].mean(axis=(1, 2, 3))
          print(f"[qarl] iter {int(state.step)}/{rl.iterations} "
                f"{time.time() - t0:.0f}s mean return per arm: "
                + ", ".join(f"{l}={ret[np.array(self.plan.labels) == l].mean():.1f}"
                            for l in dict.fromkeys(self.plan.labels)),
                flush=True)
        if (int(state.step) % (rl.checkpoint_every_chunks
                               * rl.chunk_iterations) == 0
            or int(state.step) >= rl.iterations):
          ckpt.save(state)
    finally:
      writer.close()
      ckpt.close()
    return state, "finished"

  def _log(self, writer, step, temps, metrics, teacher_logs):
    for r, (label, seed) in enumerate(zip(self.plan.labels, self.plan.seeds)):
      scalars = {k: float(np.mean(v[r])) for k, v in metrics.items()}
      scalars["temperature"] = float(temps[r].mean())
      writer.write(step, f"train/{label}/seed_{seed}", scalars)
    for info in teacher_logs:
      writer.write(step, f"teacher/seed_{info['seed']}", {
          k: v for k, v in info.items() if k not in ("run", "seed")})


METRICS = ("return_vs_worst_adversary", "return_vs_own_adversary",
           "return_no_adversary", "grid_mean", "grid_worst")
_LABELS = {
    "return_vs_worst_adversary": "return vs worst-case adversary",
    "return_vs_own_adversary": "return vs own adversary",
    "return_no_adversary": "return, no adversary",
    "grid_mean": "robustness grid: mean", "grid_worst": "grid: worst cell"}


def _format(summary, n_seeds: int, env_name: str) -> str:
  lines = [f"Ours: {env_name}, mean +- std over {n_seeds} seed(s) "
           f"(undiscounted return of the protagonist; higher is better). "
           f"No paper numbers: the paper reports dm_control tasks only.", "",
           "| arm | " + " | ".join(_LABELS[m] for m in METRICS) + " |",
           "|---|" + "---|" * len(METRICS)]
  for arm, agg in summary.items():
    cells = []
    for m in METRICS:
      mean, std = agg[m]["mean"], agg[m]["std"]
      cells.append("-" if mean is None else f"{mean:.1f}" + (
          f" +- {std:.1f}" if std is not None else ""))
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str | None = None,
              progress: bool = True) -> study_lib.StudyResult:
  """Trains all arms x seeds together, evaluates, writes the results."""
  validate(config)
  from experiments.qarl import evaluate as ev  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  trainer = Trainer(config, seeds, arms)
  state, status = trainer.train(workdir, progress=progress)
  if status != "finished":
    raise SystemExit("study stopped early; rerun the command to resume")
  t_train = time.time() - t0
  worst = ev.train_worst_adversaries(trainer, state)
  res = ev.evaluate(trainer, state, worst)
  t_total = time.time() - t0
  labels = trainer.plan.labels
  summary = ev.summarize(labels, res, list(METRICS))
  table = _format(summary, len(seeds), config.env.name)
  os.makedirs(workdir, exist_ok=True)
  heatmaps = os.path.join(workdir, "heatmaps.png")
  grids = {a: res["grid"][np.array([l == a for l in labels])]
           for a in dict.fromkeys(labels)}
  ev.plot_heatmaps(labels, grids, res["axes"], heatmaps)
  per_run = {f"{l}/seed_{s}": {m: _num(res[m][r]) for m in METRICS}
             for r, (l, s) in enumerate(zip(labels, trainer.plan.seeds))}
  teacher = {f"{l}/seed_{s}": dict(final_conc=float(state.conc[r]),
                                   own_temperature=float(
                                       res["own_temperature"][r]))
             for r, (l, s) in enumerate(zip(labels, trainer.plan.seeds))}
  return study_lib.write_results(
      workdir, table, seeds, summary, config, command,
      preamble=(f"Wall time: {t_total:.0f} s (training {t_train:.0f} s, "
                f"incl. compilation)."),
      extra_paths={"heatmaps": heatmaps}, env=config.env.name, runs=per_run,
      teacher=teacher, wall_time_s=t_total,
      grid_axes={n: v.tolist() for n, v in res["axes"]},
      grids={a: g.tolist() for a, g in grids.items()})


def _num(x) -> float | None:
  x = float(x)
  return None if np.isnan(x) else x


SMOKE_OVERRIDES = {
    "env.horizon": 8, "rl.hidden": (16,), "rl.n_envs": 2,
    "rl.batch_size": 8, "rl.buffer_size": 256, "rl.learning_starts": 8,
    "rl.updates_per_step": 1, "rl.iterations": 2, "rl.chunk_iterations": 1,
    "qarl.n_samples": 4, "eval.grid_size": 3, "eval.episodes": 1,
    "eval.grid_episodes": 1, "eval.worst_adversary_iterations": 1}


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """Every arm, one seed, a few tiny iterations; fails on non-finite."""
  config = config_lib.apply_overrides(config, SMOKE_OVERRIDES)
  result = run_study(config, workdir, [0], progress=False,
                     command="smoke")
  for arm, agg in result.summary.items():
    for m, v in agg.items():
      if v["mean"] is not None and not np.isfinite(v["mean"]):
        raise AssertionError(f"smoke: {arm} {m} is not finite: {v}")
