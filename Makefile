# One command each, from a fresh clone (Python >= 3.11 on PATH):
#   make demo   create .venv, install, run PS-KD vs CE on the embedded digits
#   make test   create .venv, install with test extras, run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SEEDS ?= 0,1,2,3,4
# Test processes (pytest-xdist; most test time is single-threaded XLA
# compilation, so two workers use both cores of a 2-core CI machine).
TEST_WORKERS ?= 2

.PHONY: demo test install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/regjax run ps_kd --seeds=$(SEEDS) --workdir=runs/ps_kd-digits

test: install-test
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: install
	$(BIN)/python -m benchmarks.harness_overhead
	$(BIN)/python -m benchmarks.ps_kd_overhead

clean:
	rm -rf $(VENV) runs .pytest_cache
