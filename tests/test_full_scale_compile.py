"""Every full-scale config still builds: lowered at its real shapes, no data.

The full-scale variants (CIFAR-100, CIFAR-10-C, ImageNet-C, dSprites,
Shapes3D, Brax, the long CPU studies) have no smoke run, so
`tests/experiments/test_smoke.py` skips them. Here each one's jitted
programs are built at the config's real shapes from a stand-in source and
lowered on one CPU device (`common.protocols.compile_check`): every shape,
dtype and sharding is checked, so a config that no longer builds fails.
XLA's compile of all of them (about three quarters of the CPU time of
build + lower + compile, measured on a 1-in-6 sample) is left to
`regjax compile --all`, which writes the memory table of the README; one
config is compiled here so that path stays tested. Transformer-family
models are lowered two layers deep here (`compile_check.cap_layers`: every
layer has the same shapes, so depth only repeats them; the 7B configs took
30-45 s each at full depth); `regjax compile --all` builds them at full
depth. Brax variants are skipped when brax is not installed (it is not a
dependency).
"""

from __future__ import annotations

import os

import pytest

from common import cli
from common import config as config_lib
from common.protocols import compile_check
from common.study import readme
from tests.conftest import REPO_ROOT

SPECS = compile_check.full_scale_specs()


def test_the_full_scale_configs_are_found():
  for spec in ("ps_kd:cifar100", "eata:imagenet_c", "cotta:cifar10_c",
               "qlae:dsprites", "qarl:brax_ant", "monge_gap:long"):
    assert spec in SPECS
  # CPU studies have smoke runs; crrelu's ViT on digits has its smoke off
  # for the test budget (its MLP sibling `digits_mlp` runs one), so it is
  # lowered here instead.
  lowered_cpu_studies = {"crrelu:digits"}
  assert not any(s.endswith((":digits", ":digits_c")) for s in SPECS
                 if s not in lowered_cpu_studies)


def test_cap_layers_only_makes_transformers_shallower():
  deep = compile_check.load("sorsa:llama2_metamath")
  assert deep.model.kwargs.num_layers == 32
  assert compile_check.cap_layers(deep, 2).model.kwargs.num_layers == 2
  assert deep.model.kwargs.num_layers == 32          # a copy
  cnn = compile_check.load("ps_kd:cifar100")
  assert compile_check.cap_layers(cnn, 2) is cnn


def test_a_dataset_without_a_stand_in_is_named():
  config = config_lib.apply_overrides(
      compile_check.load("ps_kd:cifar100"), {"data.name": "svhn_cropped"})
  with pytest.raises(ValueError, match="no stand-in for dataset "
                     "'svhn_cropped'.*cifar100"):
    compile_check.standin_source(config)


@pytest.mark.parametrize("args, message", [
    ([], "usage: regjax compile ID[:variant] ... | --all"),
    (["--all", "ps_kd:cifar100"], "--all compiles every full-scale config"),
    (["ps_kd:cifar1000"], "has no variant 'cifar1000' (did you mean "
                          "'cifar100'?)"),
])
def test_bad_compile_arguments_are_refused(args, message, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["regjax", "compile", *args])
  assert e.value.code == cli.EXIT_USAGE
  assert message in capsys.readouterr().err


def test_the_readme_shows_the_written_table():
  assert not readme.sync(os.path.join(REPO_ROOT, "README.md"), check=True), (
      "README.md differs from benchmarks/results/full_scale_compile.md: run "
      "`regjax compile --all --write=benchmarks/results/"
      "full_scale_compile.md`")


def test_a_full_scale_config_compiles_with_xla():
  rows = compile_check.compile_rows("anyloss:breast_cancer")
  lowered = compile_check.compile_rows("anyloss:breast_cancer",
                                       xla_compile=False)
  for (_, report), (_, abstract) in zip(rows, lowered, strict=True):
    assert report.temp_bytes > 0 and report.flops, report
    # XLA's argument buffers are the lowered program's arguments, less
    # those the program never reads (pruned).
    assert 0 < report.argument_bytes <= abstract.argument_bytes, (
        report, abstract)


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_full_scale_config_lowers(spec):
  rows = compile_check.compile_rows(spec, xla_compile=False, max_layers=2)
  reason = rows[0][1]
  if isinstance(reason, str) and reason.startswith("not built here"):
    pytest.skip(reason)
  if isinstance(reason, str):   # the analysis protocol jits no harness step
    assert compile_check.load(spec).protocol == "analysis", reason
    return
  for _, report in rows:
    assert report.argument_bytes > 0 and report.output_bytes > 0, report
