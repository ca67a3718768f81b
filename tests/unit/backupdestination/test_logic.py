"""A BackupDestination says what it is, which Secret keys it needs, and whether it is used."""

from __future__ import annotations

from runbook_operator.core import destination as dest
from runbook_operator.kinds.backupdestination.logic import Needed, needed, state

CREDS = dest.ObjectCredentials(secret_name="s3")


def s3(**extra: object) -> dest.Destination:
    return dest.Destination.model_validate(
        {
            "s3": {
                "endpoint": "http://s3",
                "bucket": "team",
                "credentials": {"secretName": "s3"},
                **extra,
            }
        }
    )


VOLUME = dest.Destination(volume=dest.VolumeDestination())


def test_the_volume_needs_no_secret() -> None:
    assert needed(VOLUME) == []


def test_s3_needs_both_halves_of_the_key_pair() -> None:
    assert needed(s3()) == [Needed("s3", "accessKeyId"), Needed("s3", "secretAccessKey")]


def test_s3_with_ca_and_encryption_needs_those_too() -> None:
    got = needed(
        s3(ca={"name": "ca", "key": "ca.pem"}, encryption={"secretName": "k", "key": "2026"})
    )
    assert got[2:] == [Needed("ca", "ca.pem"), Needed("k", "2026", encryption=True)]


def test_the_default_with_readable_secrets_is_configured() -> None:
    shown = state("default", s3(), None)
    assert (shown.state, shown.reason) == ("ready", "Configured")
    assert "s3://team" in shown.message


def test_an_unreadable_secret_is_said_first() -> None:
    shown = state("elsewhere", s3(), "Secret s3 not found")
    assert (shown.state, shown.reason) == ("waiting", "SecretNotReadable")
    assert shown.message.startswith("Secret s3 not found")


def test_another_name_is_never_used_and_says_so() -> None:
    shown = state("team-default", VOLUME, None)
    assert (shown.state, shown.reason) == ("stalled", "NotTheDefault")
    assert "named default" in shown.message and "volume" in shown.message
