"""Completion: a whole operation, against the kubectl commands of the runbook it replaces.

- Rollback to rollout complete, against `kubectl rollout undo` + `kubectl rollout status`;
- Restart to rollout complete, against `kubectl rollout restart` + `rollout status`;
- a MaintenanceWindow's whole start (flag, frontend restarted and rolled out, backend
  scaled down through its HPA) and its whole end (all of it put back and rolled out),
  against the runbook's kubectl script doing the same on a twin of the app.
Each is run `n` times, interleaved with its reference; medians are compared. The
operator's end is seen by a watch of its object, as `kubectl rollout status` watches.
"""

from __future__ import annotations

import time
from typing import Any

from lib import (
    GROUP,
    VERSION,
    Bench,
    Figure,
    Watcher,
    custom_lister,
    deployment,
    emergency_window,
    in_phase,
    median,
)
from reaction import _configmap, _hpa, _rolled_out, _two_revisions

__all__ = ["run"]

Obj = dict[str, Any]


def rollback(bench: Bench, n: int) -> Figure:
    ns = bench.namespace("done-rb")
    names = [f"d{i}" for i in range(n)] + [f"k{i}" for i in range(n)]
    _two_revisions(bench, ns, names)
    ours, cli = [], []
    for i in range(n):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Rollback",
            "metadata": {"name": f"rb{i}"},
            "spec": {"targets": [{"name": f"d{i}"}]},
        }
        with Watcher(custom_lister(bench, "rollbacks"), ns) as w:
            w.expect(f"rb{i}", in_phase("Completed"))
            t0 = time.monotonic()
            bench.create("rollbacks", ns, body)
            ours.append(w.wait(f"rb{i}", 120) - t0)
        t0 = time.monotonic()
        bench.kubectl("-n", ns, "rollout", "undo", f"deployment/k{i}")
        bench.kubectl("-n", ns, "rollout", "status", f"deployment/k{i}", "--timeout=120s")
        cli.append(time.monotonic() - t0)
    return Figure(
        "Rollback apply -> rollout complete",
        median(ours),
        median(cli),
        "s",
        1.2,
        "kubectl rollout undo + status",
    )


def restart(bench: Bench, n: int) -> Figure:
    ns = bench.namespace("done-rst")
    bench.apply(
        [deployment(f"d{i}", ns, 3) for i in range(n)]
        + [deployment(f"k{i}", ns, 3) for i in range(n)]
    )
    for i in range(n):
        for name in (f"d{i}", f"k{i}"):
            bench.wait(lambda name=name: _rolled_out(bench, ns, name), 60, name)
    ours, cli = [], []
    for i in range(n):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Restart",
            "metadata": {"name": f"r{i}"},
            "spec": {"targets": [{"name": f"d{i}"}]},
        }
        with Watcher(custom_lister(bench, "restarts"), ns) as w:
            w.expect(f"r{i}", in_phase("Completed"))
            t0 = time.monotonic()
            bench.create("restarts", ns, body)
            ours.append(w.wait(f"r{i}", 120) - t0)
        t0 = time.monotonic()
        bench.kubectl("-n", ns, "rollout", "restart", f"deployment/k{i}")
        bench.kubectl("-n", ns, "rollout", "status", f"deployment/k{i}", "--timeout=120s")
        cli.append(time.monotonic() - t0)
    return Figure(
        "Restart apply -> rollout complete",
        median(ours),
        median(cli),
        "s",
        1.2,
        "kubectl rollout restart + status",
    )


def _app(bench: Bench, ns: str, suffix: str) -> None:
    bench.apply(
        [
            _configmap(f"cfg{suffix}", ns),
            deployment(f"front{suffix}", ns, 2),
            deployment(f"back{suffix}", ns, 3),
            _hpa(f"back{suffix}", ns)
            | {"spec": {**_hpa(f"back{suffix}", ns)["spec"], "minReplicas": 3, "maxReplicas": 10}},
        ]
    )
    for name in (f"front{suffix}", f"back{suffix}"):
        bench.wait(lambda name=name: _rolled_out(bench, ns, name), 60, name)


