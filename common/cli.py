"""`regjax`: list the papers, train one config, or run a paper's study.

    regjax list [--markdown]
    regjax train --config=experiments/ps_kd/config.py:digits \\
        [--config.train.num_epochs=50 ...] --workdir=runs/x
    regjax run ps_kd [--config=experiments/ps_kd/config.py:cifar100] \\
        [--seeds=0,1,2,3,4] [--arms=CE,PS-KD] [--config.x=y ...] \\
        [--workdir=runs/ps_kd-digits] [--data_dir=/data/tfds]

Flags follow absl / ml_collections: `--config=path.py:arg` picks a config,
`--config.a.b=v` overrides a field (the config is locked: unknown keys and
wrong types fail with the valid keys / expected type).
"""

from __future__ import annotations

import os
import shlex
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from common import config as config_lib
from common import papers
from common import sharding

USAGE = __doc__


def _fail(message: str) -> None:
  print(f"regjax: {message}", file=sys.stderr)
  sys.exit(2)


def _list(argv: list[str]) -> None:
  if "--markdown" in argv:
    print(papers.markdown_table())
    return
  width = max(len(p.id) for p in papers.PAPERS)
  for p in papers.PAPERS:
    print(f"{p.id:<{width}}  {p.status:<19}  {p.family:<36}  {p.title}")
  runnable = [p.id for p in papers.PAPERS if papers.is_runnable(p)]
  print(f"\n{len(papers.PAPERS)} papers; runnable: {', '.join(runnable)}")


def _user_errors() -> tuple[type[Exception], ...]:
  """Errors that describe bad input: printed as a message, no traceback.

  `REGJAX_TRACEBACK=1` keeps the traceback (a ValueError may be a bug).
  """
  if os.environ.get("REGJAX_TRACEBACK") == "1":
    return ()
  from common import checkpoint, loop  # pylint: disable=g-import-not-at-top
  from common.data import sources  # pylint: disable=g-import-not-at-top
  return (sources.DatasetNotFoundError, checkpoint.CheckpointError,
          loop.NonFiniteError, ValueError)


def _define_common_flags(default_config: str | None) -> None:
  config_flags.DEFINE_config_file(
      "config", default_config, "Experiment config: path.py[:arg].",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Output folder (resumes if it holds "
                      "checkpoints).")
  flags.DEFINE_string("data_dir", None, "TFDS data dir; same as "
                      "--config.data.data_dir.")


def _config_from_flags():
  config = flags.FLAGS.config
  if flags.FLAGS.data_dir:
    config = config_lib.apply_overrides(
        config, {"data.data_dir": flags.FLAGS.data_dir})
  return config


def _train_main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments {argv[1:]}; see `regjax --help`")
  from common import loop  # pylint: disable=g-import-not-at-top
  config = _config_from_flags()
  workdir = flags.FLAGS.workdir
  if not workdir:
    _fail("--workdir is required for `regjax train`")
  sharding.maybe_initialize_distributed()
  sharding.enable_compilation_cache()
  try:
    result = loop.train(config, workdir)
  except _user_errors() as e:
    _fail(f"{type(e).__name__}: {e}")
  print(f"{result.status} after {result.steps} steps; final eval: "
        f"{ {k: round(v, 4) for k, v in result.final_eval.items()} }")
  print(f"written: {os.path.join(workdir, 'metrics.jsonl')}, "
        f"{os.path.join(workdir, 'summary.json')}")


def _run_main(paper_id: str, default_arg: str):
  def main(argv):
    if len(argv) > 1:
      _fail(f"unexpected arguments {argv[1:]}; see `regjax --help`")
    from common import runners  # pylint: disable=g-import-not-at-top
    config = _config_from_flags()
    seeds = [int(s) for s in flags.FLAGS.seeds] if flags.FLAGS.seeds else list(
        config.study.seeds)
    arms = flags.FLAGS.arms or []
    workdir = flags.FLAGS.workdir or os.path.join(
        "runs", f"{paper_id}-{default_arg or 'default'}")
    sharding.maybe_initialize_distributed()
    sharding.enable_compilation_cache()
    command = "regjax " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
      result = runners.run_study(config, workdir, seeds, arms,
                                 command=command)
    except _user_errors() as e:
      _fail(f"{type(e).__name__}: {e}")
    print("\n" + result.table_markdown + "\n")
    for kind, path in result.paths.items():
      print(f"{kind:>8}: {path}")
  return main


def main(argv: list[str] | None = None) -> None:
  argv = list(sys.argv if argv is None else argv)
  # Orbax and TFDS log every save/build at INFO; keep the terminal readable.
  logging.set_verbosity(logging.WARNING)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(USAGE)
    return
  command, rest = argv[1], argv[2:]
  prog = f"{os.path.basename(argv[0])} {command}"
  if command == "list":
    _list(rest)
    return
  if command == "train":
    _define_common_flags(None)
    flags.mark_flag_as_required("config")
    app.run(_train_main, argv=[prog] + rest)
    return
  if command == "run":
    if not rest or rest[0].startswith("-"):
      _fail("usage: regjax run <paper_id> [flags]; ids: `regjax list`")
    paper_id, rest = rest[0], rest[1:]
    try:
      paper = papers.get(paper_id)
    except ValueError as e:
      _fail(str(e))
    if not papers.is_runnable(paper):
      runnable = [p.id for p in papers.PAPERS if papers.is_runnable(p)]
      _fail(f"paper {paper_id!r} is not implemented yet (status: "
            f"{paper.status}); runnable: {runnable}")
    default_config = os.path.join(config_lib.REPO_ROOT, "experiments",
                                  paper_id, "config.py")
    given = [a for a in rest if a.startswith("--config=")]
    arg = given[-1].split(":", 1)[1] if given and ":" in given[-1] else ""
    _define_common_flags(default_config)
    flags.DEFINE_list("seeds", None, "Seeds, e.g. 0,1,2,3,4 (default: the "
                      "config's study.seeds).")
    flags.DEFINE_list("arms", None, "Subset of the experiment's arms.")
    app.run(_run_main(paper_id, arg), argv=[prog] + rest)
    return
  _fail(f"unknown command {command!r}; commands: list, train, run. "
        f"See `regjax --help`.")


if __name__ == "__main__":
  main()
