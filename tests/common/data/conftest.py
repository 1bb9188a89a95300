"""Shared fixtures for the data pipeline tests."""

import pytest

from common.data import sources


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
  """A data_dir with the in-repo `digits` dataset prepared (built once)."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  assert sources.prepare_in_repo("digits", data_dir)
  return data_dir
