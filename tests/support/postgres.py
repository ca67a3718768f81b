"""A real PostgreSQL 15 server (Debian's binaries) on 127.0.0.1, for tests and benchmarks.

Backups are proven against the real server, not a mock: `initdb` in a temp dir,
password authentication (scram-sha-256, also over TCP from 127.0.0.1, so a wrong
password really fails), a free port, stopped and removed afterwards. As root the
server runs as the `postgres` user (PostgreSQL refuses to run as root).

    from support.postgres import postgres  # noqa: F401  (the session fixture)

    def test_backup(postgres):
        postgres.create_database("mail_score")
        seed_mail_score(postgres, "mail_score", messages=1000)
        postgres.fingerprint("mail_score")   # {table: (rows, md5 of its rows)}

Without the fixture: `with running_postgres() as server: ...`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from psycopg import sql

from testbed import ledger

from .events import events
from .servers import free_port, require

__all__ = [
    "PG_BIN",
    "AppDatabase",
    "PostgresServer",
    "ProcessWatch",
    "app_database",
    "artifact",
    "assert_secret_nowhere",
    "backup_spec",
    "create_credentials",
    "dbname",
    "postgres",
    "running_postgres",
    "seed_mail_score",
]


def _newest_pg_bin() -> Path:
    """The newest PostgreSQL major Debian installed (its server and client tools)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = Path(os.environ.get("RUNBOOK_TEST_PG_BIN") or _newest_pg_bin())
SUPERUSER = "postgres"
RUN_AS = "postgres"


class PostgresServer:
    """One PostgreSQL cluster: `postgres` superuser with a random password."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.user = SUPERUSER
        self.password = f"pw-{secrets.token_urlsafe(18)}"
        self.log = root / "postgres.log"

    # --- process -------------------------------------------------------------

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", RUN_AS, "--", *args]
        return list(args)

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        self._chown(self.root)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        subprocess.run(
            self._as_owner(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ),
            check=True,
            capture_output=True,
        )
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# test server: fast, not durable\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 50\nshared_buffers = 128MB\n"
            )

    def start(self) -> None:
        options = f"-c listen_addresses={self.host} -p {self.port} -k {self.root}"
        subprocess.run(
            self._as_owner(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        postmaster = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        ledger.record("postgres", int(postmaster))

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"),
            check=False,
            capture_output=True,
        )

    # --- SQL -----------------------------------------------------------------

    def connect(
        self, database: str = "postgres", *, user: str | None = None, password: str | None = None
    ) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=database,
            user=user or self.user,
            password=password or self.password,
            autocommit=True,
        )

    def execute(self, database: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect(database) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def databases(self) -> set[str]:
        return {r[0] for r in self.execute("postgres", "SELECT datname FROM pg_database")}

    def create_role(self, name: str, password: str, *, createdb: bool = False) -> None:
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} {}").format(
                    sql.Identifier(name),
                    sql.Literal(password),
                    sql.SQL("CREATEDB" if createdb else "NOCREATEDB"),
                )
            )

    def fingerprint(self, database: str) -> dict[str, tuple[int, str]]:
        """Every user table: (row count, md5 of all its rows in a stable order)."""
        tables = self.execute(
            database,
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
        )
        out = {}
        with self.connect(database) as conn:
            for schema, table in tables:
                query = sql.SQL(
                    "SELECT count(*), "
                    "coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {} t"
                ).format(sql.Identifier(schema, table))
                row = conn.execute(query).fetchone()
                assert row is not None
                out[f"{schema}.{table}"] = (int(row[0]), str(row[1]))
        return out

    def counts(self, database: str) -> dict[str, int]:
        return {name: rows for name, (rows, _) in self.fingerprint(database).items()}


def seed_mail_score(
    server: PostgresServer,
    database: str,
    *,
    messages: int = 150_000,
    body_bytes: int = 64,
    random_bodies: bool = False,
    user: str | None = None,
    password: str | None = None,
) -> dict[str, int]:
    """The Mail Score schema with data: accounts, messages, scores, audit_log, billing.Plans.

    About 2.4 x `messages` rows in all, owned by `user`. Message bodies are `body_bytes`
    of hex, repeated (compresses well) or random (compresses like real text, ~2:1).
    Returns the row count per table.
    """
    accounts = max(10, messages // 15)
    chunks = max(1, body_bytes // 32)
    if random_bodies:
        body = " || ".join(["md5(random()::text)"] * chunks)
    else:
        body = f"repeat(md5(i::text), {chunks})"
    statements = [
        "CREATE TABLE accounts (id serial PRIMARY KEY, email text UNIQUE NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE messages (id bigserial PRIMARY KEY, account_id int NOT NULL "
        "REFERENCES accounts(id), subject text, body text, received_at timestamptz NOT NULL)",
        "CREATE TABLE scores (message_id bigint PRIMARY KEY REFERENCES messages(id), "
        "score real NOT NULL, model text NOT NULL)",
        "CREATE TABLE audit_log (id bigserial, at timestamptz NOT NULL, event text)",
        "CREATE SCHEMA billing",
        'CREATE TABLE billing."Plans" (code text PRIMARY KEY, price_cents int)',
        f"INSERT INTO accounts (email) SELECT 'user' || i || '@example.com' "
        f"FROM generate_series(1, {accounts}) i",
        f"INSERT INTO messages (account_id, subject, body, received_at) "
        f"SELECT 1 + (i % {accounts}), 'subject ' || i, {body}, "
        f"timestamptz '2025-01-01' + i * interval '1 second' "
        f"FROM generate_series(1, {messages}) i",
        "INSERT INTO scores SELECT id, (id % 100) / 100.0, 'v' || (id % 3) FROM messages",
        f"INSERT INTO audit_log (at, event) SELECT timestamptz '2025-01-01' + i * interval "
        f"'1 minute', 'event ' || i FROM generate_series(1, {messages // 3}) i",
        "INSERT INTO billing.\"Plans\" VALUES ('free', 0), ('pro', 900), ('team', 2900)",
        "ANALYZE",
    ]
    with server.connect(database, user=user, password=password) as conn:
        for statement in statements:
            conn.execute(statement)
    return server.counts(database)


@dataclass
class AppDatabase:
    """A database owned by its own login role, as an application has it."""

    server: PostgresServer
    name: str
    user: str
    password: str = field(repr=False)

    def connect(self) -> psycopg.Connection[Any]:
        return self.server.connect(self.name, user=self.user, password=self.password)

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def fingerprint(self) -> dict[str, tuple[int, str]]:
        return self.server.fingerprint(self.name)

    def counts(self) -> dict[str, int]:
        return self.server.counts(self.name)


def app_database(
    server: PostgresServer, name: str, *, messages: int | None = 150_000
) -> AppDatabase:
    """A role `name` (CREATEDB, a distinctive random password) owning database `name`,
    seeded with the Mail Score schema unless `messages` is None."""
    password = f"leakcheck-{secrets.token_hex(12)}"
    server.create_role(name, password, createdb=True)
    with server.connect() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
    db = AppDatabase(server, name, name, password)
    if messages is not None:
        seed_mail_score(server, name, messages=messages, user=name, password=password)
    return db


BASIC_AUTH = "kubernetes.io/basic-auth"
"""The Secret type that opts in to be used as database credentials (core.pglogin)."""


def create_credentials(
    api: Any, namespace: str, db: AppDatabase, name: str = "pg", *, password: str | None = None
) -> str:
    """A `kubernetes.io/basic-auth` Secret with `username` and `password` (by default the
    database's own), as a DatabaseBackup expects: that type opts in to this use."""
    from kubernetes import client

    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        type=BASIC_AUTH,
        string_data={"username": db.user, "password": password or db.password},
    )
    client.CoreV1Api(api).create_namespaced_secret(namespace, body)
    return name


