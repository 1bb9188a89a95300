"""Every full-scale config still builds: compiled ahead of time, no data.

The full-scale variants (CIFAR-100, CIFAR-10-C, ImageNet-C, dSprites,
Shapes3D, Brax, the long CPU studies) have no smoke run, so
`tests/experiments/test_smoke.py` skips them. Here each one's jitted
programs are built at the config's real shapes from a stand-in source,
lowered and compiled on one CPU device (`common.protocols.compile_check`);
a config that no longer builds fails. Brax variants are skipped when brax
is not installed (it is not a dependency).
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
  assert not any(s.endswith((":digits", ":digits_c")) for s in SPECS)


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


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_full_scale_config_compiles(spec):
  rows = compile_check.compile_rows(spec)
  reason = rows[0][1]
  if isinstance(reason, str) and reason.startswith("not built here"):
    pytest.skip(reason)
  if isinstance(reason, str):   # the analysis protocol jits no harness step
    assert compile_check.load(spec).protocol == "analysis", reason
    return
  for _, report in rows:
    assert report.argument_bytes > 0 and report.output_bytes > 0, report
