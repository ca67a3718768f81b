"""The PostgreSQL and storage adapters against a real PostgreSQL 15 server (no cluster needed).

What the operator relies on, proven directly: counts taken in pg_dump's own snapshot,
restores that are all or nothing, cancellation that leaves nothing behind, and errors
that say what went wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_operator.adapters import postgres as pg
from runbook_operator.adapters.storage import FileStore
from support.postgres import AppDatabase, PostgresServer, app_database
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def db(postgres: PostgresServer) -> AppDatabase:
    return app_database(postgres, "adapter_src", messages=20_000)


def server_of(db: AppDatabase, database: str | None = None) -> pg.Server:
    return pg.Server(
        db.server.host, db.server.port, database or db.name, db.user, db.password, "disable"
    )


def dump_to(store: FileStore, db: AppDatabase, name: str) -> tuple[pg.DumpInfo, str]:
    upload = store.begin("ns", name, "20250101T000000Z")
    info = pg.dump(server_of(db), upload.write, threading.Event())
    return info, upload.commit().location


def test_dump_counts_list_and_restore(db: AppDatabase, tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    info, location = dump_to(store, db, "roundtrip")
    expected = db.counts()
    assert {f"{s}.{t}": n for (s, t), n in info.tables.items()} == expected
    assert info.server_version.startswith("15.") and info.pg_dump_version.startswith("15")
    assert pg.list_archive(store.read(location), threading.Event()) > len(expected)

    target = server_of(db, "adapter_copy")
    assert pg.create_database(target, "adapter_copy") is True
    assert pg.create_database(target, "adapter_copy") is False  # ensure: already there
    pg.restore(target, store.read(location), threading.Event(), clean=True)
    assert db.server.fingerprint("adapter_copy") == db.fingerprint()
    counts = pg.count_rows(target, [*info.tables, ("public", "no_such_table")])
    assert counts[("public", "no_such_table")] is None
    assert pg.drop_database(target, "adapter_copy") is True
    assert not pg.database_exists(target, "adapter_copy")


def test_counts_are_exact_under_concurrent_writes(db: AppDatabase, tmp_path: Path) -> None:
    stop = threading.Event()
    inserted = [0]

    def write() -> None:
        with db.connect() as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO audit_log (at, event) VALUES (now(), 'concurrent')")
                inserted[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.3)
        info, location = dump_to(FileStore(tmp_path), db, "busy")
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join()
    assert inserted[0] > 0
    target = server_of(db, "adapter_busy")
    pg.create_database(target, "adapter_busy")
    try:
        pg.restore(target, FileStore(tmp_path).read(location), threading.Event(), clean=True)
        restored = pg.count_rows(target, list(info.tables))
    finally:
        pg.drop_database(target, "adapter_busy")
    assert restored == info.tables  # the recorded counts are the dumped rows, exactly
    assert info.tables[("public", "audit_log")] < db.counts()["public.audit_log"]


def test_cancel_kills_pg_dump_and_nothing_remains(db: AppDatabase, tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with db.connect() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")  # pg_dump waits
        cancel = threading.Event()
        threading.Timer(1.0, cancel.set).start()
        upload = store.begin("ns", "cancelled", "t")
        started = time.monotonic()
        with pytest.raises(pg.Cancelled):
            try:
                pg.dump(server_of(db), upload.write, cancel)
            except BaseException:
                upload.abort()
                raise
        assert time.monotonic() - started < 10
        locker.execute("ROLLBACK")
    assert list((tmp_path / "ns" / "cancelled").iterdir()) == []


def test_failed_restore_changes_nothing(db: AppDatabase, tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    _, location = dump_to(store, db, "truncated")
    data = b"".join(store.read(location))
    before = db.fingerprint()

    def truncated() -> Iterator[bytes]:
        yield data[: len(data) * 2 // 3]

    with pytest.raises(pg.RestoreFailed):
        pg.restore(server_of(db), truncated(), threading.Event(), clean=True)
    assert db.fingerprint() == before


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"password": "wrong"}, pg.AuthenticationFailed),
        ({"database": "no_such_db"}, pg.DatabaseNotFound),
        ({"port": 1}, pg.ServerUnreachable),
    ],
)
def test_connection_errors(db: AppDatabase, change: dict[str, object], error: type) -> None:
    server = server_of(db)
    bad = pg.Server(**{**server.__dict__, **change})
    with pytest.raises(error) as caught:
        pg.dump(bad, lambda _: None, threading.Event())
    assert db.password not in str(caught.value)


def test_unreadable_archive(tmp_path: Path) -> None:
    with pytest.raises(pg.RestoreFailed, match="not readable"):
        pg.list_archive(iter([b"this is not a pg_dump archive"]), threading.Event())
