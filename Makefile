# Entry points for developers and CI. Each target is a thin wrapper around a
# script, so the same commands work without make.
PY ?= .venv/bin/python
TESTBED := $(PY) tests/testbed/testbed.py

.PHONY: help venv run test lint unit e2e bench crds deps kubectl testbed-build testbed-up \
	testbed-down testbed-status

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: venv  ## run the operator: against KUBECONFIG if set, else the local test bed
	bash scripts/run.sh

test: venv lint testbed-build deps  ## everything CI runs: lint, unit and end-to-end tests
	bash scripts/test.sh tests  # pytest on unit and e2e, then proof that no process is left

unit: venv  ## unit tests only (no cluster, no servers)
	$(PY) -m pytest tests/unit -q

e2e: venv testbed-build deps  ## end-to-end tests only
	bash scripts/test.sh tests/e2e  # pytest on e2e, then proof that no process is left

bench: venv testbed-build  ## benchmarks: each figure a ratio against a reference run side by side
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

lint: venv  ## ruff (lint and format), mypy --strict (package and tests), import-linter contracts
	.venv/bin/ruff check operator tests benchmarks
	.venv/bin/ruff format --check operator tests benchmarks
	.venv/bin/mypy
	.venv/bin/mypy --config-file tests/mypy.ini
	.venv/bin/lint-imports

crds: venv  ## regenerate crds/ from the models
	.venv/bin/runbook-operator crds

deps:  ## install the servers the e2e suite runs (PostgreSQL, Prometheus, Alertmanager, Redis)
	bash tests/testbed/deps.sh

venv: .venv/.installed  ## the Python environment in .venv
.venv/.installed: pyproject.toml
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@

testbed-build:  ## build the control-plane binaries (once per version, cached)
	@if [ -n "$$KUBECONFIG" ] && [ "$$KUBECONFIG" != "$(CURDIR)/.testbed/kubeconfig" ]; then \
	  echo "KUBECONFIG names a cluster: the local test bed is not built"; \
	else bash tests/testbed/build.sh >/dev/null; fi

kubectl: venv testbed-build  ## kubectl of the test bed's release; prints the PATH to use
	@$(TESTBED) kubectl

testbed-up: venv testbed-build  ## start the local control plane on loopback; prints the exports
	$(TESTBED) up

testbed-down:  ## stop every process of the local control plane and remove its state
	$(TESTBED) down

testbed-status:  ## components, health and memory of the local control plane
	$(TESTBED) status
