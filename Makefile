# The two set-up commands of the README are `make demo` and `make test`; both build .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench fuzz venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m akidac.demo

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider

# mypy reads its configuration from pyproject.toml ([tool.mypy]): the whole package, strict on
# akidac/ir and akidac/target
lint: $(STAMP)
	$(BIN)/ruff check akidac tests bench
	$(BIN)/ruff format --check akidac tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/compile_time.py
	$(BIN)/python bench/hwmodel.py
	$(BIN)/python bench/report_time.py

# the fuzzers at scale (not part of `make test`, which runs their fixed sets): random graphs
# through the compiler, mutated programs through HybridSession
FUZZ_N ?= 2000
FUZZ_MUTANTS ?= 5000
fuzz: $(STAMP)
	$(BIN)/python bench/fuzz.py --graphs $(FUZZ_N) --mutants $(FUZZ_MUTANTS)

clean:
	rm -rf $(VENV) build *.egg-info
