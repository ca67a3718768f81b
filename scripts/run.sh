#!/usr/bin/env bash
# `make run`: the operator in the foreground, against the cluster KUBECONFIG
# names, or, when none is named, against the local test bed (built and started
# if needed). Extra arguments go to `runbook-operator run` (e.g. --namespace mail-score).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${KUBECONFIG:-}" ]; then
  bin=$(bash tests/testbed/build.sh | tail -n 1)
  .venv/bin/python tests/testbed/testbed.py up >&2
  export KUBECONFIG=$PWD/.testbed/kubeconfig
  kubectl=$bin/kubectl
  export RUNBOOK_METRICS_ADDRESS=${RUNBOOK_METRICS_ADDRESS:-127.0.0.1}
  export RUNBOOK_BACKUP_ROOT=${RUNBOOK_BACKUP_ROOT:-$PWD/.testbed/backups}
  export RUNBOOK_LEASE_NAMESPACE=${RUNBOOK_LEASE_NAMESPACE:-default}  # the local bed has no runbook-system
  mkdir -p "$RUNBOOK_BACKUP_ROOT"
  echo "local test bed; in another shell:" >&2
  .venv/bin/python tests/testbed/testbed.py env | sed 's/^/  /' >&2
else
  kubectl=$(command -v kubectl) || { echo "kubectl is needed to install the CRDs" >&2; exit 1; }
fi
bash scripts/install-crds.sh "$kubectl"
exec .venv/bin/runbook-operator run "$@"