def _script_start(bench: Bench, ns: str, s: str) -> None:
    """The runbook's kubectl, at the start of maintenance."""
    bench.kubectl(
        "-n", ns, "patch", f"configmap/cfg{s}", "-p", '{"data":{"MAINTENANCE_MODE":"true"}}'
    )
    bench.kubectl("-n", ns, "rollout", "restart", f"deployment/front{s}")
    bench.kubectl("-n", ns, "rollout", "status", f"deployment/front{s}", "--timeout=120s")
    bench.kubectl(
        "-n", ns, "patch", f"hpa/back{s}-hpa", "-p", '{"spec":{"minReplicas":1,"maxReplicas":1}}'
    )
    bench.kubectl("-n", ns, "scale", f"deployment/back{s}", "--replicas=1")
    bench.kubectl("-n", ns, "rollout", "status", f"deployment/back{s}", "--timeout=120s")


def _script_end(bench: Bench, ns: str, s: str) -> None:
    """... and at its end."""
    bench.kubectl(
        "-n", ns, "patch", f"hpa/back{s}-hpa", "-p", '{"spec":{"minReplicas":3,"maxReplicas":10}}'
    )
    bench.kubectl("-n", ns, "scale", f"deployment/back{s}", "--replicas=3")
    bench.kubectl(
        "-n", ns, "patch", f"configmap/cfg{s}", "-p", '{"data":{"MAINTENANCE_MODE":"false"}}'
    )
    bench.kubectl("-n", ns, "rollout", "restart", f"deployment/front{s}")
    bench.kubectl("-n", ns, "rollout", "status", f"deployment/front{s}", "--timeout=120s")
    bench.kubectl("-n", ns, "rollout", "status", f"deployment/back{s}", "--timeout=120s")


def _settle() -> None:
    """Not timed, before each start and end: both sides begin from a test bed at rest,
    not in the tail of the work just done. An end that began in its start's tail was
    timed with part of that start; the operator's start, begun as the twin apps were set
    up, waited 300 ms for the Deployment controller to see its restart (50 ms at rest)
    and measured 0.87 s, against 0.24 s at rest. And kubectl refuses a second `rollout
    restart` within the second of the one before ("if restart has already been
    triggered within the past second, please wait"): the start script's rollouts can
    take less."""
    time.sleep(1.0)


def maintenance_window(bench: Bench, n: int) -> list[Figure]:
    ns = bench.namespace("done-mw")
    starts, ends, script_starts, script_ends = [], [], [], []
    for i in range(n):
        _app(bench, ns, f"-o{i}")
        _app(bench, ns, f"-k{i}")
        s = f"-o{i}"
        body = emergency_window(
            f"mw{i}",
            maintenanceMode={"configMap": f"cfg{s}", "restart": [{"name": f"front{s}"}]},
            scaleDown=[{"name": f"back{s}", "replicas": 1}],
        )
        with Watcher(custom_lister(bench, "maintenancewindows"), ns) as w:
            w.expect(f"mw{i}", in_phase("Active"))
            _settle()
            t0 = time.monotonic()
            bench.create("maintenancewindows", ns, body)
            starts.append(w.wait(f"mw{i}", 120) - t0)
            _settle()
            w.expect(f"mw{i}", in_phase("Cancelled"))
            t0 = time.monotonic()
            bench.custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, "maintenancewindows", f"mw{i}", {"spec": {"cancel": True}}
            )
            ends.append(w.wait(f"mw{i}", 120) - t0)
        _settle()
        t0 = time.monotonic()
        _script_start(bench, ns, f"-k{i}")
        script_starts.append(time.monotonic() - t0)
        _settle()
        t0 = time.monotonic()
        _script_end(bench, ns, f"-k{i}")
        script_ends.append(time.monotonic() - t0)
    return [
        Figure(
            "MaintenanceWindow whole start",
            median(starts),
            median(script_starts),
            "s",
            1.5,
            "the runbook's kubectl script",
        ),
        Figure(
            "MaintenanceWindow whole end",
            median(ends),
            median(script_ends),
            "s",
            1.5,
            "the runbook's kubectl script",
        ),
    ]


def run(bench: Bench, n: int) -> list[Figure]:
    return [rollback(bench, n), restart(bench, n), *maintenance_window(bench, n)]
