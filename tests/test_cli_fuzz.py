"""Bad invocations of `regjax`: generated, never a traceback, never accepted.

Cases are generated from the config schema and the declared rules: every
numeric field given a non-number, every field with a declared range given a
value outside it, misspelt keys at every level, and the flag mistakes an
operator makes. Each must exit with code 2 and a one-line message that
names the field or flag, the value given and what is allowed. The CLI runs
in-process with the study engine replaced by a tripwire, so a bad input
that got through would fail the test instead of training.
"""

from __future__ import annotations

import os

import pytest

from common import cli
from common import config as config_lib
from common.core import method as method_lib
from common.protocols import supervised
from common.study import engine

_BASE = "experiments/ps_kd/config.py:digits"


def _violation(rule: config_lib.Rule):
  """A value the rule refuses (None if none is easy to make)."""
  for candidate in (-1, 0, -0.5, 1.5, 2.0, 10**9, "bogus", ("a",), ()):
    if not rule.test(candidate):
      return candidate
  return None


def _field_cases():
  config = config_lib.load_config(_BASE)
  flat = config_lib.flatten(config.to_dict())
  rules = dict(supervised.RULES)
  for name in ("ps_kd", "cross_entropy"):
    method = method_lib.get_method(name, config.method[name].to_dict())
    rules.update({f"method.{name}.{k}": r for k, r in method.rules.items()})
  cases = []
  for path, value in sorted(flat.items()):
    if path.startswith("study."):
      continue
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      cases.append((f"{path}=abc", path, "abc"))
    if path in rules:
      bad = _violation(rules[path])
      if bad is not None:
        method = path.split(".")[1] if path.startswith("method.") else ""
        # An arm that trains with that method (the arms set method.name).
        extra = {"ps_kd": ["--arms=PS-KD"], "cross_entropy": ["--arms=CE"],
                 "": []}[method]
        cases.append((f"{path}={bad!r}" if isinstance(bad, str) else
                      f"{path}={bad}", path, str(bad), *extra))
    leaf = path.rsplit(".", 1)[-1]
    if len(leaf) > 3:   # a transposition typo of the leaf name
      typo = leaf[0] + leaf[2] + leaf[1] + leaf[3:]
      if typo != leaf:
        cases.append((f"{path[:-len(leaf)]}{typo}=1", typo, typo))
  return cases


FIELD_CASES = _field_cases()

# (arguments, words the message must contain)
FLAG_CASES = [
    (["run", "pskd"], ["'pskd'", "ps_kd"]),
    (["run"], ["usage"]),
    (["frobnicate"], ["'frobnicate'", "list, train, run"]),
    (["run", "ps_kd", "--seeds=a,b"], ["--seeds", "'a,b'", "integers"]),
    (["run", "ps_kd", "--seeds=1.5"], ["--seeds", "'1.5'"]),
    (["run", "ps_kd", "--seeds=0,,1"], ["--seeds", "no empty items"]),
    (["run", "ps_kd", "--seeds="], ["--seeds", "no empty items"]),
    (["run", "ps_kd", "--seeds=0,0"], ["--seeds", "repeats"]),
    (["run", "ps_kd", "--arms="], ["--arms", "no empty items"]),
    (["run", "ps_kd", "--arms=CE,XX"], ["'XX'", "PS-KD"]),
    (["run", "ps_kd", "--seed=1"], ["--seed", "did you mean --seeds"]),
    (["run", "ps_kd", "--config=experiments/qlae/config.py"],
     ["'qlae'", "ps_kd"]),
    (["run", "ps_kd", "--config=experiments/ps_kd/nope.py"],
     ["nope.py", "does not exist"]),
    (["run", "ps_kd", "--config=experiments/ps_kd/config.py:cifar1000"],
     ["'cifar1000'", "cifar100"]),
    (["run", "ps_kd", "--config.train.steps"], ["--config.train.steps",
                                                "=value"]),
    (["run", "ps_kd", "--workdir"], ["--workdir", "needs a value"]),
    (["run", "ps_kd", "extra"], ["'extra'"]),
    (["run", "ps_kd", "--config.model.dtype=float13"],
     ["model.dtype", "'float13'", "float32"]),
    (["run", "ps_kd", "--config.method.name=pskd"], ["method.name=pskd",
                                                    "no effect", "--arms"]),
    (["run", "ps_kd", "--config.eval.name=nope"], ["'nope'",
                                                  "classification"]),
    (["run", "ps_kd", "--config.model.name=resnet7"], ["'resnet7'",
                                                      "resnet18"]),
    (["run", "ps_kd", "--config.data.source=web"], ["data.source", "'web'",
                                                    "tfds"]),
    (["train", "--workdir=/tmp/x"], ["--config"]),
    (["train", "--config=" + _BASE], ["--workdir"]),
    (["train", "--config=" + _BASE, "--workdir=/tmp/x", "--seeds=1"],
     ["--seeds", "allowed"]),
    (["list", "--json"], ["--json", "allowed"]),
]


@pytest.fixture
def invoke(monkeypatch, capsys):
  def tripwire(*args, **kwargs):
    raise AssertionError(f"a bad invocation was accepted: {args[:2]}")
  monkeypatch.setattr(engine, "run_study", tripwire)
  monkeypatch.setattr(engine, "run_one", tripwire)
  monkeypatch.delenv("REGJAX_TRACEBACK", raising=False)

  def run(args):
    with pytest.raises(SystemExit) as e:
      cli.main(["regjax", *args])
    return e.value.code, capsys.readouterr().err
  return run


def test_enough_generated_cases():
  assert len(FIELD_CASES) + len(FLAG_CASES) >= 61


@pytest.mark.parametrize("case", FIELD_CASES, ids=lambda c: c[0])
def test_bad_config_values_fail_with_the_field_and_what_is_allowed(invoke,
                                                                   case):
  override, field, given, *extra = case
  code, err = invoke(["run", "ps_kd", f"--config.{override}", *extra])
  assert code == 2 and "Traceback" not in err, err
  assert field in err and given in err, err
  assert any(w in err for w in ("expected", "expects", "valid keys",
                                "allowed", "did you mean")), err
  assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args,words", FLAG_CASES,
                         ids=lambda a: " ".join(a) if isinstance(a, list)
                         else "")
def test_bad_flags_fail_with_a_one_line_message(invoke, args, words):
  code, err = invoke(args)
  assert code == 2 and "Traceback" not in err, err
  for w in words:
    assert w in err, (w, err)


def test_workdir_under_a_regular_file(invoke, tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  code, err = invoke(["run", "ps_kd", f"--workdir={path / 'run'}"])
  assert code == 2 and "is a file" in err and str(path) in err, err
  assert os.path.isfile(path)
