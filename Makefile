# Entry points for developers and CI. Each target is a thin wrapper around a
# script, so the same commands work without make.
PY ?= .venv/bin/python
TESTBED := $(PY) tests/testbed/testbed.py

.PHONY: help testbed-build testbed-up testbed-down testbed-status

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

testbed-build:  ## build the control-plane binaries (once per version, cached)
	bash tests/testbed/build.sh

testbed-up:  ## start the local control plane on loopback; prints export KUBECONFIG=...
	$(TESTBED) up

testbed-down:  ## stop every process of the local control plane and remove its state
	$(TESTBED) down

testbed-status:  ## components, health and memory of the local control plane
	$(TESTBED) status
