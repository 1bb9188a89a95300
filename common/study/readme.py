"""Experiment READMEs show their tables from `results/`, never by hand.

A README marks where a results file goes:

    <!-- results: results/digits.md -->
    ...generated, do not edit...
    <!-- /results -->

`sync(readme)` rewrites each block with the file's contents (the command
line and the tables the study wrote); `regjax readme --check` and
`tests/test_readme_tables.py` fail when a README's table differs from its
`results/*.md`. A study's own `results.md` becomes the experiment's
`results/<name>.md` by copying it there (its command sits on its first
line), then `regjax readme <id>`.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

from common import config as config_lib

EXPERIMENTS = os.path.join(config_lib.REPO_ROOT, "experiments")
_BLOCK = re.compile(r"(<!-- results: (?P<path>[^ ]+) -->\n)(?P<body>.*?)"
                    r"(<!-- /results -->)", re.S)


def blocks(text: str) -> list[tuple[str, str]]:
  """(results path, current body) of each block of a README."""
  return [(m.group("path"), m.group("body")) for m in _BLOCK.finditer(text)]


def render(readme_path: str) -> str:
  """The README with every block replaced by its results file."""
  folder = os.path.dirname(readme_path)
  with open(readme_path, encoding="utf-8") as f:
    text = f.read()

  def fill(m):
    path = os.path.join(folder, m.group("path"))
    if not os.path.exists(path):
      raise FileNotFoundError(f"{readme_path} shows {m.group('path')}, "
                              "which does not exist")
    with open(path, encoding="utf-8") as f:
      body = f.read()
    return m.group(1) + body.rstrip("\n") + "\n" + m.group(4)
  return _BLOCK.sub(fill, text)


def sync(readme_path: str, check: bool = False) -> bool:
  """Rewrites (or, with `check`, only compares) one README; True if stale."""
  with open(readme_path, encoding="utf-8") as f:
    old = f.read()
  new = render(readme_path)
  if new != old and not check:
    with open(readme_path, "w", encoding="utf-8") as f:
      f.write(new)
  return new != old


def readmes(ids: Iterable[str] | None = None) -> list[str]:
  ids = sorted(ids) if ids else sorted(os.listdir(EXPERIMENTS))
  return [os.path.join(EXPERIMENTS, i, "README.md") for i in ids
          if os.path.exists(os.path.join(EXPERIMENTS, i, "README.md"))]


def sync_all(ids: Iterable[str] | None = None,
             check: bool = False) -> list[str]:
  """The READMEs that were (or, with `check`, are) stale."""
  return [p for p in readmes(ids) if sync(p, check)]
