#!/usr/bin/env bash
# `make run`: the operator in the foreground, against the cluster KUBECONFIG
# names, or, when none is named, against the local test bed (started if needed).
# Extra arguments go to `runbook-operator run` (e.g. --namespace mail-score).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${KUBECONFIG:-}" ]; then
  .venv/bin/python tests/testbed/testbed.py up >&2
  export KUBECONFIG=$PWD/.testbed/kubeconfig
  kubectl=$(bash tests/testbed/build.sh 2>/dev/null | tail -n 1)/kubectl
  export RUNBOOK_METRICS_ADDRESS=${RUNBOOK_METRICS_ADDRESS:-127.0.0.1}
  export RUNBOOK_BACKUP_ROOT=${RUNBOOK_BACKUP_ROOT:-$PWD/.testbed/backups}
  mkdir -p "$RUNBOOK_BACKUP_ROOT"
  echo "local test bed: export KUBECONFIG=$KUBECONFIG" >&2
else
  kubectl=$(command -v kubectl) || { echo "kubectl is needed to install the CRDs" >&2; exit 1; }
fi
"$kubectl" apply --server-side --force-conflicts -f crds/ >&2
exec .venv/bin/runbook-operator run "$@"
