#!/usr/bin/env bash
# Builds the test bed's binaries from the Go module proxy, once per version.
#
# Each wrapper module under gomod/ is built into its own cache directory named
# by the component's version and a hash of the wrapper's files, so a second
# run (or a CI run on the same machine) does nothing, and a change of release
# or wrapper builds anew. Prints the bin directory on the last line.
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

key() { (cd "$here/gomod/$1" && cat go.mod go.sum ./*.go 2>/dev/null | sha256sum | cut -c1-10); }

build() {  # build NAME VERSION -- go build arguments...
  local name=$1 version=$2; shift 3
  local out="$cache/$name-$version-$(key "$name")"
  if [ -f "$out/.complete" ]; then echo "$name $version: cached in $out" >&2; echo "$out"; return; fi
  echo "$name $version: building into $out" >&2
  local start=$SECONDS
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  if ! (cd "$here/gomod/$name" && go build -trimpath -o "$out.tmp/" "$@") >&2; then
    echo "$name $version: build failed" >&2
    rm -rf "$out.tmp"
    return 1
  fi
  touch "$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "$name $version: built in $((SECONDS - start)) s" >&2
  echo "$out"
}

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

etcd_dir=$(build etcd "$ETCD_VERSION" -- -ldflags "-s -w" go.etcd.io/etcd/server/v3)
[ -e "$etcd_dir/etcd" ] || mv "$etcd_dir/server" "$etcd_dir/etcd"  # the binary is named after the module root
kwok_dir=$(build kwok "$KWOK_VERSION" -- -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok)
kube_dir=$(build kube "$KUBE_VERSION" -- -ldflags "-s -w$stamp" .)

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
ln -sfn "$stages" "$bin/kwok-stages"
echo "$bin"
