"""A PostgreSQL database as the API names it: where it is, how to log in, its row counts.

The same models serve every kind that talks to PostgreSQL (a DatabaseBackup, a
DatabaseRestore, a HealthReport next), so each kind reads another kind's objects with
them too, without importing that kind: a restore parses a backup's `spec.postgres` and
`status.tables` with these. Pure: the login itself (the Secret) is core.database's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from . import pglogin
from .destination import SecretKeyRef
from .fields import GoDuration, ObjectName
from .model import ApiModel

__all__ = [
    "Credentials",
    "DatabaseName",
    "HostResolution",
    "PostgresConnection",
    "PostgresRef",
    "SslMode",
    "Table",
    "TableRows",
]

Table = tuple[str, str]
"""(schema, table)"""

DatabaseName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$-]*$",
    ),
]
"""A PostgreSQL database name: letters, digits, _, $ and -, at most 63 (NAMEDATALEN - 1)."""


class SslMode(StrEnum):
    DISABLE = "disable"
    ALLOW = "allow"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


class HostResolution(StrEnum):
    SERVICE = "Service"
    """A short host (no dot) is the Service of that name in the object's namespace."""
    AS_WRITTEN = "AsWritten"
    """The host is handed to the resolver as written (the operator's own namespace)."""


_AUTH = r"!?(password|md5|gss|sspi|scram-sha-256|oauth|none)"
REQUIRE_AUTH_PATTERN = rf"^(any|{_AUTH}(,{_AUTH})*)$"


class Credentials(ApiModel):
    """A Secret in this namespace with the user name and password (read with `get` only)."""

    secret_name: ObjectName
    """Name of the Secret."""
    username_key: Annotated[str, Field(min_length=1, max_length=253)] = "username"
    """Key of the user name in the Secret."""
    password_key: Annotated[str, Field(min_length=1, max_length=253)] = "password"
    """Key of the password in the Secret. It never appears on a command line or in a log."""


class PostgresConnection(ApiModel):
    """A PostgreSQL database and how to log in: what every kind that talks to one names."""

    host: Annotated[
        str,
        Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"),
    ]
    """Host name or IP address, e.g. the Service `postgres` or `postgres.db.svc`. A short
    name (no dot) is the Service in this object's namespace (see hostResolution)."""
    host_resolution: HostResolution = HostResolution.SERVICE
    """Service: a short host means `host.<this namespace>.svc`; AsWritten: resolve it as
    written (in the operator's namespace). IP addresses and names with a dot never change."""
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    """TCP port."""
    database: DatabaseName
    """The database, e.g. mail_score (letters, digits, _, $ and -; at most 63)."""
    ssl_mode: SslMode | None = None
    """libpq sslmode: disable, allow, prefer, require, verify-ca or verify-full. Unset:
    verify-full when `ca` is given, else prefer."""
    ca: SecretKeyRef | None = None
    """A CA certificate (PEM, a Secret's key, default ca.crt) the server's certificate must
    chain to; with it sslMode defaults to verify-full (the host name is checked too)."""
    require_auth: Annotated[str, Field(max_length=200, pattern=REQUIRE_AUTH_PATTERN)] = (
        "scram-sha-256"
    )
    """libpq require_auth: which authentication methods the server may ask for before the
    operator gives up without sending the password. The default, scram-sha-256, never lets
    the password out in clear text (nor as MD5). A comma-separated list of password, md5,
    gss, sspi, scram-sha-256, oauth, none (each may be negated with !), or `any` for no
    requirement."""
    credentials: Credentials
    """Where the user name and password are. The Secret must opt in: type
    kubernetes.io/basic-auth, or the label ops.mailscore.com/credentials: "true"."""

    @property
    def sslmode(self) -> str:
        """The sslmode to use: as written, else verify-full with a CA, else prefer."""
        return pglogin.ssl_mode(self.ssl_mode.value if self.ssl_mode else None, self.ca is not None)

    @property
    def where(self) -> str:
        """For messages: `mail_score on postgres:5432`."""
        return f"{self.database} on {self.host}:{self.port}"


class PostgresRef(PostgresConnection):
    """A PostgreSQL database and how to reach it."""

    lock_timeout: GoDuration = "1m"
    """How long a dump (and the operator's own queries) waits for a table lock another
    session holds, e.g. a migration's ALTER TABLE, before it fails saying so."""
    timeout: GoDuration = "6h"
    """How long one pg_dump, one verification or one pg_restore of this database may run
    before it is stopped and the operation fails with reason TimedOut."""

    def on(self, database: str) -> PostgresRef:
        """The same server and login, another database."""
        return self.model_copy(update={"database": database})


class TableRows(ApiModel):
    """Rows of one table, counted in the snapshot the dump read."""

    schema_: Annotated[str, Field(alias="schema")]
    """Schema, e.g. public."""
    name: str
    """Table."""
    rows: int
    """Exact row count."""

    @property
    def table(self) -> Table:
        return (self.schema_, self.name)
