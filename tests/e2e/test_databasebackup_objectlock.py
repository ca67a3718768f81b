"""S3 Object Lock, against the real S3 server (Versity's gateway v1.8.0, posix backend,
which implements it: bucket lock configuration, per-object retention, refused deletes).

What is shown: a backup to a bucket with Object Lock enabled is uploaded with a
COMPLIANCE retention from its start, recorded in status; the bucket refuses to delete it
(even with the server's root keys); deleting the DatabaseBackup early leaves the
artifact where it is, with a Warning saying until when. A lock asked of a bucket
without Object Lock fails the backup with the server's reason, and leaves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from support.crs import cond, create_cr, delete_cr, wait_condition, wait_gone
from support.events import reasons
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
from support.s3 import S3Process, key_of, s3_destination, s3_secrets
from support.s3 import s3_server as s3_server  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

pytestmark = pytest.mark.timeout(300)

BACKUP, LOCKED = "DatabaseBackup", "locked"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "lock", messages=1_000) as database:
        yield database


def test_a_locked_backup_cannot_be_deleted_early(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    api = kube.api
    raw = s3_server.client()
    raw.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
    create_credentials(api, namespace, db)
    s3_secrets(api, namespace, s3_server)
    destination = s3_destination(s3_server)
    destination["s3"] |= {"bucket": LOCKED, "objectLock": {"retainFor": "1h"}}
    create_cr(api, namespace, BACKUP, "kept", backup_spec(db, destination=destination))
    done = wait_condition(api, namespace, BACKUP, "kept", "Ready", timeout=180)
    status, key = done["status"], key_of(done)
    until = datetime.fromisoformat(status["retainUntil"])
    started = datetime.fromisoformat(status["startedAt"])
    assert until - started == timedelta(hours=1)

    retention = raw.get_object_retention(Bucket=LOCKED, Key=key)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    assert abs(retention["RetainUntilDate"] - until) < timedelta(seconds=1)
    with pytest.raises(ClientError) as refused:  # not even the server's root keys
        raw.delete_object(Bucket=LOCKED, Key=key)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    delete_cr(api, namespace, BACKUP, "kept")  # deletionPolicy Delete, but locked
    wait_gone(api, namespace, BACKUP, "kept")
    assert "ArtifactLocked" in reasons(api, namespace, "kept")
    listing = raw.list_objects_v2(Bucket=LOCKED).get("Contents", [])
    assert [o["Key"] for o in listing] == [key]  # still there, whole


def test_a_lock_on_a_bucket_without_object_lock_fails_and_leaves_nothing(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    s3_secrets(api, namespace, s3_server)
    destination = s3_destination(s3_server)
    destination["s3"]["objectLock"] = {"retainFor": "1h"}
    create_cr(api, namespace, BACKUP, "unlockable", backup_spec(db, destination=destination))
    failed = wait_condition(api, namespace, BACKUP, "unlockable", "Stalled", timeout=120)
    assert failed["status"]["phase"] == "Failed"
    message = cond(failed, "Ready")["message"]
    assert s3_server.bucket in message, message
    wait_for(lambda: s3_server.uploads() == [], timeout=30, what="no upload left")
    assert s3_server.objects() == []
