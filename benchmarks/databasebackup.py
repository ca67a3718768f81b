"""DatabaseBackup figures: backup and restore of a ~1 GB database, operator vs plain tools.

    .venv/bin/python benchmarks/databasebackup.py [--messages 2500000] [--rounds 2]
                                                  [--no-operator]

1. Backup. The operator's dump step, exactly as its handler runs it (export a
   snapshot, count every table's rows in that snapshot, pg_dump -Fc --snapshot
   streamed through sha256 into <name>.partial, fsync, rename), next to
   `pg_dump -Fc -f file`: same server, same database, same pg_dump binary,
   alternating, `--rounds` of each; the median is reported.
2. Restore. The operator's restore step (re-read the artifact for its sha256,
   CREATE DATABASE, pg_restore --single-transaction --exit-on-error --clean
   --if-exists fed from the store, then count every table's rows) next to
   `createdb` + `pg_restore -d db file`, into a fresh database each time.
3. End to end through Kubernetes (skip with --no-operator): a DatabaseBackup
   (verify: none) from `create` to phase Completed, and a DatabaseRestore into a
   new database from `create` to Ready; the operator runs as a local process on
   the test bed (started if needed, left as found) with its 2 s timer.

PostgreSQL 15 from Debian's packages runs on loopback in a temp dir (fsync off,
as in the tests, for both sides alike).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from runbook_operator.adapters import postgres as pg  # noqa: E402
from runbook_operator.adapters.storage import FileStore  # noqa: E402
from support.postgres import (  # noqa: E402
    PG_BIN,
    PostgresServer,
    running_postgres,
    seed_mail_score,
)

DATABASE = "mail_score"


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def database_size(server: PostgresServer, name: str) -> int:
    rows = server.execute("postgres", "SELECT pg_database_size(%s)", (name,))
    return int(rows[0][0])


def gib(size: float) -> str:
    return f"{size / 1024**3:.2f} GiB" if size >= 1024**3 else f"{size / 1024**2:.0f} MiB"


class Bench:
    def __init__(self, server: PostgresServer, work: Path) -> None:
        self.server = server
        self.work = work
        self.env = {**os.environ, "PGPASSWORD": server.password}  # the plain tools only
        self.conn = ["-h", server.host, "-p", str(server.port), "-U", server.user]
        self.target = pg.Server(
            server.host, server.port, DATABASE, server.user, server.password, "disable"
        )
        self.store = FileStore(work / "store")
        self.location = ""
        self.tables: list[pg.Table] = []
        self.counter = 0

    def fresh_name(self) -> str:
        self.counter += 1
        return f"restored_{self.counter}"

    # --- backup ---------------------------------------------------------------

    def plain_dump(self) -> None:
        out = self.work / "plain.dump"
        subprocess.run(
            ["pg_dump", "-Fc", "-f", str(out), *self.conn, DATABASE], env=self.env, check=True
        )

    def operator_dump(self) -> None:
        upload = self.store.begin("bench", "backup", "20250101T000000Z")
        try:
            info = pg.dump(self.target, upload.write, threading.Event())
            stored = upload.commit()
        except BaseException:
            upload.abort()
            raise
        self.location = stored.location
        self.tables = list(info.tables)

    # --- restore --------------------------------------------------------------

    def plain_restore(self) -> None:
        name = self.fresh_name()
        subprocess.run(["createdb", "-T", "template0", *self.conn, name], env=self.env, check=True)
        subprocess.run(
            ["pg_restore", *self.conn, "-d", name, str(self.work / "plain.dump")],
            env=self.env,
            check=True,
        )
        self.server.drop_database(name)

    def operator_restore(self) -> None:
        name = self.fresh_name()
        server = self.target.on(name)
        stored = self.store.checksum(self.location)
        assert stored.sha256
        pg.create_database(server, name)
        pg.restore(server, self.store.read(self.location), threading.Event(), clean=True)
        pg.count_rows(server, self.tables)
        self.server.drop_database(name)


def alternate(
    rounds: int, plain: Callable[[], None], ours: Callable[[], None]
) -> tuple[list[float], list[float]]:
    plain_times, our_times = [], []
    for _ in range(rounds):
        plain_times.append(timed(plain))
        our_times.append(timed(ours))
    return plain_times, our_times


def line(label: str, times: list[float], base: float | None = None) -> str:
    median = statistics.median(times)
    rounds = ", ".join(f"{t:.1f}" for t in times)
    overhead = f"  ({(median - base) / base * 100:+.1f} %)" if base else ""
    return f"  {label:<38} {median:7.1f} s{overhead}   [rounds: {rounds}]"


# --- end to end ------------------------------------------------------------------


def end_to_end(server: PostgresServer, rounds: int) -> tuple[list[float], list[float]]:
    """DatabaseBackup create -> Completed, DatabaseRestore create -> Ready, via the operator."""
    from kubernetes import client

    from support.crs import create_cr, get_cr
    from support.kube import api_client_from_kubeconfig, create_namespace, delete_namespace
    from support.operator import OperatorProcess
    from testbed.testbed import LocalTestBed

    bed = LocalTestBed()
    started_bed = bed.up()
    api = api_client_from_kubeconfig(bed.kubeconfig)
    subprocess.run(
        [
            str(bed.kubectl),
            f"--kubeconfig={bed.kubeconfig}",
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
    )
    namespace = create_namespace(api, f"bench-db-{secrets.token_hex(3)}")
    work = Path(tempfile.mkdtemp(prefix="bench-db-operator-"))
    operator = OperatorProcess(
        kubeconfig=bed.kubeconfig,
        namespaces=[namespace],
        log_path=work / "operator.log",
        backup_root=work / "backups",
        prefix=namespace,
        elected=False,  # one replica, as the reference run
    )
    operator.backup_root.mkdir()
    backups, restores = [], []
    try:
        client.CoreV1Api(api).create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="pg"),
                type="kubernetes.io/basic-auth",  # opts in to be database credentials
                string_data={"username": server.user, "password": server.password},
            ),
        )
        operator.start()
        spec = {
            "postgres": {
                "host": server.host,
                "port": server.port,
                "database": DATABASE,
                "sslMode": "disable",
                "credentials": {"secretName": "pg"},
            },
            "verify": "none",
        }

        def until(kind: str, name: str, goal: str) -> None:
            while (
                current := (get_cr(api, namespace, kind, name).get("status") or {}).get("phase")
            ) != goal:
                if current == "Failed":
                    raise RuntimeError(f"{kind} {name} failed: {operator.tail()}")
                time.sleep(0.2)

        for i in range(rounds):
            start = time.perf_counter()
            create_cr(api, namespace, "DatabaseBackup", f"b{i}", spec)
            until("DatabaseBackup", f"b{i}", "Completed")
            backups.append(time.perf_counter() - start)
            target = f"e2e_restored_{i}"
            start = time.perf_counter()
            create_cr(
                api,
                namespace,
                "DatabaseRestore",
                f"r{i}",
                {"backup": f"b{i}", "targetDatabase": target, "confirm": target},
            )
            until("DatabaseRestore", f"r{i}", "Completed")
            restores.append(time.perf_counter() - start)
            server.drop_database(target)
    finally:
        operator.stop()
        delete_namespace(api, namespace)
        shutil.rmtree(work, ignore_errors=True)
        api.close()
        if started_bed:
            bed.down()
    return backups, restores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_500_000, help="rows of `messages`")
    parser.add_argument("--body-bytes", type=int, default=256, help="bytes per message body")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-operator", action="store_true", help="skip the end-to-end part")
    args = parser.parse_args()
    os.environ["PATH"] = f"{PG_BIN}{os.pathsep}{os.environ['PATH']}"  # one pg_dump for all

    with running_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        server.create_database(DATABASE)
        seed = timed(
            lambda: seed_mail_score(
                server,
                DATABASE,
                messages=args.messages,
                body_bytes=args.body_bytes,
                random_bodies=True,
            )
        )
        counts = server.counts(DATABASE)
        print(
            f"database {DATABASE}: {gib(database_size(server, DATABASE))} on disk, "
            f"{len(counts)} tables, {sum(counts.values()):,} rows (seeded in {seed:.0f} s); "
            f"pg_dump {pg.find_tools().version}, {os.cpu_count()} CPUs"
        )
        bench = Bench(server, Path(tmp))
        plain, ours = alternate(args.rounds, bench.plain_dump, bench.operator_dump)
        size = bench.store.checksum(bench.location).size
        base = statistics.median(plain)
        print(f"backup (artifact {gib(size)}):")
        print(line("pg_dump -Fc -f file", plain))
        print(line("operator dump step", ours, base))
        plain_r, ours_r = alternate(args.rounds, bench.plain_restore, bench.operator_restore)
        base_r = statistics.median(plain_r)
        print("restore (into a new database):")
        print(line("createdb + pg_restore -d", plain_r))
        print(line("operator restore step", ours_r, base_r))
        if not args.no_operator:
            e2e_backup, e2e_restore = end_to_end(server, args.rounds)
            print("end to end through Kubernetes (operator process, 2 s timer):")
            print(line("DatabaseBackup create -> Completed", e2e_backup, base))
            print(line("DatabaseRestore create -> Ready", e2e_restore, base_r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
