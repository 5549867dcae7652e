# ScraperSky developer commands. `make demo` runs the main job end to end; `make test` runs every test.
# Everything installs itself into local virtualenvs: .venv (tests, tools; default python3),
# .venv-sam (SAM CLI) and .venv-ministack (the local AWS emulator, on Python 3.12 like the Lambda runtime).

SHELL := /bin/bash
PYTHON ?= python3
PYENV_312 := $(shell pyenv root 2>/dev/null)/versions/3.12.1/bin/python3.12
PY312 ?= $(if $(wildcard $(PYENV_312)),$(PYENV_312),$(shell command -v python3.12))
export PY312
VENV := .venv
BIN := $(VENV)/bin
SAM := .venv-sam/bin/sam
SAM_ENV := PATH="$(dir $(PY312)):$$PATH" SAM_CLI_TELEMETRY=0
export PYTHONPATH := $(CURDIR)/layers/scrapersky:$(CURDIR)/client:$(CURDIR)
PYTEST_ARGS ?=

.PHONY: help venv build validate lint typecheck test test-unit test-integration test-e2e local demo bench chaos deploy clean

help:
	@echo "make demo     - run a batch end to end on the docker-less local stack (main job)"
	@echo "make test     - lint, template checks, unit, integration (moto) and end-to-end tests"
	@echo "make local    - run the local stack in the foreground (API on http://127.0.0.1:3000)"
	@echo "make build    - sam build;  make validate - sam validate --lint;  make deploy - sam deploy --guided"
	@echo "make bench    - benchmarks (not tests): vs Scrapy on a rate-limiting site, leasing, create latency, sitemap discovery, AWS cost per item, profile checks"
	@echo "make chaos    - a 2,000-item batch while workers are killed, 5% of AWS calls fail, messages are duplicated"

$(VENV)/.installed: requirements-dev.txt layers/scrapersky/requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

.venv-sam/.installed: requirements-sam.txt
	@test -n "$(PY312)" || (echo "Python 3.12 is needed for sam build (runtime python3.12)"; exit 1)
	@test -x .venv-sam/bin/python || $(PY312) -m venv .venv-sam
	.venv-sam/bin/python -m pip install -q -r requirements-sam.txt
	@touch $@

.venv-ministack/.installed: requirements-ministack.txt
	@test -n "$(PY312)" || (echo "Python 3.12 is needed for the local stack"; exit 1)
	@test -x .venv-ministack/bin/python || $(PY312) -m venv .venv-ministack
	.venv-ministack/bin/python -m pip install -q -r requirements-ministack.txt
	@touch $@

venv: $(VENV)/.installed .venv-sam/.installed .venv-ministack/.installed

.venv-bench/.installed: requirements-bench.txt
	@test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q -r requirements-bench.txt
	@touch $@

# Lambda's /opt and /var/task are read-only: without bytecode in the build every cold start compiles the layer
# (~2x its import time). Compiled by the runtime's Python 3.12; unchecked-hash, as a zip keeps no usable mtimes.
build: .venv-sam/.installed
	$(SAM_ENV) $(SAM) build
	$(PY312) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build >/dev/null

validate: .venv-sam/.installed
	$(SAM_ENV) $(SAM) validate --lint

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: venv build lint
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

test-unit: $(VENV)/.installed
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/.installed
	$(BIN)/python -m pytest tests/integration tests/template $(PYTEST_ARGS)

test-e2e: venv build
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

local: venv build
	$(BIN)/python -m devstack.stack

demo: venv build
	$(BIN)/python -m devstack.demo

bench: venv build .venv-bench/.installed
	$(BIN)/python -m bench.rate_limits --proxies 4 --rate 2 --pages 200
	$(BIN)/python -m bench.leases --workers 20 --proxies 20
	$(BIN)/python -m bench.create_latency --items 10000 --runs 3
	$(BIN)/python -m bench.discovery --urls 50000 --per-doc 2500  # the 1,000,000-URL run cannot end locally yet (README)
	$(BIN)/python -m bench.cost --items 1000
	$(BIN)/python -m bench.profiles --targets 1000
	$(BIN)/python -m bench.cold_start --runs 7
	$(BIN)/python -m bench.first_requests

# a run that prints figures, not a test (its short version, tests/e2e/test_chaos.py, is in `make test`)
chaos: venv build
	$(BIN)/python -m bench.chaos --items 2000 --kills 5 --fault-rate 0.05

deploy: build
	$(SAM_ENV) $(SAM) deploy --guided

clean:
	rm -rf .aws-sam .cache .pytest_cache .mypy_cache .ruff_cache
