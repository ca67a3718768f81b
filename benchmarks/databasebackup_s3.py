"""Backups to S3 figures: backup and restore of a ~1 GB database, operator vs plain tools.

    .venv/bin/python benchmarks/databasebackup_s3.py [--messages 2500000] [--rounds 2]

Against the test bed's S3 server (Versity's gateway, built by tests/testbed/build.sh)
and PostgreSQL from Debian's packages, both on loopback:

1. Backup. The operator's dump step as its handler runs it to S3 (snapshot, row counts
   in that snapshot, pg_dump -Fc streamed through sha256 into a multipart upload), in
   the clear and encrypted (AES-256-GCM), next to `pg_dump -Fc | <boto3 upload_fileobj
   from stdin>`, the same client library's own streaming upload; alternating, `--rounds`
   of each, the median reported.
2. Restore. The operator's restore step (read the object once for its sha256, then
   again into pg_restore --single-transaction, decrypting on the fly when encrypted,
   then count every table's rows) next to `<boto3 download_fileobj to stdout> |
   pg_restore -d`, into a fresh database each time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from databasebackup import DATABASE, alternate, database_size, gib, line, timed  # noqa: E402

from runbook_operator.adapters import postgres as pg  # noqa: E402
from runbook_operator.adapters.objectstore import S3Config, S3Store  # noqa: E402
from support.postgres import PG_BIN, PostgresServer, running_postgres, seed_mail_score  # noqa: E402
from support.s3 import S3Process, running_s3  # noqa: E402

UPLOAD = """
import sys, boto3
from boto3.s3.transfer import TransferConfig
c = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
config = TransferConfig(multipart_chunksize=8 * 1024 * 1024)
if sys.argv[6] == "up":
    c.upload_fileobj(sys.stdin.buffer, sys.argv[4], sys.argv[5], Config=config)
else:
    c.download_fileobj(sys.argv[4], sys.argv[5], sys.stdout.buffer, Config=config)
"""
KEY = os.urandom(32)


class Bench:
    def __init__(self, server: PostgresServer, s3: S3Process) -> None:
        self.server, self.s3 = server, s3
        self.env = {**os.environ, "PGPASSWORD": server.password}  # the plain tools only
        self.conn = ["-h", server.host, "-p", str(server.port), "-U", server.user]
        self.target = pg.Server(
            server.host, server.port, DATABASE, server.user, server.password, "disable"
        )
        self.config = S3Config(s3.url, s3.bucket, "us-east-1", True, s3.access_key, s3.secret_key)
        self.tables: list[pg.Table] = []
        self.counter = 0

    def _client(self, key: str, way: str) -> list[str]:
        s3 = self.s3
        return [
            sys.executable,
            "-c",
            UPLOAD,
            s3.url,
            s3.access_key,
            s3.secret_key,
            s3.bucket,
            key,
            way,
        ]

    def store(self, key: str, encrypted: bool) -> S3Store:
        return S3Store(
            self.config,
            key,
            "bench/",
            seal_with=("bench/k", KEY) if encrypted else None,
            opened_with="bench/k" if encrypted else None,
            keyring=lambda _: KEY,
        )

    def plain_backup(self) -> None:
        dump = subprocess.Popen(
            ["pg_dump", "-Fc", *self.conn, DATABASE], env=self.env, stdout=subprocess.PIPE
        )
        subprocess.run(self._client("bench/plain.dump", "up"), stdin=dump.stdout, check=True)
        assert dump.wait() == 0

    def operator_backup(self, encrypted: bool) -> None:
        name = "bench/sealed.dump" if encrypted else "bench/clear.dump"
        upload = self.store(name, encrypted).begin("bench", "backup", "t")
        try:
            info = pg.dump(self.target, upload.write, threading.Event())
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        self.tables = list(info.tables)

    def fresh(self) -> str:
        self.counter += 1
        return f"restored_{self.counter}"

    def plain_restore(self) -> None:
        name = self.fresh()
        subprocess.run(["createdb", "-T", "template0", *self.conn, name], env=self.env, check=True)
        down = subprocess.Popen(self._client("bench/plain.dump", "down"), stdout=subprocess.PIPE)
        subprocess.run(
            ["pg_restore", *self.conn, "-d", name], env=self.env, stdin=down.stdout, check=True
        )
        assert down.wait() == 0
        self.server.drop_database(name)

    def operator_restore(self, encrypted: bool) -> None:
        key = "bench/sealed.dump" if encrypted else "bench/clear.dump"
        store, name = self.store(key, encrypted), self.fresh()
        server = self.target.on(name)
        assert store.checksum(store.location_url).sha256
        pg.create_database(server, name)
        pg.restore(server, store.read(store.location_url), threading.Event(), clean=True)
        pg.count_rows(server, self.tables)
        self.server.drop_database(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_500_000, help="rows of `messages`")
    parser.add_argument("--body-bytes", type=int, default=256, help="bytes per message body")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ["PATH"] = f"{PG_BIN}{os.pathsep}{os.environ['PATH']}"  # one pg_dump for all

    with running_postgres() as server, running_s3() as s3, tempfile.TemporaryDirectory():
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
        bench = Bench(server, s3)
        for encrypted in (False, True):
            what = "encrypted" if encrypted else "in the clear"
            plain, ours = alternate(
                args.rounds, bench.plain_backup, lambda e=encrypted: bench.operator_backup(e)
            )
            base = statistics.median(plain)
            print(f"backup to S3 ({what}):")
            print(line("pg_dump -Fc | boto3 upload_fileobj", plain))
            print(line("operator dump step", ours, base))
            plain_r, ours_r = alternate(
                args.rounds, bench.plain_restore, lambda e=encrypted: bench.operator_restore(e)
            )
            base_r = statistics.median(plain_r)
            print(f"restore from S3 ({what}, into a new database):")
            print(line("boto3 download_fileobj | pg_restore -d", plain_r))
            print(line("operator restore step", ours_r, base_r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
