#!/usr/bin/env bash
# `make test` / `make e2e`: pytest on the given paths, then proof that the run left no
# process behind. Every process the tests start is recorded in one ledger for the run
# (tests/testbed/ledger.py); the check afterwards fails if any of them still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export RUNBOOK_TEST_LEDGER=$PWD/.testrun/make-test.jsonl
.venv/bin/python -m pytest "$@"
status=$?
if ! .venv/bin/python tests/testbed/ledger.py check; then
  .venv/bin/python tests/testbed/ledger.py reap
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
