"""The architecture, enforced: import layers and the one optimizer update.

Layers of `common/` (a module may import its own layer and the ones below):

  0  common.config, common.registry          (leaves)
  1  common.core                             (step, method, state, optim,
                                              sharding, checkpoint, logging)
  2  common.data, common.models, common.eval, common.envs, common.convert;
     algos (methods)
  3  common.protocols                        (supervised, tta, rl, ...)
  4  common.study                            (the study engine)
  5  common.cli, common.papers, common.__main__
  experiments, benchmarks, notebooks, tests: anything.

`common` never imports `algos` or `experiments` by name (they are found by
the registries). Every import counts, including ones inside functions.

The one optimizer update: only `common/core/train_step.py` calls an optax
`update(grads, state, ...)` or `apply_updates`; experiment folders take no
gradients at all.
"""

from __future__ import annotations

import ast
import glob
import json
import os

import pytest

from tests.conftest import REPO_ROOT

_LAYER_OF_PREFIX = (
    ("common.config", 0), ("common.registry", 0),
    ("common.core", 1),
    ("common.data", 2), ("common.models", 2), ("common.eval", 2),
    ("common.envs", 2), ("common.convert", 2), ("algos", 2),
    ("common.protocols", 3),
    ("common.study", 4),
    ("common.cli", 5), ("common.papers", 5), ("common.__main__", 5),
    ("experiments", 6), ("benchmarks", 6),
)
# Inner optimisation problems solved with an optax optimizer (not training
# updates), and the hand-written reference step a benchmark compares with.
_UPDATE_ALLOWED = {"common/core/train_step.py", "algos/ot/sparse_ot.py",
                   "algos/privacy/gifd.py",
                   "benchmarks/harness_overhead.py",
                   "benchmarks/lm_overhead.py"}


def _module_name(path: str) -> str:
  rel = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
  return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _layer(module: str) -> int | None:
  for prefix, layer in _LAYER_OF_PREFIX:
    if module == prefix or module.startswith(prefix + "."):
      return layer
  return None


def _python_files(*folders: str) -> list[str]:
  out = []
  for folder in folders:
    out += glob.glob(os.path.join(REPO_ROOT, folder, "**", "*.py"),
                     recursive=True)
  return sorted(out)


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
  found = []
  package = module.rsplit(".", 1)[0]
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [(node.lineno, a.name) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split("."))
                                           - node.level + 1] + [base])
      found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
  return found


def test_import_layers():
  bad = []
  for path in _python_files("common", "algos"):
    module = _module_name(path)
    own = 0 if module == "common" else _layer(module)
    if own is None:
      bad.append(f"{module} is in no layer: move it into one of "
                 f"{[p for p, _ in _LAYER_OF_PREFIX]}")
      continue
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), path)
    for line, target in _imports(tree, module):
      if not target.startswith(("common", "algos", "experiments")):
        continue
      layer = _layer(target)
      if layer is None:
        continue
      if module.startswith("common") and target.startswith(("algos",
                                                            "experiments")):
        bad.append(f"{module}:{line} imports {target} (common finds algos/"
                   "experiments through registries)")
      elif layer > own:
        bad.append(f"{module}:{line} (layer {own}) imports {target} "
                   f"(layer {layer})")
  assert not bad, "layering violations:\n" + "\n".join(bad)


def _calls_optimizer_update(tree: ast.AST) -> list[int]:
  lines = []
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call):
      continue
    func = node.func
    name = (func.attr if isinstance(func, ast.Attribute) else
            func.id if isinstance(func, ast.Name) else "")
    if name == "apply_updates" or (
        name == "update" and isinstance(func, ast.Attribute)
        and len(node.args) >= 2
        and not ast.unparse(func.value).endswith("config")):
      lines.append(node.lineno)
  return lines


def _takes_gradients(tree: ast.AST) -> list[int]:
  return [n.lineno for n in ast.walk(tree)
          if isinstance(n, ast.Attribute)
          and n.attr in ("grad", "value_and_grad", "vjp")
          and isinstance(n.value, ast.Name) and n.value.id == "jax"]


def _notebook_sources() -> list[tuple[str, str]]:
  out = []
  for path in sorted(glob.glob(os.path.join(REPO_ROOT, "notebooks",
                                            "*.ipynb"))):
    with open(path, encoding="utf-8") as f:
      cells = json.load(f)["cells"]
    out.append((path, "\n".join("".join(c["source"]) for c in cells
                                if c["cell_type"] == "code")))
  return out


def test_only_the_core_step_applies_optimizer_updates():
  bad = []
  sources = [(p, open(p, encoding="utf-8").read())
             for p in _python_files("common", "algos", "experiments",
                                    "benchmarks")]
  for path, source in sources + _notebook_sources():
    rel = os.path.relpath(path, REPO_ROOT)
    if rel in _UPDATE_ALLOWED:
      continue
    try:
      tree = ast.parse(source, path)
    except SyntaxError:  # notebook magics
      pytest.fail(f"{rel} does not parse as Python")
    bad += [f"{rel}:{line}" for line in _calls_optimizer_update(tree)]
  assert not bad, ("optimizer updates outside common/core/train_step.py "
                   "(use train_step_fn / optimizer_step):\n" + "\n".join(bad))


def test_experiment_folders_take_no_gradients():
  bad = []
  for path in _python_files("experiments"):
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), path)
    bad += [f"{os.path.relpath(path, REPO_ROOT)}:{line}"
            for line in _takes_gradients(tree)]
  assert not bad, ("experiment folders hold configs, evaluators and figures,"
                   " not training code:\n" + "\n".join(bad))
