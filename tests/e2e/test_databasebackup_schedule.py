"""A DatabaseBackup scheduled every minute, on the real clock (about four minutes).

One flow shows: a failed run does not stop the schedule; a run that outlasts the
interval is never overlapped, and the slot that came meanwhile runs right after it;
retention deletes child objects and their artifacts together (failed runs kept
apart); suspend stops new runs; a restore of the schedule takes its newest verified
child.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from support.crs import create_cr, get_cr, patch_cr, wait_condition, wait_gone, wait_phase
from support.kube import Cluster
from support.operator import OperatorProcess
from support.postgres import (
    AppDatabase,
    PostgresServer,
    app_database,
    artifact,
    backup_spec,
    create_credentials,
    dbname,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

pytestmark = pytest.mark.timeout(480)

BACKUP, RESTORE = "DatabaseBackup", "DatabaseRestore"
LABEL = "ops.mailscore.com/schedule"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    database = app_database(postgres, dbname("scheduled"), messages=2_000)
    yield database
    for name in postgres.databases():
        if name.startswith(database.name):
            postgres.drop_database(name)


def children(api: Any, namespace: str, parent: str) -> dict[str, dict[str, Any]]:
    listing = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "ops.mailscore.com",
        "v1alpha1",
        namespace,
        "databasebackups",
        label_selector=f"{LABEL}={parent}",
    )
    return {c["metadata"]["name"]: c for c in listing["items"]}


def phase_of(obj: dict[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return None if phase is None else str(phase)


def slot_of(name: str) -> datetime:
    return datetime.strptime(name.rsplit("-", 1)[1], "%Y%m%d%H%M").replace(tzinfo=UTC)


def after_next_minute(seconds: float) -> float:
    """Monotonic deadline `seconds` after the next minute boundary."""
    now = datetime.now(UTC)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return time.monotonic() + (boundary - now).total_seconds() + seconds


def test_every_minute(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    api = kube.api
    core = client.CoreV1Api(api)
    create_credentials(api, namespace, db, "pg", password="not-the-password")
    spec = backup_spec(
        db, schedule="* * * * *", startingDeadline="5m", keep={"last": 1, "failed": 1}
    )
    spec["postgres"]["lockTimeout"] = "10m"  # step 2's run waits on a lock past the minute
    create_cr(api, namespace, BACKUP, "minutely", spec)
    wait_phase(api, namespace, BACKUP, "minutely", "Scheduled", timeout=30)

    # 1. The first run fails (wrong password); the schedule carries on.
    def failed_child() -> str | None:
        return next(
            (n for n, c in children(api, namespace, "minutely").items() if phase_of(c) == "Failed"),
            None,
        )

    first = wait_for(failed_child, timeout=90, what="the first run to fail")
    assert get_cr(api, namespace, BACKUP, first)["metadata"]["ownerReferences"][0]["name"] == (
        "minutely"
    )
    core.delete_namespaced_secret("pg", namespace)
    create_credentials(api, namespace, db)

    # 2. The next run outlasts the interval (a lock holds pg_dump): no second run starts.
    with db.connect() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")

        def running_child() -> str | None:
            return next(
                (
                    n
                    for n, c in children(api, namespace, "minutely").items()
                    if phase_of(c) == "Running"
                ),
                None,
            )

        second = wait_for(running_child, timeout=90, what="the second run")
        deadline = after_next_minute(8)
        while time.monotonic() < deadline:
            current = children(api, namespace, "minutely")
            assert set(current) == {first, second}, "a run started while another was running"
            time.sleep(1)
        parent = get_cr(api, namespace, BACKUP, "minutely")
        assert parent["status"]["phase"] == "Running" and parent["status"]["active"] == second
        locker.execute("ROLLBACK")

    # 3. It completes; the slot that came meanwhile runs at once, not a minute later.
    done = wait_condition(api, namespace, BACKUP, second, "Ready", timeout=60)
    second_file = artifact(done)
    third = wait_for(
        lambda: next(
            (n for n in children(api, namespace, "minutely") if n not in (first, second)), None
        ),
        timeout=20,
        what="the run of the slot missed during the long one",
    )
    assert slot_of(third) == slot_of(second) + timedelta(minutes=1)
    wait_condition(api, namespace, BACKUP, third, "Ready", timeout=60)

    # Retention: keep.last=1 deletes the older good run, object and file together;
    # the failed run is kept apart (keep.failed=1).
    wait_gone(api, namespace, BACKUP, second, timeout=30)
    wait_for(lambda: not second_file.exists(), timeout=10, what="the pruned artifact to go")
    assert set(children(api, namespace, "minutely")) == {first, third}
    parent = get_cr(api, namespace, BACKUP, "minutely")
    assert parent["status"]["lastSuccessfulBackup"] == third

    # 4. Suspended: no new run, even across a slot.
    patch_cr(api, namespace, BACKUP, "minutely", {"spec": {"suspend": True}})
    wait_phase(api, namespace, BACKUP, "minutely", "Suspended", timeout=20)
    deadline = after_next_minute(6)
    while time.monotonic() < deadline:
        assert set(children(api, namespace, "minutely")) == {first, third}
        time.sleep(1)

    # 5. Restoring "the schedule" restores its newest verified child.
    target = f"{db.name}_latest"
    create_cr(
        api,
        namespace,
        RESTORE,
        "latest",
        {"backup": "minutely", "targetDatabase": target, "confirm": target},
    )
    restored = wait_condition(api, namespace, RESTORE, "latest", "Ready", timeout=120)
    assert restored["status"]["backup"] == third
    assert db.server.counts(target) == db.counts()
