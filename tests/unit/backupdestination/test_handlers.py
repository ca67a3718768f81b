"""BackupDestination's pass against the one FakeKube: it reads every Secret it names, once,
and says whether backups can use it."""

from __future__ import annotations

import base64
from typing import Any

from runbook_operator.kinds.backupdestination.api import BackupDestinationStatus
from runbook_operator.kinds.backupdestination.handlers import RECHECK, BackupDestinationKind
from support.fake_kube import FakeKube
from support.passes import Harness

PLURAL = "backupdestinations"
S3 = {
    "endpoint": "http://s3",
    "bucket": "team",
    "prefix": "mail",
    "credentials": {"secretName": "s3"},
}
KEY = base64.b64encode(bytes(range(32))).decode()


def harness(**secrets: dict[str, str]) -> tuple[Harness, FakeKube]:
    kube = FakeKube()
    for name, data in secrets.items():
        kube.add_secret(name, data)
    return Harness(BackupDestinationKind(), kube), kube


def create(kube: FakeKube, name: str, spec: dict[str, Any]) -> None:
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "BackupDestination",
            "metadata": {"name": name, "uid": f"{name}-uid"},
            "spec": spec,
        },
    )


def status(h: Harness, name: str) -> BackupDestinationStatus:
    return h.status(name)  # type: ignore[no-any-return]


def ready(s: BackupDestinationStatus) -> tuple[str, str | None, str]:
    (c,) = [c for c in s.conditions if c.type == "Ready"]
    return c.status, c.reason, c.message


def test_the_default_on_s3_with_its_keys_readable_is_ready() -> None:
    h, kube = harness(s3={"accessKeyId": "id", "secretAccessKey": "never-shown"})
    create(kube, "default", {"s3": S3})
    result = h.run("default")
    s = status(h, "default")
    assert ready(s)[:2] == ("True", "Configured") and s.target == "s3://team/mail"
    assert s.default is True and s.observed_generation == 1
    assert "never-shown" not in str(kube.obj(PLURAL, "default"))
    assert result is not None and result.requeue_after is None


def test_the_default_on_the_volume_needs_nothing() -> None:
    h, kube = harness()
    create(kube, "default", {"volume": {}})
    h.run("default")
    assert ready(status(h, "default"))[:2] == ("True", "Configured")
    assert status(h, "default").target == "volume"


def test_a_missing_key_half_is_named_and_looked_at_again() -> None:
    h, kube = harness(s3={"accessKeyId": "id"})
    create(kube, "default", {"s3": S3})
    result = h.run("default")
    state, reason, message = ready(status(h, "default"))
    assert (state, reason) == ("False", "SecretNotReadable") and "secretAccessKey" in message
    assert result is not None and result.requeue_after == RECHECK


def test_an_encryption_key_that_is_not_32_bytes_is_refused_before_a_backup_needs_it() -> None:
    h, kube = harness(s3={"accessKeyId": "id", "secretAccessKey": "x"}, keys={"2026": "c2hvcnQ="})
    create(kube, "default", {"s3": {**S3, "encryption": {"secretName": "keys", "key": "2026"}}})
    h.run("default")
    state, reason, message = ready(status(h, "default"))
    assert (state, reason) == ("False", "SecretNotReadable") and "32 random bytes" in message


def test_a_good_encryption_key_is_accepted() -> None:
    h, kube = harness(s3={"accessKeyId": "id", "secretAccessKey": "x"}, keys={"2026": KEY})
    create(kube, "default", {"s3": {**S3, "encryption": {"secretName": "keys", "key": "2026"}}})
    h.run("default")
    assert ready(status(h, "default"))[:2] == ("True", "Configured")


def test_one_not_named_default_is_stalled_and_says_why() -> None:
    h, kube = harness()
    create(kube, "team", {"volume": {}})
    h.run("team")
    s = status(h, "team")
    assert ready(s)[:2] == ("False", "NotTheDefault") and s.default is False
    assert any(c.type == "Stalled" and c.status == "True" for c in s.conditions)
