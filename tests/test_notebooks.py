"""Notebooks execute top to bottom and never define a method themselves."""

from __future__ import annotations

import ast
import glob
import os

import nbformat
from nbclient import NotebookClient
import pytest

from tests.conftest import REPO_ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(REPO_ROOT, "notebooks", "*.ipynb")))


def _defines_a_method(source: str) -> list[str]:
  """What in a notebook's code builds a method or takes a training step
  itself (AST, so a renamed function or an aliased import still counts)."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Call):
      func = node.func
      name = (func.attr if isinstance(func, ast.Attribute) else
              func.id if isinstance(func, ast.Name) else "")
      if name in ("Method", "register_method", "apply_updates"):
        found.append(f"line {node.lineno}: calls {name}")
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      names = [a.name for a in node.names]
      module = getattr(node, "module", None) or ""
      if "optax" in names or module.startswith("optax"):
        found.append(f"line {node.lineno}: imports optax")
  return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_imports_methods_from_algos(path):
  nb = nbformat.read(path, as_version=4)
  source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
  assert "from algos" in source
  # Methods live in algos/: a notebook forks a schedule or a quantizer,
  # never builds a Method or an optimizer step of its own.
  assert not _defines_a_method(source), _defines_a_method(source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, monkeypatch):
  monkeypatch.setenv("REGJAX_NOTEBOOK_EPOCHS", "2")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  nb = nbformat.read(path, as_version=4)
  NotebookClient(nb, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": REPO_ROOT}}).execute()
