"""Ahead-of-time compilation of a config's jitted programs, without data.

Full-scale configs name datasets (CIFAR, ImageNet-C, dSprites...) and
packages (brax) that are not on a CPU machine, so their smoke runs are
skipped. `compile_config(config)` shows they still build: it makes what the
config's protocol jits (the train and eval steps of the supervised and
refine protocols and the refinement step, the TTA adaptation and eval
steps, the RL learner's train chunk) at the config's real shapes and dtypes
from a stand-in source (`jax.ShapeDtypeStruct`s: no data is read, nothing
is initialised or trained), lowers it for the local devices and compiles
it, and reports XLA's memory analysis (argument, output, temp bytes per
device) and FLOPs of each program.

Programs whose lowered text is equal (arms that change only traced
numbers, a variant that changes only step counts) are compiled once per
process. The memory is XLA:CPU's for the local device count, an estimate
of, not equal to, what a GPU or TPU compiler allocates.

    regjax compile ps_kd:cifar100 qlae:dsprites
    regjax compile --all [--write=benchmarks/results/full_scale_compile.md]
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import hashlib
import importlib.util
import os
import re
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common.core import method as method_lib
from common.core import sharding as sharding_lib
from common.data import preprocess as preprocess_lib
from common.data import procedural
from common.protocols import build
from common.protocols import tta_loop

# TFDS facts of the full-scale datasets (the TFDS catalog pages): image
# shape (None: set by `data.image_size`), classes of the default label (or
# of `data.label_key`), examples per split.
STANDINS: dict[str, dict[str, Any]] = {
    "cifar10": dict(shape=(32, 32, 3), classes=10,
                    splits={"train": 50_000, "test": 10_000}),
    "cifar100": dict(shape=(32, 32, 3), classes=100,
                     splits={"train": 50_000, "test": 10_000}),
    "mnist": dict(shape=(28, 28, 1), classes=10,
                  splits={"train": 60_000, "test": 10_000}),
    "imagenet2012": dict(shape=(None, None, 3), classes=1000,
                         splits={"train": 1_281_167, "validation": 50_000}),
    # label_shape: square, ellipse, heart; the only split is train.
    "dsprites": dict(shape=(64, 64, 1), classes=3,
                     splits={"train": 737_280}),
    # label_shape: 4 shapes.
    "shapes3d": dict(shape=(64, 64, 3), classes=4,
                     splits={"train": 480_000}),
    # Per-pixel labels (`dense`): the few-shot segmentation benchmarks as
    # third_party_configs/repri/ prepares them (PFENet's lists: SBD-aug
    # train 10,582 / VOC val 1,449; COCO 2014 train / val); 0 = background.
    "pascal5i": dict(shape=(None, None, 3), classes=21, dense=True,
                     splits={"train": 10_582, "test": 1_449}),
    "coco20i": dict(shape=(None, None, 3), classes=81, dense=True,
                    splits={"train": 82_783, "test": 40_504}),
    # Segmentation (per-pixel labels, `dense`): the SFDA prostate and IVD
    # slices prepared as TFDS datasets (third_party_configs/sfda_seg). Split
    # sizes are the slice counts of the official sizes/*.csv, used for
    # every split: they only set the epoch length.
    "sfda_prostate": dict(shape=(385, 385, 3), classes=2, dense=True,
                          splits=dict.fromkeys(
                              ("source_train", "target_train",
                               "target_test"), 578)),
    "sfda_ivd": dict(shape=(256, 256, 3), classes=2, dense=True,
                     splits=dict.fromkeys(
                         ("source_train", "target_train", "target_test"),
                         4096)),
}


# Examples per split of the full-scale TFDS text datasets (the TFDS catalog
# pages); a packed split has about examples / docs_per_row rows (exact row
# counts need the data, and only the epoch length depends on them).
TEXT_STANDINS: dict[str, dict[str, int]] = {
    "lm1b": {"train": 30_301_028, "test": 306_688},
    "c4": {"train": 364_868_892, "validation": 364_608},
    "meta_math_qa": {"train": 395_000},   # MetaMathQA (sorsa)
}


# Packages some full-scale configs need that are not dependencies of the
# repo: a config that needs a missing one is reported, not built.
OPTIONAL_PACKAGES = ("brax", "mujoco")


@dataclasses.dataclass(frozen=True)
class Program:
  """One jitted function of a config with abstract arguments to lower."""
  name: str
  lower: Callable[[], Any]     # () -> jax.stages.Lowered


@dataclasses.dataclass(frozen=True)
class Report:
  """XLA's numbers for one compiled program (bytes per device)."""
  program: str
  devices: int
  argument_bytes: int
  output_bytes: int
  temp_bytes: int
  alias_bytes: int
  flops: float | None
  compile_seconds: float
  shared: bool = False     # equal to a program compiled before


