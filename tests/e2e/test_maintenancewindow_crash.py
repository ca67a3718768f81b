"""Crash safety: the operator dies right after every single step, and is restarted.

One window runs the runbook's whole procedure while the operator dies after
each of its 18 steps in turn (11 at the start, 7 at the end): the failpoint
`maintenancewindow-step-N` makes it exit at once (status 137, no cleanup, as a
SIGKILL) the moment step N is recorded, before step N+1 can begin; it is
started again with the next failpoint, and so on. The run must still end
Completed with every object back exactly as it was, and nothing applied twice:
one silence in Alertmanager, the frontend rolled exactly twice (restart, and
back), one event per step at most.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from kubernetes import client

from support.alertmanager import (
    Alertmanager,
    alertmanager,  # noqa: F401  (fixture)
)
from support.crs import create_cr, get_cr, patch_cr, wait_phase
from support.events import events
from support.kube import Cluster, wait_for_rollout
from support.operator import OperatorProcess
from support.wait import wait_for

from .test_maintenancewindow import (
    BACKEND,
    FRONTEND,
    KIND,
    approve,
    example_window,
    held_replicasets,
    ready_app_with_backup,
    replica_sets,
    snapshot,
    steps,
)

START_STEPS = 11
END_STEPS = 7


def _kill_after_step(
    kube: Cluster, operator: OperatorProcess, namespace: str, n: int, timeout: float
) -> list[str]:
    """Run the operator until it dies right after recording step n; the steps recorded."""
    operator.stop()
    operator.env["RUNBOOK_FAILPOINTS"] = f"maintenancewindow-step-{n}"
    operator.start(wait=False)
    wait_for(lambda: not operator.running, timeout=timeout, interval=0.1, what=f"death at step {n}")
    assert operator.exit_code() == 137, operator.tail()
    return steps(get_cr(kube.api, namespace, KIND, "mw"))


def test_sigkill_after_every_step_still_restores_everything_once(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    before = ready_app_with_backup(kube, namespace)
    spec = example_window(alertmanager, namespace, start_in=10, duration="10m")
    create_cr(kube.api, namespace, KIND, "mw", spec)
    approve(kube, namespace, "mw", "alice", "bob")
    start = datetime.fromisoformat(spec["start"].replace("Z", "+00:00"))

    kills: list[list[str]] = []
    for n in range(1, START_STEPS + 1):
        kills.append(_kill_after_step(kube, operator, namespace, n, timeout=60))
    active = wait_phase(kube.api, namespace, KIND, "mw", "Active", timeout=60)
    assert len(steps(active)) == START_STEPS

    # End the window in a few seconds: shorten its duration (the end moves).
    elapsed = int((datetime.now(UTC) - start).total_seconds()) + 3
    patch_cr(kube.api, namespace, KIND, "mw", {"spec": {"duration": f"{elapsed}s"}})
    for n in range(START_STEPS + 1, START_STEPS + END_STEPS + 1):
        kills.append(_kill_after_step(kube, operator, namespace, n, timeout=90))
    operator.env.pop("RUNBOOK_FAILPOINTS")
    operator.start()
    done = wait_phase(kube.api, namespace, KIND, "mw", "Completed", timeout=90)

    # Every death came right after its step, before the next one began.
    assert [len(k) for k in kills] == list(range(1, START_STEPS + END_STEPS + 1)), kills
    assert len(steps(done)) == START_STEPS + END_STEPS
    for name in (BACKEND, FRONTEND):
        wait_for_rollout(kube.api, namespace, name)
    assert snapshot(kube, namespace) == before
    # Nothing applied twice.
    assert len(alertmanager.silences()) == 1 and alertmanager.active() == []
    assert len(replica_sets(kube, namespace, FRONTEND)) == 2
    assert held_replicasets(kube, namespace) == []
    revision = client.AppsV1Api(kube.api).read_namespaced_deployment(FRONTEND, namespace)
    assert revision.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    per_step: Counter[str] = Counter()
    for event in events(kube.api, namespace, "mw"):
        if event["reason"] in steps(done):
            per_step[event["reason"]] += event.get("count") or 1
    # An event is posted after its step is recorded: dying right then may lose it, never
    # post it twice.
    assert all(count == 1 for count in per_step.values()), per_step
    assert not [r for r in operator.logs() if r.get("levelname") == "ERROR"], operator.tail()
