# The README's two commands (`make demo`, `make test`) set everything up on a fresh machine
# that has only Python 3.11+: the first target that needs the environment creates .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.attquic-installed

.PHONY: help demo test lint bench fuzz clean
.DEFAULT_GOAL := help

# `make` / `make help`: every target with its one-line description (the `## ` comments)
help:
	@echo "attquic make targets (each sets up .venv first if needed):"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## /  \1\t/' | expand -t 10

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## run the attested echo pair on loopback, both models (simulated TDX)
	$(BIN)/python examples/demo.py

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff and mypy --strict
	$(BIN)/ruff check attquic tests examples benchmarks
	$(BIN)/mypy --strict attquic

bench: $(STAMP)  ## run the benchmarks (results under benchmarks/results/)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run.py

# Every atheris harness under fuzz/ for FUZZ_SECONDS each (FUZZ_JOBS at a time); atheris comes
# from the optional `fuzz` extra. Figures print as JSON lines; crashes land in fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: $(STAMP)  ## run every atheris harness for FUZZ_SECONDS (default 60) each
	$(BIN)/python -c 'import atheris' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[fuzz]'
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS)

clean:  ## remove .venv and the build and tool caches
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
