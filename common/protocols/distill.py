"""The distill protocol: train (or reuse) frozen teachers, then a student.

Distillation papers with teachers of their own training recipe (MTARD: a
clean cross-entropy teacher and a PGD-AT teacher) need "the final weights
of other runs, frozen, inside the student's step". A run of this protocol

1. trains each teacher `name` of `config.teachers` (a `ConfigDict` of
   `name -> ("key=value", ...)` overrides of the supervised sections, e.g.
   `("method.name=pgd_at", "train.num_epochs=40")`) with the supervised
   loop, in `<study>/teachers/<fingerprint>/seed_<k>` for a study's
   `<study>/<arm>/seed_<k>` workdir (else `<workdir>/teachers/<fp>`), as
   `finetune` does for its pretraining run: every arm of a seed with the
   same teacher config shares the run, it resumes, and a finished one is
   read back from its summary. A teacher config keeps only its own method
   section, so the student's method settings never retrain a teacher;
2. trains this config with the supervised loop in `<workdir>/student`,
   handing the teachers' final `{name: {"params", "model_state"}}` to the
   method's `init` as `ctx.extras["teachers"]`. The method keeps them in
   `method_state` (on device, checkpointed with the state, so a resumed
   student sees the same teachers) and runs them inside the jitted step
   (`algos/adversarial/adversarial_lib.py`). Teachers share the student's
   model section unless they override `model.*` (an ensemble teacher of a
   smaller student: infinite_compute); a method running such a teacher
   builds its module itself (`ctx.forward(..., model=teacher_module)`).

Why a protocol rather than a method that loads checkpoints by path: the
teachers' configs, seeds and fingerprints stay part of the run (a changed
teacher recipe is a different run, never a stale checkpoint), a study
trains them once per seed, and methods stay pure (no file paths).

Final metrics: the student's final evaluation, plus each teacher's as
`teacher/<name>/<metric>` (the same evaluator). Arms that ignore the
teachers (natural training, PGD-AT) still get the teachers' rows.
"""

from __future__ import annotations

import os
import time

import ml_collections as mlc

from common import config as config_lib
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import finetune
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised


def base_config() -> mlc.ConfigDict:
  """The supervised schema plus `teachers` (name -> overrides)."""
  c = supervised.base_config()
  c.protocol = "distill"
  c.teachers = mlc.ConfigDict()
  return c


def teacher_configs(config: mlc.ConfigDict) -> dict[str, mlc.ConfigDict]:
  """The supervised config of each teacher of `config.seed`."""
  out = {}
  for name, overrides in config.teachers.items():
    if isinstance(overrides, str):
      overrides = (overrides,)
    field = f"teachers.{name}"
    teacher = finetune.sections_config(
        config, tuple(overrides), f"{config.experiment}_teacher_{name}",
        f"config.{field}")
    # Only the teacher's own method section: a change of the student's
    # hyperparameters must not retrain (or re-fingerprint) its teachers.
    method = teacher.method.name
    with teacher.unlocked():
      teacher.method = mlc.ConfigDict({"name": method,
                                       method: teacher.method[method]})
    teacher.lock()
    out[name] = teacher
  return out


def teacher_dir(config: mlc.ConfigDict, teacher: mlc.ConfigDict,
                workdir: str) -> str:
  """`<study>/teachers/<fingerprint>/seed_<k>` (shared by the arms of a
  seed), or `<workdir>/teachers/<fingerprint>` outside a study."""
  tag = config_lib.fingerprint(teacher)[:12]
  return finetune.shared_run_dir(workdir, tag, config.seed,
                                 os.path.join("teachers", tag),
                                 kind="teachers")


def validate(config: mlc.ConfigDict) -> None:
  supervised.validate(config)
  for teacher in teacher_configs(config).values():
    supervised.validate(teacher)


def train_teachers(config: mlc.ConfigDict, workdir: str,
                   show_progress: bool = True, desc: str = ""
                   ) -> tuple[str, dict[str, RunResult]]:
  """Trains (or reads back) every teacher; `(status, results)`."""
  results = {}
  for name, tcfg in teacher_configs(config).items():
    folder = teacher_dir(config, tcfg, workdir)
    result = supervised.train(tcfg, folder, show_progress=show_progress,
                              desc=f"{desc or config.experiment} {name}")
    results[name] = result
    if result.status != "finished":
      return result.status, results
  return "finished", results


def load_teachers(config: mlc.ConfigDict, workdir: str) -> dict[str, dict]:
  """`{name: {"params", "model_state"}}` of the finished teachers."""
  out = {}
  for name, tcfg in teacher_configs(config).items():
    folder = teacher_dir(config, tcfg, workdir)
    _, state = supervised.restore(tcfg, folder)
    out[name] = {"params": state.params, "model_state": state.model_state}
  return out


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Teachers first, then the student in `<workdir>/student`."""
  t_start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  status, teachers = train_teachers(config, workdir, show_progress, desc)
  if status != "finished":
    return RunResult(status=status, workdir=workdir, steps=0, final={},
                     history=[], seconds=time.time() - t_start)
  student_dir = os.path.join(workdir, "student")
  extras = None
  if runs.cached_result(student_dir, config) is None:
    extras = {"teachers": load_teachers(config, workdir)}
  student = supervised.train(config, student_dir, extras=extras,
                             show_progress=show_progress, desc=desc)
  if student.status != "finished":
    return RunResult(status=student.status, workdir=workdir,
                     steps=student.steps, final={}, history=[],
                     seconds=time.time() - t_start)
  runs.write_config(workdir, config)
  final = dict(student.final)
  for name, result in teachers.items():
    final.update({f"teacher/{name}/{k}": v for k, v in result.final.items()})
  return RunResult(status="finished", workdir=workdir, steps=student.steps,
                   final=final, history=student.history,
                   seconds=time.time() - t_start)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`smoke.steps` steps of every teacher (no evaluation) and of the
  student, then the student's evaluation."""
  steps = config.smoke.steps
  short = (f"train.steps={steps}", "eval.name=none")
  teachers = {name: tuple(v if not isinstance(v, str) else (v,)) + short
              for name, v in config.teachers.items()}
  config = config_lib.apply_overrides(config, {
      "train.steps": steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0})
  with config.unlocked():
    config.teachers = mlc.ConfigDict(teachers)
  result = run(config, workdir, show_progress=False)
  runs.check_smoke(result, steps)


@register_protocol("distill")
def protocol() -> Protocol:
  return Protocol(name="distill", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)
