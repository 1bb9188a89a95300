"""Loading a few methods of a class from an official repository's file.

Parity tests run official functions on our inputs. When the official
module cannot be imported on the CPU (its framework, servers or GPUs are
imported at the top), the methods we need are cut out of its syntax tree
and executed on their own, in a fresh class, with only the names they
use (`namespace`).
"""

from __future__ import annotations

import ast
import sys
from typing import Any, Sequence


def class_with_methods(path: str, class_name: str, methods: Sequence[str],
                       namespace: dict[str, Any]) -> type:
  """A class `Official` holding `methods` of `class_name` in `path`."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  cls = next(n for n in tree.body if isinstance(n, ast.ClassDef)
             and n.name == class_name)
  body = [f for f in cls.body if isinstance(f, ast.FunctionDef)
          and f.name in methods]
  missing = set(methods) - {f.name for f in body}
  if missing:
    raise AssertionError(f"{path}: {class_name} has no {sorted(missing)}")
  extra = {"type_params": []} if sys.version_info >= (3, 12) else {}
  stub = ast.Module(body=[ast.ClassDef(
      name="Official", bases=[], keywords=[], body=body, decorator_list=[],
      **extra)], type_ignores=[])
  ns = {"print": lambda *a, **k: None, **namespace}
  exec(compile(ast.fix_missing_locations(stub), path, "exec"), ns)  # pylint: disable=exec-used
  return ns["Official"]
