"""Which Secrets may log in to a database, how, and where a short host points."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runbook_operator.core import pglogin
from runbook_operator.core.postgres import PostgresConnection

LABEL = {"ops.mailscore.com/credentials": "true"}
BASIC = "kubernetes.io/basic-auth"


def refusal(
    kind: str | None, labels: dict[str, str] | None, user: str = "username", pw: str = "password"
) -> str | None:
    return pglogin.not_opted_in("pg", kind, labels, user, pw)


def test_basic_auth_with_its_own_keys_may_be_used() -> None:
    assert refusal(BASIC, None) is None


def test_the_label_lets_any_type_and_any_keys_be_used() -> None:
    assert refusal("Opaque", LABEL, "token", "key") is None
    assert refusal(None, LABEL) is None
    assert refusal(BASIC, LABEL, "user", "pw") is None


@pytest.mark.parametrize("kind", ["Opaque", None, "kubernetes.io/service-account-token", ""])
def test_anything_else_is_refused_saying_what_to_add(kind: str | None) -> None:
    message = refusal(kind, {"app": "postgres"})
    assert message is not None
    assert message.startswith("Secret pg has not opted in")
    assert BASIC in message and 'ops.mailscore.com/credentials: "true"' in message


@pytest.mark.parametrize("value", ["false", "True", "1", "yes", ""])
def test_only_the_label_value_true_counts(value: str) -> None:
    assert refusal("Opaque", {"ops.mailscore.com/credentials": value}) is not None


@pytest.mark.parametrize(("user", "pw"), [("token", "password"), ("username", "pw"), ("a", "b")])
def test_basic_auth_is_read_only_with_username_and_password(user: str, pw: str) -> None:
    message = refusal(BASIC, None, user, pw)
    assert message is not None
    assert "'username' and 'password'" in message and repr(user) in message


def test_require_auth_defaults_to_scram() -> None:
    assert pglogin.require_auth(None) == "scram-sha-256"
    assert pglogin.require_auth("") == "scram-sha-256"
    assert pglogin.require_auth("scram-sha-256") == "scram-sha-256"


def test_require_auth_any_means_no_requirement() -> None:
    assert pglogin.require_auth("any") is None


def test_require_auth_passes_libpq_lists_through() -> None:
    assert pglogin.require_auth("scram-sha-256,md5") == "scram-sha-256,md5"
    assert pglogin.require_auth("!password") == "!password"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("postgres", "postgres.shop.svc"),
        ("pg-primary", "pg-primary.shop.svc"),
        ("localhost", "localhost.shop.svc"),
        ("postgres.db", "postgres.db"),
        ("postgres.db.svc", "postgres.db.svc"),
        ("postgres.db.svc.cluster.local", "postgres.db.svc.cluster.local"),
        ("db.example.com", "db.example.com"),
        ("127.0.0.1", "127.0.0.1"),
        ("10.0.0.7", "10.0.0.7"),
        ("::1", "::1"),
    ],
)
def test_a_short_host_is_a_service_in_the_objects_namespace(host: str, expected: str) -> None:
    assert pglogin.resolve_host(host, "shop") == expected


def test_as_written_keeps_a_short_host() -> None:
    assert pglogin.resolve_host("postgres", "shop", as_written=True) == "postgres"


def _conn(**extra: object) -> PostgresConnection:
    return PostgresConnection.model_validate(
        {"host": "postgres", "database": "d", "credentials": {"secretName": "pg"}, **extra}
    )


def test_the_model_defaults_are_the_safe_ones() -> None:
    conn = _conn()
    assert conn.require_auth == "scram-sha-256"
    assert conn.host_resolution.value == "Service"


@pytest.mark.parametrize(
    "value", ["any", "password", "md5,scram-sha-256", "!password", "!password,!md5", "none", "gss"]
)
def test_the_schema_takes_libpq_values(value: str) -> None:
    assert _conn(requireAuth=value).require_auth == value


@pytest.mark.parametrize("value", ["", "scram", "any,md5", "scram-sha-256;", "md5 ,gss", "!any"])
def test_the_schema_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValidationError):
        _conn(requireAuth=value)


def test_the_schema_refuses_an_unknown_host_resolution() -> None:
    with pytest.raises(ValidationError):
        _conn(hostResolution="Cluster")


@pytest.mark.parametrize(
    ("written", "has_ca", "expected"),
    [
        (None, False, "prefer"),
        (None, True, "verify-full"),
        ("disable", True, "disable"),
        ("require", False, "require"),
        ("verify-ca", True, "verify-ca"),
        ("", True, "verify-full"),
    ],
)
def test_ssl_mode(written: str | None, has_ca: bool, expected: str) -> None:
    assert pglogin.ssl_mode(written, has_ca) == expected