def _train_split_size(d: mlc.ConfigDict, splits_of: dict[str, dict[str, int]],
                      what: str, hint: str) -> tuple[str, int]:
  """`(base name, examples in d.train_split)` from a stand-in table."""
  name = d.name.split("/")[0]
  if name not in splits_of:
    raise ValueError(f"no stand-in for {what} {d.name!r}; compile_check "
                     f"knows {sorted(splits_of)} ({hint})")
  splits = splits_of[name]
  size = _slice_size(d.train_split, splits)
  if size is None:
    raise ValueError(f"config.data.train_split={d.train_split!r}: the "
                     f"stand-in of {name!r} has splits {sorted(splits)} "
                     "(and slices of them, e.g. 'train[:90%]')")
  return name, size


_SLICE = re.compile(r"^(\w+)\[(-?\d+%?)?:(-?\d+%?)?\]$")


def _slice_size(split: str, splits: dict[str, int]) -> int | None:
  """Examples in a split or a TFDS slice of one (`train[:90%]`,
  `train[1000:2000]`; percents rounded to the closest example, as TFDS's
  default), or None if the base split is unknown."""
  if split in splits:
    return splits[split]
  match = _SLICE.match(split)
  if not match or match.group(1) not in splits:
    return None
  n = splits[match.group(1)]

  def bound(text, default):
    if text is None:
      return default
    value = (round(n * int(text[:-1]) / 100) if text.endswith("%")
             else int(text))
    return min(max(value + n if value < 0 else value, 0), n)
  return max(bound(match.group(3), n) - bound(match.group(2), 0), 0)


def standin_source(config: mlc.ConfigDict) -> tuple[dict[str, Any], int,
                                                    int]:
  """`(example, num_train_examples, num_classes)` of a TFDS config from
  `STANDINS`, without reading data."""
  d = config.data
  name, n = _train_split_size(
      d, {k: v["splits"] for k, v in STANDINS.items()}, "dataset",
      "add its shape, classes and split sizes to STANDINS")
  facts = STANDINS[name]
  h, w, c = facts["shape"]
  if d.image_size:
    h = w = d.image_size
  if h is None:
    raise ValueError(f"dataset {name!r} has images of varying size: set "
                     "config.data.image_size")
  classes = len(d.classes) if d.classes else facts["classes"]
  example = {d.input_key: jax.ShapeDtypeStruct((1, h, w, c), np.uint8)}
  if facts.get("dense"):  # per-pixel label maps
    example["label"] = jax.ShapeDtypeStruct((1, h, w), np.int32)
  return example, n, classes


def text_standin(config: mlc.ConfigDict) -> tuple[dict[str, Any], int,
                                                  int]:
  """`(example, num_train_rows, vocab_size)` of a TFDS text config from
  `TEXT_STANDINS`, without reading data."""
  from common.data import tokenizers  # pylint: disable=g-import-not-at-top
  from common.data.text import source as text_source  # pylint: disable=g-import-not-at-top
  d = config.data
  _, examples = _train_split_size(d, TEXT_STANDINS, "text dataset",
                                  "add its split sizes to TEXT_STANDINS")
  kw = text_source.settings(d)
  rows = -(-examples // kw["docs_per_row"])
  if kw["max_train_rows"]:
    rows = min(rows, kw["max_train_rows"])
  vocab = tokenizers.get_tokenizer(kw["tokenizer"]).vocab_size
  example = {d.input_key: jax.ShapeDtypeStruct((1, kw["seq_len"]),
                                               np.int32)}
  return example, rows, vocab


def _text_batch_spec(seq_len: int, size: int,
                     mesh: jax.sharding.Mesh) -> dict[str, Any]:
  """The loader's global batch of `size` packed rows (common.data.text)."""
  split = sharding_lib.batch_sharded(mesh)
  spec = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype,
                                                   sharding=split)
  batch = {k: spec((size, seq_len), np.int32) for k in (
      "tokens", "targets", "segment_ids", "positions", "target_bytes")}
  batch.update(loss_mask=spec((size, seq_len), np.float32),
               index=spec((size,), np.int32), epoch=spec((size,), np.int32),
               mask=spec((size,), np.bool_))
  return batch


