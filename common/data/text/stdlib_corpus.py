"""In-repo TFDS dataset `python_stdlib`: the CPython standard library's text.

A natural-text corpus that ships on every machine with Python: each record
is one source file of the running interpreter's standard library, with its
full source (`text`) and its docstrings in source order (`docstrings`:
module, class and function docstrings, `inspect.cleandoc`-ed, joined by
blank lines), so a config chooses code or English-like prose by key.

Determinism. The corpus depends on the Python version (and, for some
distributions, on which stdlib modules the distro ships), so the builder
config is named after the interpreter, `python_stdlib/py311` on 3.11, and
another interpreter prepares another dataset folder. For one version:

* the files are every `*.py` under `sysconfig.get_paths()["stdlib"]`
  except `site-packages`, `dist-packages`, `__pycache__` and the test
  suites (`test`, `tests`, `idle_test` folders: often not installed);
* they are sorted by their POSIX path relative to the stdlib root, and
  record `index` is the position in that order within its split;
* a file's split is a function of its relative path only:
  `int(sha256(path)[:8], 16) % 100` < 90 -> train, < 95 -> validation,
  else test (about 90/5/5 of the files), so adding or removing a file
  never moves another;
* sources are read with `tokenize.open` (the file's encoding cookie);
  files that do not parse have no docstrings.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import sys
import sysconfig
import tokenize
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

SPLITS = ("train", "validation", "test")
_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__",
                        "test", "tests", "idle_test"})


def version_tag() -> str:
  """`"py311"` for CPython 3.11: the builder config of this interpreter."""
  return f"py{sys.version_info.major}{sys.version_info.minor}"


def split_of(relpath: str) -> str:
  """The split of a file, from its POSIX path relative to the stdlib."""
  bucket = int(hashlib.sha256(relpath.encode()).hexdigest()[:8], 16) % 100
  return "train" if bucket < 90 else "validation" if bucket < 95 else "test"


def stdlib_files(root: str | None = None) -> list[str]:
  """Sorted POSIX paths (relative to `root`) of the corpus's files."""
  root = root or sysconfig.get_paths()["stdlib"]
  found = []
  for folder, dirs, files in os.walk(root):
    dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
    rel = os.path.relpath(folder, root)
    for f in files:
      if f.endswith(".py"):
        found.append(f if rel == "." else f"{rel}/{f}".replace(os.sep, "/"))
  return sorted(found)


def docstrings(source: str) -> list[str]:
  """Module, class and function docstrings of `source` in source order."""
  try:
    tree = ast.parse(source)
  except (SyntaxError, ValueError):
    return []
  out = []

  def visit(node):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                         ast.AsyncFunctionDef)):
      doc = ast.get_docstring(node, clean=False)
      if doc and doc.strip():
        out.append(inspect.cleandoc(doc))
    for child in ast.iter_child_nodes(node):
      visit(child)
  visit(tree)
  return out


def _read(path: str) -> str:
  try:
    with tokenize.open(path) as f:
      return f.read()
  except (SyntaxError, UnicodeDecodeError):
    with open(path, encoding="utf-8", errors="replace") as f:
      return f.read()


class PythonStdlib(tfds.core.GeneratorBasedBuilder):
  """The running interpreter's standard library as text (`python_stdlib`)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Sources and docstrings, split by file path."}
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(
      name=version_tag(),
      description=f"CPython {sys.version_info.major}."
                  f"{sys.version_info.minor} standard library")]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    # ArrayRecord: random access without TensorFlow.
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(),
            "docstrings": tfds.features.Text(),
            "path": tfds.features.Text(),
            "index": np.int64,
        }),
        homepage="https://docs.python.org/3/library/",
        disable_shuffling=True,  # record order = sorted path order
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    files = stdlib_files()
    return {s: self._generate_examples([f for f in files if split_of(f) == s])
            for s in SPLITS}

  def _generate_examples(self, files: list[str]
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from examples(files)


def examples(files: list[str], root: str | None = None
             ) -> Iterator[tuple[int, dict[str, Any]]]:
  """`(index, record)` of each file (paths relative to the stdlib)."""
  root = root or sysconfig.get_paths()["stdlib"]
  for i, rel in enumerate(files):
    source = _read(os.path.join(root, *rel.split("/")))
    yield i, {"text": source, "docstrings": "\n\n".join(docstrings(source)),
              "path": rel, "index": i}
