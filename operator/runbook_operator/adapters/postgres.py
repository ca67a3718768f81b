"""PostgreSQL: consistent dumps with exact row counts, restores, scratch databases.

`pg_dump` and `pg_restore` are run directly (an argument list, never a shell)
from the operator's PATH. The password reaches them through a passfile
(mode 0600, in a private temporary directory, removed afterwards), never
through the command line; messages that leave this module have it redacted.

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
     +-- DatabaseNotFound
     +-- PermissionDenied
     +-- ToolMissing          (pg_dump / pg_restore not installed)
     +-- ToolTooOld           (pg_dump older than the server)
     +-- DumpFailed
     +-- RestoreFailed
     +-- Cancelled            (the object was deleted, or the operator is stopping)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

__all__ = [
    "AuthenticationFailed",
    "Cancel",
    "Cancelled",
    "DatabaseNotFound",
    "DumpFailed",
    "DumpInfo",
    "PermissionDenied",
    "PostgresError",
    "RestoreFailed",
    "Server",
    "ServerUnreachable",
    "Table",
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
    "restore",
]

APPLICATION = "runbook-operator"
CONNECT_TIMEOUT = 10
CHUNK = 1024 * 1024
Table = tuple[str, str]
"""(schema, table)"""


class PostgresError(Exception):
    reason = "DatabaseError"


class ServerUnreachable(PostgresError):
    reason = "ServerUnreachable"


class AuthenticationFailed(PostgresError):
    reason = "AuthenticationFailed"


class DatabaseNotFound(PostgresError):
    reason = "DatabaseNotFound"


class PermissionDenied(PostgresError):
    reason = "PermissionDenied"


class ToolMissing(PostgresError):
    reason = "PgDumpMissing"


class ToolTooOld(PostgresError):
    reason = "PgDumpTooOld"


class DumpFailed(PostgresError):
    reason = "DumpFailed"


class RestoreFailed(PostgresError):
    reason = "RestoreFailed"


class Cancelled(PostgresError):
    reason = "Cancelled"


class Cancel(Protocol):
    """Set when the work must stop: a threading.Event, or Kopf's `stopped` flag."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Server:
    """Where to connect, and as whom. The password never appears in repr()."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)
    sslmode: str = "prefer"

    def on(self, database: str) -> Server:
        return replace(self, database=database)

    def redact(self, text: str) -> str:
        return text.replace(self.password, "[redacted]") if self.password else text

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Tools:
    pg_dump: str
    pg_restore: str
    version: str
    """e.g. "15.18"."""
    major: int


@dataclass(frozen=True)
class DumpInfo:
    server_version: str
    pg_dump_version: str
    tables: dict[Table, int]
    """Rows per table, counted in the snapshot pg_dump read."""


# --- tools -------------------------------------------------------------------

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def find_tools() -> Tools:
    """pg_dump and pg_restore from PATH, and their version."""
    found = {name: shutil.which(name) for name in ("pg_dump", "pg_restore")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ToolMissing(
            f"{' and '.join(missing)} not found on the operator's PATH; "
            "install the PostgreSQL client tools in the operator's image"
        )
    pg_dump, pg_restore = str(found["pg_dump"]), str(found["pg_restore"])
    try:
        out = subprocess.run(
            [pg_dump, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError as exc:
        raise ToolMissing(f"cannot run {pg_dump}: {exc}") from exc
    match = _VERSION_RE.search(out)
    if match is None:
        raise ToolMissing(f"{pg_dump} --version printed no PostgreSQL version: {out.strip()!r}")
    major, minor = match.group(1), match.group(2)
    return Tools(pg_dump, pg_restore, f"{major}.{minor}" if minor else major, int(major))


# --- connections -------------------------------------------------------------


def _classify(server: Server, exc: psycopg.Error) -> PostgresError:
    detail = " ".join(server.redact(str(exc)).split())
    low = detail.lower()
    where = f"PostgreSQL at {server.address}"
    if "password authentication failed" in low or "pg_hba.conf" in low:
        return AuthenticationFailed(
            f"{where} rejected the credentials of user {server.user!r}: {detail}"
        )
    if "does not exist" in low and "database" in low:
        return DatabaseNotFound(f"{where} has no database {server.database!r}: {detail}")
    if "permission denied" in low:
        return PermissionDenied(f"{where}: user {server.user!r} lacks a privilege: {detail}")
    if isinstance(exc, psycopg.OperationalError):
        return ServerUnreachable(f"cannot reach {where}: {detail}")
    return PostgresError(f"{where}: {detail}")


def connect(server: Server, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            host=server.host,
            port=server.port,
            dbname=server.database,
            user=server.user,
            password=server.password,
            sslmode=server.sslmode,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=APPLICATION,
            autocommit=autocommit,
        )
    except psycopg.Error as exc:
        raise _classify(server, exc) from None


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


# --- child processes -----------------------------------------------------------


@contextmanager
def _private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="runbook-pg-"))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _child_env(server: Server, private: Path) -> dict[str, str]:
    """The environment of pg_dump/pg_restore: ours without PG*, plus a passfile."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGSSLMODE=server.sslmode,
        PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        PGAPPNAME=APPLICATION,
    )
    if "\n" in server.password or "\r" in server.password:
        env["PGPASSWORD"] = server.password  # a passfile cannot hold it; the child's env only
        return env
    escaped = server.password.replace("\\", "\\\\").replace(":", "\\:")
    passfile = private / "pgpass"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"*:*:*:*:{escaped}\n")
    env["PGPASSFILE"] = str(passfile)
    return env


