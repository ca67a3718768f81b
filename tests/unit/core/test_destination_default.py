"""Which destination a new backup takes: its own, else the namespace's default, else the volume."""

from __future__ import annotations

import pytest

from runbook_operator.core import destination as dest

CREDS = dest.ObjectCredentials(secret_name="s3")


def s3(bucket: str = "backups", prefix: str = "") -> dest.Destination:
    return dest.Destination(
        s3=dest.S3Destination(endpoint="http://s3", bucket=bucket, prefix=prefix, credentials=CREDS)
    )


VOLUME = dest.Destination(volume=dest.VolumeDestination())


def test_its_own_destination_wins_over_the_default() -> None:
    assert dest.choose(s3("own"), s3("team")) == (s3("own"), "spec.destination")
    assert dest.choose(VOLUME, s3("team")) == (VOLUME, "spec.destination")


def test_without_its_own_the_namespace_default_is_taken() -> None:
    chosen = dest.choose(None, s3("team"))
    assert chosen.destination == s3("team") and chosen.source == "BackupDestination default"
    assert dest.choose(None, VOLUME).source == "BackupDestination default"


def test_an_empty_destination_is_no_destination() -> None:
    assert dest.choose(dest.Destination(), s3("team")).destination == s3("team")
    assert dest.choose(None, dest.Destination()).destination == VOLUME


def test_without_either_the_volume() -> None:
    chosen = dest.choose(None, None)
    assert chosen.destination == VOLUME and "volume" in chosen.source


@pytest.mark.parametrize(
    ("destination", "words"),
    [
        (None, "volume"),
        (VOLUME, "volume"),
        (s3(), "s3://backups"),
        (s3(prefix="/mail-score/prod/"), "s3://backups/mail-score/prod"),
    ],
)
def test_describe_says_where_in_a_few_words(
    destination: dest.Destination | None, words: str
) -> None:
    assert dest.describe(destination) == words


def test_describe_never_names_a_secret() -> None:
    assert "s3" not in dest.describe(s3()).removeprefix("s3://")
