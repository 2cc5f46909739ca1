# kubenetmon: every entry point people and CI use. `make test` and `make demo` do their own setup.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Test binaries (kube-apiserver, etcd, helm) are built with Go once and cached here, keyed by version.
export KUBENETMON_TOOLS_CACHE ?= $(HOME)/.cache/kubenetmon-tools

.PHONY: setup system-deps venv test-binaries check test demo bench proto clean

setup: system-deps venv test-binaries

system-deps:
	scripts/setup-system.sh

venv: $(VENV)/.installed

# The same install step as CI and the container image (scripts/install.sh, pinned by constraints.txt).
$(VENV)/.installed: pyproject.toml constraints.txt scripts/install.sh
	$(PYTHON) -m venv $(VENV)
	scripts/install.sh $(VENV)/bin/python --dev --editable
	touch $@

test-binaries:
	@if [ -x scripts/build-test-binaries.sh ]; then scripts/build-test-binaries.sh; fi

LINT_DIRS := $(wildcard src tests benchmarks scripts)

check: venv
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The test command: needs root (network namespaces, conntrack sysctls). Runs every test, none skipped.
test: setup check
	$(PY) -m pytest $(PYTEST_ARGS)

demo: system-deps venv
	$(VENV)/bin/kubenetmon demo $(DEMO_ARGS)

bench: system-deps venv
	$(PY) -m benchmarks $(BENCH_ARGS)

proto: venv
	scripts/gen-proto.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build src/*.egg-info
