"""Backups to S3-compatible object storage, against a real S3 server (Versity's gateway).

What is shown, on the real control plane, PostgreSQL and S3 server:
- an encrypted backup whose object in the bucket is ciphertext (read raw), verified by a
  scratch restore, then restored after rows were deleted: every table's counts and
  checksums back;
- the S3 server killed in the middle of an upload: the run is Failed with the reason,
  no object and (once the next run has swept) no multipart upload is left; the next
  scheduled run succeeds, and retention prunes runs and their objects together;
- a namespace over its quota on the shared volume is refused before pg_dump starts;
- a status edited to name another namespace's artifact: the restore is refused, the
  deletion deletes nothing, the other artifact is intact;
- malformed destinations are refused by the API server with readable messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from runbook_operator.adapters.sealing import MAGIC
from support.crs import (
    cond,
    create_cr,
    delete_cr,
    get_cr,
    patch_cr_status,
    wait_condition,
)
from support.kube import Cluster, create_namespace, delete_namespace, unique_name
from support.operator import OperatorProcess
from support.postgres import (
    AppDatabase,
    PostgresServer,
    backup_spec,
    create_credentials,
    scratch_database,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.s3 import PREFIX, S3Process, key_of, s3_destination, s3_secrets
from support.s3 import s3_server as s3_server  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

pytestmark = pytest.mark.timeout(420)

BACKUP, RESTORE = "DatabaseBackup", "DatabaseRestore"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "s3", messages=5_000) as database:
        yield database


def test_encrypted_backup_to_s3_then_restore_after_rows_were_deleted(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    s3_secrets(api, namespace, s3_server)
    spec = backup_spec(db, verify="restore", destination=s3_destination(s3_server, encrypted=True))
    create_cr(api, namespace, BACKUP, "nightly", spec)
    done = wait_condition(api, namespace, BACKUP, "nightly", "Ready", timeout=180)
    status, key = done["status"], key_of(done)
    assert status["location"] == f"s3://{s3_server.bucket}/{key}"
    assert status["encryptionKeyId"] == "backup-key/key-2025"
    assert status["verification"]["tablesCompared"] == len(db.counts())
    assert s3_server.objects() == [key] and s3_server.uploads() == []

    raw = s3_server.raw(key)  # ciphertext: our header, never pg_dump's own
    assert raw.startswith(MAGIC) and b"PGDMP" not in raw
    assert b"billing" not in raw and b"audit_log" not in raw

    before = db.fingerprint()
    db.execute("DELETE FROM audit_log")
    db.execute("DELETE FROM scores")
    assert db.fingerprint() != before
    create_cr(
        api,
        namespace,
        RESTORE,
        "recover",
        {"backup": "nightly", "confirm": db.name, "safetyBackup": False},
    )
    wait_condition(api, namespace, RESTORE, "recover", "Ready", timeout=180)
    assert db.fingerprint() == before  # every table's rows and checksum are back

    delete_cr(api, namespace, BACKUP, "nightly")  # deletionPolicy Delete: the object goes
    wait_for(lambda: s3_server.objects() == [], timeout=60, what="the object to be deleted")


def children(api: Any, namespace: str, parent: str) -> list[dict[str, Any]]:
    listing = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "ops.mailscore.com",
        "v1alpha1",
        namespace,
        "databasebackups",
        label_selector=f"ops.mailscore.com/schedule={parent}",
    )
    return sorted(listing["items"], key=lambda o: o["metadata"]["creationTimestamp"])


def test_s3_server_killed_mid_upload_fails_cleanly_and_the_next_run_succeeds(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    s3_secrets(api, namespace, s3_server)
    family = f"{PREFIX}/{namespace}/hourly/"
    with db.connect() as locker:
        # pg_dump waits for this lock with the upload already started: the server dies then
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        spec = backup_spec(
            db,
            schedule="* * * * *",
            keep={"last": 1, "failed": 1},
            destination=s3_destination(s3_server, encrypted=True),
        )
        create_cr(api, namespace, BACKUP, "hourly", spec)
        wait_for(lambda: s3_server.uploads(family), timeout=120, what="an upload in flight")
        s3_server.kill()
        locker.execute("ROLLBACK")
    first = wait_for(
        lambda: next(
            (
                c
                for c in children(api, namespace, "hourly")
                if c.get("status", {}).get("phase") == "Failed"
            ),
            None,
        ),
        timeout=180,
        what="the run to fail",
    )
    ready = cond(first, "Ready")
    assert ready["reason"] == "ObjectStoreUnreachable", ready
    assert s3_server.url in ready["message"]
    s3_server.start()  # same port, same data: whatever the dead server kept
    assert s3_server.objects(family) == []  # never a partial object
    # The dead server could not be told to abort: it kept the parts of that upload...
    assert s3_server.uploads(family) == [key_of(first, "hourly")]

    def next_completed() -> dict[str, Any] | None:
        runs = children(api, namespace, "hourly")
        return next((c for c in runs if c.get("status", {}).get("phase") == "Completed"), None)

    second = wait_for(next_completed, timeout=150, what="the next run to complete")
    assert s3_server.objects(family) == [key_of(second, "hourly")]
    assert s3_server.uploads(family) == []  # ...and the next run swept them before uploading

    # Retention (keep one Completed, one Failed) prunes children and their objects together.
    def third_completed() -> dict[str, Any] | None:
        runs = children(api, namespace, "hourly")
        newer = [c for c in runs if c["metadata"]["name"] != second["metadata"]["name"]]
        return next((c for c in newer if c.get("status", {}).get("phase") == "Completed"), None)

    third = wait_for(third_completed, timeout=150, what="a third run to complete")

    def pruned() -> bool:
        runs = {c["metadata"]["name"] for c in children(api, namespace, "hourly")}
        kept = {first["metadata"]["name"], third["metadata"]["name"]}
        return runs == kept and s3_server.objects(family) == [key_of(third, "hourly")]

    wait_for(pruned, timeout=90, what="retention to prune the older runs and their objects")


def test_a_status_naming_another_namespaces_artifact_is_refused(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    api = kube.api
    other = create_namespace(kube.api_client, unique_name("s3-other", prefix=operator.prefix))
    try:
        for ns in (namespace, other):
            create_credentials(api, ns, db)
            s3_secrets(api, ns, s3_server)
            create_cr(
                api,
                ns,
                BACKUP,
                "nightly",
                backup_spec(db, verify="none", destination=s3_destination(s3_server)),
            )
        theirs = wait_condition(api, other, BACKUP, "nightly", "Ready", timeout=120)
        ours = wait_condition(api, namespace, BACKUP, "nightly", "Ready", timeout=120)
        their_key = key_of(theirs)
        assert s3_server.objects() == sorted([their_key, key_of(ours)])

        # Someone who may write databasebackups/status points ours at their artifact.
        patch_cr_status(
            api,
            namespace,
            BACKUP,
            "nightly",
            {"location": theirs["status"]["location"], "sha256": theirs["status"]["sha256"]},
        )
        before = db.fingerprint()
        db.execute("DELETE FROM audit_log")
        damaged = db.fingerprint()
        create_cr(
            api,
            namespace,
            RESTORE,
            "stolen",
            {"backup": "nightly", "confirm": db.name, "safetyBackup": False},
        )
        refused = wait_condition(
            api,
            namespace,
            RESTORE,
            "stolen",
            "Ready",
            status="False",
            timeout=120,
            reason="ArtifactNotOwned",
        )
        assert "is not this backup's artifact" in cond(refused, "Ready")["message"]
        assert db.fingerprint() == damaged != before  # nothing was restored

        delete_cr(api, namespace, BACKUP, "nightly")
        wait_for(lambda: not _exists(api, namespace, "nightly"), timeout=60, what="the deletion")
        assert their_key in s3_server.objects()  # their artifact was not deleted
        assert get_cr(api, other, BACKUP, "nightly")["status"]["phase"] == "Completed"
    finally:
        delete_namespace(kube.api_client, other)


def _exists(api: Any, namespace: str, name: str) -> bool:
    try:
        get_cr(api, namespace, BACKUP, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


S3 = {
    "endpoint": "https://s3.example.com",
    "bucket": "backups",
    "credentials": {"secretName": "s3"},
}


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ({"volume": {}, "s3": S3}, "set either destination.volume or destination.s3, not both"),
        ({"s3": {k: v for k, v in S3.items() if k != "bucket"}}, "s3 needs a bucket"),
        ({"s3": {**S3, "endpoint": "s3.example.com"}}, "must be an http:// or https:// URL"),
        (
            {"s3": {**S3, "encryption": {"secretName": "backup-key"}}},
            "encryption names a Secret but not which of its keys holds the encryption key",
        ),
    ],
)
def test_the_api_server_refuses_malformed_destinations(
    kube: Cluster, namespace: str, destination: dict[str, Any], message: str
) -> None:
    base = {"postgres": {"host": "pg", "database": "db", "credentials": {"secretName": "pg"}}}
    with pytest.raises(ApiException) as caught:
        create_cr(kube.api, namespace, BACKUP, "bad", {**base, "destination": destination})
    assert caught.value.status == 422 and message in caught.value.body


def test_a_namespace_over_its_volume_quota_is_refused_before_pg_dump(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    saved = dict(operator.env)
    operator.env["RUNBOOK_VOLUME_QUOTA_COUNT"] = "1"
    operator.restart()
    try:
        create_cr(api, namespace, BACKUP, "first", backup_spec(db, verify="none"))
        wait_condition(api, namespace, BACKUP, "first", "Ready", timeout=120)
        create_cr(api, namespace, BACKUP, "second", backup_spec(db, verify="none"))
        refused = wait_condition(
            api, namespace, BACKUP, "second", "Ready", "False", reason="QuotaExceeded"
        )
    finally:
        operator.env.clear()
        operator.env.update(saved)
        operator.restart()
    message = cond(refused, "Ready")["message"]
    assert f"namespace {namespace} keeps 1 backups on the shared volume" in message
    assert "quota is 1" in message and "nothing was dumped" in message
    assert "pgDumpVersion" not in refused["status"]  # pg_dump never started
    assert not (operator.backup_root / namespace / "second").exists()


def test_retention_shorter_than_the_schedule_is_refused_with_both_durations(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    spec = {
        "postgres": {"host": "pg", "database": "db", "credentials": {"secretName": "pg"}},
        "schedule": "0 * * * *",
        "keep": {"maxAge": "30m"},
    }
    create_cr(kube.api, namespace, BACKUP, "hourly", spec)
    refused = wait_condition(
        kube.api, namespace, BACKUP, "hourly", "Ready", "False", reason="InvalidSpec"
    )
    message = cond(refused, "Ready")["message"]
    assert "keep.maxAge 30m is shorter than the time between runs of '0 * * * *'" in message
    assert "set maxAge to at least 1h" in message
    assert children(kube.api, namespace, "hourly") == []  # nothing ran
