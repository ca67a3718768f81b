"""deploy/monitoring/ proven against a real Prometheus scraping the real operator (~3 min).

A Prometheus from Debian's package scrapes the operator's /metrics every second and
evaluates a copy of deploy/monitoring/rules.yaml whose alerts have `for: 0s` (the
expressions are the shipped ones, checked verbatim). The operator runs the runbook's
cheapest routes in one namespace: a backup schedule every minute against the real
PostgreSQL, an EmergencyScale, a Rollback, a MaintenanceWindow blocked by short notice.
Then every query of the Grafana dashboard and every alert expression must return data
for that namespace; the schedule is broken and RunbookBackupTooOld must fire; the
operator is stopped and RunbookOperatorDown must fire.

The module runs its own operator process (its own namespaces), since it stops it.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from runbook_operator.core import measures
from support.crs import create_cr, delete_cr, get_cr, patch_cr, wait_gone, wait_phase
from support.images import image
from support.kube import Cluster, create_namespace, delete_namespace, unique_name
from support.operator import OperatorProcess, running_operator
from support.postgres import (
    AppDatabase,
    PostgresServer,
    app_database,
    backup_spec,
    create_credentials,
    dbname,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.prometheus import Prometheus, running_prometheus
from support.rollback_cluster import create_deployment, manifest, set_image
from support.servers import require
from support.wait import wait_for

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "rules.yaml"
JOB = "runbook-operator"
"""The job the ServiceMonitor's jobLabel gives, which RunbookOperatorDown looks for."""
SCHEDULE_LABEL = "ops.mailscore.com/schedule"
Obj = dict[str, Any]


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shipped_rules() -> list[Obj]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> Obj:
    return dict(json.loads((MONITORING / "dashboard.json").read_text()))


def dashboard_queries(namespace: str) -> dict[str, str]:
    """Each panel's queries as Grafana sends them with this namespace chosen."""
    out: dict[str, str] = {}
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$namespace", namespace).replace("$__range", "1h")
            assert "$" not in expr, expr
            out[f"{panel['title']} {target['refId']}"] = expr
    return out


# --- the shipped files ----------------------------------------------------------------------


def test_promtool_checks_the_rules_and_both_forms_agree(kube: Cluster) -> None:
    require("/usr/bin/promtool", "prometheus")
    done = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    names = {r["alert"] for r in shipped_rules()}
    assert names == {
        "RunbookBackupTooOld",
        "RunbookOperationFailed",
        "RunbookMaintenanceWindowBlocked",
        "RunbookOperatorDown",
    }
    rendered = list(yaml.safe_load_all(kube.run_kubectl("kustomize", str(MONITORING)).stdout))
    kinds = {d["kind"]: d for d in rendered}
    assert set(kinds) == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    board = kinds["ConfigMap"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["runbook-operator.json"]) == dashboard()
    service = yaml.safe_load((ROOT / "deploy" / "operator" / "service.yaml").read_text())
    monitor = kinds["ServiceMonitor"]["spec"]
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    shown = " ".join(dashboard_queries("ns").values())
    assert [m.name for m in measures.METRICS if m.name not in shown] == []  # all on the board


# --- against a real Prometheus --------------------------------------------------------------


