"""The one in-memory PostgreSQL for unit tests, checked against core.database.Postgres.

Databases are tables with row counts. A dump is bytes that name the database and its
counts, so a restore of it (into any database) brings exactly those counts, and
`pg_restore --list` of anything else fails as a real one would. Every call is logged in
order, with the database and the login it used; an operation can be made to fail, or
to wait until the cancel flag is set (as pg_dump does when a lock holds it). The e2e
tests use the real server (support/postgres.py); this is for the handlers' glue only.

    db = FakePostgres({"mail_score": {("public", "messages"): 150}})
    db.fail["dump"] = pg.AuthenticationFailed("rejected")
    db.hang.add("restore")          # waits for cancel, then raises pg.Cancelled
    db.calls                        # [("dump", "mail_score"), ...]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

from runbook_operator.adapters import postgres as pg
from runbook_operator.core.database import Postgres
from runbook_operator.core.postgres import Table

__all__ = ["FakePostgres", "archive"]

Tables = dict[Table, int]
MAGIC = b"FAKEDUMP\n"


def archive(tables: Tables) -> bytes:
    """What the fake pg_dump writes for a database with these row counts."""
    return MAGIC + json.dumps(sorted([s, t, n] for (s, t), n in tables.items())).encode()


def _decode(data: bytes) -> Tables:
    if not data.startswith(MAGIC):
        raise pg.RestoreFailed(
            "pg_restore: error: input file does not appear to be a valid archive"
        )
    return {(s, t): n for s, t, n in json.loads(data[len(MAGIC) :])}


class FakePostgres:
    def __init__(self, databases: dict[str, Tables] | None = None) -> None:
        self.databases: dict[str, Tables] = {k: dict(v) for k, v in (databases or {}).items()}
        self.calls: list[tuple[str, str]] = []
        """(operation, database) in order."""
        self.logins: list[tuple[str, str]] = []
        """(user, password) of every connection."""
        self.fail: dict[str, Exception] = {}
        """operation name -> the error it raises (once set, every time)."""
        self.hang: set[str] = set()
        """operations that wait for their cancel flag, then raise pg.Cancelled."""
        self.during: dict[str, Callable[[], None]] = {}
        """operation name -> called while it runs (e.g. to delete the object meanwhile)."""
        self.version = "15.18"

    def _enter(
        self, op: str, server: pg.Server | None, database: str, cancel: pg.Cancel | None = None
    ) -> None:
        self.calls.append((op, database))
        if server is not None:
            self.logins.append((server.user, server.password))
        hook = self.during.get(op)
        if hook is not None:
            hook()
        if op in self.fail:
            raise self.fail[op]
        if op in self.hang and cancel is not None:
            deadline = time.monotonic() + 5  # a test sets it from `during`, or before the pass
            while not cancel.is_set():
                assert time.monotonic() < deadline, f"{op} hung, but nothing set its cancel flag"
                time.sleep(0.001)
        if cancel is not None and cancel.is_set():
            raise pg.Cancelled(f"{op} was stopped")

    def _tables(self, server: pg.Server) -> Tables:
        if server.database not in self.databases:
            raise pg.DatabaseNotFound(
                f"PostgreSQL at {server.address} has no database {server.database!r}"
            )
        return self.databases[server.database]

    # --- the port -------------------------------------------------------------

    def dump(
        self, server: pg.Server, write: Callable[[bytes], None], cancel: pg.Cancel
    ) -> pg.DumpInfo:
        self._enter("dump", server, server.database, cancel)
        tables = dict(self._tables(server))
        data = archive(tables)
        for start in range(0, len(data), 7):
            write(data[start : start + 7])
        return pg.DumpInfo(self.version, self.version, tables)

    def list_archive(self, chunks: Iterable[bytes], cancel: pg.Cancel) -> int:
        data = b"".join(chunks)
        self._enter("list", None, "", cancel)
        try:
            tables = _decode(data)
        except pg.RestoreFailed as exc:
            raise pg.RestoreFailed(f"the archive is not readable: {exc}") from None
        return 2 + 2 * len(tables)

    def restore(
        self,
        server: pg.Server,
        chunks: Iterable[bytes],
        cancel: pg.Cancel,
        *,
        clean: bool,
        keep_owners: bool = True,
    ) -> None:
        data = b"".join(chunks)
        self._enter("restore", server, server.database, cancel)
        tables = _decode(data)
        current = self._tables(server)
        if clean:
            for table in tables:
                current.pop(table, None)
        current.update(tables)

    def count_rows(self, server: pg.Server, tables: Iterable[Table]) -> dict[Table, int | None]:
        self._enter("count", server, server.database)
        current = self._tables(server)
        return {t: current.get(t) for t in tables}

    def database_exists(self, server: pg.Server, name: str) -> bool:
        self._enter("exists", server, name)
        return name in self.databases

    def create_database(self, server: pg.Server, name: str) -> bool:
        self._enter("create", server, name)
        if name in self.databases:
            return False
        self.databases[name] = {}
        return True

    def drop_database(self, server: pg.Server, name: str) -> bool:
        self._enter("drop", server, name)
        return self.databases.pop(name, None) is not None


_CHECK: Postgres = FakePostgres()  # mypy: the fake has every method of the port
