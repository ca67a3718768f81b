"""Every way a backup fails says why, in its own words, and leaves nothing behind.

Unreachable server, wrong password, missing database, missing Secret, a full or
unwritable backup volume, pg_dump missing or older than the server: each ends as
phase Failed, Stalled=True with a distinct reason, and a Warning event; no file
(whole or partial) is left on the volume; no password appears anywhere.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.crs import cond, condition, create_cr, get_cr, wait_condition
from support.events import wait_reasons
from support.kube import Cluster
from support.operator import OperatorProcess, free_port
from support.postgres import (
    AppDatabase,
    PostgresServer,
    assert_secret_nowhere,
    backup_spec,
    create_credentials,
    scratch_database,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

pytestmark = pytest.mark.timeout(300)

BACKUP = "DatabaseBackup"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "failing", messages=2_000) as database:
        yield database


def wait_failed(api: Any, namespace: str, name: str, reason: str) -> dict[str, Any]:
    obj = wait_condition(api, namespace, BACKUP, name, "Stalled", reason=reason, timeout=90)
    assert obj["status"]["phase"] == "Failed"
    ready = condition(obj, "Ready")
    assert ready is not None and ready["status"] == "False" and ready["reason"] == reason
    wait_reasons(api, namespace, name, {reason})  # a Warning event says it too
    return obj


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def test_connection_and_credential_failures(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    wrong = "wrong-" + db.password[::-1]
    create_credentials(api, namespace, db, "wrong", password=wrong)
    unreachable = backup_spec(db)
    unreachable["postgres"]["port"] = free_port()
    missing_db = backup_spec(db)
    missing_db["postgres"]["database"] = "no_such_database"
    cases = {
        "unreachable": (unreachable, "ServerUnreachable", "cannot reach PostgreSQL"),
        "wrong-password": (backup_spec(db, "wrong"), "AuthenticationFailed", "rejected"),
        "missing-database": (missing_db, "DatabaseNotFound", "no_such_database"),
        "missing-secret": (backup_spec(db, "nope"), "CredentialsNotFound", "nope"),
    }
    for name, (spec, _, _) in cases.items():
        create_cr(api, namespace, BACKUP, name, spec)
    for name, (_, reason, words) in cases.items():
        obj = wait_failed(api, namespace, name, reason)
        assert words in cond(obj, "Ready")["message"]
    assert files_under(operator.backup_root / namespace) == []
    for secret in (db.password, wrong):
        assert_secret_nowhere(kube, operator, namespace, secret)


def test_a_dump_behind_a_table_lock_fails_saying_so_and_a_stuck_one_at_its_timeout(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    """A migration holds ACCESS EXCLUSIVE on a table: pg_dump would wait for ever. With a
    short lockTimeout the backup fails saying a lock was not granted; with a long one,
    the backup's timeout stops pg_dump and the backup fails TimedOut. Neither holds a
    database worker for ever, and neither leaves a file."""
    create_credentials(kube.api, namespace, db)
    locked = backup_spec(db)
    locked["postgres"]["lockTimeout"] = "2s"
    stuck = backup_spec(db)
    stuck["postgres"].update(lockTimeout="10m", timeout="3s")
    with db.connect() as migration, migration.transaction():
        migration.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")  # held until the end
        create_cr(kube.api, namespace, BACKUP, "locked", locked)
        create_cr(kube.api, namespace, BACKUP, "stuck", stuck)
        message = cond(wait_failed(kube.api, namespace, "locked", "LockTimeout"), "Ready")[
            "message"
        ]
        assert "was not granted within 2s (lockTimeout)" in message
        assert "LOCK TABLE public.messages" in message
        message = cond(wait_failed(kube.api, namespace, "stuck", "TimedOut"), "Ready")["message"]
        assert "pg_dump did not finish within 3s (the timeout) and was stopped" in message
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = 'runbook-operator'"
        )
        wait_for(
            lambda: db.execute(query) == [(0,)],
            timeout=15,
            what="no session of a stopped dump left waiting for the lock",
        )
    assert files_under(operator.backup_root / namespace) == []


@pytest.fixture
def small_volume(operator: OperatorProcess, namespace: str) -> Iterator[Path]:
    """The namespace's backup folder on a 32 KiB tmpfs: the volume fills up mid-dump."""
    path = operator.backup_root / namespace
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
        shutil.rmtree(path, ignore_errors=True)


