"""A namespace's default BackupDestination, against the real S3 server (Versity's gateway).

What is shown, on the real control plane, PostgreSQL and S3 server:
- a BackupDestination `default` on S3 (encrypted) says it is Configured; a DatabaseBackup
  without spec.destination goes there, records that it did, and its object is ciphertext;
  nobody may rewrite that record afterwards (admission);
- the team moves its default to the volume: the existing backup is still verified,
  restored and deleted from S3 (its record), while the restore's safety backup, taken
  now, goes to the new default;
- the admission policy: naming a Secret one may not read is refused, and `edit` alone
  may not change a BackupDestination at all;
- safety backups pruned by their own rule (RUNBOOK_SAFETY_BACKUPS_KEEP=1), from the
  volume and from the bucket, each where it recorded its artifact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from runbook_operator.adapters.sealing import MAGIC
from support.crs import (
    cond,
    create_cr,
    delete_cr,
    get_cr,
    patch_cr,
    patch_cr_status,
    wait_condition,
)
from support.identity import Refused, create_as, created_as, grant, grant_rules
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
from support.s3 import PREFIX, S3Process, key_of, s3_destination, s3_secrets
from support.s3 import s3_server as s3_server  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

pytestmark = pytest.mark.timeout(420)

BACKUP, RESTORE, DEST = "DatabaseBackup", "DatabaseRestore", "BackupDestination"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "dest", messages=2_000) as database:
        yield database


def test_backups_without_a_destination_use_the_default_and_keep_what_they_recorded(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    api = kube.api
    create_credentials(api, namespace, db)
    s3_secrets(api, namespace, s3_server)
    create_cr(api, namespace, DEST, "default", s3_destination(s3_server, encrypted=True))
    configured = wait_condition(api, namespace, DEST, "default", "Ready", reason="Configured")
    assert configured["status"]["target"] == f"s3://{s3_server.bucket}/{PREFIX}"
    assert configured["status"]["default"] is True

    create_cr(api, namespace, BACKUP, "nightly", backup_spec(db, verify="readable"))
    done = wait_condition(api, namespace, BACKUP, "nightly", "Ready", timeout=180)
    status, key = done["status"], key_of(done)
    assert "destination" not in done["spec"]
    assert status["destinationFrom"] == "BackupDestination default"
    assert status["destination"]["s3"]["bucket"] == s3_server.bucket
    assert status["location"] == f"s3://{s3_server.bucket}/{key}"
    assert status["encryptionKeyId"] == "backup-key/key-2025"
    assert s3_server.objects() == [key] and s3_server.raw(key).startswith(MAGIC)

    # Nobody can rewrite that record afterwards (admission), not even an admin.
    with pytest.raises(client.exceptions.ApiException) as rewrite:
        patch_cr_status(
            api, namespace, BACKUP, "nightly", {"destination": {"s3": {"bucket": "elsewhere"}}}
        )
    assert rewrite.value.status in (400, 403, 422)
    assert "recorded when a backup starts and never change" in str(rewrite.value.body)

    # The team moves its default to the volume: nothing about the existing backup moves.
    patch_cr(api, namespace, DEST, "default", {"spec": {"s3": None, "volume": {}}})
    wait_for(
        lambda: get_cr(api, namespace, DEST, "default")["status"].get("target") == "volume",
        timeout=60,
        what="the default to say it is the volume",
    )
    before = db.fingerprint()
    db.execute("DELETE FROM scores")
    create_cr(api, namespace, RESTORE, "recover", {"backup": "nightly", "confirm": db.name})
    restored = wait_condition(api, namespace, RESTORE, "recover", "Ready", timeout=240)
    assert db.fingerprint() == before  # read back from S3, decrypted, every row back

    # The safety backup was taken now, so it went to the default as it is now.
    safety = get_cr(api, namespace, BACKUP, restored["status"]["safetyBackup"])
    assert safety["status"]["destinationFrom"] == "BackupDestination default"
    assert safety["status"]["location"].startswith("file://")
    assert s3_server.objects() == [key]  # nothing new in the bucket

    delete_cr(api, namespace, BACKUP, "nightly")  # deletionPolicy Delete, from its record
    wait_for(lambda: s3_server.objects() == [], timeout=60, what="the object to be deleted")


def test_one_not_named_default_is_never_used_and_says_so(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    create_cr(kube.api, namespace, DEST, "team", {"volume": {}})
    obj = wait_condition(kube.api, namespace, DEST, "team", "Stalled", reason="NotTheDefault")
    assert "only the BackupDestination named default is used" in cond(obj, "Ready")["message"]


def destination(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "ops.mailscore.com/v1alpha1",
        "kind": DEST,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_its_author_must_be_able_to_read_every_secret_it_names(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    s3 = {
        "endpoint": "http://127.0.0.1:9",
        "bucket": "team",
        "credentials": {"secretName": "s3"},
        "encryption": {"secretName": "backup-key", "key": "k"},
    }
    # edit alone may not touch it: the default decides where other people's data goes.
    grant(kube, namespace, "runbook-edit", "ed")
    with pytest.raises(Refused) as rbac:
        create_as(kube, "ed", destination(namespace, "default", {"volume": {}}))
    assert "forbidden" in str(rbac.value).lower() and "backupdestinations" in str(rbac.value)

    # With runbook-destinations but no get on the Secrets: refused, naming them.
    grant(kube, namespace, "runbook-destinations", "dana")
    with pytest.raises(Refused) as refused:
        create_as(kube, "dana", destination(namespace, "default", {"s3": s3}))
    message = str(refused.value)
    assert "runbook-backupdestination-access" in message
    assert "you may not get every Secret this BackupDestination names" in message, message

    # The volume names no Secret: allowed. With get on exactly those Secrets: allowed.
    create_as(kube, "dana", destination(namespace, "volume", {"volume": {}}))
    grant_rules(
        kube,
        namespace,
        "read-backup-secrets",
        "dana",
        [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["s3", "backup-key"],
                "verbs": ["get"],
            }
        ],
    )
    wait_for(
        lambda: created_as(kube, "dana", destination(namespace, "default", {"s3": s3})),
        timeout=30,
        what="dana's BackupDestination to be admitted once she may read its Secrets",
    )


def test_a_backupdestination_needs_a_destination(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    with pytest.raises(client.exceptions.ApiException) as empty:
        create_cr(kube.api, namespace, DEST, "default", {})
    assert "a BackupDestination needs a destination: set volume: {} or s3" in str(empty.value)


def test_safety_backups_are_pruned_by_their_own_rule_on_the_volume_and_in_the_bucket(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    db: AppDatabase,
    s3_server: S3Process,
) -> None:
    """RUNBOOK_SAFETY_BACKUPS_KEEP=1: each restore's safety backup, once finished, deletes
    the older one of the same database, with its artifact wherever that one recorded it."""
    api = kube.api
    create_credentials(api, namespace, db)
    s3_secrets(api, namespace, s3_server)
    saved = dict(operator.env)
    operator.env["RUNBOOK_SAFETY_BACKUPS_KEEP"] = "1"
    operator.restart()
    try:
        spec = backup_spec(db, verify="none", destination={"volume": {}})
        create_cr(api, namespace, BACKUP, "source", spec)
        wait_condition(api, namespace, BACKUP, "source", "Ready", timeout=120)

        def restore(name: str) -> dict[str, Any]:
            create_cr(api, namespace, RESTORE, name, {"backup": "source", "confirm": db.name})
            done = wait_condition(api, namespace, RESTORE, name, "Ready", timeout=180)
            return get_cr(api, namespace, BACKUP, done["status"]["safetyBackup"])

        first = restore("first")  # no default: the volume
        first_file = operator.backup_root / namespace / first["metadata"]["name"]
        assert first["status"]["location"].startswith("file://") and first_file.exists()

        create_cr(api, namespace, DEST, "default", s3_destination(s3_server))
        wait_condition(api, namespace, DEST, "default", "Ready", reason="Configured")
        second = restore("second")  # the default: the bucket
        second_key = key_of(second)
        assert second["status"]["location"] == f"s3://{s3_server.bucket}/{second_key}"

        def gone(name: str) -> bool:
            try:
                get_cr(api, namespace, BACKUP, name)
            except client.exceptions.ApiException as exc:
                return bool(exc.status == 404)
            return False

        wait_for(lambda: gone(first["metadata"]["name"]), timeout=60, what="the first pruned")
        assert not any(first_file.glob("*.dump"))  # its artifact left the volume with it
        assert s3_server.objects() == [second_key]

        third = restore("third")
        wait_for(lambda: gone(second["metadata"]["name"]), timeout=60, what="the second pruned")
        wait_for(
            lambda: s3_server.objects() == [key_of(third)],
            timeout=60,
            what="only the newest safety backup left in the bucket",
        )
        assert not gone("source")  # an ordinary backup is never a safety backup
    finally:
        operator.env.clear()
        operator.env.update(saved)
        operator.restart()