@pytest.fixture(scope="module")
def own_operator(
    operator_credentials: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    prefix = f"rbe2e-mon-{secrets.token_hex(2)}"
    workdir = tmp_path_factory.mktemp("monitoring-operator")
    with running_operator(operator_credentials, workdir, prefix) as process:
        yield process


@pytest.fixture
def own_namespace(kube: Cluster, own_operator: OperatorProcess) -> Iterator[str]:
    name = create_namespace(kube.api_client, unique_name("monitoring", prefix=own_operator.prefix))
    try:
        yield name
    finally:
        own_operator.start()  # the test stops it; finalizers need it
        delete_namespace(kube.api_client, name)


@pytest.fixture
def prom(own_operator: OperatorProcess, tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus scraping the operator, with the shipped alerts at `for: 0s`."""
    test_rules = yaml.safe_load(RULES.read_text())
    for group in test_rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"
    copy_path = tmp_path / "rules.yaml"
    copy_path.write_text(yaml.safe_dump(test_rules))
    assert [r["expr"] for g in test_rules["groups"] for r in g["rules"]] == [
        r["expr"] for r in shipped_rules()
    ]
    scrape = {
        "job_name": JOB,
        "static_configs": [{"targets": [f"127.0.0.1:{own_operator.metrics_port}"]}],
    }
    with running_prometheus(tmp_path / "prometheus", scrape=[scrape], rule_files=[copy_path]) as p:
        p.wait_for(f'up{{job="{JOB}"}}', lambda v: v == [1.0], timeout=30)
        yield p


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    database = app_database(postgres, dbname("monitoring"), messages=200)
    yield database
    for name in postgres.databases():
        if name.startswith(database.name):
            postgres.drop_database(name)


def ours(prom: Prometheus, promql: str, namespace: str) -> list[Obj]:
    """The series of a query that belong to this test's namespace."""
    return [s for s in prom.series(promql) if s["metric"].get("namespace") == namespace]


def firing(prom: Prometheus, alert: str, **labels: str) -> list[Obj]:
    return [
        a
        for a in prom.api("alerts")["alerts"]
        if a["labels"]["alertname"] == alert
        and a["state"] == "firing"
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def scenario(kube: Cluster, ns: str, db: AppDatabase) -> None:
    """A backup schedule, an emergency scale, a rollback and a blocked window."""
    api = kube.api
    create_credentials(api, ns, db)
    spec = backup_spec(
        db, schedule="* * * * *", startingDeadline="15s", verify="none", keep={"last": 2}
    )
    create_cr(api, ns, "DatabaseBackup", "nightly", spec)

    create_deployment(kube, ns, manifest("web", image("web-1"), replicas=1))
    create_cr(
        api,
        ns,
        "EmergencyScale",
        "surge",
        {"reason": "P2: spike", "duration": "10m", "targets": [{"name": "web", "replicas": 2}]},
    )

    create_deployment(kube, ns, manifest("api", image("api-1"), replicas=1))
    set_image(kube, ns, "api", image("api-2"))
    create_cr(api, ns, "Rollback", "undo", {"reason": "INC-1", "targets": [{"name": "api"}]})

    start = datetime.now(UTC) + timedelta(seconds=5)
    window = {"start": rfc3339(start), "duration": "1m", "policy": {"minimumNotice": "24h"}}
    create_cr(api, ns, "MaintenanceWindow", "short-notice", window)

    wait_phase(api, ns, "EmergencyScale", "surge", "Active", timeout=60)
    wait_phase(api, ns, "Rollback", "undo", "Completed", timeout=90)
    wait_phase(api, ns, "MaintenanceWindow", "short-notice", "Blocked", timeout=40)


def dashboard_answers(prom: Prometheus, ns: str) -> None:
    """Every dashboard query returns data for this namespace."""
    queries = dashboard_queries(ns)
    assert len(queries) >= 11
    empty: dict[str, str] = {}

    def all_answer() -> bool:
        empty.clear()
        empty.update({k: q for k, q in queries.items() if not prom.series(q)})
        return not empty

    try:
        wait_for(all_answer, timeout=30, interval=1, what="every dashboard query to return data")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nno data: {json.dumps(empty, indent=1)}") from None
    namespaces = prom.api("label/namespace/values", **{"match[]": "runbook_operation_phase"})
    assert ns in namespaces  # the dashboard's namespace variable


def values_tell_what_happened(prom: Prometheus, ns: str) -> None:
    """What the series say is what happened, each event counted once."""

    def value(promql: str) -> float:
        [series] = ours(prom, promql, ns)
        return float(series["value"][1])

    assert value('runbook_rollback_total{name="undo",result="Completed"}') == 1
    assert value('runbook_rollback_total{name="undo",result="Failed"}') == 0
    assert value('runbook_emergency_scale_active{name="surge"}') == 1
    assert value('runbook_maintenance_window_active{name="short-notice"}') == 0
    assert value('runbook_policy_block_total{name="short-notice"}') == 1
    assert ours(prom, 'runbook_policy_block_total{rule="NoticeTooShort"}', ns)
    failures = 'runbook_backup_failures_total{name="nightly"}'
    wait_for(  # the run failed a moment ago: the next scrape has it
        lambda: value(failures) >= 1, timeout=10, what=f"{failures} >= 1 (last: {value(failures)})"
    )
    phases = ours(prom, 'runbook_operation_phase{name="undo"}', ns)
    assert [s["metric"]["phase"] for s in phases] == ["Completed"]  # only the current phase
    sizes = ours(prom, "runbook_backup_size_bytes", ns)
    assert sizes and all(float(s["value"][1]) > 0 for s in sizes)


def metrics_when(process: OperatorProcess, predicate: Callable[[str], bool], what: str) -> str:
    def probe() -> str | None:
        text = process.metrics()
        return text if predicate(text) else None

    return wait_for(probe, timeout=30, what=what)


def test_dashboard_and_alerts_on_a_real_prometheus_scraping_the_operator(
    kube: Cluster,
    own_operator: OperatorProcess,
    own_namespace: str,
    prom: Prometheus,
    db: AppDatabase,
) -> None:
    ns, api = own_namespace, kube.api
    scenario(kube, ns, db)
    first = wait_for(
        lambda: get_cr(api, ns, "DatabaseBackup", "nightly")["status"].get("lastSuccessfulTime"),
        timeout=150,
        what="the schedule's first successful run",
    )

    # While the schedule succeeds, its age is within what it allows: no alert for it.
    too_old = {r["alert"]: r["expr"] for r in shipped_rules()}["RunbookBackupTooOld"]
    age = wait_for(
        lambda: ours(prom, "runbook_backup_max_age_seconds", ns), timeout=30, what="max age"
    )
    assert float(age[0]["value"][1]) == 60 + 15  # every minute, startingDeadline 15s
    assert ours(prom, too_old, ns) == []

    # Break it: the next runs fail (no such database).
    patch_cr(api, ns, "DatabaseBackup", "nightly", {"spec": {"postgres": {"database": "gone"}}})

    def failed_run() -> str | None:
        for run in client.CustomObjectsApi(api).list_namespaced_custom_object(
            "ops.mailscore.com",
            "v1alpha1",
            ns,
            "databasebackups",
            label_selector=f"{SCHEDULE_LABEL}=nightly",
        )["items"]:
            if (run.get("status") or {}).get("phase") == "Failed":
                return str(run["metadata"]["name"])
        return None

    wait_for(failed_run, timeout=90, what="a failed run of the broken schedule")

    dashboard_answers(prom, ns)
    values_tell_what_happened(prom, ns)

    # Every alert expression but the operator's own returns data; those with `for: 0s` fire.
    for rule in shipped_rules():
        if rule["alert"] in {"RunbookOperatorDown", "RunbookBackupTooOld"}:
            continue
        assert ours(prom, rule["expr"], ns), rule["alert"]
    wait_for(
        lambda: firing(prom, "RunbookMaintenanceWindowBlocked", namespace=ns, name="short-notice"),
        timeout=15,
        what="RunbookMaintenanceWindowBlocked firing",
    )
    assert wait_for(
        lambda: firing(prom, "RunbookOperationFailed", namespace=ns, kind="DatabaseBackup"),
        timeout=15,
        what="RunbookOperationFailed firing for the failed run",
    )

    # The schedule stops succeeding: once its last success is older than one interval plus
    # the startingDeadline, RunbookBackupTooOld fires for it.
    alert = wait_for(
        lambda: firing(prom, "RunbookBackupTooOld", namespace=ns, name="nightly"),
        timeout=150,
        interval=1,
        what="RunbookBackupTooOld firing",
    )
    assert get_cr(api, ns, "DatabaseBackup", "nightly")["status"]["lastSuccessfulTime"] == first
    assert float(alert[0]["value"]) > 75
    assert ours(prom, too_old, ns)

    # A deleted object's series go with it.
    delete_cr(api, ns, "Rollback", "undo")
    wait_gone(api, ns, "Rollback", "undo")
    text = metrics_when(
        own_operator, lambda t: 'name="undo"' not in t, "the deleted Rollback's series to go"
    )
    assert f'name="surge",namespace="{ns}"' in text

    # A restart counts nothing again: the window's block was recorded before it.
    own_operator.stop()
    wait_for(
        lambda: firing(prom, "RunbookOperatorDown"), timeout=20, what="RunbookOperatorDown firing"
    )
    own_operator.start()
    prom.wait_for(f'up{{job="{JOB}"}}', lambda v: v == [1.0], timeout=30)
    blocks = re.compile(r'runbook_policy_block_total\{[^}]*name="short-notice"[^}]*\} (\S+)')
    text = metrics_when(
        own_operator, lambda t: 'name="surge"' in t, "the restarted operator's first passes"
    )
    assert blocks.search(text) is None  # a counter of an event nobody recorded again
    wait_for(
        lambda: not firing(prom, "RunbookOperatorDown"), timeout=15, what="the alert to resolve"
    )
