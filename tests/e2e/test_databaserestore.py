"""A restore overwrites a database: refused unless clearly intended.

Without an Active MaintenanceWindow in the namespace and without `confirm` naming the
target database, a DatabaseRestore is Blocked (Stalled, Authorized=False, a Warning
event) and touches nothing. It goes ahead once `confirm` is set right, or once a real
MaintenanceWindow (whose own backup policy reads the DatabaseBackup) becomes Active.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.crs import (
    cond,
    condition,
    create_cr,
    get_cr,
    patch_cr,
    wait_condition,
    wait_phase,
)
from support.events import wait_reasons
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
from support.wait import wait_for

pytestmark = pytest.mark.timeout(300)

BACKUP, RESTORE, WINDOW = "DatabaseBackup", "DatabaseRestore", "MaintenanceWindow"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "guarded", messages=5_000) as database:
        yield database


def blocked(api: Any, namespace: str, name: str) -> dict[str, Any]:
    obj = wait_condition(api, namespace, RESTORE, name, "Stalled", reason="NotAuthorized")
    assert obj["status"]["phase"] == "Blocked"
    authorized = condition(obj, "Authorized")
    assert authorized is not None and authorized["status"] == "False"
    return obj


def test_restore_needs_a_window_or_a_confirmation(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    create_cr(api, namespace, BACKUP, "nightly", backup_spec(db))
    wait_condition(api, namespace, BACKUP, "nightly", "Ready", timeout=120)
    db.execute("DELETE FROM audit_log")
    damaged = db.fingerprint()

    create_cr(api, namespace, RESTORE, "unconfirmed", {"backup": "nightly"})
    create_cr(api, namespace, RESTORE, "typo", {"backup": "nightly", "confirm": "mail_score"})
    message = cond(blocked(api, namespace, "unconfirmed"), "Ready")["message"]
    assert f"spec.confirm set to '{db.name}'" in message
    assert "no window is Active" in message
    typo = cond(blocked(api, namespace, "typo"), "Ready")["message"]
    assert "spec.confirm is 'mail_score'" in typo
    wait_reasons(api, namespace, "unconfirmed", {"NotAuthorized"})
    assert db.fingerprint() == damaged  # refused means untouched
    backups = client_list(api, namespace, "databasebackups")
    assert [b["metadata"]["name"] for b in backups] == ["nightly"]  # no safety backup either

    # Typed out correctly, the same object goes ahead.
    patch_cr(api, namespace, RESTORE, "typo", {"spec": {"confirm": db.name}})
    done = wait_condition(api, namespace, RESTORE, "typo", "Ready", timeout=120)
    assert done["status"]["authorizedBy"] == "confirm"
    assert db.counts()["public.audit_log"] > 0
    assert get_cr(api, namespace, RESTORE, "unconfirmed")["status"]["phase"] == "Blocked"

    # A real MaintenanceWindow, whose policy wants a fresh backup of `nightly`.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    create_cr(
        api,
        namespace,
        WINDOW,
        "recovery-window",
        {
            "start": start.isoformat(),
            "duration": "3m",
            "reason": "restore mail_score",
            "emergency": {"reason": "rows were lost; restoring from last night"},
            "policy": {"backup": {"name": "nightly", "maxAge": "1h"}},
        },
    )
    wait_phase(api, namespace, WINDOW, "recovery-window", "Active", timeout=60)
    restored = wait_condition(api, namespace, RESTORE, "unconfirmed", "Ready", timeout=120)
    assert restored["status"]["authorizedBy"] == "MaintenanceWindow/recovery-window"
    authorized = condition(restored, "Authorized")
    assert authorized is not None and authorized["status"] == "True"


def client_list(api: Any, namespace: str, plural: str) -> list[dict[str, Any]]:
    from kubernetes import client

    listing = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "ops.mailscore.com", "v1alpha1", namespace, plural
    )
    return list(listing["items"])


def test_restore_waits_for_its_backup(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    """A restore created together with its backup waits (Pending, not Stalled), then runs."""
    api = kube.api
    create_credentials(api, namespace, db)
    target = f"{db.name}_new"
    create_cr(
        api,
        namespace,
        RESTORE,
        "early",
        {"backup": "later", "targetDatabase": target, "confirm": target},
    )
    wait_condition(api, namespace, RESTORE, "early", "Stalled", reason="BackupNotFound")
    create_cr(api, namespace, BACKUP, "later", backup_spec(db))

    def pending_or_done() -> bool:
        phase = (get_cr(api, namespace, RESTORE, "early").get("status") or {}).get("phase")
        return phase in ("Pending", "Running", "Completed")

    wait_for(pending_or_done, timeout=60, what="the restore to leave Blocked")
    done = wait_condition(api, namespace, RESTORE, "early", "Ready", timeout=120)
    assert done["status"]["backup"] == "later" and done["status"]["targetExisted"] is False
    assert db.server.counts(target) == db.counts()
    db.server.drop_database(target)
