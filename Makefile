# Entry points for developers and CI. Each target is a thin wrapper around a
# script, so the same commands work without make.
PY ?= .venv/bin/python
TESTBED := $(PY) tests/testbed/testbed.py

.PHONY: help venv run test lint unit e2e crds testbed-build testbed-up testbed-down testbed-status

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: venv  ## run the operator: against KUBECONFIG if set, else the local test bed
	bash scripts/run.sh

test: venv lint  ## everything CI runs: lint, unit tests, end-to-end tests
	$(PY) -m pytest tests

unit: venv  ## unit tests only (no cluster)
	$(PY) -m pytest tests/unit -q

e2e: venv  ## end-to-end tests only
	$(PY) -m pytest tests/e2e

lint: venv  ## ruff, mypy --strict on the package, import-linter layer contracts
	.venv/bin/ruff check operator tests
	.venv/bin/mypy
	.venv/bin/lint-imports

crds: venv  ## regenerate crds/ from the models
	.venv/bin/runbook-operator crds

venv: .venv/.installed  ## the Python environment in .venv
.venv/.installed: pyproject.toml
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@

testbed-build:  ## build the control-plane binaries (once per version, cached)
	bash tests/testbed/build.sh

testbed-up: venv  ## start the local control plane on loopback; prints export KUBECONFIG=...
	$(TESTBED) up

testbed-down:  ## stop every process of the local control plane and remove its state
	$(TESTBED) down

testbed-status:  ## components, health and memory of the local control plane
	$(TESTBED) status
