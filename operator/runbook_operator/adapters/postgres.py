"""PostgreSQL: consistent dumps with exact row counts, restores, scratch databases.

`pg_dump` and `pg_restore` run through `pgexec` (an argument list, the password
in a private passfile, never on a command line); messages that leave this module
have the password redacted.

A dump and its row counts see the same data: a REPEATABLE READ transaction
exports its snapshot, `pg_dump --snapshot` reads that snapshot, and the counts
are taken inside the exporting transaction while pg_dump runs.

Restores run in one transaction (`--single-transaction --exit-on-error`), so a
restore that fails or is interrupted (the operator killed, the pipe broken)
leaves the database as it was.

Exceptions (each has a `reason` for conditions and events):
    PostgresError
     +-- ServerUnreachable
     +-- AuthenticationFailed
     +-- InsecureAuthentication (the server asked for a method require_auth does not allow)
     +-- DatabaseNotFound
     +-- PermissionDenied
     +-- ToolMissing          (pg_dump / pg_restore not installed)
     +-- ToolTooOld           (pg_dump older than the server)
     +-- LockTimeout          (a table lock held by another session was not granted in time)
     +-- DumpFailed
     +-- RestoreFailed
     +-- TimedOut             (a dump or restore ran past its deadline and was stopped)
     +-- Cancelled            (the object was deleted, or the operator is stopping)

Every connection (ours and the tools') has TCP keepalives, so a server that vanished
is noticed in about a minute instead of never; ours wait at most `Server.lock_timeout`
for a lock, and pg_dump the same (`--lock-wait-timeout`): a dump stuck behind a table
lock fails plainly, with the reason. pg_restore's archive sets its own lock_timeout
(0), so a restore is bounded by its deadline (pgexec.Deadline).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from . import pgexec
from .pgexec import Cancel, Deadline, Tools

__all__ = [
    "AuthenticationFailed",
    "Cancel",
    "Cancelled",
    "DatabaseNotFound",
    "Deadline",
    "DumpFailed",
    "DumpInfo",
    "InsecureAuthentication",
    "LockTimeout",
    "PermissionDenied",
    "PostgresError",
    "RestoreFailed",
    "Server",
    "ServerUnreachable",
    "Table",
    "TimedOut",
    "ToolMissing",
    "ToolTooOld",
    "Tools",
    "count_rows",
    "create_database",
    "database_exists",
    "drop_database",
    "dump",
    "find_tools",
    "list_archive",
    "preflight",
    "restore",
]

CHUNK = 1024 * 1024
Table = tuple[str, str]
"""(schema, table)"""


class PostgresError(Exception):
    reason = "DatabaseError"


class ServerUnreachable(PostgresError):
    reason = "ServerUnreachable"


class AuthenticationFailed(PostgresError):
    reason = "AuthenticationFailed"


class InsecureAuthentication(PostgresError):
    """The server asked for an authentication method `require_auth` does not allow (e.g.
    the password in clear text): libpq gave up without sending the password."""

    reason = "InsecureAuthentication"


class DatabaseNotFound(PostgresError):
    reason = "DatabaseNotFound"


class PermissionDenied(PostgresError):
    reason = "PermissionDenied"


class ToolMissing(PostgresError):
    reason = "PgDumpMissing"


class ToolTooOld(PostgresError):
    reason = "PgDumpTooOld"


class LockTimeout(PostgresError):
    reason = "LockTimeout"


class DumpFailed(PostgresError):
    reason = "DumpFailed"


class RestoreFailed(PostgresError):
    reason = "RestoreFailed"


class TimedOut(PostgresError):
    reason = "TimedOut"


class Cancelled(PostgresError):
    reason = "Cancelled"


KEEPALIVES = "keepalives=1 keepalives_idle=30 keepalives_interval=10 keepalives_count=3"
"""libpq TCP keepalives: a silent peer is given up after about 30 + 3 x 10 s."""


@dataclass(frozen=True)
class Server:
    """Where to connect, and as whom. The password never appears in repr()."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    sslmode: str = "prefer"
    ca_pem: str | None = field(default=None, repr=False)
    """The CA certificate (PEM) the server's must chain to (libpq sslrootcert), if any."""
    require_auth: str | None = "scram-sha-256"
    """libpq require_auth (None: any method): what the server may ask for before the
    password is sent. Enforced by psycopg's libpq on every connection of ours; by
    pg_dump/pg_restore only when their libpq is 16 or newer (see `preflight`)."""
    lock_timeout: float = 60.0
    """Seconds a statement (a row count, pg_dump's table locks) waits for a lock."""

    def on(self, database: str) -> Server:
        return replace(self, database=database)

    def redact(self, text: str) -> str:
        return pgexec.redact(text, self.password, self.user)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def lock_timeout_ms(self) -> int:
        return max(1, round(self.lock_timeout * 1000))