def test_destination_full(
    kube: Cluster, namespace: str, db: AppDatabase, small_volume: Path
) -> None:
    create_credentials(kube.api, namespace, db)
    create_cr(kube.api, namespace, BACKUP, "too-big", backup_spec(db))
    obj = wait_failed(kube.api, namespace, "too-big", "DestinationFull")
    assert "no space left" in cond(obj, "Ready")["message"]
    assert files_under(small_volume) == []  # the partial artifact is gone
    assert "location" not in obj["status"]


@pytest.fixture
def immutable_folder(operator: OperatorProcess, namespace: str) -> Iterator[Path]:
    """The namespace's backup folder made immutable (root cannot write there either)."""
    path = operator.backup_root / namespace
    path.mkdir(parents=True)
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
        shutil.rmtree(path, ignore_errors=True)


def test_destination_unwritable(
    kube: Cluster, namespace: str, db: AppDatabase, immutable_folder: Path
) -> None:
    create_credentials(kube.api, namespace, db)
    create_cr(kube.api, namespace, BACKUP, "nowhere", backup_spec(db))
    obj = wait_failed(kube.api, namespace, "nowhere", "DestinationUnwritable")
    assert "cannot write" in cond(obj, "Ready")["message"]
    assert files_under(immutable_folder) == []


@pytest.fixture
def operator_path(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """Restart the operator with a test-chosen PATH; restore its environment afterwards."""
    saved = dict(operator.env)
    try:
        yield operator
    finally:
        operator.env.clear()
        operator.env.update(saved)
        operator.restart()


def test_pg_dump_missing_or_too_old(
    kube: Cluster, operator_path: OperatorProcess, namespace: str, db: AppDatabase, tmp_path: Path
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    empty = tmp_path / "empty"
    empty.mkdir()
    operator_path.env["PATH"] = str(empty)
    operator_path.restart()
    create_cr(api, namespace, BACKUP, "no-tools", backup_spec(db))
    obj = wait_failed(api, namespace, "no-tools", "PgDumpMissing")
    assert "install the PostgreSQL client tools" in cond(obj, "Ready")["message"]

    old = tmp_path / "old"
    old.mkdir()
    for tool in ("pg_dump", "pg_restore"):  # what an image with PostgreSQL 9.6 tools says
        script = old / tool
        script.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
        script.chmod(0o755)
    operator_path.env["PATH"] = f"{old}:/usr/bin:/bin"
    operator_path.restart()
    create_cr(api, namespace, BACKUP, "old-tools", backup_spec(db))
    obj = wait_failed(api, namespace, "old-tools", "PgDumpTooOld")
    message = cond(obj, "Ready")["message"]
    assert "pg_dump 9.6 cannot dump PostgreSQL 15" in message
    assert files_under(operator_path.backup_root / namespace) == []
    assert get_cr(api, namespace, BACKUP, "old-tools")["status"]["phase"] == "Failed"


def test_a_spec_the_api_server_accepts_but_cannot_be_used_says_which_field(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    """`Mars/Olympus` has the shape of a zone name, so the API server takes it; the operator
    refuses it in plain words, naming the field, without a link to pydantic's site."""
    create_credentials(kube.api, namespace, db)
    spec = {**backup_spec(db), "schedule": "0 3 * * *", "timeZone": "Mars/Olympus"}
    create_cr(kube.api, namespace, BACKUP, "on-mars", spec)
    obj = wait_failed(kube.api, namespace, "on-mars", "InvalidSpec")
    message = cond(obj, "Ready")["message"]
    assert "spec.timeZone" in message and "Mars/Olympus" in message
    assert "pydantic" not in message and "http" not in message
    children = client.CustomObjectsApi(kube.api).list_namespaced_custom_object(
        "ops.mailscore.com", "v1alpha1", namespace, "databasebackups"
    )["items"]
    assert [c["metadata"]["name"] for c in children] == ["on-mars"], "no run was created"
