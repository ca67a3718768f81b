#!/usr/bin/env bash
# Builds the test bed's binaries from the Go module proxy, once per version.
#
# Each wrapper module under gomod/ is built into its own cache directory named
# by the component's version and a hash of the wrapper's files, so a second
# run (or a CI run on the same machine) does nothing, and a change of release
# or wrapper builds anew. Prints the bin directory on the last line.
#
# `build.sh gitopshealth` builds only the GitOps health checker (Argo CD's Lua
# engine, Flux's CEL and kstatus; no control plane) and prints its path.
set -euo pipefail
shopt -s inherit_errexit  # a failed build inside $(...) must stop the script

here=$(cd "$(dirname "$0")" && pwd)
cache=${RUNBOOK_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/runbook-operator/testbed}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Links of the Kubernetes binaries take ~2 GiB each; two at a time fit anywhere.
export GOMAXPROCS=${GOMAXPROCS:-$(nproc)}

KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
VERSITYGW_VERSION=v1.8.0  # S3-compatible server for the object-storage backup tests
GITOPSHEALTH_VERSION=v0.37.2  # sigs.k8s.io/cli-utils (kstatus), the release Flux uses

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is not installed; the test bed is built from the Go module proxy" \
    "(Go >= 1.26: https://go.dev/doc/install)" >&2
  exit 1
fi

building=""   # the pid (= session id) of the go build in flight
partial=""    # its output directory, removed when interrupted
stop_build() {
  trap - INT TERM
  if [ -n "$building" ]; then
    kill -TERM -- "-$building" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$building" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$building" 2>/dev/null || true
  fi
  [ -n "$partial" ] && rm -rf "$partial"
  echo "build.sh: interrupted; nothing half-built is kept" >&2
  exit 130
}
trap stop_build INT TERM

key() { (cd "$here/gomod/$1" && cat go.mod go.sum ./*.go 2>/dev/null | sha256sum | cut -c1-10); }

dir_of() { echo "$cache/$1-$2-$(key "$1")"; }

built=""  # the output directory of the last build()
build() {  # build NAME VERSION -- go build arguments...  (sets $built; no subshell, so the
  local name=$1 version=$2; shift 3      # interrupt trap sees the build in flight)
  local out
  out=$(dir_of "$name" "$version")
  built=$out
  if [ -f "$out/.complete" ]; then echo "$name $version: cached in $out" >&2; return; fi
  echo "$name $version: building into $out (downloads its modules the first time)" >&2
  local start=$SECONDS status=0
  partial="$out.tmp"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  (cd "$here/gomod/$name" && exec setsid go build -trimpath -o "$out.tmp/" "$@") >&2 &
  building=$!
  wait "$building" || status=$?
  building=""
  if [ "$status" -ne 0 ]; then
    echo "$name $version: build failed (exit code $status)" >&2
    rm -rf "$out.tmp"
    partial=""
    return 1
  fi
  partial=""
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "$name $version: built in $((SECONDS - start)) s" >&2
}

if [ "${1:-}" = gitopshealth ]; then
  build gitopshealth "$GITOPSHEALTH_VERSION" -- -ldflags "-s -w" .
  echo "$built/gitopshealth"
  exit 0
fi

if ! [ -f "$(dir_of etcd "$ETCD_VERSION")/.complete" ] \
  || ! [ -f "$(dir_of kwok "$KWOK_VERSION")/.complete" ] \
  || ! [ -f "$(dir_of kube "$KUBE_VERSION")/.complete" ]; then
  echo "Building the local control plane (etcd $ETCD_VERSION, Kubernetes $KUBE_VERSION," \
    "kwok $KWOK_VERSION) from the Go module proxy into $cache;" \
    "the first build takes about 7 minutes on 2 cores, later ones are instant." >&2
fi

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

build etcd "$ETCD_VERSION" -- -ldflags "-s -w" go.etcd.io/etcd/server/v3
etcd_dir=$built
[ -e "$etcd_dir/etcd" ] || mv "$etcd_dir/server" "$etcd_dir/etcd"  # the binary is named after the module root
build kwok "$KWOK_VERSION" -- -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
kwok_dir=$built
build kube "$KUBE_VERSION" -- -ldflags "-s -w$stamp" .
kube_dir=$built
build versitygw "$VERSITYGW_VERSION" -- -ldflags "-s -w -X main.Version=$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
versitygw_dir=$built
build gitopshealth "$GITOPSHEALTH_VERSION" -- -ldflags "-s -w" .
gitopshealth_dir=$built

# kwok's stage definitions (node heartbeat, pod ready, ...) ship in its module.
stages="$kwok_dir/stages"
if [ ! -d "$stages" ]; then
  src=$(cd "$here/gomod/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  mkdir -p "$stages.tmp" && cp -r "$src/kustomize/stage/." "$stages.tmp/" && chmod -R u+w "$stages.tmp"
  mv "$stages.tmp" "$stages"
fi

bin="$cache/bin-$KUBE_VERSION"
mkdir -p "$bin"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do ln -sfn "$kube_dir/kube" "$bin/$c"; done
ln -sfn "$etcd_dir/etcd" "$bin/etcd"
ln -sfn "$kwok_dir/kwok" "$bin/kwok"
ln -sfn "$versitygw_dir/versitygw" "$bin/versitygw"
ln -sfn "$gitopshealth_dir/gitopshealth" "$bin/gitopshealth"
ln -sfn "$stages" "$bin/kwok-stages"
# kubectl alone, for users' PATH (the bin dir also holds the control plane's binaries).
mkdir -p "$cache/kubectl-$KUBE_VERSION"
ln -sfn "$kube_dir/kube" "$cache/kubectl-$KUBE_VERSION/kubectl"
echo "$bin"