@dataclass(frozen=True)
class DumpInfo:
    server_version: str
    pg_dump_version: str
    tables: dict[Table, int]
    """Rows per table, counted in the snapshot pg_dump read."""


# --- tools -------------------------------------------------------------------


def find_tools() -> Tools:
    """pg_dump and pg_restore from PATH, and their version."""
    try:
        return pgexec.find_tools()
    except pgexec.NotInstalled as exc:
        raise ToolMissing(str(exc)) from None


# --- connections -------------------------------------------------------------


def _classify(server: Server, exc: psycopg.Error) -> PostgresError:
    detail = " ".join(server.redact(str(exc)).split())
    low = detail.lower()
    where = f"PostgreSQL at {server.address}"
    if "authentication method requirement" in low:
        return InsecureAuthentication(
            f"{where} asked for an authentication method that requireAuth "
            f"({server.require_auth}) does not allow, so the password was not sent; make "
            f"the server use scram-sha-256 (password_encryption and pg_hba.conf), or relax "
            f"spec.postgres.requireAuth: {detail}"
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return LockTimeout(f"{where}: {_locked(server)}: {detail}")
    if "password authentication failed" in low or "pg_hba.conf" in low:
        return AuthenticationFailed(
            f"{where} rejected the credentials (the user name and password in the Secret): {detail}"
        )
    if "does not exist" in low and "database" in low:
        return DatabaseNotFound(f"{where} has no database {server.database!r}: {detail}")
    if "permission denied" in low:
        return PermissionDenied(f"{where}: the Secret's user lacks a privilege: {detail}")
    if isinstance(exc, psycopg.OperationalError):
        return ServerUnreachable(f"cannot reach {where}: {detail}")
    return PostgresError(f"{where}: {detail}")


def _locked(server: Server) -> str:
    return (
        f"a table lock another session holds (a migration, a long transaction) was not "
        f"granted within {server.lock_timeout:g}s (lockTimeout), so nothing was dumped"
    )


def _conninfo(server: Server, root_cert: str | None = None) -> str:
    """Keepalives, require_auth unless the spec said `any`, and the CA file if any."""
    conninfo = KEEPALIVES
    if server.require_auth:
        conninfo = make_conninfo(conninfo, require_auth=server.require_auth)
    if root_cert:
        conninfo = make_conninfo(conninfo, sslrootcert=root_cert)
    return conninfo


@contextmanager
def _root_cert(server: Server) -> Iterator[str | None]:
    """The CA as a file libpq can read, for as long as a connection is being made."""
    if not server.ca_pem:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="runbook-pg-ca-") as directory:
        path = Path(directory) / "root.crt"
        path.write_text(server.ca_pem)
        yield str(path)