def _batch_spec(example: dict[str, Any], size: int,
                mesh: jax.sharding.Mesh) -> dict[str, Any]:
  """The loader's global batch of `size` rows (see common.data.loader)."""
  split = sharding_lib.batch_sharded(mesh)
  spec = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype,
                                                   sharding=split)
  batch = {k: spec((size, *v.shape[1:]), v.dtype) for k, v in example.items()}
  batch.setdefault("label", spec((size,), np.int32))  # unless per-pixel
  batch.update(index=spec((size,), np.int32), epoch=spec((size,), np.int32),
               mask=spec((size,), np.bool_))
  return batch


def _generated_spec(gen: procedural.Generator, size: int,
                    mesh: jax.sharding.Mesh) -> dict[str, Any]:
  split = sharding_lib.batch_sharded(mesh)
  draw = gen.eval_sample or gen.sample
  shapes = jax.eval_shape(lambda k: draw(k, size), jax.random.PRNGKey(0))
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype,
                                                     sharding=split), shapes)


def _step_programs(s: build.Setup, prefix: str, train_batch: Any,
                   eval_batch: Any | None) -> list[Program]:
  state, hp = s.abstract_state, s.hparams
  out = [Program(f"{prefix}train_step",
                 lambda: s.train_step.lower(state, train_batch, hp))]
  if eval_batch is not None:
    out.append(Program(f"{prefix}eval_step",
                       lambda: s.eval_step.lower(state, eval_batch, hp,
                                                 output_keys=None)))
  return out


def _supervised_setup(config: mlc.ConfigDict, extras: Any = None
                      ) -> tuple[build.Setup, list[Program], Any, Any]:
  """`(setup, [train, eval programs], example, eval batch spec)` of a
  supervised config built on its stand-in source (`extras`: the method's
  init extras, e.g. a distillation's frozen teachers)."""
  if config.data.source == "generator":
    gen = procedural.make(config)
    s = build.build(config, build.run_info(
        config, gen.epoch_size or config.train.batch_size, gen.num_classes),
                    gen.example, generator=gen, extras=extras)
    # Without held-out examples of its own, a generator's evaluator feeds
    # its items one per device (eot_fmaps' test pairs).
    eval_batch = _generated_spec(
        gen, config.train.eval_batch_size if gen.eval_examples
        else jax.device_count(), s.mesh)
    programs = _step_programs(s, "", {}, eval_batch)
    example = gen.example
  elif config.data.source == "text":
    example, n, vocab = (
        text_standin(config)
        if config.data.name.split("/")[0] in TEXT_STANDINS
        else _opened(config))
    s = build.build(config, build.run_info(config, n, vocab), example,
                    extras=extras)
    seq_len = example[config.data.input_key].shape[1]
    eval_batch = _text_batch_spec(seq_len, config.train.eval_batch_size,
                                  s.mesh)
    programs = _step_programs(
        s, "", _text_batch_spec(seq_len, config.train.batch_size, s.mesh),
        eval_batch)
  else:
    example, n, classes = (
        standin_source(config) if config.data.name.split("/")[0] in STANDINS
        else _opened(config))
    discovery = config.data.get("category_discovery")
    if discovery is not None and discovery.kind != "none":
      # The category-discovery source adds these per-example flags.
      flag = jax.ShapeDtypeStruct((1,), np.bool_)
      example = {**example, "labelled": flag, "is_old": flag}
    s = build.build(config, build.run_info(config, n, classes), example,
                    extras=extras)
    eval_batch = _batch_spec(example, config.train.eval_batch_size, s.mesh)
    programs = _step_programs(
        s, "", _batch_spec(example, config.train.batch_size, s.mesh),
        eval_batch)
  return s, programs, example, eval_batch


