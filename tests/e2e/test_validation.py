"""Bad input is rejected by the API server itself, with a message a person understands.

Each case is a spec (or a change to a valid one) and words the refusal must
contain. They run against the real API server with the generated CRDs, so a
CEL rule that does not compile, or a schema the server reads differently
from pydantic, fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.crs import create_cr
from support.kube import Cluster

Spec = dict[str, Any]

ES_OK: Spec = {"targets": [{"name": "mail-score-backend", "replicas": 10}], "duration": "2h"}

RB_OK: Spec = {"targets": [{"name": "mail-score-backend"}, {"name": "mail-score-frontend"}]}
RB_TRIGGER: Spec = {"query": "sum(rate(errors[1m]))", "threshold": 0.05, "window": "30m"}

PG: Spec = {"host": "postgres", "database": "mail_score", "credentials": {"secretName": "pg"}}
DB_OK: Spec = {"postgres": PG, "verify": "restore"}
DR_OK: Spec = {"backup": "nightly", "confirm": "mail_score"}

MW_OK: Spec = {"start": "2030-01-01T02:00:00Z", "duration": "2h"}

HR_HTTP: Spec = {"name": "frontend", "http": {"url": "http://mail-score-frontend/health"}}
HR_OK: Spec = {"checks": [HR_HTTP], "interval": "1m"}


def hr(*checks: Spec, **extra: Any) -> Spec:
    """A HealthReport spec with these checks."""
    return {"checks": list(checks), **extra}


HOOK: Spec = {"name": "slack", "key": "url"}
NF_OK: Spec = {"slack": {"webhookUrl": HOOK}, "default": True}
PAGE: Spec = {"pageId": "abc123", "apiKey": {"name": "statuspage", "key": "apiKey"}}

CASES: list[tuple[str, str, Spec, str]] = [
    # (id, kind, spec, words expected in the refusal)
    ("es-no-targets", "EmergencyScale", {"duration": "1h"}, "targets"),
    ("es-empty-targets", "EmergencyScale", {"targets": []}, "targets"),
    (
        "es-negative-replicas",
        "EmergencyScale",
        {"targets": [{"name": "a", "replicas": -1}]},
        "replicas",
    ),
    (
        "es-replicas-not-a-number",
        "EmergencyScale",
        {"targets": [{"name": "a", "replicas": "ten"}]},
        "replicas",
    ),
    (
        "es-replicas-over-schema-max",
        "EmergencyScale",
        {"targets": [{"name": "a", "replicas": 100000}]},
        "replicas",
    ),
    (
        "es-bad-duration",
        "EmergencyScale",
        {**ES_OK, "duration": "2 hours"},
        "must be a duration such as 30m",
    ),
    ("es-zero-duration", "EmergencyScale", {**ES_OK, "duration": "0s"}, "at least 1s"),
    (
        "es-sub-second-duration",
        "EmergencyScale",
        {**ES_OK, "duration": "0.0000001s"},
        "at least 1s",
    ),
    (
        "es-duplicate-target",
        "EmergencyScale",
        {"targets": [{"name": "a", "replicas": 2}, {"name": "a", "replicas": 3}]},
        "only once",
    ),
    (
        "es-bad-target-name",
        "EmergencyScale",
        {"targets": [{"name": "Mail_Score", "replicas": 2}]},
        "name",
    ),
    (
        "es-bad-kind",
        "EmergencyScale",
        {"targets": [{"kind": "DaemonSet", "name": "a", "replicas": 2}]},
        "kind",
    ),
    ("es-trigger-without-query", "EmergencyScale", {**ES_OK, "trigger": {"threshold": 1}}, "query"),
    (
        "es-trigger-bad-comparison",
        "EmergencyScale",
        {**ES_OK, "trigger": {"query": "up", "threshold": 1, "comparison": "~"}},
        "comparison",
    ),
    (
        "es-trigger-bad-for",
        "EmergencyScale",
        {**ES_OK, "trigger": {"query": "up", "threshold": 1, "for": "soon"}},
        "duration",
    ),
    ("rb-no-targets", "Rollback", {}, "targets"),
    ("rb-empty-targets", "Rollback", {"targets": []}, "targets"),
    ("rb-target-without-name", "Rollback", {"targets": [{"toRevision": 2}]}, "name"),
    ("rb-revision-zero", "Rollback", {"targets": [{"name": "a", "toRevision": 0}]}, "toRevision"),
    (
        "rb-revision-not-a-number",
        "Rollback",
        {"targets": [{"name": "a", "toRevision": "latest"}]},
        "toRevision",
    ),
    ("rb-duplicate-target", "Rollback", {"targets": [{"name": "a"}, {"name": "a"}]}, "only once"),
    ("rb-bad-name", "Rollback", {"targets": [{"name": "Backend!"}]}, "name"),
    (
        "rb-trigger-with-revision",
        "Rollback",
        {"targets": [{"name": "a", "toRevision": 2}], "trigger": RB_TRIGGER},
        "toRevision",
    ),
    (
        "rb-trigger-without-window",
        "Rollback",
        {**RB_OK, "trigger": {"query": "up", "threshold": 1}},
        "window",
    ),
    (
        "rb-trigger-bad-window",
        "Rollback",
        {**RB_OK, "trigger": {**RB_TRIGGER, "window": "half an hour"}},
        "duration",
    ),
    (
        "rb-trigger-bad-threshold",
        "Rollback",
        {**RB_OK, "trigger": {**RB_TRIGGER, "threshold": "high"}},
        "threshold",
    ),
    (
        "rb-too-many-targets",
        "Rollback",
        {"targets": [{"name": f"d{i}"} for i in range(21)]},
        "targets",
    ),
    ("db-no-postgres", "DatabaseBackup", {"verify": "readable"}, "postgres"),
    (
        "db-no-host",
        "DatabaseBackup",
        {"postgres": {"database": "d", "credentials": {"secretName": "pg"}}},
        "host",
    ),
    ("db-port-zero", "DatabaseBackup", {"postgres": {**PG, "port": 0}}, "port"),
    ("db-port-too-high", "DatabaseBackup", {"postgres": {**PG, "port": 70000}}, "port"),
    (
        "db-no-credentials",
        "DatabaseBackup",
        {"postgres": {"host": "pg", "database": "d"}},
        "credentials",
    ),
    ("db-bad-sslmode", "DatabaseBackup", {"postgres": {**PG, "sslMode": "sometimes"}}, "sslMode"),
    ("db-bad-verify", "DatabaseBackup", {**DB_OK, "verify": "maybe"}, "verify"),
    ("db-bad-cron", "DatabaseBackup", {**DB_OK, "schedule": "every night"}, "cron"),
    (
        "db-sub-second-starting-deadline",
        "DatabaseBackup",
        {**DB_OK, "schedule": "0 3 * * *", "startingDeadline": "0.0000001s"},
        "at least 1s",
    ),
    (
        "db-sub-second-max-age",
        "DatabaseBackup",
        {**DB_OK, "schedule": "0 3 * * *", "keep": {"maxAge": "0.5s"}},
        "at least 1s",
    ),
    (
        "db-time-zone-not-a-name",
        "DatabaseBackup",
        {**DB_OK, "schedule": "0 3 * * *", "timeZone": "UTC+2; drop"},
        "timeZone",
    ),
    (
        "db-keep-without-schedule",
        "DatabaseBackup",
        {**DB_OK, "keep": {"last": 3}},
        "only to a scheduled backup",
    ),
    (
        "db-keep-zero",
        "DatabaseBackup",
        {**DB_OK, "schedule": "@daily", "keep": {"last": 0}},
        "last",
    ),
    (
        "db-bad-deadline",
        "DatabaseBackup",
        {**DB_OK, "schedule": "@daily", "startingDeadline": "1d"},
        "duration",
    ),
    (
        "db-timezone-without-schedule",
        "DatabaseBackup",
        {**DB_OK, "timeZone": "Europe/Paris"},
        "timeZone",
    ),
    ("dr-no-backup", "DatabaseRestore", {"confirm": "x"}, "backup"),
    ("dr-empty-backup", "DatabaseRestore", {"backup": ""}, "backup"),
    ("dr-bad-backup-name", "DatabaseRestore", {"backup": "Nightly_Backup"}, "backup"),
    ("dr-backup-not-a-string", "DatabaseRestore", {"backup": ["a", "b"]}, "backup"),
    (
        "dr-bad-target",
        "DatabaseRestore",
        {**DR_OK, "targetDatabase": "mail score"},
        "targetDatabase",
    ),
    (
        "dr-target-too-long",
        "DatabaseRestore",
        {**DR_OK, "targetDatabase": "d" * 64},
        "targetDatabase",
    ),
    ("dr-confirm-too-long", "DatabaseRestore", {**DR_OK, "confirm": "c" * 64}, "confirm"),
    ("dr-confirm-not-a-string", "DatabaseRestore", {**DR_OK, "confirm": 42}, "confirm"),
    ("dr-safety-not-a-bool", "DatabaseRestore", {**DR_OK, "safetyBackup": "yes"}, "safetyBackup"),
    ("dr-backup-too-long", "DatabaseRestore", {"backup": "b" * 254}, "backup"),
    ("mw-no-duration", "MaintenanceWindow", {"start": "2030-01-01T02:00:00Z"}, "duration"),
    ("mw-neither-start-nor-schedule", "MaintenanceWindow", {"duration": "1h"}, "start"),
    (
        "mw-start-and-schedule",
        "MaintenanceWindow",
        {**MW_OK, "schedule": "0 2 * * 0"},
        "either start",
    ),
    ("mw-start-not-a-time", "MaintenanceWindow", {**MW_OK, "start": "next sunday"}, "start"),
    ("mw-bad-duration", "MaintenanceWindow", {**MW_OK, "duration": "2 hours"}, "duration such as"),
    ("mw-sub-second-duration", "MaintenanceWindow", {**MW_OK, "duration": "0.0000001s"}, "1s"),
    ("mw-bad-cron", "MaintenanceWindow", {"schedule": "sundays", "duration": "1h"}, "cron"),
    (
        "mw-negative-scale-down",
        "MaintenanceWindow",
        {**MW_OK, "scaleDown": [{"name": "mail-score-backend", "replicas": -1}]},
        "replicas",
    ),
    (
        "mw-bad-notice",
        "MaintenanceWindow",
        {**MW_OK, "policy": {"minimumNotice": "1 day"}},
        "duration",
    ),
    (
        "mw-zero-approvals",
        "MaintenanceWindow",
        {**MW_OK, "policy": {"approvals": {"required": 0, "approvers": ["alice"]}}},
        "required",
    ),
    (
        "mw-silence-without-matchers",
        "MaintenanceWindow",
        {**MW_OK, "silence": {"url": "http://am:9093", "matchers": []}},
        "matchers",
    ),
    (
        "mw-emergency-without-reason",
        "MaintenanceWindow",
        {**MW_OK, "emergency": {"reason": ""}},
        "reason",
    ),
    (
        "mw-health-check-both",
        "MaintenanceWindow",
        {
            **MW_OK,
            "healthCheck": {
                "http": {"url": "http://a"},
                "prometheus": {"query": "up", "threshold": 1},
            },
        },
        "exactly one of http or prometheus",
    ),
    ("nf-nothing", "Notifier", {}, "set exactly one of slack, webhook and statuspage"),
    (
        "nf-two-destinations",
        "Notifier",
        {"slack": {"webhookUrl": HOOK}, "webhook": {"url": "https://hooks.example/x"}},
        "set exactly one of slack, webhook and statuspage",
    ),
    ("nf-webhook-ftp", "Notifier", {"webhook": {"url": "ftp://hooks.example/x"}}, "url"),
    (
        "nf-webhook-url-and-secret",
        "Notifier",
        {"webhook": {"url": "https://hooks.example/x", "urlFrom": HOOK}},
        "set exactly one of url and urlFrom",
    ),
    ("nf-webhook-neither", "Notifier", {"webhook": {}}, "set exactly one of url and urlFrom"),
    ("nf-secret-without-key", "Notifier", {"slack": {"webhookUrl": {"name": "s"}}}, "key"),
    ("nf-slack-without-secret", "Notifier", {"slack": {}}, "webhookUrl"),
    ("nf-unknown-moment", "Notifier", {**NF_OK, "moments": ["exploded"]}, "moments"),
    ("nf-no-moments", "Notifier", {**NF_OK, "moments": []}, "moments"),
    ("nf-zero-attempts", "Notifier", {**NF_OK, "attempts": 0}, "attempts"),
    ("nf-attempts-a-word", "Notifier", {**NF_OK, "attempts": "many"}, "attempts"),
    ("nf-statuspage-no-page", "Notifier", {"statuspage": {"apiKey": HOOK}}, "pageId"),
    (
        "nf-statuspage-bad-base",
        "Notifier",
        {"statuspage": {**PAGE, "apiBase": "statuspage.io"}},
        "apiBase",
    ),
    (
        "nf-statuspage-bad-impact",
        "Notifier",
        {"statuspage": {**PAGE, "impact": "apocalyptic"}},
        "impact",
    ),
    ("nf-timeout-too-long", "Notifier", {**NF_OK, "timeoutSeconds": 600}, "timeoutSeconds"),
    (
        "op-notify-bad-name",
        "Rollback",
        {**RB_OK, "notify": {"notifiers": ["Not A Name"]}},
        "notifiers",
    ),
    (
        "op-notify-bad-moment",
        "EmergencyScale",
        {**ES_OK, "notify": {"moments": ["later"]}},
        "moments",
    ),
    ("healthreport-no-checks", "HealthReport", {"checks": []}, "checks"),
    ("healthreport-duplicate-names", "HealthReport", hr(HR_HTTP, HR_HTTP), "names must be unique"),
    (
        "healthreport-threshold-not-a-number",
        "HealthReport",
        hr({"name": "p95", "prometheus": {"query": "up", "threshold": "high"}}),
        "threshold",
    ),
    ("healthreport-interval-under-10s", "HealthReport", {**HR_OK, "interval": "5s"}, "10s"),
    (
        "healthreport-url-not-http",
        "HealthReport",
        hr({"name": "web", "http": {"url": "ftp://mail-score/health"}}),
        "url",
    ),
    (
        "healthreport-secret-without-key",
        "HealthReport",
        hr(
            {
                "name": "db",
                "postgres": {**PG, "credentials": {"secretName": "pg", "passwordKey": ""}},
            }
        ),
        "passwordKey",
    ),
    (
        "healthreport-percent-over-100",
        "HealthReport",
        hr({"name": "cache", "redis": {"host": "redis", "maxMemoryPercent": 101}}),
        "maxMemoryPercent",
    ),
    (
        "healthreport-two-types",
        "HealthReport",
        hr({**HR_HTTP, "redis": {"host": "redis"}}),
        "exactly one of workloads, postgres, redis, http or prometheus",
    ),
    (
        "healthreport-unknown-type",
        "HealthReport",
        hr({"name": "mq", "rabbitmq": {"host": "rabbit"}}),
        "exactly one of workloads, postgres, redis, http or prometheus",
    ),
    (
        "healthreport-bad-comparison",
        "HealthReport",
        hr({"name": "p95", "prometheus": {"query": "up", "threshold": 1, "comparison": "=>"}}),
        "comparison",
    ),
    ("healthreport-negative-timeout", "HealthReport", {**HR_OK, "timeout": "-5s"}, "duration"),
    (
        "healthreport-no-workloads",
        "HealthReport",
        hr({"name": "apps", "workloads": {"deployments": []}}),
        "at least one Deployment or StatefulSet",
    ),
]


@pytest.mark.parametrize(
    ("kind", "spec", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rejected_by_the_api_server(
    kube: Cluster, namespace: str, kind: str, spec: Spec, words: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api_client, namespace, kind, "bad", spec)
    assert refused.value.status == 422, refused.value.body
    assert words.lower() in str(refused.value.body).lower(), refused.value.body


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("EmergencyScale", ES_OK),
        ("Rollback", RB_OK),
        ("DatabaseBackup", DB_OK),
        ("DatabaseRestore", DR_OK),
        ("MaintenanceWindow", MW_OK),
        ("HealthReport", HR_OK),
        ("Notifier", NF_OK),
        ("Notifier", {"statuspage": PAGE, "moments": ["failed", "completed"]}),
        ("Notifier", {"webhook": {"urlFrom": HOOK}}),
        ("Rollback", {**RB_OK, "notify": {"notifiers": ["sre-slack"], "moments": ["failed"]}}),
    ],
)
def test_valid_spec_is_accepted(kube: Cluster, namespace: str, kind: str, spec: Spec) -> None:
    created = create_cr(kube.api_client, namespace, kind, "good", spec)
    assert created["metadata"]["name"] == "good"
