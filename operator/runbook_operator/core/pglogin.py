"""How the operator may log in to a PostgreSQL database: pure decisions, no I/O.

Whoever may create a DatabaseBackup names a Secret, its keys, a host and a port; these
rules keep that from handing out the namespace's Secrets or sending a password to a
server that asks for it in clear text:

- a Secret is used as database credentials only when it opted in: it is of type
  `kubernetes.io/basic-auth` (read with its fixed keys `username` and `password`), or it
  carries the label `ops.mailscore.com/credentials: "true"` (any keys);
- libpq's `require_auth` is `scram-sha-256` unless the spec relaxes it;
- with a CA given, sslmode is verify-full unless the spec says otherwise;
- a short host (no dot) is a Service in the object's own namespace, never the
  operator's.

core.database applies them around the I/O (reading the Secret, connecting).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .model import GROUP

__all__ = [
    "BASIC_AUTH",
    "BASIC_AUTH_KEYS",
    "CREDENTIALS_LABEL",
    "DEFAULT_REQUIRE_AUTH",
    "REQUIRE_AUTH_ANY",
    "REQUIRE_AUTH_METHODS",
    "not_opted_in",
    "require_auth",
    "resolve_host",
    "ssl_mode",
]

BASIC_AUTH = "kubernetes.io/basic-auth"
"""The Secret type Kubernetes has for a user name and password."""
BASIC_AUTH_KEYS = ("username", "password")
"""A basic-auth Secret's keys: the only ones read from it."""
CREDENTIALS_LABEL = f"{GROUP}/credentials"
"""On a Secret of any type: "true" lets the operator use it as database credentials."""

REQUIRE_AUTH_METHODS = ("password", "md5", "gss", "sspi", "scram-sha-256", "oauth", "none")
"""What libpq's require_auth accepts (each may be negated with `!`)."""
DEFAULT_REQUIRE_AUTH = "scram-sha-256"
"""The password goes out only inside a SCRAM exchange, never in clear text or as MD5."""
REQUIRE_AUTH_ANY = "any"
"""Spelled in the spec to turn the requirement off (libpq's own default)."""


def not_opted_in(
    secret: str,
    secret_type: str | None,
    labels: Mapping[str, str] | None,
    username_key: str,
    password_key: str,
) -> str | None:
    """Why the Secret may not be used as database credentials, in words; None when it may.

    The label wins over the type: a labelled Secret may be read with any keys its
    owner named; an unlabelled basic-auth Secret only with `username` and `password`.
    """
    if (labels or {}).get(CREDENTIALS_LABEL) == "true":
        return None
    label = f'the label {CREDENTIALS_LABEL}: "true"'
    if secret_type == BASIC_AUTH:
        if (username_key, password_key) == BASIC_AUTH_KEYS:
            return None
        return (
            f"Secret {secret} is of type {BASIC_AUTH}, which is read only with its keys "
            f"'username' and 'password' (the spec names {username_key!r} and "
            f"{password_key!r}); name those keys, or add {label} to the Secret"
        )
    return (
        f"Secret {secret} has not opted in to be used as database credentials: make it "
        f"of type {BASIC_AUTH} (keys 'username' and 'password'), or add {label} to it"
    )


def require_auth(spec_value: str | None) -> str | None:
    """libpq's require_auth for the spec's `requireAuth`: scram-sha-256 when unset, None
    (no requirement) for `any`, else the value as written (the schema checked it)."""
    if spec_value is None or not spec_value.strip():
        return DEFAULT_REQUIRE_AUTH
    if spec_value.strip() == REQUIRE_AUTH_ANY:
        return None
    return spec_value.strip()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_host(host: str, namespace: str, *, as_written: bool = False) -> str:
    """The host to connect to: a short name (no dot) is the Service of that name in
    `namespace` (`host.namespace.svc`), so it never resolves in the operator's own
    namespace. IP addresses, names with a dot, and any host when `as_written`, stay."""
    if as_written or "." in host or _is_ip(host):
        return host
    return f"{host}.{namespace}.svc"


def ssl_mode(spec_value: str | None, has_ca: bool) -> str:
    """libpq sslmode: as the spec says; unset, verify-full when a CA is given (the server's
    certificate and its host name are checked), else prefer."""
    if spec_value:
        return spec_value
    return "verify-full" if has_ca else "prefer"
