"""Rollback benchmark: apply -> rollout complete, next to `kubectl rollout undo` + `rollout status`.

For each round, twin 10-replica Deployments with the same three-revision history
are made in two namespaces; one is undone with `kubectl rollout undo` followed by
`kubectl rollout status`, the other by creating a Rollback and waiting for its
Ready condition. The operator runs as a local process (admin credentials) with
the tick given on the command line (production default: 2 s).

    .venv/bin/python benchmarks/rollback.py [--rounds 5] [--replicas 10] [--tick 2 1]

Uses the cluster named by KUBECONFIG, or the local test bed (started if needed,
left as it was found). CRDs must be applied (`kubectl apply -f crds/`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kubernetes import client  # noqa: E402

from support.crs import create_cr, get_cr  # noqa: E402
from support.kube import (  # noqa: E402
    api_client_from_kubeconfig,
    create_namespace,
    delete_namespace,
)
from support.operator import OperatorProcess  # noqa: E402
from support.rollback_cluster import manifest  # noqa: E402
from testbed.testbed import LocalTestBed  # noqa: E402

NAME = "mail-score-backend"


class Bench:
    def __init__(self, kubeconfig: Path, kubectl: str) -> None:
        self.kubeconfig, self.kubectl = kubeconfig, kubectl
        self.api = api_client_from_kubeconfig(kubeconfig)

    def kubectl_run(self, *args: str) -> None:
        subprocess.run(
            [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            check=True,
            capture_output=True,
            timeout=300,
        )

    def history(self, namespace: str, replicas: int) -> None:
        body = manifest(NAME, f"{NAME}:1", replicas=replicas)
        client.AppsV1Api(self.api).create_namespaced_deployment(namespace, body)
        self.kubectl_run("-n", namespace, "rollout", "status", f"deployment/{NAME}")
        for version in (2, 3):
            self.kubectl_run(
                "-n", namespace, "set", "image", f"deployment/{NAME}", f"app={NAME}:{version}"
            )
            self.kubectl_run("-n", namespace, "rollout", "status", f"deployment/{NAME}")

    def by_kubectl(self, namespace: str) -> float:
        start = time.monotonic()
        self.kubectl_run("-n", namespace, "rollout", "undo", f"deployment/{NAME}")
        self.kubectl_run("-n", namespace, "rollout", "status", f"deployment/{NAME}")
        return time.monotonic() - start

    def by_rollback(self, namespace: str) -> tuple[float, datetime, dict[str, Any]]:
        applied = datetime.now(UTC)  # creationTimestamp has only 1 s resolution
        start = time.monotonic()
        create_cr(self.api, namespace, "Rollback", "undo", {"targets": [{"name": NAME}]})
        obj = _poll(lambda: _ready(get_cr(self.api, namespace, "Rollback", "undo")))
        return time.monotonic() - start, applied, obj


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready" and cond["status"] == "True":
            return obj
    return None


def _poll(fn: Callable[[], dict[str, Any] | None], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError("the Rollback did not become Ready")


def _seconds(start: datetime, end: str) -> float:
    return (datetime.fromisoformat(end) - start).total_seconds()


def _row(label: str, values: list[float]) -> str:
    return (
        f"  {label:<44} median {statistics.median(values):6.2f} s"
        f"   min {min(values):6.2f} s   max {max(values):6.2f} s"
    )


def run(bench: Bench, rounds: int, replicas: int, tick: float) -> None:
    prefix = f"bench-{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="rollback-bench-"))
    operator = OperatorProcess(
        kubeconfig=bench.kubeconfig,
        namespaces=[f"{prefix}-*"],
        log_path=work / "operator.log",
        backup_root=work,
        prefix=prefix,
        elected=False,  # one replica, as the reference run
    )
    operator.env = {"RUNBOOK_TICK_SECONDS": str(tick)}
    operator.start()
    kubectl_times, rollback_times, applied, rolled = [], [], [], []
    try:
        for i in range(rounds):
            ns_a = create_namespace(bench.api, f"{prefix}-kubectl-{i}")
            ns_b = create_namespace(bench.api, f"{prefix}-rollback-{i}")
            try:
                bench.history(ns_a, replicas)
                bench.history(ns_b, replicas)
                kubectl_times.append(bench.by_kubectl(ns_a))
                seconds, created, obj = bench.by_rollback(ns_b)
                rollback_times.append(seconds)
                target = obj["status"]["targets"][0]
                restored_at = datetime.fromisoformat(target["appliedAt"])
                applied.append(_seconds(created, target["appliedAt"]))
                rolled.append(_seconds(restored_at, target["completedAt"]))
            finally:
                delete_namespace(bench.api, ns_a)
                delete_namespace(bench.api, ns_b)
    finally:
        operator.stop()
    print(
        f"{replicas}-replica Deployment, undo to the previous revision, {rounds} rounds, "
        f"operator tick {tick:g} s:"
    )
    print(_row("kubectl rollout undo + rollout status", kubectl_times))
    print(_row("Rollback: apply -> Ready (rollout complete)", rollback_times))
    print(_row("  of which: apply -> template restored", applied))
    print(_row("  of which: restored -> rollout seen complete", rolled))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--tick", type=float, nargs="+", default=[2.0])
    args = parser.parse_args()
    named = os.environ.get("KUBECONFIG")
    bed = LocalTestBed()
    started = False
    if named and Path(named).resolve() != bed.kubeconfig:
        kubeconfig, kubectl = Path(named), "kubectl"
    else:
        started = bed.up()
        kubeconfig, kubectl = bed.kubeconfig, str(bed.kubectl)
    bench = Bench(kubeconfig, kubectl)
    try:
        for tick in args.tick:
            run(bench, args.rounds, args.replicas, tick)
    finally:
        bench.api.close()
        if started:
            bed.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
