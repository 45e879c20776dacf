# Every target bootstraps .venv on its own (idempotent): a fresh clone needs only `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: venv demo test lint format bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sigattn demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sigattn tests benchmarks
	$(BIN)/ruff format --check sigattn tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format sigattn tests benchmarks
	$(BIN)/ruff check --fix sigattn tests benchmarks

bench: $(STAMP)
	$(BIN)/sigattn bench

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf site runs .cache .pytest_cache build *.egg-info
