"""A backup's destination is decided once, when it starts, and read back from its record."""

from __future__ import annotations

from datetime import UTC, datetime

from runbook_operator.core import destination as dest
from runbook_operator.kinds.databasebackup.api import DatabaseBackupSpec, DatabaseBackupStatus
from runbook_operator.kinds.databasebackup.logic import destination_of, started

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
POSTGRES = {"host": "pg", "database": "mail", "credentials": {"secretName": "pg"}}
CREDS = dest.ObjectCredentials(secret_name="s3")
TEAM = dest.Destination(
    s3=dest.S3Destination(endpoint="http://s3", bucket="team", credentials=CREDS)
)
OWN = dest.Destination(s3=dest.S3Destination(endpoint="http://s3", bucket="own", credentials=CREDS))


def spec(destination: dest.Destination | None = None) -> DatabaseBackupSpec:
    return DatabaseBackupSpec.model_validate({"postgres": POSTGRES, "destination": destination})


def test_started_records_the_chosen_destination_and_where_it_came_from() -> None:
    chosen = dest.choose(None, TEAM)
    new = started(DatabaseBackupStatus(), instance="i", generation=1, now=NOW, destination=chosen)
    assert new.destination == TEAM and new.destination_from == "BackupDestination default"
    assert "s3://team (BackupDestination default)" in new.message("Reconciling")
    wire = new.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert wire["destination"]["s3"]["bucket"] == "team"
    assert wire["destinationFrom"] == "BackupDestination default"


def test_started_without_a_choice_records_nothing_new() -> None:
    new = started(DatabaseBackupStatus(), instance="i", generation=1, now=NOW)
    assert new.destination is None and new.destination_from is None
    assert new.message("Reconciling") == "pg_dump is running"


def test_the_recorded_destination_is_read_back_when_the_spec_names_none() -> None:
    status = DatabaseBackupStatus(destination=TEAM)
    assert destination_of(spec(), status) == TEAM
    assert destination_of(None, status) == TEAM  # a spec that no longer parses


def test_a_spec_destination_always_wins_over_the_record() -> None:
    """The spec is immutable and admission-checked; a status edit cannot redirect it."""
    assert destination_of(spec(OWN), DatabaseBackupStatus(destination=TEAM)) == OWN


def test_an_older_backup_without_a_record_is_where_its_spec_says() -> None:
    assert destination_of(spec(), DatabaseBackupStatus()) is None
    assert destination_of(spec(OWN), DatabaseBackupStatus()) == OWN


def test_a_change_of_the_default_after_the_start_changes_nothing() -> None:
    """What the backup recorded is what is read, whatever the default says now."""
    first = started(
        DatabaseBackupStatus(),
        instance="i",
        generation=1,
        now=NOW,
        destination=dest.choose(None, TEAM),
    )
    later_default = dest.Destination(volume=dest.VolumeDestination())
    assert dest.choose(None, later_default).destination != TEAM
    assert destination_of(spec(), first) == TEAM
