"""The PostgreSQL adapter's pure parts: secrets stay out of arguments, errors get reasons."""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from runbook_operator.adapters import pgexec
from runbook_operator.adapters import postgres as pg

SERVER = pg.Server("db.example", 5433, "mail_score", "backup", "s3:cr\\et")


def test_password_never_in_repr() -> None:
    assert "s3:cr" not in repr(SERVER)
    assert SERVER.on("other").database == "other" and SERVER.on("other").password == SERVER.password


def test_redact() -> None:
    assert SERVER.redact("auth s3:cr\\et failed") == "auth [redacted] failed"
    assert SERVER.redact('for user "backup"') == 'for user "[redacted]"'
    assert pg.Server("h", 1, "d", "u", "").redact("text") == "text"


def test_connection_args_carry_no_secret() -> None:
    args = pg._connection_args(SERVER)
    assert args == [
        "--no-password",
        "--host=db.example",
        "--port=5433",
        "--dbname=keepalives=1 keepalives_idle=30 keepalives_interval=10 keepalives_count=3"
        " dbname=mail_score",
    ]
    assert not any("s3:cr" in a or "backup" in a for a in args)  # nor the user name


def test_the_user_name_goes_to_the_tools_by_environment_and_is_redacted() -> None:
    with pgexec.session("pw", "disable", "token-abc") as child:
        assert child.env["PGUSER"] == "token-abc"
        (child.directory / "stderr").write_text(
            'FATAL: password authentication failed for user "token-abc"\n'
        )
        assert child._tail(child.directory / "stderr") == (
            'FATAL: password authentication failed for user "[redacted]"'
        )
    failed = pg._classify(
        SERVER, psycopg.OperationalError('password authentication failed for user "backup"')
    )
    assert "backup" not in str(failed) and "rejected the credentials" in str(failed)


def test_a_database_name_is_quoted_in_the_conninfo() -> None:
    [dbname] = [a for a in pg._connection_args(SERVER.on("it's")) if a.startswith("--dbname=")]
    assert psycopg.conninfo.conninfo_to_dict(dbname.removeprefix("--dbname="))["dbname"] == "it's"


def test_lock_timeout_in_milliseconds() -> None:
    assert pg.Server("h", 1, "d", "u", "", lock_timeout=2.5).lock_timeout_ms == 2500
    assert pg.Server("h", 1, "d", "u", "", lock_timeout=0.0001).lock_timeout_ms == 1


def test_a_tool_past_its_deadline_is_killed_and_says_so() -> None:
    never = threading.Event()
    limit = pgexec.Deadline(never, 0.3, "300ms")
    started = time.monotonic()
    with pgexec.session("", "disable") as child, pytest.raises(pgexec.TimedOut) as raised:
        child.run_fed(["sleep", "30"], iter([]), limit, stdout=None)
    assert time.monotonic() - started < 5
    assert str(raised.value) == "sleep did not finish within 300ms (the timeout) and was stopped"


def test_a_tool_told_to_stop_is_stopped_not_timed_out() -> None:
    stop = threading.Event()
    stop.set()
    limit = pgexec.Deadline(stop, 0.0)
    assert limit.is_set() and limit.expired()
    error = pgexec.stopped(limit, "pg_dump")
    assert type(error) is pgexec.Stopped and str(error) == "pg_dump was stopped"


def test_a_deadline_not_yet_passed_is_not_set() -> None:
    limit = pgexec.Deadline(threading.Event(), 3600)
    assert not limit.is_set()
    assert type(pgexec.stopped(limit, "pg_restore")) is pgexec.Stopped


def test_timed_out_maps_to_its_own_reason() -> None:
    error = pg._process_error(pgexec.TimedOut("pg_dump did not finish"), pg.DumpFailed)
    assert type(error) is pg.TimedOut and error.reason == "TimedOut"
    assert type(pg._restore_failure(pgexec.TimedOut("x"))) is pg.TimedOut
    assert type(pg._restore_failure(pgexec.Stopped("x"))) is pg.Cancelled


def test_child_env_uses_a_private_passfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "leaked-from-parent")
    monkeypatch.setenv("PGHOST", "elsewhere")
    env = pgexec._child_env(tmp_path, SERVER.password, SERVER.sslmode)
    assert "PGPASSWORD" not in env and "PGHOST" not in env
    assert env["PGSSLMODE"] == "prefer" and env["PGAPPNAME"] == "runbook-operator"
    passfile = Path(env["PGPASSFILE"])
    assert passfile.parent == tmp_path
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert passfile.read_text() == "*:*:*:*:s3\\:cr\\\\et\n"  # ':' and '\' escaped
    assert not any("s3:cr" in value for key, value in env.items() if key != "PGPASSFILE")


def test_password_with_newline_goes_to_the_child_env_only(tmp_path: Path) -> None:
    env = pgexec._child_env(tmp_path, "a\nb", "prefer")
    assert env["PGPASSWORD"] == "a\nb" and "PGPASSFILE" not in env


