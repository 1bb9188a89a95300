"""Notebooks execute top to bottom and never define a method themselves."""

from __future__ import annotations

import glob
import os

import nbformat
from nbclient import NotebookClient
import pytest

from tests.conftest import REPO_ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO_ROOT, "notebooks", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_imports_methods_from_algos(path):
  nb = nbformat.read(path, as_version=4)
  source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
  assert "from algos" in source
  # Methods live in algos/: a notebook may fork a schedule, not a loss.
  assert "def loss(" not in source and "Method(" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, monkeypatch):
  monkeypatch.setenv("REGJAX_NOTEBOOK_EPOCHS", "2")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  nb = nbformat.read(path, as_version=4)
  NotebookClient(nb, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": REPO_ROOT}}).execute()
