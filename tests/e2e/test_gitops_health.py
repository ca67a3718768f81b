"""Argo CD, Flux and kstatus read every kind right: real objects, real engines.

Every kind is driven into its phases on the test bed by the real operator (the cheapest
real route to each), captured as the API server returns it, and judged by the engines
themselves (support.gitopshealth: gopher-lua running deploy/argocd, cel-go running
deploy/flux, cli-utils' kstatus). The contract asserted is the README's table; the table
of what the engines said is printed, and written to .testrun/gitops-health.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.crs import create_cr, delete_cr, get_cr, wait_gone
from support.gitopshealth import ROOT, Verdict, judge, table
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.postgres import (
    AppDatabase,
    PostgresServer,
    backup_spec,
    create_credentials,
    scratch_database,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.rollback_cluster import create_deployment, manifest, set_image
from support.servers import free_port
from support.wait import WaitTimeout, wait_for

pytestmark = pytest.mark.timeout(480)

Obj = dict[str, Any]
MW, BACKUP, RESTORE = "MaintenanceWindow", "DatabaseBackup", "DatabaseRestore"

# (kstatus, Argo CD, Flux) by contract: the README's table.
CURRENT = ("Current", "Healthy", "Current")
WORKING = ("InProgress", "Progressing", "InProgress")
FAILED = ("Failed", "Degraded", "Failed")
SUSPENDED = ("Current", "Suspended", "Current")
WAITING_FOR_WINDOW = ("InProgress", "Suspended", "InProgress")
DEGRADED_GOING_ON = ("Current", "Degraded", "Current")


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def in_(seconds: float) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(seconds=seconds))


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "gitops", messages=200) as database:
        yield database


def secret(kube: Cluster, namespace: str, name: str, data: dict[str, str]) -> None:
    client.CoreV1Api(kube.api).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


class Capture:
    """Objects captured when they reach a state, each with the verdict the contract wants."""

    def __init__(self, kube: Cluster, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.objects: list[Obj] = []
        self.expected: list[tuple[str, str, tuple[str, str, str]]] = []

    def when(
        self,
        kind: str,
        name: str,
        test: Callable[[Obj], bool],
        expected: tuple[str, str, str],
        *,
        label: str,
        timeout: float = 90,
    ) -> Obj:
        seen: list[Obj] = [{}]

        def check() -> Obj | None:
            seen[0] = obj = get_cr(self.kube.api, self.namespace, kind, name)
            return obj if test(obj) else None

        try:
            obj = wait_for(check, timeout=timeout, what=f"{kind} {name}: {label}")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}; its status: {json.dumps(status(seen[0]))}") from None
        obj["metadata"]["name"] = f"{name}@{label}"  # one row per state of the same object
        self.objects.append(obj)
        self.expected.append((kind, obj["metadata"]["name"], expected))
        return obj

    def phase(self, kind: str, name: str, phase: str, expected: tuple[str, str, str]) -> Obj:
        return self.when(
            kind, name, lambda o: status(o).get("phase") == phase, expected, label=phase
        )


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def has(obj: Obj, type_: str, value: str, reason: str | None = None) -> bool:
    return any(
        c["type"] == type_ and c["status"] == value and (reason is None or c["reason"] == reason)
        for c in status(obj).get("conditions") or []
    )


# A one-shot with a runId: deleted after it ran and created again, it is Skipped.
RESTART = {"targets": [{"name": "restarted"}], "runId": "2026-12-04"}


def create_all(kube: Cluster, namespace: str, db: AppDatabase) -> None:
    api = kube.api
    for name in ("scale-a", "scale-b", "gated", "restarted", "updated"):
        create_deployment(kube, namespace, manifest(name, image(f"{name}-1"), replicas=1))
    create_deployment(kube, namespace, manifest("rolled", image("rolled-1"), replicas=1))
    set_image(kube, namespace, "rolled", image("rolled-2"))
    create_credentials(api, namespace, db)
    create_credentials(api, namespace, db, "pg-wrong", password="not-" + db.password)
    secret(kube, namespace, "hook", {"url": "http://127.0.0.1:9/hook"})
    secret(kube, namespace, "redis", {"password": "unused"})

    # MaintenanceWindow: next week (scheduled), too short a notice (Blocked), a short one
    # that runs (Active, then Completed), a recurring one whose occurrences are Blocked.
    create_cr(api, namespace, MW, "next-week", {"start": in_(7 * 86400), "duration": "1h"})
    create_cr(api, namespace, MW, "short-notice", {"start": in_(4), "duration": "1m"})
    create_cr(
        api,
        namespace,
        MW,
        "emergency",
        {"start": in_(4), "duration": "15s", "policy": {"minimumNotice": "2s"}},
    )
    every_minute = {
        "schedule": "* * * * *",
        "timeZone": "UTC",
        "duration": "20s",
        # never approved: every occurrence is Blocked at its start
        "policy": {"minimumNotice": "1s", "approvals": {"required": 1, "approvers": ["alice"]}},
    }
    create_cr(api, namespace, MW, "every-minute", every_minute)

    # DatabaseBackup: one that completes, one refused by the server, a schedule whose runs
    # all fail (Degraded after one, Stalled at failureThreshold: 2), a suspended schedule.
    create_cr(api, namespace, BACKUP, "before-upgrade", backup_spec(db))
    create_cr(api, namespace, BACKUP, "wrong-password", backup_spec(db, "pg-wrong"))
    failing = backup_spec(db, "pg-wrong", schedule="* * * * *", failureThreshold=2)
    create_cr(api, namespace, BACKUP, "nightly", failing)
    create_cr(api, namespace, BACKUP, "paused", backup_spec(db, schedule="0 2 * * *", suspend=True))

    # DatabaseRestore: confirmed (Completed); the unconfirmed one comes once no window is
    # Active (capture_all), else the emergency window would authorize it.
    create_cr(
        api, namespace, RESTORE, "confirmed", {"backup": "before-upgrade", "confirm": db.name}
    )

    # EmergencyScale: held open (Active), over in 5s (Completed), over the cap (Stalled),
    # gated by a trigger whose Prometheus does not answer (Waiting, onNoData: Hold).
    es = "EmergencyScale"
    create_cr(api, namespace, es, "open", {"targets": [{"name": "scale-a", "replicas": 2}]})
    create_cr(
        api,
        namespace,
        es,
        "brief",
        {"targets": [{"name": "scale-b", "replicas": 2}], "duration": "5s"},
    )
    create_cr(api, namespace, es, "too-big", {"targets": [{"name": "nope", "replicas": 500}]})
    trigger = {"url": f"http://127.0.0.1:{free_port()}", "query": "up", "threshold": 1}
    create_cr(
        api,
        namespace,
        es,
        "gated",
        {"targets": [{"name": "gated", "replicas": 2}], "trigger": trigger},
    )

    create_cr(api, namespace, "Rollback", "undo", {"targets": [{"name": "rolled"}]})
    create_cr(api, namespace, "Rollback", "missing", {"targets": [{"name": "nope"}]})
    create_cr(api, namespace, "Restart", "restart", RESTART)
    create_cr(api, namespace, "Restart", "missing", {"targets": [{"name": "nope"}]})
    update = {
        "deployment": "updated",
        "images": [{"container": "app", "image": image("updated-2")}],
    }
    create_cr(api, namespace, "ImageUpdate", "patch", update)
    missing = {"deployment": "nope", "images": [{"container": "app", "image": image("x")}]}
    create_cr(api, namespace, "ImageUpdate", "missing", missing)

    deployments = {"name": "apps", "workloads": {"deployments": ["restarted"]}}
    create_cr(api, namespace, "HealthReport", "passing", {"checks": [deployments]})
    gone = {"name": "apps", "workloads": {"deployments": ["nope"]}}
    create_cr(api, namespace, "HealthReport", "failing", {"checks": [gone]})

    redis = {"host": "127.0.0.1", "port": free_port(), "credentials": {"secretName": "redis"}}
    create_cr(
        api, namespace, "CacheFlush", "later", {"redis": redis, "maintenanceWindow": "next-week"}
    )
    create_cr(api, namespace, "CacheFlush", "typo", {"redis": redis, "confirm": "redis:6379/0"})

    hook = {"webhook": {"urlFrom": {"name": "hook", "key": "url"}}}
    create_cr(api, namespace, "Notifier", "configured", hook)
    broken = {"webhook": {"urlFrom": {"name": "not-there", "key": "url"}}}
    create_cr(api, namespace, "Notifier", "broken", broken)

    # The namespace's default destination (the volume: backups here go where they went),
    # one whose Secret is missing, and one that is not named default (never used).
    create_cr(api, namespace, "BackupDestination", "default", {"volume": {}})
    creds = {"secretName": "not-there"}
    s3 = {"endpoint": "http://127.0.0.1:9", "bucket": "nowhere", "credentials": creds}
    create_cr(api, namespace, "BackupDestination", "unreadable", {"s3": s3})
    create_cr(api, namespace, "BackupDestination", "misnamed", {"volume": {}})


def capture_all(c: Capture) -> None:
    # Short-lived states first, while they last; settled ones after.
    c.when(
        RESTORE,
        "confirmed",
        lambda o: has(o, "Reconciling", "True"),
        WORKING,
        label="Reconciling",
        timeout=30,
    )
    c.phase(MW, "emergency", "Active", WORKING)
    # The schedule whose runs fail: one failed run (caught early: the next run fails too).
    c.when(
        BACKUP,
        "nightly",
        lambda o: has(o, "Degraded", "True", "LastRunFailed"),
        DEGRADED_GOING_ON,
        label="LastRunFailed",
        timeout=150,
    )
    c.phase(MW, "next-week", "Pending", CURRENT)
    c.phase(MW, "short-notice", "Blocked", FAILED)
    c.phase(BACKUP, "before-upgrade", "Completed", CURRENT)
    c.phase(BACKUP, "wrong-password", "Failed", FAILED)
    c.phase(BACKUP, "paused", "Suspended", SUSPENDED)
    c.phase(RESTORE, "confirmed", "Completed", CURRENT)
    c.phase("EmergencyScale", "open", "Active", CURRENT)
    c.phase("EmergencyScale", "gated", "Waiting", CURRENT)
    c.when(
        "EmergencyScale", "too-big", lambda o: has(o, "Stalled", "True"), FAILED, label="Stalled"
    )
    c.phase("EmergencyScale", "brief", "Completed", CURRENT)
    c.phase("Rollback", "undo", "Completed", CURRENT)
    c.phase("Rollback", "missing", "Refused", FAILED)
    c.phase("Restart", "restart", "Completed", CURRENT)
    delete_cr(c.kube.api, c.namespace, "Restart", "restart")
    wait_gone(c.kube.api, c.namespace, "Restart", "restart")
    create_cr(c.kube.api, c.namespace, "Restart", "restart", RESTART)  # as a sync from Git
    c.phase("Restart", "restart", "Skipped", CURRENT)
    c.phase("Restart", "missing", "Refused", FAILED)
    c.phase("ImageUpdate", "patch", "Completed", CURRENT)
    c.phase("ImageUpdate", "missing", "Refused", FAILED)
    c.phase("HealthReport", "passing", "Passing", CURRENT)
    c.phase("HealthReport", "failing", "Failing", FAILED)
    c.phase("CacheFlush", "later", "Blocked", WAITING_FOR_WINDOW)
    c.phase("CacheFlush", "typo", "Refused", FAILED)
    c.when("Notifier", "configured", lambda o: has(o, "Ready", "True"), CURRENT, label="Configured")
    c.when(
        "Notifier",
        "broken",
        lambda o: has(o, "Ready", "False"),
        ("InProgress", "Degraded", "InProgress"),
        label="SecretNotReadable",
    )
    c.when(
        "BackupDestination",
        "default",
        lambda o: has(o, "Ready", "True"),
        CURRENT,
        label="Configured",
    )
    c.when(
        "BackupDestination",
        "unreadable",
        lambda o: has(o, "Ready", "False"),
        ("InProgress", "Degraded", "InProgress"),
        label="SecretNotReadable",
    )
    c.when(
        "BackupDestination",
        "misnamed",
        lambda o: has(o, "Stalled", "True"),
        FAILED,
        label="NotTheDefault",
    )
    c.phase(MW, "emergency", "Completed", CURRENT)
    create_cr(c.kube.api, c.namespace, RESTORE, "unconfirmed", {"backup": "before-upgrade"})
    c.phase(RESTORE, "unconfirmed", "Blocked", FAILED)
    # ... then failureThreshold (2) runs in a row.
    c.when(
        BACKUP,
        "nightly",
        lambda o: has(o, "Stalled", "True", "RunsFailing"),
        FAILED,
        label="RunsFailing",
        timeout=90,
    )
    # The recurring window: its occurrence Blocked (no approval), then Pending and Degraded.
    c.phase(MW, "every-minute", "Blocked", FAILED)
    c.when(
        MW,
        "every-minute",
        lambda o: status(o).get("phase") == "Pending" and has(o, "Degraded", "True"),
        DEGRADED_GOING_ON,
        label="Pending after a failed occurrence",
        timeout=60,
    )


def record(c: Capture) -> tuple[list[Verdict], str]:
    """Judge what was captured; write the table and the objects under .testrun/."""
    verdicts = judge(c.objects)
    report = table(verdicts)
    out = ROOT / ".testrun"
    out.mkdir(exist_ok=True)
    (out / "gitops-health.md").write_text(report + "\n")
    captured = [
        {"expected": list(expected), "object": obj}
        for obj, (_, _, expected) in zip(c.objects, c.expected, strict=True)
    ]
    # The same objects, as tests/unit/gitops/captured.json keeps them.
    (out / "gitops-objects.json").write_text(json.dumps(captured, indent=1))
    print("\n" + report)
    return verdicts, report


def test_argo_cd_flux_and_kstatus_see_every_kind_in_every_phase_as_the_contract_says(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    create_all(kube, namespace, db)
    c = Capture(kube, namespace)
    try:
        capture_all(c)
    finally:  # what was captured is reported even when a state was not reached
        verdicts, report = record(c)
    by_name: dict[tuple[str, str], Verdict] = {(v.kind, v.name): v for v in verdicts}
    wrong = []
    for kind, name, expected in c.expected:
        v = by_name[kind, name]
        assert not v.errors, (kind, name, v.errors)
        if v.triple != expected:
            wrong.append(f"{kind} {name}: {v.triple}, wanted {expected}")
        assert v.argocd_message, f"Argo CD gives no message for {name}"
    assert not wrong, "\n".join(wrong) + "\n" + report
    # Argo CD's message is the condition's: a person sees why without kubectl.
    assert "notice" in by_name[MW, "short-notice@Blocked"].argocd_message
    assert "nightly-" in by_name[BACKUP, "nightly@RunsFailing"].argocd_message
    # Every kind the operator serves was judged, so a new kind cannot go unchecked.
    from runbook_operator.kinds import kinds

    assert {k.resource.kind for k in kinds()} <= {v.kind for v in verdicts}


def test_a_failure_threshold_retention_cannot_count_is_refused(
    kube: Cluster, namespace: str, db: AppDatabase
) -> None:
    spec = backup_spec(db, schedule="0 2 * * *", failureThreshold=5, keep={"failed": 2})
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api, namespace, BACKUP, "too-many", spec)
    assert refused.value.status == 422
    assert "raise keep.failed to at least failureThreshold" in str(refused.value.body)
    with pytest.raises(ApiException) as once:
        create_cr(kube.api, namespace, BACKUP, "one-shot", backup_spec(db, failureThreshold=2))
    assert "failureThreshold applies only to a scheduled backup" in str(once.value.body)


def test_the_argocd_kustomization_renders_one_argocd_cm_with_every_kind(kube: Cluster) -> None:
    rendered = kube.run_kubectl("kustomize", str(ROOT / "deploy" / "argocd")).stdout
    (cm,) = [d for d in yaml.safe_load_all(rendered) if d]
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-cm",
        "argocd",
    )
    from runbook_operator.kinds import kinds

    wanted = {
        f"resource.customizations.health.ops.mailscore.com_{k.resource.kind}" for k in kinds()
    }
    assert set(cm["data"]) == wanted
