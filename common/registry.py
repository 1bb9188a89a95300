"""Name registries filled by decorators and found by scanning packages.

Methods, models, data generators, evaluators, preprocessors and protocols
register themselves where they are defined:

    @register_method("ps_kd")
    def make(config): ...

A `Registry` finds every name *without importing anything*: it parses the
Python files of its packages (`ast`, a few ms) for decorator calls
`@<decorator>("name")` (bare or as an attribute, `@method_lib.register_method`)
and remembers which module defines each name. `get(name)` imports only that
module, whose decorator then fills the table. So adding a paper adds files
and edits no shared table, and `regjax list` starts without importing the
method code of 59 papers.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import os
from typing import Any, Callable, Generic, Iterable, TypeVar

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

T = TypeVar("T")


class RegistryError(ValueError):
  """An unknown or duplicated name; the message lists the valid ones."""


def suggestion(name: str, valid: Iterable[str]) -> str:
  """` (did you mean 'x'?)` when a close match exists, else ''."""
  close = difflib.get_close_matches(str(name), list(valid), n=1)
  return f" (did you mean {close[0]!r}?)" if close else ""


def _decorated_names(path: str, decorator: str) -> list[str]:
  """The string arguments of `@decorator("...")` calls in one file."""
  with open(path, encoding="utf-8") as f:
    source = f.read()
  if decorator not in source:  # cheap pre-filter before parsing
    return []
  names = []
  for node in ast.walk(ast.parse(source, path)):
    if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
      continue
    for dec in node.decorator_list:
      if not isinstance(dec, ast.Call) or not dec.args:
        continue
      func = dec.func
      called = (func.id if isinstance(func, ast.Name) else
                func.attr if isinstance(func, ast.Attribute) else None)
      arg = dec.args[0]
      if called == decorator and isinstance(arg, ast.Constant) and isinstance(
          arg.value, str):
        names.append(arg.value)
  return names


def _module_files(package: str) -> Iterable[tuple[str, str]]:
  """(module name, file path) of every .py file under a package folder."""
  root = os.path.join(REPO_ROOT, *package.split("."))
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames
                         if not d.startswith((".", "__pycache__")))
    rel = os.path.relpath(dirpath, REPO_ROOT).replace(os.sep, ".")
    for fn in sorted(filenames):
      if fn.endswith(".py"):
        mod = rel if fn == "__init__.py" else f"{rel}.{fn[:-3]}"
        yield mod, os.path.join(dirpath, fn)


class Registry(Generic[T]):
  """Name -> object, filled by the `register` decorator.

  Args:
    kind: what is registered, for messages ("method", "model", ...).
    packages: dotted package names scanned for the decorator.
    decorator: the decorator's name as written at its call sites
      (e.g. "register_method"); one name per registry, so scanning tells
      the registries apart.
  """

  def __init__(self, kind: str, packages: tuple[str, ...], decorator: str):
    self.kind = kind
    self.packages = packages
    self.decorator = decorator
    self._objects: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    """Decorator registering its target under `name`."""
    def wrap(obj: T) -> T:
      old = self._objects.get(name)
      if old is not None and getattr(old, "__qualname__", old) != getattr(
          obj, "__qualname__", obj):
        raise RegistryError(f"{self.kind} {name!r} registered twice")
      self._objects[name] = obj
      return obj
    return wrap

  @functools.cached_property
  def modules(self) -> dict[str, str]:
    """name -> defining module, from the source files (nothing imported)."""
    found: dict[str, str] = {}
    for package in self.packages:
      for module, path in _module_files(package):
        for name in _decorated_names(path, self.decorator):
          if name in found and found[name] != module:
            raise RegistryError(
                f"{self.kind} {name!r} is registered in both {found[name]} "
                f"and {module}")
          found[name] = module
    return found

  def names(self) -> list[str]:
    return sorted(set(self.modules) | set(self._objects))

  def __contains__(self, name: str) -> bool:
    return name in self._objects or name in self.modules

  def get(self, name: str) -> T:
    """The object registered as `name` (imports its module on first use)."""
    if name not in self._objects:
      module = self.modules.get(name)
      if module is None:
        raise RegistryError(
            f"unknown {self.kind} {name!r}{suggestion(name, self.names())}; "
            f"registered {self.kind}s: {', '.join(self.names())}")
      importlib.import_module(module)
      if name not in self._objects:
        raise RegistryError(f"module {module} mentions {self.kind} {name!r} "
                            f"but did not register it on import")
    return self._objects[name]

  def items(self) -> list[tuple[str, Any]]:
    return [(n, self.get(n)) for n in self.names()]