def test_session_is_private_and_removed() -> None:
    with pgexec.session("s3:cr", "require") as child:
        path = child.directory
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        assert child.env["PGSSLMODE"] == "require" and "s3:cr" not in repr(child)
        assert (path / "pgpass").exists()
    assert not path.exists()


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('FATAL:  password authentication failed for user "backup"', pg.AuthenticationFailed),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.1"', pg.AuthenticationFailed),
        ('FATAL:  database "mail_score" does not exist', pg.DatabaseNotFound),
        ("ERROR:  permission denied to create database", pg.PermissionDenied),
        ("connection refused", pg.ServerUnreachable),
        ("failed to resolve host 'nowhere'", pg.ServerUnreachable),
    ],
)
def test_classify(message: str, kind: type[pg.PostgresError]) -> None:
    error = pg._classify(SERVER, psycopg.OperationalError(message + " s3:cr\\et"))
    assert type(error) is kind
    assert "s3:cr" not in str(error) and "db.example:5433" in str(error)


def test_reasons_are_distinct() -> None:
    kinds = [
        pg.ServerUnreachable,
        pg.AuthenticationFailed,
        pg.DatabaseNotFound,
        pg.PermissionDenied,
        pg.ToolMissing,
        pg.ToolTooOld,
        pg.DumpFailed,
        pg.RestoreFailed,
        pg.LockTimeout,
        pg.TimedOut,
        pg.Cancelled,
    ]
    assert len({k.reason for k in kinds}) == len(kinds)


def test_version_pattern() -> None:
    match = pgexec._VERSION_RE.search("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
    assert match is not None and match.groups() == ("15", "18")


def test_missing_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pg.ToolMissing, match="pg_dump and pg_restore not found"):
        pg.find_tools()


def test_old_tools_are_recognised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("pg_dump", "pg_restore"):
        script = tmp_path / name
        script.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])
    tools = pg.find_tools()
    assert (tools.version, tools.major) == ("9.6", 9)


def test_a_lock_not_granted_is_its_own_reason() -> None:
    locked = pg.Server("db.example", 5433, "mail_score", "backup", "pw", lock_timeout=2)
    error = pg._classify(locked, psycopg.errors.LockNotAvailable("canceling statement"))
    assert type(error) is pg.LockTimeout
    assert "was not granted within 2s (lockTimeout)" in str(error)


def test_server_options_go_into_the_conninfo_for_new_servers_only() -> None:
    [dbname] = [a for a in pg._connection_args(SERVER, pg._watch_client(15)) if "dbname" in a]
    parsed = psycopg.conninfo.conninfo_to_dict(dbname.removeprefix("--dbname="))
    assert parsed["options"] == "-c client_connection_check_interval=2000"
    assert parsed["dbname"] == "mail_score" and parsed["keepalives"] == "1"
    assert pg._watch_client(13) == ""


def test_require_auth_goes_to_every_connection_of_ours() -> None:
    info = psycopg.conninfo.conninfo_to_dict(pg._conninfo(SERVER))
    assert info["require_auth"] == "scram-sha-256" and info["keepalives"] == "1"
    relaxed = psycopg.conninfo.conninfo_to_dict(pg._conninfo(replace(SERVER, require_auth=None)))
    assert "require_auth" not in relaxed


def test_our_libpq_knows_require_auth() -> None:
    assert psycopg.pq.version() >= 160000  # else connect() could not enforce it


def test_require_auth_goes_to_the_tools_by_environment() -> None:
    with pg._session(SERVER) as child:
        assert child.env["PGREQUIREAUTH"] == "scram-sha-256"
    with pg._session(replace(SERVER, require_auth=None)) as child:
        assert "PGREQUIREAUTH" not in child.env


def test_a_clear_text_request_refused_by_require_auth_has_its_own_reason() -> None:
    failed = pg._classify(
        SERVER,
        psycopg.OperationalError(
            'connection to server at "127.0.0.1", port 5432 failed: authentication method '
            'requirement "scram-sha-256" failed: server requested a cleartext password'
        ),
    )
    assert isinstance(failed, pg.InsecureAuthentication)
    assert failed.reason == "InsecureAuthentication"
    assert "password was not sent" in str(failed) and "requireAuth" in str(failed)


def test_a_ca_goes_to_the_tools_as_a_private_file() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    with pg._session(replace(SERVER, ca_pem=pem)) as child:
        path = Path(child.env["PGSSLROOTCERT"])
        assert path.parent == child.directory and path.read_text() == pem
    assert not path.exists()
    with pg._session(SERVER) as child:
        assert "PGSSLROOTCERT" not in child.env


def test_a_ca_goes_to_our_connections_while_they_are_made() -> None:
    with pg._root_cert(replace(SERVER, ca_pem="PEM")) as path:
        assert path is not None and Path(path).read_text() == "PEM"
        info = psycopg.conninfo.conninfo_to_dict(pg._conninfo(SERVER, path))
        assert info["sslrootcert"] == path
    assert not Path(path).exists()
    with pg._root_cert(SERVER) as none:
        assert none is None
