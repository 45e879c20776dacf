# Every target bootstraps its environment on its own (idempotent): a fresh clone needs only `make demo` and
# `make test`. Both environments install exact versions from committed locks (requirements/*.lock.txt), so two
# fresh machines a month apart get the same packages; `make lock` refreshes the locks (see requirements/README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/dev.lock.txt
CORE_VENV := .venv-core
CORE_STAMP := $(CORE_VENV)/.installed
CORE_LOCK := requirements/core.lock.txt
# the core environment has no torchaudio/speechbrain/mne/pandas/matplotlib: only what needs none of them
CORE_TESTS ?= tests/test_core_install.py tests/layers tests/models tests/features tests/train tests/test_package.py
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.10 --upgrade --quiet \
	--custom-compile-command "make lock"
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg
export NO_MKDOCS_2_WARNING ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv demo test test-core lock lint format bench bench-write docs clean

venv: $(STAMP)

# pip installs the lock as it is (every version pinned, dependencies included), then sigattn itself, editable
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

# The core promise: sigattn without extras on the newest torch of the lock's day. PIP_CONSTRAINT=/dev/null
# replaces any constraint file of the machine's pip configuration (some machines cap torch below the newest).
$(CORE_STAMP): $(CORE_LOCK) pyproject.toml
	@test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	PIP_CONSTRAINT=/dev/null $(CORE_VENV)/bin/python -m pip install --quiet -r $(CORE_LOCK)
	PIP_CONSTRAINT=/dev/null $(CORE_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $(CORE_STAMP)

demo: $(STAMP)
	$(BIN)/sigattn demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-core: $(CORE_STAMP)
	SIGATTN_CORE_ENV=1 $(CORE_VENV)/bin/python -m pytest -q -p no:cacheprovider $(CORE_TESTS)

# Refreshes both locks from pyproject.toml and the registry: the development environment (all extras + dev,
# with requirements/constraints-dev.txt) and the core environment (no extras, the newest torch).
lock: $(STAMP)
	$(UV_COMPILE) --extra all --extra dev -c requirements/constraints-dev.txt -o $(LOCK)
	$(UV_COMPILE) --extra test -o $(CORE_LOCK)

lint: $(STAMP)
	$(BIN)/ruff check sigattn tests benchmarks
	$(BIN)/ruff format --check sigattn tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format sigattn tests benchmarks
	$(BIN)/ruff check --fix sigattn tests benchmarks

# prints the benchmark reports; bench-write also rewrites their sections of docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/sigattn bench

bench-write: $(STAMP)
	$(BIN)/sigattn bench --write

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf site runs .cache .pytest_cache build *.egg-info
