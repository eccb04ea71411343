# Everything installs into .venv from the pinned versions in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test lint fmt lock clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

## test: the whole suite against an embedded PostgreSQL it starts itself
test: $(INSTALLED)
	$(BIN)/pytest

## lint: ruff and mypy, as configured in pyproject.toml
lint: $(INSTALLED)
	$(BIN)/ruff check embedworker tests
	$(BIN)/mypy

fmt: $(INSTALLED)
	$(BIN)/ruff check --fix embedworker tests

## lock: re-resolve the newest versions that pyproject.toml allows into constraints.txt
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	PIP_CONSTRAINT= .lock-venv/bin/pip install --quiet -e '.[dev]' hatchling
	{ echo "# Exact versions that 'make test' and 'make demo' install (pip -c). Regenerate with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
