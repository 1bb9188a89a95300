"""`regjax`: list the papers, train one config, or run a paper's study.

    regjax list [--markdown] [--write-workspace]
    regjax train --config=experiments/ps_kd/config.py:digits \\
        [--config.train.num_epochs=50 ...] --workdir=runs/x [--data_dir=D] \\
        [--fallback_checkpoint]
    regjax run ps_kd [--config=experiments/ps_kd/config.py:digits_small] \\
        [--seeds=0,1,2,3,4] [--arms=CE,PS-KD] [--config.x=y ...] \\
        [--workdir=runs/ps_kd-digits] [--data_dir=/data/tfds]
    regjax readme [--check] [ID ...]
    regjax compile [ID[:variant] ...] [--all] [--write=PATH]

`regjax compile` builds what a config's protocol jits at the config's real
shapes from a stand-in source (no data, no training), compiles it ahead of
time on this machine's devices and prints XLA's memory (argument, output,
temp bytes per device) and FLOPs; `--all` takes every full-scale config
(those without a smoke run), `--write` also writes the table to PATH.

`--config=path.py:variant` picks a config, `--config.a.b=v` overrides a
field (the config is locked: unknown keys, wrong types and values outside
their declared range fail with what is allowed). A workdir resumes from
its newest checkpoint after verifying it; a corrupt one stops the run
unless `--fallback_checkpoint` asks to move it aside and resume from the
previous verified one.

Exit codes: 0 finished; 1 an unexpected error (a bug: traceback printed);
2 bad input (flags, config, data, workdir or checkpoint), with a one-line
reason; 3 training diverged (a non-finite metric); 75 preempted (SIGTERM):
a checkpoint was saved, rerun the same command to continue.
"""

from __future__ import annotations

import difflib
import os
import shlex
import sys
from typing import Any

from absl import logging

from common import config as config_lib
from common import papers

USAGE = __doc__
EXIT_OK, EXIT_CRASH, EXIT_USAGE, EXIT_DIVERGED, EXIT_PREEMPTED = (
    0, 1, 2, 3, 75)


class UsageError(ValueError):
  """Bad command-line input."""


def _fail(message: str, code: int = EXIT_USAGE) -> None:
  print(f"regjax: {message}", file=sys.stderr)
  sys.exit(code)


def parse_flags(args: list[str], allowed: tuple[str, ...]
                ) -> tuple[dict[str, str], list[str], list[str]]:
  """`(flags, config overrides, positionals)` of `--name=value` arguments.

  `--name value` works too; `--config.a.b=v` are overrides. Unknown flags
  raise `UsageError` naming the allowed ones.
  """
  flags, overrides, positional = {}, [], []
  i = 0
  while i < len(args):
    arg = args[i]
    i += 1
    if not arg.startswith("--"):
      positional.append(arg)
      continue
    name, eq, value = arg[2:].partition("=")
    if name.startswith("config."):
      if not eq:
        raise UsageError(f"{arg!r}: an override looks like "
                         f"--config.key.path=value")
      overrides.append(f"{name[len('config.'):]}={value}")
      continue
    if name not in allowed:
      hint = difflib.get_close_matches(name, allowed, n=1)
      raise UsageError(
          f"unknown flag --{name}"
          + (f" (did you mean --{hint[0]}?)" if hint else "")
          + f"; allowed: {', '.join('--' + a for a in allowed)}, "
          "--config.<key>=<value>")
    if not eq:
      if name in ("markdown", "write-workspace", "check",
                  "fallback_checkpoint", "all"):
        value = "true"
      elif i < len(args):
        value = args[i]
        i += 1
      else:
        raise UsageError(f"--{name} needs a value")
    if name in flags:
      raise UsageError(f"--{name} given twice")
    flags[name] = value
  return flags, overrides, positional


def parse_list(text: str, what: str, as_int: bool = False) -> list[Any]:
  """`"0,1,2"` -> items; empty items, an empty list or bad ints raise."""
  items = [t.strip() for t in text.split(",")]
  if not text.strip() or any(not t for t in items):
    raise UsageError(f"--{what}={text!r}: give a comma-separated list with "
                     f"no empty items, e.g. --{what}="
                     + ("0,1,2" if as_int else "a,b"))
  if as_int:
    try:
      items = [int(t) for t in items]
    except ValueError as e:
      raise UsageError(f"--{what}={text!r}: seeds are integers, e.g. "
                       "--seeds=0,1,2") from e
  dup = sorted({t for t in items if items.count(t) > 1})
  if dup:
    raise UsageError(f"--{what}={text!r} repeats {dup}")
  return items


