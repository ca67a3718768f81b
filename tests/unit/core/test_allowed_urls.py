"""RUNBOOK_ALLOWED_URLS through the real controller on the FakeKube, with the real
adapters: a refused URL is never asked, and the operation says why, in plain words.

(adapters/test_urls.py covers the matching and every adapter; these show what a person
sees in status when a custom resource names a URL the operator may not call.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.adapters.urls import AllowList, allowing
from runbook_operator.kinds.emergencyscale.handlers import EmergencyScaleKind
from runbook_operator.kinds.maintenancewindow.handlers import MaintenanceWindowKind
from runbook_operator.settings import Settings
from support.fake_kube import NS, FakeKube
from support.maintenancewindow_fakes import Sim, mail_score
from support.passes import Harness

SETTING = "http://prometheus.monitoring:9090,http://alertmanager.monitoring:9093"
LISTED = (
    "the operator's RUNBOOK_ALLOWED_URLS "
    "(http://prometheus.monitoring:9090, http://alertmanager.monitoring:9093)"
)


@pytest.fixture(autouse=True)
def restricted() -> Iterator[None]:
    with allowing(AllowList.parse(SETTING)):
        yield


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_an_emergency_scale_gated_on_another_prometheus_stalls_url_not_allowed() -> None:
    kube = FakeKube()
    kube.add_deployment("mail-score-frontend", 2)
    kube.add_custom(
        "emergencyscales",
        {
            "metadata": {"name": "spike", "namespace": NS},
            "spec": {
                "duration": "1h",
                "targets": [{"name": "mail-score-frontend", "replicas": 6}],
                "trigger": {
                    "url": "http://metadata.internal:80/latest",
                    "query": "errors",
                    "threshold": 0.1,
                },
            },
        },
    )
    h = Harness(EmergencyScaleKind(), kube, Settings(tick_seconds=2))  # the real sampler
    h.run("spike")
    status = h.obj("spike")["status"]
    stalled = condition(status, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "URLNotAllowed"
    assert (
        "Prometheus URL refused: http://metadata.internal:80 is not allowed by"
        in (stalled["message"])
    )
    assert "RUNBOOK_ALLOWED_URLS (http://prometheus.monitoring:9090" in stalled["message"]
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 2


def test_a_window_silencing_an_alertmanager_not_allowed_is_blocked_changing_nothing() -> None:
    start = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
    spec = {
        "start": start.isoformat(),
        "duration": "1h",
        "policy": {"minimumNotice": "1h"},
        "scaleDown": [{"name": "mail-score-backend", "replicas": 1}],
        "silence": {
            "url": "http://alertmanager.evil.example:9093",
            "matchers": [{"name": "namespace", "value": NS}],
        },
    }
    s = Sim(
        spec=copy.deepcopy(spec),
        now=start - timedelta(minutes=1),
        created=start - timedelta(days=1),
    )
    mail_score(s.kube)
    # The real Alertmanager client and HTTP check (nothing is reachable: none is asked).
    s.harness = Harness(
        MaintenanceWindowKind(), s.kube, Settings(tick_seconds=2), clock=lambda: s.now
    )
    s.run_until(lambda s: s.phase == "Blocked", limit=400)
    stalled = condition(s.status, "Stalled")
    assert stalled["reason"] == "URLNotAllowed"
    assert (
        "Alertmanager URL refused: http://alertmanager.evil.example:9093 is not allowed"
        in (stalled["message"])
    )
    assert LISTED in stalled["message"]
    assert s.step_names() == []
    assert s.kube.obj("Deployment", "mail-score-backend")["spec"]["replicas"] == 3


def test_a_pending_window_says_before_its_start_that_it_would_be_refused() -> None:
    start = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
    spec = {
        "start": start.isoformat(),
        "duration": "1h",
        "policy": {"minimumNotice": "1h"},
        "silence": {
            "url": "http://alertmanager.monitoring:9093",  # allowed
            "matchers": [{"name": "namespace", "value": NS}],
        },
        "healthCheck": {"http": {"url": "http://169.254.169.254/latest/meta-data"}},
    }
    s = Sim(spec=spec, now=start - timedelta(hours=1), created=start - timedelta(days=1))
    mail_score(s.kube)
    s.one()
    found = condition(s.status, "TargetsFound")
    assert found["status"] == "False" and found["reason"] == "URLNotAllowed"
    assert found["message"].startswith(
        "health check URL refused: http://169.254.169.254:80 is not allowed by"
    )
    s.run_until(lambda s: s.phase == "Blocked", limit=20000)
    assert condition(s.status, "Stalled")["reason"] == "URLNotAllowed"


@pytest.mark.parametrize(
    ("webhook", "ready", "reason"),
    [
        ("https://hooks.slack.evil.example/services/T0/B0/xoxb-secret", "False", "URLNotAllowed"),
        ("http://alertmanager.monitoring:9093/hook/xoxb-secret", "True", "Configured"),
    ],
)
def test_a_notifier_whose_webhook_is_refused_says_so_without_the_secret(
    webhook: str, ready: str, reason: str
) -> None:
    from runbook_operator.kinds.notifier.handlers import NotifierKind

    kube = FakeKube()
    kube.add_secret("slack-webhook", {"url": webhook})
    kube.add_custom(
        "notifiers",
        {
            "metadata": {"name": "sre-slack", "namespace": NS},
            "spec": {"slack": {"webhookUrl": {"name": "slack-webhook", "key": "url"}}},
        },
    )
    h = Harness(NotifierKind(), kube, Settings())
    h.run("sre-slack")
    shown = condition(h.obj("sre-slack")["status"], "Ready")
    assert (shown["status"], shown["reason"]) == (ready, reason)
    assert "xoxb-secret" not in shown["message"] and "services" not in shown["message"]
    if reason == "URLNotAllowed":
        assert shown["message"].startswith(
            "Slack incoming webhook URL refused: https://hooks.slack.evil.example:443 is not "
            "allowed by the operator's RUNBOOK_ALLOWED_URLS"
        )