def _connection_args(server: Server) -> list[str]:
    return [
        "--no-password",
        f"--host={server.host}",
        f"--port={server.port}",
        f"--username={server.user}",
        f"--dbname={server.database}",
    ]


@contextmanager
def _killed_on(cancel: Cancel, proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Kill `proc` as soon as `cancel` is set, while the block runs."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if cancel.is_set():
                proc.kill()
                return

    watcher = threading.Thread(target=watch, name="pg-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _stderr_tail(server: Server, path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return server.redact(" ".join(tail))


def _finish(
    proc: subprocess.Popen[bytes], cancel: Cancel, server: Server, stderr: Path, what: str
) -> str:
    """Wait for the child; raise Cancelled or `what` failed; return its stderr tail."""
    code = proc.wait()
    if cancel.is_set():
        raise Cancelled(f"{what} was stopped")
    tail = _stderr_tail(server, stderr)
    if code != 0:
        raise PostgresError(f"{what} exited with code {code}: {tail or 'no message'}")
    return tail


# --- dump --------------------------------------------------------------------


def dump(server: Server, write: Callable[[bytes], None], cancel: Cancel) -> DumpInfo:
    """pg_dump (custom format) into `write`, with row counts from the same snapshot."""
    tools = find_tools()
    with connect(server) as conn, _errors(server), _private_dir() as private:
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
        snapshot = str(row[0])
        tables = _list_tables(conn)
        args = [tools.pg_dump, "--format=custom", f"--snapshot={snapshot}"]
        args += _connection_args(server)
        stderr = private / "stderr"
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=_child_env(server, private),
            )
        counts = _CountInBackground(conn, tables)
        try:
            with _killed_on(cancel, proc):
                assert proc.stdout is not None
                while chunk := proc.stdout.read(CHUNK):
                    write(chunk)
            _finish(proc, cancel, server, stderr, "pg_dump")
        except BaseException as exc:
            proc.kill()
            proc.wait()
            counts.abandon()
            if isinstance(exc, PostgresError) and not isinstance(exc, Cancelled):
                raise DumpFailed(str(exc)) from None
            raise
        counts.join()
        return DumpInfo(version, tools.version, counts.result())


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


def _feed(proc: subprocess.Popen[bytes], chunks: Iterable[bytes]) -> None:
    """Write every chunk to the child's stdin; keep reading if it stops early."""
    assert proc.stdin is not None
    stdin: Any = proc.stdin
    for chunk in chunks:
        if stdin is None:
            continue  # consume the rest (the caller may be hashing it)
        try:
            stdin.write(chunk)
        except BrokenPipeError:
            stdin = None
    if stdin is not None:
        with suppress(BrokenPipeError):
            stdin.close()


def _run_fed(
    server: Server,
    args: list[str],
    chunks: Iterable[bytes],
    cancel: Cancel,
    private: Path,
    *,
    stdout: Path | None = None,
) -> str:
    stderr = private / "stderr"
    with stderr.open("wb") as err, (stdout or Path(os.devnull)).open("wb") as out:
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=out, stderr=err, env=_child_env(server, private)
        )
    try:
        with _killed_on(cancel, proc):
            _feed(proc, chunks)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return _finish(proc, cancel, server, stderr, Path(args[0]).name)


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
    with _private_dir() as private:
        try:
            _run_fed(server, args, chunks, cancel, private)
        except Cancelled:
            raise
        except PostgresError as exc:
            raise _restore_failure(server, str(exc)) from None


def _restore_failure(server: Server, message: str) -> PostgresError:
    low = message.lower()
    if "password authentication failed" in low or "pg_hba.conf" in low:
        return AuthenticationFailed(message)
    if "could not connect" in low or "connection to server" in low:
        return ServerUnreachable(message)
    return RestoreFailed(message)


def list_archive(chunks: Iterable[bytes], cancel: Cancel) -> int:
    """`pg_restore --list` of the archive: how many entries its table of contents has."""
    tools = find_tools()
    nobody = Server(host="", port=0, database="", user="", password="")
    with _private_dir() as private:
        listing = private / "list"
        try:
            _run_fed(nobody, [tools.pg_restore, "--list"], chunks, cancel, private, stdout=listing)
        except Cancelled:
            raise
        except PostgresError as exc:
            raise RestoreFailed(f"the archive is not readable: {exc}") from None
        lines = listing.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if line.strip() and not line.startswith(";"))