def check_workdir(workdir: str) -> None:
  path = os.path.abspath(workdir)
  while path and path != os.path.dirname(path):
    if os.path.exists(path) and not os.path.isdir(path):
      raise UsageError(f"--workdir={workdir!r}: {path} is a file, not a "
                       "folder")
    path = os.path.dirname(path)


def _load(flags: dict[str, str], overrides: list[str], default: str | None):
  spec = flags.get("config", default)
  if not spec:
    raise UsageError("--config=path/to/config.py[:variant] is required")
  config = config_lib.load_config(spec)
  if flags.get("data_dir"):
    overrides = overrides + [f"data.data_dir={flags['data_dir']}"]
  return config_lib.apply_overrides(config, overrides)


def _user_errors() -> tuple[type[Exception], ...]:
  """Errors that describe bad input: a message, no traceback.

  `REGJAX_TRACEBACK=1` keeps the traceback (a ValueError may be a bug).
  """
  if os.environ.get("REGJAX_TRACEBACK") == "1":
    return ()
  from common.core import checkpoint  # pylint: disable=g-import-not-at-top
  from common.data import sources  # pylint: disable=g-import-not-at-top
  return (sources.DatasetNotFoundError, checkpoint.CheckpointError,
          ValueError, FileNotFoundError)


def _runtime(flags: dict[str, str]):
  if flags.get("fallback_checkpoint", "false").lower() == "true":
    # The user asked: a corrupt newest checkpoint is moved aside and the
    # previous verified one used (common.core.checkpoint).
    os.environ["REGJAX_CHECKPOINT_FALLBACK"] = "1"
  from common.core import sharding  # pylint: disable=g-import-not-at-top
  sharding.maybe_initialize_distributed()
  sharding.enable_compilation_cache()


def _list(args: list[str]) -> None:
  flags, overrides, pos = parse_flags(args, ("markdown", "write-workspace"))
  if overrides or pos:
    raise UsageError(f"`regjax list` takes no arguments {overrides + pos}")
  if "write-workspace" in flags:
    changed = papers.write_workspace()
    print(f"{papers.WORKSPACE}: {'updated' if changed else 'up to date'}")
    return
  if "markdown" in flags:
    print(papers.markdown_table())
    return
  all_papers = papers.papers()
  width = max(len(p.id) for p in all_papers)
  for p in all_papers:
    print(f"{p.id:<{width}}  {p.status:<19}  {p.family:<36}  {p.title}")
  runnable = [p.id for p in all_papers if papers.is_runnable(p)]
  print(f"\n{len(all_papers)} papers; runnable: {', '.join(runnable)}")


def _train(args: list[str]) -> int:
  flags, overrides, pos = parse_flags(args, ("config", "workdir",
                                             "data_dir",
                                             "fallback_checkpoint"))
  if pos:
    raise UsageError(f"unexpected arguments {pos}; see `regjax --help`")
  if "workdir" not in flags:
    raise UsageError("--workdir is required for `regjax train`")
  check_workdir(flags["workdir"])
  config = _load(flags, overrides, None)
  from common import protocols  # pylint: disable=g-import-not-at-top
  protocols.validate(config)
  _runtime(flags)
  from common.study import engine  # pylint: disable=g-import-not-at-top
  result = engine.run_one(config, flags["workdir"])
  if result.status != "finished":
    print(f"preempted after {result.steps} steps; checkpoint saved in "
          f"{flags['workdir']}: rerun the same command to continue")
    return EXIT_PREEMPTED
  print(f"finished after {result.steps} steps; final eval: "
        f"{ {k: round(v, 4) for k, v in result.final.items()} }")
  print(f"written: {os.path.join(flags['workdir'], 'summary.json')}")
  return EXIT_OK


def _check_overrides_take_effect(overrides: list[str],
                                 arms: dict[str, list[str]]) -> None:
  """Refuses a --config override that every selected arm sets again (it
  would be silently ignored)."""
  for override in overrides:
    key = override.partition("=")[0]
    setters = {a: o for a, os_ in arms.items() for o in os_
               if o.partition("=")[0].strip() == key}
    if arms and len(setters) == len(arms):
      raise UsageError(
          f"--config.{override} has no effect: every arm sets {key} itself "
          f"({'; '.join(f'{a}: {o}' for a, o in setters.items())}); pick "
          "arms with --arms, or change the arms")


