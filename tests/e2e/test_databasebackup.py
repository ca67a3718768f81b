"""DatabaseBackup and DatabaseRestore end to end: the operator under its own ServiceAccount,
a real PostgreSQL server on loopback, the artifact on the operator's backup volume.

The round trip of the runbook's disaster: back up a seeded database, prove the backup by
restoring it into a scratch database, lose rows, restore, and find every table's content
back. Consistency under writes, a crash in the middle of a dump, deletion, and the
schema's own refusals are here too; failures, schedules and refusals of restores have
files of their own.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.crs import create_cr, delete_cr, get_cr, patch_cr, wait_condition, wait_gone
from support.events import wait_reasons
from support.kube import Cluster
from support.operator import OperatorProcess
from support.postgres import (
    AppDatabase,
    ProcessWatch,
    artifact,
    assert_secret_nowhere,
    backup_spec,
    create_credentials,
)
from support.postgres import mail_score as mail_score  # noqa: PLC0414  (a fixture)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

pytestmark = pytest.mark.timeout(300)

BACKUP, RESTORE = "DatabaseBackup", "DatabaseRestore"


def logged(operator: OperatorProcess, name: str, text: str) -> bool:
    """Whether the operator logged `text` about the object `name`."""
    return any(
        text in line.get("message", "") and (line.get("object") or {}).get("name") == name
        for line in operator.logs()
    )


def test_backup_verify_lose_rows_restore(
    kube: Cluster, operator: OperatorProcess, namespace: str, mail_score: AppDatabase
) -> None:
    api = kube.api
    seeded = mail_score.fingerprint()
    assert sum(rows for rows, _ in seeded.values()) > 300_000
    create_credentials(api, namespace, mail_score)

    with ProcessWatch(mail_score.password) as watch:
        create_cr(
            api, namespace, BACKUP, "before-migration", backup_spec(mail_score, verify="restore")
        )
        backup = wait_condition(api, namespace, BACKUP, "before-migration", "Ready", timeout=180)
        status = backup["status"]
        assert status["phase"] == "Completed"
        verified = next(c for c in status["conditions"] if c["type"] == "Verified")
        assert verified["status"] == "True" and "all 5 tables" in verified["message"]
        assert status["verification"]["method"] == "restore"
        recorded = {f"{t['schema']}.{t['name']}": t["rows"] for t in status["tables"]}
        assert recorded == {name: rows for name, (rows, _) in seeded.items()}
        path = artifact(backup)
        assert path.parent == operator.backup_root / namespace / "before-migration"
        assert path.name.endswith("Z.dump") and path.stat().st_size == status["sizeBytes"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == status["sha256"]
        assert list(path.parent.glob("*.partial")) == []
        assert status["serverVersion"].startswith("15.") and status["pgDumpVersion"]
        scratch = status["verification"]["scratchDatabase"]
        assert scratch not in mail_score.server.databases()  # dropped after comparing

        # The disaster: rows lost in three tables.
        mail_score.execute("DELETE FROM scores WHERE message_id % 3 = 0")
        mail_score.execute("DELETE FROM audit_log WHERE id > 100")
        mail_score.execute('UPDATE billing."Plans" SET price_cents = 1')
        assert mail_score.fingerprint() != seeded

        create_cr(
            api,
            namespace,
            RESTORE,
            "recovery",
            {"backup": "before-migration", "confirm": mail_score.name},
        )
        restore = wait_condition(api, namespace, RESTORE, "recovery", "Ready", timeout=180)
    assert mail_score.fingerprint() == seeded  # every table's content is back

    rstatus = restore["status"]
    assert rstatus["phase"] == "Completed" and rstatus["mismatchedTables"] == 0
    assert rstatus["authorizedBy"] == "confirm" and rstatus["targetExisted"] is True
    assert all(t["restored"] == t["expected"] for t in rstatus["tables"])
    # The database as it was before the restore is itself a backup now.
    safety = get_cr(api, namespace, BACKUP, rstatus["safetyBackup"])
    assert safety["status"]["phase"] == "Completed"
    lost = {f"{t['schema']}.{t['name']}": t["rows"] for t in safety["status"]["tables"]}
    assert lost["public.audit_log"] == 100

    assert watch.seen["pg_dump"] > 0 and watch.seen["pg_restore"] > 0
    assert watch.leaks == []
    assert_secret_nowhere(kube, operator, namespace, mail_score.password)
    wait_reasons(api, namespace, "before-migration", {"Started", "Dumped", "Verified", "Completed"})
    wait_reasons(api, namespace, "recovery", {"Authorized", "Started", "SafetyBackup", "Restored"})
    listing = kube.run_kubectl("get", "runbook", "-n", namespace).stdout
    assert "before-migration" in listing and "recovery" in listing


def test_counts_are_exact_while_rows_are_written(
    kube: Cluster, operator: OperatorProcess, namespace: str, mail_score: AppDatabase
) -> None:
    """Rows are inserted continuously during the backup; the counts it records are
    exactly what a restore of it holds."""
    api = kube.api
    create_credentials(api, namespace, mail_score)
    stop, inserted = threading.Event(), [0]

    def write() -> None:
        with mail_score.connect() as conn:
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("INSERT INTO audit_log (at, event) VALUES (now(), 'live')")
                    conn.execute(
                        "INSERT INTO messages (account_id, subject, received_at) "
                        "VALUES (1, 'live', now())"
                    )
                inserted[0] += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_for(lambda: inserted[0] > 50, timeout=10, what="writes to begin")
        create_cr(api, namespace, BACKUP, "busy", backup_spec(mail_score, verify="restore"))
        backup = wait_condition(api, namespace, BACKUP, "busy", "Ready", timeout=180)
        during = inserted[0]
    finally:
        stop.set()
        writer.join()
    recorded = {f"{t['schema']}.{t['name']}": t["rows"] for t in backup["status"]["tables"]}
    now = mail_score.counts()
    assert recorded["public.audit_log"] < now["public.audit_log"]  # writes went on after
    assert during > 100

    target = f"{mail_score.name}_copy"
    create_cr(
        api,
        namespace,
        RESTORE,
        "copy",
        {"backup": "busy", "targetDatabase": target, "confirm": target},
    )
    restore = wait_condition(api, namespace, RESTORE, "copy", "Ready", timeout=180)
    assert restore["status"]["targetExisted"] is False
    assert "safetyBackup" not in restore["status"]  # nothing to save: the database was new
    assert mail_score.server.counts(target) == recorded


def test_operator_killed_mid_dump(
    kube: Cluster, operator: OperatorProcess, namespace: str, mail_score: AppDatabase
) -> None:
    """SIGKILL while pg_dump runs: the next operator process notices the interrupted
    attempt, starts it again, and only one whole artifact remains."""
    api = kube.api
    create_credentials(api, namespace, mail_score)
    with mail_score.connect() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")  # pg_dump waits here
        create_cr(api, namespace, BACKUP, "crash", backup_spec(mail_score))

        def dumping() -> dict[str, Any] | None:
            obj = get_cr(api, namespace, BACKUP, "crash")
            return obj if (obj.get("status") or {}).get("step") == "Dumping" else None

        first = wait_for(dumping, timeout=30, what="the dump to start")
        wait_for(
            lambda: logged(operator, "crash", "dumping (attempt 1)"), timeout=30, what="pg_dump"
        )
        operator.kill()
        operator.start()

        def retried() -> dict[str, Any] | None:
            obj = get_cr(api, namespace, BACKUP, "crash")
            return obj if obj["status"].get("attempt") == 2 else None

        second = wait_for(retried, timeout=30, what="attempt 2")
        assert second["status"]["attemptBy"] != first["status"]["attemptBy"]
        wait_reasons(api, namespace, "crash", {"Interrupted"})
        locker.execute("ROLLBACK")
    done = wait_condition(api, namespace, BACKUP, "crash", "Ready", timeout=120)
    folder = artifact(done).parent
    assert [p.name for p in folder.iterdir()] == [artifact(done).name]
    assert done["status"]["startedAt"] == first["status"]["startedAt"]


def test_deleting_a_backup_deletes_its_artifact_unless_retained(
    kube: Cluster, operator: OperatorProcess, namespace: str, mail_score: AppDatabase
) -> None:
    api = kube.api
    create_credentials(api, namespace, mail_score)
    create_cr(api, namespace, BACKUP, "gone", backup_spec(mail_score, verify="none"))
    create_cr(
        api,
        namespace,
        BACKUP,
        "kept",
        backup_spec(mail_score, verify="none", deletionPolicy="Retain"),
    )
    gone = artifact(wait_condition(api, namespace, BACKUP, "gone", "Ready", timeout=120))
    kept = artifact(wait_condition(api, namespace, BACKUP, "kept", "Ready", timeout=120))
    assert gone.exists() and kept.exists()
    for name in ("gone", "kept"):
        delete_cr(api, namespace, BACKUP, name)
        wait_gone(api, namespace, BACKUP, name)
    assert not gone.exists() and not gone.parent.exists()
    assert kept.exists()
    kept.unlink()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"keep": {"last": 2}}, "keep applies only to a scheduled backup"),
        ({"suspend": True}, "suspend applies only to a scheduled backup"),
        ({"schedule": "every night"}, "cron expression"),
        ({"schedule": "0 2 * * *", "startingDeadline": "1d"}, "duration such as 30m"),
        ({"verify": "maybe"}, "Unsupported value"),
    ],
)
def test_the_api_server_refuses_bad_backups(
    kube: Cluster, namespace: str, spec: dict[str, Any], message: str
) -> None:
    base = {"postgres": {"host": "pg", "database": "db", "credentials": {"secretName": "pg"}}}
    with pytest.raises(ApiException) as caught:
        create_cr(kube.api, namespace, BACKUP, "bad", {**base, **spec})
    assert caught.value.status == 422 and message in caught.value.body


def test_one_shot_backups_and_restore_targets_are_immutable(kube: Cluster, namespace: str) -> None:
    """Direct API objects (no operator needed): changing what is being done is refused."""
    api = kube.api
    spec = {"postgres": {"host": "pg", "database": "db", "credentials": {"secretName": "pg"}}}
    create_cr(api, namespace, BACKUP, "once", spec)
    with pytest.raises(ApiException) as caught:
        patch_cr(api, namespace, BACKUP, "once", {"spec": {"verify": "none"}})
    assert "one-shot backup cannot be changed" in caught.value.body
    with pytest.raises(ApiException) as caught:
        patch_cr(api, namespace, BACKUP, "once", {"spec": {"schedule": "@daily"}})
    assert "cannot switch between one-shot and scheduled" in caught.value.body
    create_cr(api, namespace, RESTORE, "r", {"backup": "once", "targetDatabase": "a"})
    with pytest.raises(ApiException) as caught:
        patch_cr(api, namespace, RESTORE, "r", {"spec": {"targetDatabase": "b"}})
    assert "targetDatabase cannot be changed" in caught.value.body
    patch_cr(api, namespace, RESTORE, "r", {"spec": {"confirm": "a"}})  # allowed


def test_operator_stopped_mid_dump_stops_promptly_and_resumes(
    kube: Cluster, operator: OperatorProcess, namespace: str, mail_score: AppDatabase
) -> None:
    """SIGTERM while pg_dump waits: pg_dump is killed, the operator exits at once (no
    partial file left), and the next process finishes the backup."""
    api = kube.api
    create_credentials(api, namespace, mail_score)
    with mail_score.connect() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        create_cr(api, namespace, BACKUP, "stopped", backup_spec(mail_score))
        wait_for(
            lambda: logged(operator, "stopped", "dumping (attempt 1)"), timeout=30, what="pg_dump"
        )
        started = time.monotonic()
        operator.stop()
        assert time.monotonic() - started < 15
        folder = operator.backup_root / namespace / "stopped"
        assert list(folder.glob("*")) == []
        locker.execute("ROLLBACK")
    operator.start()
    done = wait_condition(api, namespace, BACKUP, "stopped", "Ready", timeout=120)
    wait_reasons(api, namespace, "stopped", {"Interrupted"})  # dumped again, attempt 2
    assert [p.name for p in folder.iterdir()] == [artifact(done).name]
