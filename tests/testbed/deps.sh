#!/usr/bin/env bash
# Installs the servers the end-to-end suite runs for real on loopback, when missing:
# PostgreSQL (server and client tools), Prometheus (with promtool), Alertmanager, Redis.
#
# As root they come from Debian's packages. The packages' start scripts are kept from
# starting the servers (the tests start their own, on free ports): a policy-rc.d that
# refuses every start exists only while apt-get runs and is removed afterwards; a
# server that starts anyway is stopped again, by the pid it got during the install.
# As another user nothing is installed: the exact command is printed and the exit code
# is 1. Nothing is done when everything is there.
set -euo pipefail

# binary to look for | Debian package that provides it
requirements=(
  "/usr/lib/postgresql/*/bin/postgres|postgresql"
  "/usr/lib/postgresql/*/bin/pg_dump|postgresql-client"
  "/usr/bin/pg_dump|postgresql-client"
  "/usr/bin/prometheus|prometheus"
  "/usr/bin/promtool|prometheus"
  "/usr/bin/prometheus-alertmanager|prometheus-alertmanager"
  "/usr/bin/redis-server|redis-server"
)

have() {  # have GLOB: whether an executable matches
  local candidate
  for candidate in $1; do [ -x "$candidate" ] && return 0; done
  return 1
}

missing=()
for entry in "${requirements[@]}"; do
  glob=${entry%%|*} package=${entry##*|}
  if ! have "$glob"; then
    [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: PostgreSQL, Prometheus, Alertmanager and Redis are installed" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: the end-to-end suite needs ${missing[*]}, which are not installed. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "then \`make test\` again (the tests start their own servers; none needs to run)." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: ${missing[*]} missing and this is not a Debian system; install them by hand" >&2
  exit 1
fi

echo "deps: installing ${missing[*]} from Debian's packages (about a minute)" >&2
policy=/usr/sbin/policy-rc.d
ours=""
before=$(ls /proc | grep -E '^[0-9]+$' | sort)
cleanup() {
  [ -n "$ours" ] && rm -f "$policy"
  # A server that a package's start script started despite the policy: stop it by its pid.
  local pid exe
  for pid in $(ls /proc | grep -E '^[0-9]+$' | sort | comm -13 <(echo "$before") -); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    case "$exe" in
      /usr/lib/postgresql/*/bin/postgres | /usr/bin/prometheus | /usr/bin/prometheus-alertmanager | \
        /usr/bin/redis-server | /usr/bin/redis-check-rdb)
        echo "deps: stopping $exe (pid $pid), started by its package" >&2
        kill "$pid" 2>/dev/null || true ;;
    esac
  done
}
trap cleanup EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# runbook-operator deps.sh: no service starts while it installs\nexit 101\n' \
    >"$policy"
  chmod 755 "$policy"
  ours=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}" >&2