def supervised_programs(config: mlc.ConfigDict) -> list[Program]:
  """Train and eval steps (+ the refine protocol's refinement step)."""
  s, programs, example, eval_batch = _supervised_setup(config)
  if config.protocol == "refine" and config.refine.steps > 0:
    from common.protocols import refine  # pylint: disable=g-import-not-at-top
    r = build.build(refine.refine_config(config), s.run, example,
                    generator=None)
    programs += _step_programs(r, "refine_", eval_batch, None)
  return programs


def _opened(config: mlc.ConfigDict) -> tuple[dict[str, Any], int, int]:
  """Shape facts of an embedded dataset (built in the repo, e.g. digits)."""
  train, _, _, example, n, classes = build.open_data(config)
  if config.data.source == "tfds" and n:   # per-pixel labels: their shape
    label = np.asarray(train.get(np.zeros(1, np.int64))["label"])
    if label.ndim > 1:
      example = {**example, "label": jax.ShapeDtypeStruct(label.shape,
                                                          np.int32)}
  return example, n, classes


def tta_programs(config: mlc.ConfigDict) -> list[Program]:
  """The adaptation step of `adapt.method` on the stand-in source model
  (architecture of the converted weights the config names) and its eval
  step, at `adapt.batch_size`."""
  a = config.adapt
  example, _, classes = (_opened(config) if a.train_source
                         else standin_source(config))
  shape = tuple(example[config.data.input_key].shape[1:])
  source = tta_loop.Source(model_name=config.model.name,
                           model_kwargs=config.model.kwargs.to_dict(),
                           params=None, model_state=None,
                           num_classes=classes, image_shape=shape, final={})
  acfg = tta_loop.adapt_config(config, source)
  run = method_lib.RunInfo(
      num_examples=0, num_classes=classes, steps_per_epoch=1, num_epochs=1,
      total_steps=1, global_batch_size=a.batch_size)
  # One clean batch stands in for the `init_size` images a method's init
  # reads (EATA's Fisher, CoTTA's gate): the state's shapes do not depend
  # on how many there are.
  extras = None if not a.init_size else {
      "clean_batches": {"image": np.zeros((1, a.batch_size, *shape),
                                          np.uint8)},
      "preprocess": preprocess_lib.make(acfg.data)}
  s = build.build(acfg, run, example, extras=extras)
  batch = {"image": _batch_spec(example, a.batch_size, s.mesh)["image"]}
  return _step_programs(s, "adapt_", batch, batch)


def rl_programs(config: mlc.ConfigDict) -> list[Program]:
  """The learner's jitted chunk of `train.chunk_iterations` iterations,
  vmapped over `study.seeds` as the study engine runs them."""
  from common.protocols import rl  # pylint: disable=g-import-not-at-top
  seeds = list(config.study.seeds)
  s = rl.setup(config, seeds)
  keys = jax.ShapeDtypeStruct((len(seeds), 2), np.uint32)
  runs = jax.eval_shape(s.fns["init"], keys, s.hp)
  temps = jax.ShapeDtypeStruct(
      (len(seeds), config.train.chunk_iterations, 2, config.agent.n_envs),
      np.float32)
  return [Program("train_chunk", lambda: s.fns["train_chunk"].lower(
      runs, s.hp, temps, jnp.int32(0)))]


def finetune_programs(config: mlc.ConfigDict) -> list[Program]:
  """The pretraining run's steps, then the fine-tuning run's (the finetune
  protocol trains both with the supervised loop)."""
  from common.protocols import finetune  # pylint: disable=g-import-not-at-top
  pre = supervised_programs(finetune.pretrain_config(config))
  pre = [Program(f"pretrain_{p.name}", p.lower) for p in pre]
  return pre + supervised_programs(config)


def distill_programs(config: mlc.ConfigDict) -> list[Program]:
  """Each teacher's steps, then the student's with zero-valued frozen
  teachers of the teachers' shapes (the distill protocol trains them all
  with the supervised loop)."""
  from common.protocols import distill  # pylint: disable=g-import-not-at-top
  programs, teachers = [], {}
  for name, tcfg in distill.teacher_configs(config).items():
    t, steps, _, _ = _supervised_setup(tcfg)
    programs += [Program(f"teacher_{name}_{p.name}", p.lower) for p in steps]
    zeros = lambda tree: jax.tree.map(lambda a: np.zeros(a.shape, a.dtype),
                                      tree)
    teachers[name] = {"params": zeros(t.abstract_state.params),
                      "model_state": zeros(t.abstract_state.model_state)}
  return programs + _supervised_setup(config, {"teachers": teachers})[1]