def connect(server: Server, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        with _root_cert(server) as root_cert:
            return _connect(server, root_cert, autocommit)
    except psycopg.Error as exc:
        raise _classify(server, exc) from None


def _connect(server: Server, root_cert: str | None, autocommit: bool) -> psycopg.Connection[Any]:
    return psycopg.connect(
        _conninfo(server, root_cert),
        host=server.host,
        port=server.port,
        dbname=server.database,
        user=server.user,
        password=server.password,
        sslmode=server.sslmode,
        connect_timeout=pgexec.CONNECT_TIMEOUT,
        application_name=pgexec.APPLICATION,
        autocommit=autocommit,
        options=f"-c lock_timeout={server.lock_timeout_ms}",
    )


def preflight(server: Server) -> None:
    """Log in once with psycopg's libpq, which enforces `require_auth`, before a tool
    does: a server that asks for the password in clear text (or by any method not
    allowed) fails here, and the password was never sent. pg_dump/pg_restore older than
    16 link a libpq without require_auth, so this check is what guards them."""
    with connect(server, autocommit=True):
        pass


@contextmanager
def _errors(server: Server) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as exc:
        raise _classify(server, exc) from None


_TABLES = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def _list_tables(conn: psycopg.Connection[Any]) -> list[Table]:
    return [(str(s), str(t)) for s, t in conn.execute(_TABLES).fetchall()]


def _count(conn: psycopg.Connection[Any], table: Table) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def server_version(conn: psycopg.Connection[Any]) -> tuple[str, int]:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int"
    ).fetchone()
    assert row is not None
    return str(row[0]).split(" ")[0], int(row[1]) // 10000


def count_rows(server: Server, tables: Iterable[Table]) -> dict[Table, int | None]:
    """Rows per table now; None for a table that does not exist."""
    out: dict[Table, int | None] = {}
    with connect(server, autocommit=True) as conn, _errors(server):
        for table in tables:
            try:
                out[table] = _count(conn, table)
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                out[table] = None
    return out


def _maintenance(server: Server) -> psycopg.Connection[Any]:
    """A connection for CREATE/DROP DATABASE: to the server's database, else `postgres`."""
    last: PostgresError | None = None
    for name in dict.fromkeys((server.database, "postgres", "template1")):
        try:
            return connect(server.on(name), autocommit=True)
        except DatabaseNotFound as exc:
            last = exc
    assert last is not None
    raise last


def database_exists(server: Server, name: str) -> bool:
    with _maintenance(server) as conn, _errors(server):
        row = conn.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def create_database(server: Server, name: str) -> bool:
    """Create an empty database (from template0, as pg_restore expects); False if it exists."""
    if database_exists(server, name):
        return False
    with _maintenance(server) as conn, _errors(server):
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return True


def drop_database(server: Server, name: str) -> bool:
    """Drop a database (closing its sessions); False if there was none."""
    if not database_exists(server, name):
        return False
    with _maintenance(server.on("postgres")) as conn, _errors(server):
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    return True


def _connection_args(server: Server, options: str = "") -> list[str]:
    """Where and as whom (never the password), the database as a conninfo string so the
    tools get the keepalives (and any server `options`) too."""
    conninfo = make_conninfo(KEEPALIVES, dbname=server.database)
    if options:
        conninfo = make_conninfo(conninfo, options=options)
    return [
        "--no-password",
        f"--host={server.host}",
        f"--port={server.port}",
        f"--dbname={conninfo}",
    ]


def _watch_client(major: int) -> str:
    """Server options that end a killed tool's session at once, even while it waits for
    a lock (PostgreSQL 14 and newer; older servers refuse the setting)."""
    return "-c client_connection_check_interval=2000" if major >= 14 else ""


def _session(server: Server) -> AbstractContextManager[pgexec.Session]:
    """The tools' private session: passfile, PGUSER, sslmode, the CA file and PGREQUIREAUTH
    (which a libpq older than 16 ignores: `preflight`, or the dump's own connection, went
    first)."""
    return pgexec.session(
        server.password, server.sslmode, server.user, server.require_auth, server.ca_pem
    )


# --- dump --------------------------------------------------------------------


