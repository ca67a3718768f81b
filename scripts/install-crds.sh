#!/usr/bin/env bash
# Installs the CRDs in crds/ and returns only once they can be used: every CRD is
# Established, discovery serves every kind (the operations in the `runbook` category),
# and `kubectl get runbook` answers. Before that, a first command races the API server
# ("the server doesn't have a resource type"). Usage: install-crds.sh [KUBECTL]
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl=${1:-kubectl}
"$kubectl" apply --server-side --force-conflicts -f crds/ >&2
"$kubectl" wait --for condition=Established --timeout=60s -f crds/ >&2
wanted=$(grep -h '^  name: ' crds/*.yaml | awk '{print $2}' | sort)
served=""
for _ in $(seq 240); do
  served=$("$kubectl" api-resources --api-group=ops.mailscore.com -o name 2>/dev/null |
    sort || true)
  if [ "$served" = "$wanted" ] && "$kubectl" get runbook --all-namespaces >/dev/null 2>&1; then
    echo "CRDs installed and served: $(echo "$wanted" | tr '\n' ' ')" >&2
    exit 0
  fi
  sleep 0.25
done
echo "the API server did not serve every kind of crds/ within 60 s" >&2
echo "wanted:" $wanted >&2
echo "served:" $served >&2
exit 1
