"""MaintenanceWindow benchmark: start instant -> every start step applied, next to a kubectl script.

For each round the Mail Score app (examples/app/mail-score.yaml) runs in two
namespaces. In one, a MaintenanceWindow (the runbook's planned window, its
start a few seconds ahead) is carried out by the operator; the figure is
from the window's start instant to the record of its last start change
(ScaleDown), minus the time it spent waiting for the frontend's rollout. In
the other, the same steps are done by a script of kubectl commands (and
amtool for the silence), timed command by command, minus `kubectl rollout
status`. Both record what they change before changing it.

    .venv/bin/python benchmarks/maintenancewindow.py [--rounds 3]

Uses the local test bed (started if needed, left as it was found) and a real
Alertmanager from Debian's package on loopback. The operator runs as a local
process with admin credentials.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.alertmanager import Alertmanager, running_alertmanager  # noqa: E402
from support.crs import create_cr, get_cr  # noqa: E402
from support.kube import (  # noqa: E402
    api_client_from_kubeconfig,
    create_namespace,
    delete_namespace,
    wait_for_rollout,
)
from support.operator import OperatorProcess  # noqa: E402
from testbed.testbed import LocalTestBed  # noqa: E402

APP = ROOT / "examples" / "app" / "mail-score.yaml"
EXAMPLE = ROOT / "examples" / "maintenancewindow" / "planned-maintenance.yaml"
AMTOOL = "/usr/bin/amtool"


class Bench:
    def __init__(self, kubeconfig: Path, kubectl: str, am: Alertmanager) -> None:
        self.kubeconfig, self.kubectl, self.am = kubeconfig, kubectl, am
        self.api = api_client_from_kubeconfig(kubeconfig)

    def run(self, *args: str) -> str:
        argv = [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    def app(self, namespace: str) -> None:
        self.run("apply", "-n", namespace, "-f", str(APP))
        for name in ("mail-score-backend", "mail-score-frontend"):
            wait_for_rollout(self.api, namespace, name)

    def by_script(self, namespace: str) -> float:
        """The runbook's start steps as an SRE would type them; returns their time."""
        n = ["-n", namespace]
        commands: list[list[str]] = [
            [
                "annotate",
                *n,
                "deployment",
                "mail-score-backend",
                "mail-score-frontend",
                "ops.mailscore.com/held-by=script",
            ],
            [
                "get",
                *n,
                "deployment",
                "mail-score-backend",
                "mail-score-frontend",
                "-o",
                "jsonpath={range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/"
                "revision} {.spec.template.spec.containers[*].image}{'\\n'}{end}",
            ],
            ["amtool"],
            ["get", *n, "configmap", "frontend-config", "-o", "jsonpath={.data.MAINTENANCE_MODE}"],
            [
                "patch",
                *n,
                "configmap",
                "frontend-config",
                "-p",
                '{"data":{"MAINTENANCE_MODE":"true"}}',
            ],
            ["rollout", "restart", *n, "deployment/mail-score-frontend"],
            ["rollout", "status", *n, "deployment/mail-score-frontend"],
            [
                "get",
                *n,
                "deployment/mail-score-backend",
                "hpa/backend-hpa",
                "-o",
                "jsonpath={range .items[*]}{.spec.replicas} {.spec.minReplicas} "
                "{.spec.maxReplicas}{'\\n'}{end}",
            ],
            ["patch", *n, "hpa", "backend-hpa", "-p", '{"spec":{"minReplicas":1,"maxReplicas":1}}'],
            ["scale", *n, "deployment/mail-score-backend", "--replicas=1"],
        ]
        total = 0.0
        for args in commands:
            began = time.monotonic()
            if args == ["amtool"]:
                subprocess.run(
                    [
                        AMTOOL,
                        f"--alertmanager.url={self.am.url}",
                        "silence",
                        "add",
                        f"namespace={namespace}",
                        "--duration=10m",
                        "--comment=maintenance",
                    ],
                    check=True,
                    capture_output=True,
                )
            else:
                self.run(*args)
            if args[0] != "rollout" or args[1] != "status":
                total += time.monotonic() - began
        return total

    def by_operator(self, namespace: str) -> tuple[float, float]:
        """(start -> start steps applied without rollout waits, start -> first step)."""
        spec: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())["spec"]
        start = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        spec.update(start=start.isoformat(), duration="10m", healthCheck=None)
        # Approvals are stamped by admission as their approvers add them (deploy/admission);
        # the reaction measured here starts after the sign-off, so the bench asks for none.
        spec["policy"].update(minimumNotice="5s", backup=None, approvals=None)
        spec["silence"].update(
            url=self.am.url, matchers=[{"name": "namespace", "value": namespace}]
        )
        create_cr(self.api, namespace, "MaintenanceWindow", "bench", spec)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            obj = get_cr(self.api, namespace, "MaintenanceWindow", "bench")
            if (obj.get("status") or {}).get("phase") == "Active":
                break
            time.sleep(0.2)
        else:
            raise TimeoutError(json.dumps(obj.get("status"), indent=1))
        at = {s["name"]: datetime.fromisoformat(s["at"]) for s in obj["status"]["steps"]}
        rollout = at["AwaitRestartRollouts"] - at["RestartDeployments"]
        applied = at["ScaleDown"] - start - rollout
        return applied.total_seconds(), (at["AcquireHolds"] - start).total_seconds()


def _row(label: str, values: list[float]) -> str:
    return (
        f"  {label:<58} median {statistics.median(values):5.2f} s"
        f"   min {min(values):5.2f} s   max {max(values):5.2f} s"
    )


def run(bench: Bench, rounds: int) -> None:
    prefix = f"mwbench-{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="mw-bench-"))
    operator = OperatorProcess(
        kubeconfig=bench.kubeconfig,
        namespaces=[f"{prefix}-*"],
        log_path=work / "operator.log",
        backup_root=work,
        prefix=prefix,
        elected=False,  # one replica, as the reference run
    )
    operator.start()
    script, applied, first = [], [], []
    try:
        for i in range(rounds):
            ns_a = create_namespace(bench.api, f"{prefix}-script-{i}")
            ns_b = create_namespace(bench.api, f"{prefix}-window-{i}")
            try:
                bench.app(ns_a)
                bench.app(ns_b)
                script.append(bench.by_script(ns_a))
                seconds, latency = bench.by_operator(ns_b)
                applied.append(seconds)
                first.append(latency)
            finally:
                delete_namespace(bench.api, ns_a)
                delete_namespace(bench.api, ns_b)
    finally:
        operator.stop()
    print(f"Mail Score start steps (rollout waits excluded), {rounds} rounds:")
    print(_row("kubectl/amtool script, 9 commands", script))
    print(_row("MaintenanceWindow: start instant -> 9 start steps applied", applied))
    print(_row("  of which: start instant -> first step (checklist + holds)", first))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bed = LocalTestBed()
    started = bed.up()
    try:
        subprocess.run(
            [
                str(bed.kubectl),
                f"--kubeconfig={bed.kubeconfig}",
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(ROOT / "crds" / "ops.mailscore.com_maintenancewindows.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        with running_alertmanager() as am:
            bench = Bench(bed.kubeconfig, str(bed.kubectl), am)
            try:
                run(bench, args.rounds)
            finally:
                bench.api.close()
    finally:
        if started:
            bed.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
