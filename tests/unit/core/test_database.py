"""The login of database work: read from the named Secret, never shown."""

from __future__ import annotations

import pytest

from runbook_operator.adapters.kube import Forbidden
from runbook_operator.core import database
from runbook_operator.core.postgres import PostgresRef
from support.fake_kube import NS, FakeKube

REF = PostgresRef.model_validate(
    {
        "host": "postgres",
        "port": 5433,
        "database": "mail_score",
        "sslMode": "require",
        "credentials": {"secretName": "pg", "passwordKey": "pw"},
    }
)


def test_credentials_read_the_named_keys() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "backup", "pw": "s3cret"})
    server = database.server(kube, NS, REF)
    assert (server.host, server.port, server.database) == ("postgres", 5433, "mail_score")
    assert (server.user, server.password, server.sslmode) == ("backup", "s3cret", "require")
    assert "s3cret" not in repr(server)


def test_missing_credentials_say_which_keys_never_what_is_there() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "backup-user"})
    with pytest.raises(database.CredentialsError, match="keys 'username' and 'pw'") as caught:
        database.server(kube, NS, REF)
    assert caught.value.reason == "CredentialsNotFound"
    assert "backup-user" not in str(caught.value)


def test_missing_secret() -> None:
    with pytest.raises(database.CredentialsError, match="Secret pg") as caught:
        database.server(FakeKube(), NS, REF)
    assert caught.value.reason == "CredentialsNotFound"


def test_forbidden_credentials() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "u", "pw": "p"})
    kube.read_errors[("Secret", "pg")] = Forbidden('secrets "pg" is forbidden')
    with pytest.raises(database.CredentialsForbidden) as caught:
        database.server(kube, NS, REF)
    assert caught.value.reason == "CredentialsForbidden"
    assert database.reason_of(caught.value) == "CredentialsForbidden"


def test_undecodable_credentials() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "u", "pw": "x"})
    kube.store[("Secret", NS, "pg")]["data"]["username"] = "/w=="  # b"\xff"
    with pytest.raises(database.CredentialsError, match="not UTF-8"):
        database.server(kube, NS, REF)


def test_reason_of_anything_else() -> None:
    assert database.reason_of(ValueError("x")) == "Failed"