def _fewshot_fold(config: mlc.ConfigDict) -> mlc.ConfigDict:
  """The fewshot_seg protocol trains its fold's config with the supervised
  loop (the episodic evaluation jits only the eval step's features)."""
  from common.protocols import fewshot_seg  # pylint: disable=g-import-not-at-top
  return fewshot_seg.fold_config(config)


def continual_programs(config: mlc.ConfigDict) -> list[Program]:
  """Stage 0's and the last stage's steps (the continual_gcd protocol
  trains each stage with the supervised loop; the stages between share
  the last one's shapes)."""
  from common.protocols import continual_gcd  # pylint: disable=g-import-not-at-top
  out = []
  for stage in sorted({0, len(config.continual.stages) - 1}):
    out += [Program(f"stage{stage}_{p.name}", p.lower)
            for p in supervised_programs(
                continual_gcd.stage_config(config, stage))]
  return out


PROGRAMS: dict[str, Callable[[mlc.ConfigDict], list[Program]]] = {
    "supervised": supervised_programs, "refine": supervised_programs,
    "finetune": finetune_programs, "distill": distill_programs,
    "continual_gcd": continual_programs,
    "fewshot_seg": lambda config: supervised_programs(_fewshot_fold(config)),
    "tta": tta_programs, "rl": rl_programs,
    # lm_rl: the RL stage is a supervised run on a prompt generator; its
    # evaluators sample on their own, it never runs the supervised eval step.
    "lm_rl": lambda config: [p for p in supervised_programs(config)
                             if not p.name.endswith("eval_step")],
    # An analysis computes metrics with its own solver: no harness step.
    "analysis": lambda config: [],
}

_COMPILED: dict[str, Report] = {}
# LLVM's code optimisation off: about half the compile time, and the same
# buffer assignment (the memory numbers are equal with and without it on
# ps_kd:cifar100 and eata:cifar10_c). The programs are never run.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0,
                    "xla_llvm_disable_expensive_passes": True}


def _avals_bytes(tree: Any) -> int:
  """Global bytes of the abstract arrays of a lowered program's
  arguments or outputs (`Lowered.args_info` / `out_info`)."""
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
             for x in jax.tree.leaves(tree) if hasattr(x, "shape"))


def _lowered_report(program: Program, lowered: Any) -> Report:
  """A `Report` from the lowered program alone (no XLA compile): argument
  and output bytes of the abstract arrays, nothing XLA decides."""
  return Report(program=program.name, devices=jax.device_count(),
                argument_bytes=_avals_bytes(lowered.args_info),
                output_bytes=_avals_bytes(lowered.out_info), temp_bytes=0,
                alias_bytes=0, flops=None, compile_seconds=0.0)


def _compile(program: Program, xla_compile: bool = True) -> Report:
  lowered = program.lower()
  if not xla_compile:
    return _lowered_report(program, lowered)
  key = hashlib.sha256(lowered.as_text().encode()).hexdigest()
  if key in _COMPILED:
    return dataclasses.replace(_COMPILED[key], program=program.name,
                               compile_seconds=0.0, shared=True)
  start = time.perf_counter()
  compiled = lowered.compile(compiler_options=COMPILER_OPTIONS)
  seconds = time.perf_counter() - start
  mem = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  flops = (cost or {}).get("flops")
  report = Report(
      program=program.name, devices=jax.device_count(),
      argument_bytes=int(mem.argument_size_in_bytes),
      output_bytes=int(mem.output_size_in_bytes),
      temp_bytes=int(mem.temp_size_in_bytes),
      alias_bytes=int(mem.alias_size_in_bytes),
      flops=None if flops is None or flops < 0 else float(flops),
      compile_seconds=seconds)
  _COMPILED[key] = report
  return report


