"""Every experiment README shows its tables from `results/`, unedited.

A README's result blocks (`<!-- results: results/<name>.md -->`) must equal
the files the study commands wrote (`regjax readme` rewrites them), and
every `results/*.md` of an experiment is shown in its README.
"""

from __future__ import annotations

import glob
import os

import pytest

from common.study import readme
from tests.conftest import REPO_ROOT

READMES = readme.readmes()


@pytest.mark.parametrize("path", READMES,
                         ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_readme_tables_equal_their_results_files(path):
  assert not readme.sync(path, check=True), (
      f"{os.path.relpath(path, REPO_ROOT)} differs from its results files: "
      f"run `regjax readme {os.path.basename(os.path.dirname(path))}`")


@pytest.mark.parametrize("path", READMES,
                         ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_every_results_table_is_shown(path):
  folder = os.path.dirname(path)
  with open(path, encoding="utf-8") as f:
    shown = {p for p, _ in readme.blocks(f.read())}
  tables = {os.path.relpath(p, folder) for p in
            glob.glob(os.path.join(folder, "results", "*.md"))}
  assert tables <= shown, f"not shown in the README: {sorted(tables - shown)}"
