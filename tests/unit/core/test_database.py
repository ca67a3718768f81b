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
    kube.add_credentials("pg", {"username": "backup", "pw": "s3cret"})
    server = database.server(kube, NS, REF)
    assert (server.port, server.database) == (5433, "mail_score")
    assert server.host == f"postgres.{NS}.svc"  # a short host is a Service in this namespace
    assert (server.user, server.password, server.sslmode) == ("backup", "s3cret", "require")
    assert server.require_auth == "scram-sha-256"
    assert "s3cret" not in repr(server)


def test_missing_credentials_say_which_keys_never_what_is_there() -> None:
    kube = FakeKube()
    kube.add_credentials("pg", {"username": "backup-user"})
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
    kube.add_credentials("pg", {"username": "u", "pw": "p"})
    kube.read_errors[("Secret", "pg")] = Forbidden('secrets "pg" is forbidden')
    with pytest.raises(database.CredentialsForbidden) as caught:
        database.server(kube, NS, REF)
    assert caught.value.reason == "CredentialsForbidden"
    assert database.reason_of(caught.value) == "CredentialsForbidden"


def test_undecodable_credentials() -> None:
    kube = FakeKube()
    kube.add_credentials("pg", {"username": "u", "pw": "x"})
    kube.store[("Secret", NS, "pg")]["data"]["username"] = "/w=="  # b"\xff"
    with pytest.raises(database.CredentialsError, match="not UTF-8"):
        database.server(kube, NS, REF)


def test_reason_of_anything_else() -> None:
    assert database.reason_of(ValueError("x")) == "Failed"


def test_a_secret_that_did_not_opt_in_is_refused_before_any_key_is_read() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "backup-user", "pw": "s3cret"})
    with pytest.raises(database.SecretNotOptedIn) as caught:
        database.server(kube, NS, REF)
    assert caught.value.reason == "SecretNotOptedIn"
    assert database.reason_of(caught.value) == "SecretNotOptedIn"
    message = str(caught.value)
    assert "kubernetes.io/basic-auth" in message
    assert 'ops.mailscore.com/credentials: "true"' in message
    assert "backup-user" not in message and "s3cret" not in message


def test_a_basic_auth_secret_is_read_with_its_fixed_keys() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "u", "password": "p"}, type="kubernetes.io/basic-auth")
    ref = REF.model_copy(
        update={"credentials": REF.credentials.model_copy(update={"password_key": "password"})}
    )
    server = database.server(kube, NS, ref)
    assert (server.user, server.password) == ("u", "p")


def test_a_basic_auth_secret_read_with_other_keys_is_refused() -> None:
    kube = FakeKube()
    kube.add_secret("pg", {"username": "u", "pw": "p"}, type="kubernetes.io/basic-auth")
    with pytest.raises(database.SecretNotOptedIn, match="'pw'"):
        database.server(kube, NS, REF)


def test_the_label_opts_in_a_secret_of_any_type() -> None:
    kube = FakeKube()
    kube.add_secret(
        "pg", {"username": "u", "pw": "p"}, type="Opaque",
        labels={"ops.mailscore.com/credentials": "true"},
    )  # fmt: skip
    assert database.server(kube, NS, REF).password == "p"


def test_a_label_other_than_true_does_not_opt_in() -> None:
    kube = FakeKube()
    kube.add_secret(
        "pg", {"username": "u", "pw": "p"}, labels={"ops.mailscore.com/credentials": "yes"}
    )
    with pytest.raises(database.SecretNotOptedIn):
        database.server(kube, NS, REF)


def test_host_as_written_and_require_auth_any() -> None:
    kube = FakeKube()
    kube.add_credentials("pg", {"username": "u", "pw": "p"})
    ref = REF.model_copy(update={"host_resolution": "AsWritten", "require_auth": "any"})
    server = database.server(kube, NS, ref)
    assert (server.host, server.require_auth) == ("postgres", None)


@pytest.mark.parametrize("host", ["127.0.0.1", "postgres.db.svc", "db.example.com"])
def test_addresses_and_dotted_names_stay(host: str) -> None:
    kube = FakeKube()
    kube.add_credentials("pg", {"username": "u", "pw": "p"})
    assert database.server(kube, NS, REF.model_copy(update={"host": host})).host == host


def test_a_ca_is_read_and_makes_the_connection_verify_full() -> None:
    kube = FakeKube()
    kube.add_credentials("pg", {"username": "u", "pw": "p"})
    kube.add_secret("pg-ca", {"ca.crt": "-----BEGIN CERTIFICATE-----\n..."})
    ref = PostgresRef.model_validate(
        {**REF.model_dump(by_alias=True, exclude={"ssl_mode"}), "ca": {"name": "pg-ca"}}
    )
    server = database.server(kube, NS, ref)
    assert server.sslmode == "verify-full"
    assert server.ca_pem is not None and server.ca_pem.startswith("-----BEGIN CERTIFICATE")
    assert "BEGIN CERTIFICATE" not in repr(server)


def test_a_missing_ca_names_the_secret() -> None:
    kube = FakeKube()
    kube.add_credentials("pg", {"username": "u", "pw": "p"})
    ref = PostgresRef.model_validate({**REF.model_dump(by_alias=True), "ca": {"name": "pg-ca"}})
    with pytest.raises(database.CredentialsError, match="pg-ca"):
        database.server(kube, NS, ref)
