"""Every experiment config loads; those marked for it run a few steps.

Auto-discovered: a new `experiments/<id>/config.py` is covered without
editing this file. Variants are the names a config's `get_config` accepts,
listed in its module's `VARIANTS` (or just the default).
"""

from __future__ import annotations

import glob
import importlib.util
import os

import pytest

from common import config as config_lib
from common import protocols
from tests.conftest import REPO_ROOT


def _configs():
  for path in sorted(glob.glob(os.path.join(REPO_ROOT, "experiments", "*",
                                            "config.py"))):
    spec = importlib.util.spec_from_file_location("cfg", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rel = os.path.relpath(path, REPO_ROOT)
    for variant in getattr(module, "VARIANTS", ("",)):
      yield f"{rel}:{variant}" if variant else rel


CONFIGS = list(_configs())


@pytest.mark.parametrize("spec", CONFIGS)
def test_config_loads_and_validates(spec):
  config = config_lib.load_config(spec)
  protocols.validate(config)
  assert config.experiment == os.path.basename(os.path.dirname(
      spec.split(":")[0]))


@pytest.mark.parametrize("spec", CONFIGS)
def test_smoke_run(spec, tmp_path):
  config = config_lib.load_config(spec)
  if not config.smoke.enabled:
    pytest.skip(f"{spec} needs data that is not embedded")
  protocols.get_protocol(config).smoke(config, str(tmp_path))
