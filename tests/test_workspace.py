"""WORKSPACE.md and the paper registry agree; runnable papers are complete."""

from __future__ import annotations

import os

from common import papers
from tests.conftest import REPO_ROOT


def test_workspace_lists_every_paper_with_its_status():
  with open(os.path.join(REPO_ROOT, "WORKSPACE.md")) as f:
    text = f.read()
  assert papers.workspace_block() in text, (
      "WORKSPACE.md's paper table is stale: run `regjax list "
      "--write-workspace`")
  # CI clones next to a copy of shared/; elsewhere the index may be absent.
  index_path = os.path.join(os.path.dirname(REPO_ROOT), "shared", "papers",
                            "INDEX.md")
  index = open(index_path).read() if os.path.exists(index_path) else ""
  for p in papers.papers():
    assert p.status in papers.STATUSES
    if index:
      assert f"| {p.id} |" in index


def test_runnable_papers_have_algos_config_and_readme():
  for p in papers.papers():
    if not papers.is_runnable(p):
      continue
    folder = os.path.join(REPO_ROOT, "experiments", p.id)
    assert os.path.exists(os.path.join(folder, "config.py")), p.id
    assert os.path.exists(os.path.join(folder, "README.md")), p.id
    assert os.path.exists(os.path.join(REPO_ROOT, p.algos_module)), p.id
  assert len(papers.papers()) == 59
  # An experiment folder without STATUS would be invisible to `regjax list`.
  for name in os.listdir(os.path.join(REPO_ROOT, "experiments")):
    if os.path.exists(os.path.join(REPO_ROOT, "experiments", name,
                                   "config.py")):
      assert papers.is_runnable(papers.get(name)), name
