"""Test modules need unique basenames.

The test directories are not packages, so pytest imports each test module
by its basename: two files with one name (e.g. `test_official_parity.py`
in two folders) make collection fail with "import file mismatch".
"""

from __future__ import annotations

import collections
import glob
import os

from tests.conftest import REPO_ROOT


def test_test_module_basenames_are_unique():
  paths = glob.glob(os.path.join(REPO_ROOT, "tests", "**", "test_*.py"),
                    recursive=True)
  by_name = collections.defaultdict(list)
  for path in paths:
    by_name[os.path.basename(path)].append(os.path.relpath(path, REPO_ROOT))
  clashes = {n: p for n, p in by_name.items() if len(p) > 1}
  assert not clashes, f"rename one of each: {clashes}"
