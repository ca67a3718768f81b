"""Object keys come from the object's identity, and a store refuses every other location."""

from __future__ import annotations

import pytest

from runbook_operator.adapters.objectstore import NotThisBackups, S3Config, S3Store
from runbook_operator.core import destination as dest

UID = "0b5c3a9e-1111-2222-3333-444455556666"


def test_keys_are_derived_from_namespace_schedule_and_uid() -> None:
    assert dest.object_key("", "team-a", "nightly", UID) == f"team-a/nightly/{UID}.dump"
    key = dest.object_key("/mail-score//prod/", "team-a", "nightly", UID)
    assert key == f"mail-score/prod/team-a/nightly/{UID}.dump"
    assert dest.family_prefix("mail-score", "team-a", "nightly") == "mail-score/team-a/nightly/"
    assert dest.location_of("b", key) == f"s3://b/{key}"


def test_key_id_names_the_secret_and_its_key() -> None:
    assert dest.key_id(None) is None
    assert dest.key_id(dest.Encryption(secret_name="k", key=None)) is None
    assert dest.key_id(dest.Encryption(secret_name="backup-key", key="2025")) == "backup-key/2025"


def test_the_store_refuses_any_location_but_its_own_without_a_request() -> None:
    config = S3Config("http://127.0.0.1:1", "backups", "us-east-1", True, "id", "secret")
    own = dest.object_key("p", "team-a", "nightly", UID)
    store = S3Store(config, own, dest.family_prefix("p", "team-a", "nightly"))
    assert store.location("team-a", "x", "y") == f"s3://backups/{own}"
    theirs = f"s3://backups/{dest.object_key('p', 'team-b', 'nightly', UID)}"
    for call in (store.checksum, store.delete, lambda loc: list(store.read(loc))):
        with pytest.raises(NotThisBackups, match="refused: nothing was read or deleted"):
            call(theirs)
    assert "secret" not in repr(config)


def test_destination_schema_rules_are_on_the_models() -> None:
    schema = dest.Destination.model_json_schema()
    rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    assert rules == ["!(has(self.volume) && has(self.s3))"]
