"""Isolation: an incident's EmergencyScale reacts as fast while 20 dumps are running.

Twenty DatabaseBackups of a database whose table a "migration" holds locked (ACCESS
EXCLUSIVE, in an open transaction): every pg_dump waits for that lock, the database
workers are all busy and the rest of the backups queue behind them. The EmergencyScale
reaction (reaction.emergency_scale: apply -> Deployment scaled, with its bare-loop and
kubectl references) is measured before the dumps start and while they wait; the figure
is the ratio of the two p50s, and of the two p95s. PostgreSQL runs on loopback in a
temp dir (tests/support/postgres).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from lib import GROUP, ROOT, VERSION, Bench, Figure

sys.path.insert(0, str(ROOT / "tests"))

import reaction

from support.postgres import (
    AppDatabase,
    app_database,
    backup_spec,
    create_credentials,
    running_postgres,
)

__all__ = ["run"]

DUMPS = 20


@contextmanager
def dumps_waiting(bench: Bench, db: AppDatabase, count: int) -> Iterator[None]:
    """`count` backups whose pg_dump waits on a locked table, until the block ends."""
    ns = bench.namespace("iso-dumps")
    create_credentials(bench.api, ns, db)
    spec = backup_spec(db, verify="none")
    spec["postgres"].update(lockTimeout="1h", timeout="1h")
    with db.connect() as migration, migration.transaction():
        migration.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        for i in range(count):
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DatabaseBackup"}
            body.update(metadata={"name": f"b{i}"}, spec=spec)
            bench.create("databasebackups", ns, body)
        _all_waiting(db)
        try:
            yield
        finally:
            for i in range(count):  # their finalizers stop the dumps
                bench.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, ns, "databasebackups", f"b{i}"
                )


def _all_waiting(db: AppDatabase, steady: float = 2.0, timeout: float = 60) -> None:
    """Until as many dumps wait on the lock as the operator will run at once: the count
    is above zero and has not changed for `steady` seconds. Sampling began once the first
    dump waited, and one run measured with a single session waiting, another with eight."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = _waiting(db)
        if now != last:
            last, since = now, time.monotonic()
        elif now > 0 and time.monotonic() - since >= steady:
            return
        time.sleep(0.2)


def _waiting(db: AppDatabase) -> int:
    rows = db.server.execute(
        "postgres", "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    )
    return int(rows[0][0])


def run(bench: Bench, n: int) -> list[Figure]:
    with running_postgres() as server:
        db = app_database(server, "isolation", messages=1_000)
        before = reaction.emergency_scale(bench, n, "iso-before")
        with dumps_waiting(bench, db, DUMPS):
            waiting = _waiting(db)
            during = reaction.emergency_scale(bench, n, "iso-during")
    figures = []
    for q, b, d in zip((50, 95), before[:2], during[:2], strict=True):
        figures.append(
            Figure(
                f"EmergencyScale reaction, {DUMPS} dumps waiting, p{q}",
                d.ours,
                b.ours,
                "ms",
                1.2,
                "no dumps",
                f"({waiting} sessions waiting for the lock)",
            )
        )
    return figures