def _run(args: list[str]) -> int:
  if not args or args[0].startswith("-"):
    raise UsageError("usage: regjax run <paper_id> [flags]; ids: "
                     "`regjax list`")
  paper_id, args = args[0], args[1:]
  paper = papers.get(paper_id)
  if not papers.is_runnable(paper):
    runnable = [p.id for p in papers.papers() if papers.is_runnable(p)]
    raise UsageError(f"paper {paper_id!r} is not implemented yet (status: "
                     f"{paper.status}); runnable: {runnable}")
  flags, overrides, pos = parse_flags(
      args, ("config", "workdir", "data_dir", "seeds", "arms",
             "fallback_checkpoint"))
  if pos:
    raise UsageError(f"unexpected arguments {pos}; see `regjax --help`")
  default = os.path.join(config_lib.REPO_ROOT, "experiments", paper_id,
                         "config.py")
  config = _load(flags, overrides, default)
  if config.experiment != paper_id:
    raise UsageError(f"--config={flags.get('config')!r} is the config of "
                     f"{config.experiment!r}, not of {paper_id!r}")
  seeds = (parse_list(flags["seeds"], "seeds", as_int=True)
           if "seeds" in flags else list(config.study.seeds))
  arms = parse_list(flags["arms"], "arms") if "arms" in flags else []
  variant = flags.get("config", "").partition(":")[2]
  workdir = flags.get("workdir") or os.path.join(
      "runs", f"{paper_id}-{variant or 'default'}")
  check_workdir(workdir)
  from common.study import engine  # pylint: disable=g-import-not-at-top
  _check_overrides_take_effect(overrides, engine.study_arms(config, arms))
  engine.arm_configs(config, arms)  # every arm valid before any run
  _runtime(flags)
  command = "regjax " + " ".join(shlex.quote(a) for a in sys.argv[1:])
  try:
    result = engine.run_study(config, workdir, seeds, arms, command=command)
  except engine.PreemptedError as e:
    print(f"regjax: {e}", file=sys.stderr)
    return EXIT_PREEMPTED
  print("\n" + result.table_markdown + "\n")
  for kind, path in result.paths.items():
    print(f"{kind:>8}: {path}")
  return EXIT_OK


def _readme(args: list[str]) -> int:
  flags, overrides, ids = parse_flags(args, ("check",))
  if overrides:
    raise UsageError(f"`regjax readme` takes paper ids, not {overrides}")
  from common.study import readme  # pylint: disable=g-import-not-at-top
  stale = readme.sync_all(ids or None, check="check" in flags)
  for path in stale:
    print(("stale: " if "check" in flags else "updated: ") + path)
  return EXIT_USAGE if stale and "check" in flags else EXIT_OK


def _compile(args: list[str]) -> int:
  flags, overrides, specs = parse_flags(args, ("all", "write"))
  if overrides:
    raise UsageError(f"`regjax compile` takes config ids, not {overrides}")
  if "all" in flags:
    if specs:
      raise UsageError(f"--all compiles every full-scale config; drop "
                       f"{specs} or --all")
  elif not specs:
    raise UsageError("usage: regjax compile ID[:variant] ... | --all")
  from common.protocols import compile_check  # pylint: disable=g-import-not-at-top
  lines = [compile_check.HEADER]
  print(lines[0], flush=True)
  for spec in specs or compile_check.full_scale_specs():
    for row in compile_check.compile_rows(spec):
      lines.append(compile_check.markdown_row(*row))
      print(lines[-1], flush=True)
  table = "\n".join(lines)
  if flags.get("write"):
    import jax  # pylint: disable=g-import-not-at-top
    command = "regjax " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with open(flags["write"], "w", encoding="utf-8") as f:
      f.write(f"Command: `{command}` ({jax.device_count()} x "
              f"{jax.devices()[0].platform}, jax {jax.__version__}, load "
              f"average {os.getloadavg()[0]:.1f})\n\n{table}\n")
    print(f"written: {flags['write']}")
    from common.study import readme  # pylint: disable=g-import-not-at-top
    top = os.path.join(config_lib.REPO_ROOT, "README.md")
    if readme.sync(top):   # README.md shows the table as a generated block
      print(f"updated: {top}")
  return EXIT_OK


def main(argv: list[str] | None = None) -> None:
  argv = list(sys.argv if argv is None else argv)
  # Orbax and TFDS log every save/build at INFO; keep the terminal readable.
  logging.set_verbosity(logging.WARNING)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(USAGE)
    return
  command, rest = argv[1], argv[2:]
  commands = {"list": _list, "train": _train, "run": _run, "readme": _readme,
              "compile": _compile}
  if command not in commands:
    _fail(f"unknown command {command!r}; commands: {', '.join(commands)}. "
          "See `regjax --help`.")
  try:
    code = commands[command](rest) or EXIT_OK
  except FloatingPointError as e:   # a non-finite metric or state
    _fail(f"training diverged: {e}", EXIT_DIVERGED)
  except _user_errors() as e:
    _fail(f"{type(e).__name__}: {e}")
  sys.exit(code)


if __name__ == "__main__":
  main()