def compile_config(config: mlc.ConfigDict, xla_compile: bool = True
                   ) -> list[Report]:
  """Lowers and (unless `xla_compile=False`) compiles every program `config`'s
  protocol jits."""
  if config.protocol not in PROGRAMS:
    raise ValueError(f"protocol {config.protocol!r} has no stand-in "
                     f"builder; compile_check knows {sorted(PROGRAMS)}")
  return [_compile(p, xla_compile)
          for p in PROGRAMS[config.protocol](config)]


def full_scale_specs() -> list[str]:
  """`<id>:<variant>` of every experiment config without a smoke run (the
  full-scale ones: their data or packages are not on a CPU machine, or
  they run too long), in the order of `experiments/*/config.py`."""
  specs = []
  pattern = os.path.join(config_lib.REPO_ROOT, "experiments", "*",
                         "config.py")
  for path in sorted(glob.glob(pattern)):
    module_spec = importlib.util.spec_from_file_location("_cfg", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    paper = os.path.basename(os.path.dirname(path))
    for variant in getattr(module, "VARIANTS", ()):
      if not module.get_config(variant).smoke.enabled:
        specs.append(f"{paper}:{variant}")
  return specs


def load(spec: str) -> mlc.ConfigDict:
  """The config of `<id>[:<variant>]` (or a config path[:variant])."""
  path, _, variant = spec.partition(":")
  if not path.endswith(".py"):
    path = os.path.join(config_lib.REPO_ROOT, "experiments", path,
                        "config.py")
  return config_lib.load_config(f"{path}:{variant}" if variant else path)


def fmt_bytes(n: int) -> str:
  if n < 2**20:
    return f"{n / 2**10:,.1f} KiB"
  return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


HEADER = ("| config | program | devices | arguments | outputs | temp | GFLOP "
          "| compile (s) |\n|---|---|---|---|---|---|---|---|")


def markdown_row(spec: str, r: Report | str) -> str:
  """One table row: a compiled program, or why nothing was compiled."""
  if isinstance(r, str):
    return f"| `{spec}` | {r} | | | | | | |"
  flops = "-" if r.flops is None else f"{r.flops / 1e9:,.1f}"
  seconds = "shared" if r.shared else f"{r.compile_seconds:.1f}"
  return (f"| `{spec}` | {r.program} | {r.devices} | "
          f"{fmt_bytes(r.argument_bytes)} | {fmt_bytes(r.output_bytes)} | "
          f"{fmt_bytes(r.temp_bytes)} | {flops} | {seconds} |")


_LAYERED_MODELS = ("transformer", "ensemble")


def cap_layers(config: mlc.ConfigDict, max_layers: int) -> mlc.ConfigDict:
  """A copy of `config` whose transformer-family model has at most
  `max_layers` layers (other models: unchanged). Every layer has the same
  shapes, dtypes and shardings, so a shallow copy checks them all at a
  fraction of the lowering time; only the depth is not exercised."""
  if "model" not in config or config.model.name not in _LAYERED_MODELS:
    return config
  config = copy.deepcopy(config)
  with config.unlocked():
    depth = config.model.kwargs.get("num_layers", None)
    config.model.kwargs.num_layers = (max_layers if depth is None
                                      else min(int(depth), max_layers))
  return config


def compile_rows(spec: str, xla_compile: bool = True,
                 max_layers: int | None = None
                 ) -> list[tuple[str, Report | str]]:
  """`(spec, report)` of each program of `spec`, or one `(spec, why not)`
  row when a package of `OPTIONAL_PACKAGES` or a generator's data file
  is missing or nothing is jitted (any other failure raises). With
  `max_layers`, transformer-family models are built that shallow
  (`cap_layers`)."""
  config = load(spec)
  if max_layers is not None:
    config = cap_layers(config, max_layers)
  try:
    reports = compile_config(config, xla_compile)
  except ImportError as e:
    missing = getattr(e.__cause__, "name", None) or e.name or ""
    if missing.split(".")[0] not in OPTIONAL_PACKAGES:
      raise
    return [(spec, f"not built here: {e}")]
  except FileNotFoundError as e:
    # A generator whose rows are constants of the step (entrope's LTSF
    # CSVs, noise2score's image folders) cannot be lowered without its
    # files.
    return [(spec, f"not built here: {e}")]
  return [(spec, r) for r in reports] or [
      (spec, f"nothing to compile ({config.protocol} protocol)")]
