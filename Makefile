# Set-up and everyday commands. `make play` and `make test` work on a fresh machine:
# they create .venv, install a CPU build of torch (override TORCH for a GPU build,
# e.g. `make setup TORCH=torch`), then maag with its dependencies.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup play test lint bench-data clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

play: setup
	$(BIN)/maag play

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-data: setup
	$(BIN)/python benchmarks/data_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