def dump(server: Server, write: Callable[[bytes], None], cancel: Cancel) -> DumpInfo:
    """pg_dump (custom format) into `write`, with row counts from the same snapshot."""
    tools = find_tools()
    with connect(server) as conn, _errors(server):
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        version, major = server_version(conn)
        if tools.major < major:
            raise ToolTooOld(
                f"pg_dump {tools.version} cannot dump PostgreSQL {version}: the operator's "
                f"pg_dump must be version {major} or newer"
            )
        row = conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
        assert row is not None
        tables = _list_tables(conn)
        args = [tools.pg_dump, "--format=custom", f"--snapshot={row[0]}"]
        args.append(f"--lock-wait-timeout={server.lock_timeout_ms}")
        with _session(server) as child:
            proc, stderr = child.spawn(
                args + _connection_args(server, _watch_client(major)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
            counts = _CountInBackground(conn, tables)
            try:
                with pgexec.killed_on(cancel, proc):
                    assert proc.stdout is not None
                    while chunk := proc.stdout.read(CHUNK):
                        write(chunk)
                    child.finish(proc, stderr, cancel, "pg_dump")
            except BaseException as exc:
                proc.kill()
                proc.wait()
                counts.abandon()
                if isinstance(exc, pgexec.Exited) and "LOCK TABLE" in exc.tail:
                    raise LockTimeout(f"{_locked(server)}: {exc}") from None
                raise _process_error(exc, DumpFailed) from None
        counts.join()
        return DumpInfo(version, tools.version, counts.result())


def _process_error(exc: BaseException, failed: type[PostgresError]) -> BaseException:
    """pgexec's errors as ours; anything else (e.g. the store is full) unchanged."""
    if isinstance(exc, pgexec.TimedOut):
        return TimedOut(str(exc))
    if isinstance(exc, pgexec.Stopped):
        return Cancelled(str(exc))
    if isinstance(exc, pgexec.Exited):
        return failed(str(exc))
    return exc


class _CountInBackground:
    """Row counts inside the snapshot's transaction, while the main thread pumps pg_dump."""

    def __init__(self, conn: psycopg.Connection[Any], tables: list[Table]) -> None:
        self.conn = conn
        self.counts: dict[Table, int] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(conn, tables), name="pg-row-counts", daemon=True
        )
        self.thread.start()

    def _run(self, conn: psycopg.Connection[Any], tables: list[Table]) -> None:
        try:
            for table in tables:
                self.counts[table] = _count(conn, table)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join()

    def abandon(self) -> None:
        """Stop counting: cancel the query in flight (it may wait for a lock) and wait."""
        self.conn.cancel()
        self.thread.join()

    def result(self) -> dict[Table, int]:
        if self.error is not None:
            raise self.error
        return self.counts


# --- restore -------------------------------------------------------------------


def restore(
    server: Server,
    chunks: Iterable[bytes],
    cancel: Cancel,
    *,
    clean: bool,
    keep_owners: bool = True,
) -> None:
    """pg_restore the archive into `server.database`, all or nothing.

    clean: drop the archive's objects first (restoring over an existing database).
    keep_owners: False restores everything as the connecting user (scratch databases).
    """
    tools = find_tools()
    args = [tools.pg_restore, "--single-transaction", "--exit-on-error"]
    if clean:
        args += ["--clean", "--if-exists"]
    if not keep_owners:
        args += ["--no-owner", "--no-privileges"]
    args += _connection_args(server)
    preflight(server)
    with _session(server) as child:
        try:
            child.run_fed(args, chunks, cancel, stdout=None)
        except (pgexec.Stopped, pgexec.Exited) as exc:
            raise _restore_failure(exc) from None


def _restore_failure(exc: pgexec.Stopped | pgexec.Exited) -> PostgresError:
    message = str(exc)
    low = message.lower()
    if isinstance(exc, pgexec.TimedOut):
        return TimedOut(message)
    if isinstance(exc, pgexec.Stopped):
        return Cancelled(message)
    if "password authentication failed" in low or "pg_hba.conf" in low:
        return AuthenticationFailed(message)
    if "could not connect" in low or "connection to server" in low:
        return ServerUnreachable(message)
    return RestoreFailed(message)


def list_archive(chunks: Iterable[bytes], cancel: Cancel) -> int:
    """`pg_restore --list` of the archive: how many entries its table of contents has."""
    tools = find_tools()
    with pgexec.session("", "disable") as child:
        listing = child.directory / "list"
        try:
            child.run_fed([tools.pg_restore, "--list"], chunks, cancel, stdout=listing)
        except pgexec.TimedOut as exc:
            raise TimedOut(str(exc)) from None
        except pgexec.Stopped as exc:
            raise Cancelled(str(exc)) from None
        except pgexec.Exited as exc:
            raise RestoreFailed(f"the archive is not readable: {exc}") from None
        lines = listing.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if line.strip() and not line.startswith(";"))