def backup_spec(db: AppDatabase, secret: str = "pg", **extra: Any) -> dict[str, Any]:
    """A DatabaseBackup spec for `db` on the test server."""
    return {
        "postgres": {
            "host": db.server.host,
            "port": db.server.port,
            "database": db.name,
            "sslMode": "disable",
            "credentials": {"secretName": secret},
        },
        **extra,
    }


@contextlib.contextmanager
def running_postgres(*, port: int | None = None) -> Iterator[PostgresServer]:
    require(PG_BIN / "postgres", "postgresql")
    root = Path(tempfile.mkdtemp(prefix="runbook-pg-test-"))
    server = PostgresServer(root, port=port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def mail_score(postgres: PostgresServer) -> Iterator[AppDatabase]:
    """A fresh application database; afterwards it and every database named after it
    (a restore's scratch and target databases) are dropped."""
    db = app_database(postgres, dbname("mail_score"))
    yield db
    for name in postgres.databases():
        if name.startswith(db.name):
            postgres.drop_database(name)


# --- in a cluster -----------------------------------------------------------------


def dbname(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(3)}"


@contextlib.contextmanager
def scratch_database(
    server: PostgresServer, prefix: str, *, messages: int
) -> Iterator[AppDatabase]:
    """A seeded database of its own for one test (see app_database), dropped after it."""
    database = app_database(server, dbname(prefix), messages=messages)
    try:
        yield database
    finally:
        server.drop_database(database.name)


def artifact(obj: dict[str, Any]) -> Path:
    return Path(urlparse(obj["status"]["location"]).path)


class ProcessWatch:
    """Samples every process's command line and environment while a test runs, so a
    password on a command line (or in pg_dump's environment) cannot go unnoticed."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.seen: dict[str, int] = {"pg_dump": 0, "pg_restore": 0}
        self.leaks: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    self._look(pid)
            time.sleep(0.01)

    def _look(self, pid: str) -> None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return
        for tool in self.seen:
            if tool.encode() in cmdline.split(b"\0")[0]:
                self.seen[tool] += 1
                if self.secret in environ:
                    self.leaks.append(f"environment of {cmdline!r}")
        if self.secret in cmdline:
            self.leaks.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))

    def __enter__(self) -> ProcessWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def assert_secret_nowhere(kube: Any, operator: Any, namespace: str, secret: str) -> None:
    """Not in any log line, event, or status/spec of our objects."""
    from kubernetes import client

    assert secret not in operator.raw_log()
    for event in events(kube.api, namespace):
        assert secret not in (event.get("message") or ""), event
    custom = client.CustomObjectsApi(kube.api)
    for plural in ("databasebackups", "databaserestores"):
        listing = custom.list_namespaced_custom_object(
            "ops.mailscore.com", "v1alpha1", namespace, plural
        )
        assert secret not in json.dumps(listing)
