"""Object Lock: a retention date from the backup's start, sent with the upload (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from runbook_operator.adapters.objectstore import S3Config, S3Store
from runbook_operator.core import destination as dest

STARTED = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def s3(**extra: object) -> dest.S3Destination:
    return dest.S3Destination.model_validate(
        {"endpoint": "http://s3", "bucket": "locked", "credentials": {"secretName": "s"}, **extra}
    )


def test_retention_runs_from_the_start_of_the_backup() -> None:
    locked = s3(objectLock={"retainFor": "720h"})
    assert dest.retain_until(locked, STARTED) == STARTED + timedelta(days=30)
    assert locked.object_lock is not None and locked.object_lock.mode == "COMPLIANCE"


def test_no_lock_no_date() -> None:
    assert dest.retain_until(s3(), STARTED) is None
    assert dest.retain_until(None, STARTED) is None
    assert dest.retain_until(s3(objectLock={"retainFor": "1h"}), None) is None


def test_governance_mode_and_a_duration_are_taken() -> None:
    lock = s3(objectLock={"mode": "GOVERNANCE", "retainFor": "90m"}).object_lock
    assert lock is not None and lock.mode == dest.LockMode.GOVERNANCE


@pytest.mark.parametrize(
    "lock", [{}, {"retainFor": "soon"}, {"mode": "FOREVER", "retainFor": "1h"}]
)
def test_a_lock_needs_a_duration_and_a_known_mode(lock: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        s3(objectLock=lock)


def test_the_schema_carries_the_lock() -> None:
    schema = dest.S3Destination.model_json_schema(by_alias=True)
    assert "objectLock" in schema["properties"]


def test_the_upload_carries_the_lock_headers_only_when_locked() -> None:
    config = S3Config("http://127.0.0.1:1", "locked", "us-east-1", True, "id", "secret")
    until = STARTED + timedelta(hours=1)
    store = S3Store(config, "k", "f/", lock=("COMPLIANCE", until))
    assert store.lock_arguments() == {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": until,
    }
    assert S3Store(config, "k", "f/").lock_arguments() == {}
