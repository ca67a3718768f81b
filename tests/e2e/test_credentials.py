"""Database credentials: only a Secret that opted in is used, and a password never goes
to a server in clear text. Against the real test bed: the API server, the operator
process, and real PostgreSQL servers (one of them set to clear-text `password`
authentication in pg_hba.conf, whose log is read afterwards).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from support.crs import cond, create_cr, wait_condition, wait_phase
from support.events import wait_reasons
from support.kube import Cluster
from support.operator import OperatorProcess
from support.postgres import (
    PG_BIN,
    AppDatabase,
    PostgresServer,
    app_database,
    assert_secret_nowhere,
    backup_spec,
    create_credentials,
    scratch_database,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.servers import require

pytestmark = pytest.mark.timeout(300)

BACKUP = "DatabaseBackup"
CLEARTEXT_ROLE = "cleartext_app"


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "creds", messages=200) as database:
        yield database


def secret(
    api: client.ApiClient, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]
) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels), type="Opaque", string_data=data
    )
    client.CoreV1Api(api).create_namespaced_secret(namespace, body)


def failed(api: client.ApiClient, namespace: str, name: str, reason: str) -> str:
    obj = wait_condition(api, namespace, BACKUP, name, "Stalled", reason=reason, timeout=90)
    assert obj["status"]["phase"] == "Failed"
    wait_reasons(api, namespace, name, {reason})
    return str(cond(obj, "Ready")["message"])


def test_only_a_secret_that_opted_in_is_used(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    """An Opaque Secret with the right login is refused, saying what to add; the same
    login labelled ops.mailscore.com/credentials=true, under other keys, works; so does
    a kubernetes.io/basic-auth Secret; a basic-auth one read with other keys does not."""
    api = kube.api
    login = {"username": db.user, "password": db.password}
    secret(api, namespace, "plain", login, {"app": "mail-score"})
    secret(
        api,
        namespace,
        "labelled",
        {"user": db.user, "pw": db.password},
        {"ops.mailscore.com/credentials": "true"},
    )
    create_credentials(api, namespace, db, "basic")
    labelled = backup_spec(db, "labelled")
    labelled["postgres"]["credentials"].update(usernameKey="user", passwordKey="pw")
    other_keys = backup_spec(db, "basic")
    other_keys["postgres"]["credentials"]["usernameKey"] = "password"
    create_cr(api, namespace, BACKUP, "plain", backup_spec(db, "plain"))
    create_cr(api, namespace, BACKUP, "labelled", labelled)
    create_cr(api, namespace, BACKUP, "basic", backup_spec(db, "basic"))
    create_cr(api, namespace, BACKUP, "other-keys", other_keys)

    message = failed(api, namespace, "plain", "SecretNotOptedIn")
    assert "Secret plain has not opted in" in message
    assert "kubernetes.io/basic-auth" in message
    assert 'ops.mailscore.com/credentials: "true"' in message
    message = failed(api, namespace, "other-keys", "SecretNotOptedIn")
    assert "'username' and 'password'" in message
    wait_phase(api, namespace, BACKUP, "labelled", "Completed", timeout=120)
    wait_phase(api, namespace, BACKUP, "basic", "Completed", timeout=120)
    assert_secret_nowhere(kube, operator, namespace, db.password)


@pytest.fixture(scope="module")
def cleartext_server() -> Iterator[PostgresServer]:
    """A PostgreSQL whose pg_hba.conf asks CLEARTEXT_ROLE for its password in clear text
    (method `password`) and logs every connection; the superuser stays on SCRAM."""
    require(PG_BIN / "postgres", "postgresql")
    root = Path(tempfile.mkdtemp(prefix="runbook-pg-cleartext-"))
    server = PostgresServer(root)
    try:
        server.init()
        (server.data / "pg_hba.conf").write_text(
            f"local all all scram-sha-256\n"
            f"host all {CLEARTEXT_ROLE} 127.0.0.1/32 password\n"
            f"host all all 127.0.0.1/32 scram-sha-256\n"
        )
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write("log_connections = on\nlog_line_prefix = '%m [%p] user=%u '\n")
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_server_asking_for_a_clear_text_password_never_receives_it(
    kube: Cluster, operator: OperatorProcess, namespace: str, cleartext_server: PostgresServer
) -> None:
    """By default (requireAuth scram-sha-256) the backup fails InsecureAuthentication and
    the server's log shows the operator knocking but never a password exchange: no login,
    no failed password, no password. Relaxed to `requireAuth: password` the same backup
    completes, which proves the server really asked for the password in clear text."""
    api = kube.api
    db = app_database(cleartext_server, CLEARTEXT_ROLE, messages=50)  # logs in by password
    create_credentials(api, namespace, db)
    mark = len(cleartext_server.log.read_text())  # what the operator does comes after

    create_cr(api, namespace, BACKUP, "scram-only", backup_spec(db))
    message = failed(api, namespace, "scram-only", "InsecureAuthentication")
    assert "password was not sent" in message and "requireAuth" in message

    log = cleartext_server.log.read_text()[mark:]
    assert "connection received" in log  # the operator did connect ...
    assert "method=password" not in log  # ... but never went through password auth
    assert f"connection authorized: user={CLEARTEXT_ROLE}" not in log
    assert "password authentication failed" not in log
    assert db.password not in cleartext_server.log.read_text()
    assert_secret_nowhere(kube, operator, namespace, db.password)

    relaxed = backup_spec(db)
    relaxed["postgres"]["requireAuth"] = "password"
    create_cr(api, namespace, BACKUP, "cleartext-allowed", relaxed)
    wait_phase(api, namespace, BACKUP, "cleartext-allowed", "Completed", timeout=120)
    log = cleartext_server.log.read_text()[mark:]
    assert "method=password" in log and "application_name=runbook-operator" in log


def test_a_backup_with_a_schedules_label_but_not_owned_by_it_is_not_its_child(
    kube: Cluster, operator: OperatorProcess, namespace: str, db: AppDatabase
) -> None:
    """Anyone who may create a DatabaseBackup may write ops.mailscore.com/schedule=nightly:
    such a completed, verified backup is still not the schedule's newest verified child,
    so a restore of the schedule finds none (it used to restore the impostor)."""
    api = kube.api
    create_credentials(api, namespace, db)
    create_cr(api, namespace, BACKUP, "nightly", backup_spec(db, schedule="0 3 1 1 *"))
    wait_phase(api, namespace, BACKUP, "nightly", "Scheduled", timeout=60)
    labels = {"ops.mailscore.com/schedule": "nightly"}
    create_cr(api, namespace, BACKUP, "nightly-impostor", backup_spec(db), labels=labels)
    done = wait_condition(api, namespace, BACKUP, "nightly-impostor", "Ready", timeout=120)
    assert done["status"]["phase"] == "Completed"
    target = f"{db.name}_copy"
    spec = {"backup": "nightly", "targetDatabase": target, "confirm": target}
    create_cr(api, namespace, "DatabaseRestore", "from-schedule", spec)
    obj = wait_condition(
        api, namespace, "DatabaseRestore", "from-schedule", "Stalled", reason="NoVerifiedBackup"
    )
    assert (obj.get("status") or {}).get("backup") in (None, "")
    assert target not in db.server.databases()
