"""Notifications: operations tell Slack and Statuspage of their moments, once, and a dead
webhook never holds an operation up.

Real servers on loopback (support/receivers.py) check the documented request shapes of
Slack incoming webhooks and the Statuspage incidents API.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client

from support.crs import cond, condition, create_cr, get_cr, wait_condition, wait_phase
from support.events import events
from support.health import Health
from support.health import health as health  # noqa: PLC0414  (the fixture)
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.receivers import Receiver
from support.receivers import receivers as receivers  # noqa: PLC0414  (the fixture)
from support.rollback_cluster import create_deployment, manifest, set_image
from support.wait import wait_for

from .test_maintenancewindow import small_window

pytestmark = pytest.mark.timeout(240)

WINDOW = "MaintenanceWindow"


def secret(kube: Cluster, namespace: str, name: str, data: dict[str, str]) -> None:
    client.CoreV1Api(kube.api).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def slack_notifier(
    kube: Cluster, namespace: str, rx: Receiver, name: str = "sre-slack", **spec: Any
) -> None:
    secret(kube, namespace, "slack-webhook", {"url": rx.slack_url})
    body = {"slack": {"webhookUrl": {"name": "slack-webhook", "key": "url"}}, **spec}
    create_cr(kube.api, namespace, "Notifier", name, body)
    wait_condition(kube.api, namespace, "Notifier", name, "Ready", timeout=30)


def statuspage_notifier(kube: Cluster, namespace: str, rx: Receiver, **spec: Any) -> None:
    secret(kube, namespace, "statuspage", {"apiKey": rx.api_key})
    page = {
        "apiBase": rx.statuspage_base,
        "pageId": rx.page_id,
        "apiKey": {"name": "statuspage", "key": "apiKey"},
        "componentIds": ["backend"],
    }
    create_cr(kube.api, namespace, "Notifier", "status-page", {"statuspage": page, **spec})
    wait_condition(kube.api, namespace, "Notifier", "status-page", "Ready", timeout=30)


def notifications(kube: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(get_cr(kube.api, namespace, kind, name)["status"].get("notifications") or {})


def delivered(kube: Cluster, namespace: str, kind: str, name: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        record = notifications(kube, namespace, kind, name)
        states = [d["state"] for d in record.get("deliveries") or []]
        return record if states and all(s == state for s in states) else None

    return wait_for(check, timeout=90, what=f"{kind} {name}'s deliveries {state}")


def short_notice_window() -> dict[str, Any]:
    spec = small_window(10, "1m")
    spec["policy"]["minimumNotice"] = "24h"
    spec["reason"] = "PostgreSQL 15 -> 16 upgrade"
    return spec


def assert_nowhere(kube: Cluster, operator: OperatorProcess, namespace: str, value: str) -> None:
    assert value not in operator.raw_log()
    assert value not in json.dumps(events(kube.api, namespace))
    custom = client.CustomObjectsApi(kube.api)
    for plural in ("maintenancewindows", "rollbacks", "notifiers"):
        listing = custom.list_namespaced_custom_object(
            "ops.mailscore.com", "v1alpha1", namespace, plural
        )
        assert value not in json.dumps(listing)


def test_a_blocked_window_posts_one_slack_message_naming_the_unmet_rule(
    kube: Cluster, operator: OperatorProcess, namespace: str, receivers: Receiver
) -> None:
    slack_notifier(kube, namespace, receivers, default=True)
    notifier = get_cr(kube.api, namespace, "Notifier", "sre-slack")
    assert cond(notifier, "Ready")["reason"] == "Configured"
    assert notifier["status"]["target"] == "Slack incoming webhook"

    create_cr(kube.api, namespace, WINDOW, "pg-upgrade", short_notice_window())
    wait_phase(kube.api, namespace, WINDOW, "pg-upgrade", "Blocked", timeout=40)
    wait_for(receivers.texts, timeout=30, what="a Slack message")
    time.sleep(3)  # a second message would come within a pass or two
    (text,) = receivers.texts()
    assert text.startswith(f"MaintenanceWindow {namespace}/pg-upgrade is BLOCKED")
    assert "NoticeTooShort" in text and "24h" in text
    assert "Why: PostgreSQL 15 -> 16 upgrade" in text
    assert f"kubectl describe maintenancewindow pg-upgrade -n {namespace}" in text
    body = receivers.slack[0].body
    assert body["blocks"][0]["text"]["text"] == text  # Slack's section block, mrkdwn
    assert receivers.slack[0].headers["Content-Type"] == "application/json"

    record = delivered(kube, namespace, WINDOW, "pg-upgrade", "Sent")
    assert record["moment"] == "blocked" and record["deliveries"][0]["notifier"] == "sre-slack"
    window = get_cr(kube.api, namespace, WINDOW, "pg-upgrade")
    assert cond(window, "Notified")["status"] == "True"
    assert receivers.refused == []
    # The webhook URL is a credential: its token is nowhere to be read.
    assert_nowhere(kube, operator, namespace, receivers.slack_hook.rsplit("/", 1)[1])


def test_a_failed_rollback_posts_one_and_a_restarted_operator_sends_nothing_twice(
    kube: Cluster, operator: OperatorProcess, namespace: str, receivers: Receiver
) -> None:
    slack_notifier(kube, namespace, receivers)  # not a default: named by the Rollback
    spec = {"targets": [{"name": "mail-score-backnd"}], "notify": {"notifiers": ["sre-slack"]}}
    create_cr(kube.api, namespace, "Rollback", "undo", spec)
    wait_condition(kube.api, namespace, "Rollback", "undo", "Stalled", reason="DeploymentNotFound")
    wait_for(receivers.texts, timeout=30, what="a Slack message")
    delivered(kube, namespace, "Rollback", "undo", "Sent")
    (text,) = receivers.texts()
    assert text.startswith(f"Rollback {namespace}/undo FAILED (Refused, DeploymentNotFound)")
    assert "mail-score-backnd does not exist" in text

    operator.kill()
    operator.start()
    create_cr(kube.api, namespace, "Rollback", "marker", {"targets": [{"name": "nope"}]})
    wait_phase(kube.api, namespace, "Rollback", "marker", "Refused", timeout=30)
    time.sleep(3)  # the restarted operator has passed over `undo` again by now
    assert len(receivers.texts()) == 1  # `marker` names no notifier and there is no default


def test_a_webhook_answering_500_three_times_is_retried_and_the_operation_goes_on(
    kube: Cluster, operator: OperatorProcess, namespace: str, receivers: Receiver
) -> None:
    create_deployment(kube, namespace, manifest("web", image("web-1")))
    set_image(kube, namespace, "web", image("web-2"))
    slack_notifier(kube, namespace, receivers, default=True, moments=["completed"])
    receivers.fail_next(3)
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})
    done = wait_phase(kube.api, namespace, "Rollback", "undo", "Completed", timeout=60)
    assert cond(done, "Ready")["status"] == "True"  # whatever the webhook does
    record = delivered(kube, namespace, "Rollback", "undo", "Sent")
    delivery = record["deliveries"][0]
    assert delivery["attempts"] == 4 and "error" not in delivery
    assert [code for code, _ in receivers.refused] == [500, 500, 500]
    (text,) = receivers.texts()
    assert text.startswith(f"Rollback {namespace}/undo completed")


def test_attempts_used_up_are_marked_in_status_and_the_operation_is_unaffected(
    kube: Cluster, operator: OperatorProcess, namespace: str, receivers: Receiver
) -> None:
    slack_notifier(kube, namespace, receivers, default=True, attempts=2)
    receivers.fail_next(100)
    create_cr(kube.api, namespace, WINDOW, "pg-upgrade", short_notice_window())
    record = delivered(kube, namespace, WINDOW, "pg-upgrade", "Failed")
    delivery = record["deliveries"][0]
    assert delivery["attempts"] == 2 and "HTTP 500 (rollup_error)" in delivery["error"]
    window = get_cr(kube.api, namespace, WINDOW, "pg-upgrade")
    notified = cond(window, "Notified")
    assert notified["status"] == "False" and notified["reason"] == "DeliveryFailed"
    assert window["status"]["phase"] == "Blocked"
    stalled = condition(window, "Stalled")
    assert stalled is not None and stalled["reason"] == "NoticeTooShort"  # its own reason
    assert receivers.texts() == []


def test_statuspage_opens_an_incident_for_a_failure(
    kube: Cluster, operator: OperatorProcess, namespace: str, receivers: Receiver
) -> None:
    statuspage_notifier(kube, namespace, receivers, default=True)
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "gone"}]})
    record = delivered(kube, namespace, "Rollback", "undo", "Sent")
    (request,) = receivers.statuspage
    assert request.method == "POST"
    assert request.path == f"/v1/pages/{receivers.page_id}/incidents"
    incident = request.body["incident"]
    assert incident["name"] == f"Rollback {namespace}/undo: failed"
    assert incident["status"] == "investigating" and incident["impact_override"] == "major"
    assert incident["component_ids"] == ["backend"]
    assert "gone does not exist" in incident["body"]
    (opened,) = receivers.incidents
    assert record["incidents"] == [{"notifier": "status-page", "id": opened}]
    assert_nowhere(kube, operator, namespace, receivers.api_key)


def test_a_notifier_whose_secret_is_missing_says_so(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    spec = {"slack": {"webhookUrl": {"name": "not-there", "key": "url"}}}
    create_cr(kube.api, namespace, "Notifier", "broken", spec)

    def not_ready() -> dict[str, Any] | None:
        obj = get_cr(kube.api, namespace, "Notifier", "broken")
        ready = condition(obj, "Ready")
        return obj if ready and ready["reason"] == "SecretNotReadable" else None

    obj = wait_for(not_ready, timeout=30, what="Notifier broken not ready")
    assert "not-there" in cond(obj, "Ready")["message"]
    listing = kube.run_kubectl("get", "notifiers", "-n", namespace).stdout
    assert "broken" in listing and "Slack incoming webhook" in listing


def test_a_failing_health_report_opens_an_incident_and_resolves_it_when_it_passes(
    kube: Cluster,
    operator: OperatorProcess,
    namespace: str,
    receivers: Receiver,
    health: tuple[str, type[Health]],
) -> None:
    url, handler = health
    statuspage_notifier(kube, namespace, receivers, default=True)
    spec = {"checks": [{"name": "backend", "http": {"url": url}}], "interval": "10s"}
    create_cr(kube.api, namespace, "HealthReport", "p1-first-look", spec)
    wait_condition(kube.api, namespace, "HealthReport", "p1-first-look", "Ready", timeout=30)
    assert receivers.statuspage == []  # passing from the start: nothing to tell Statuspage

    handler.code = 503
    wait_for(lambda: receivers.statuspage, timeout=40, what="an incident opened")
    (opened,) = receivers.incidents
    incident = receivers.statuspage[0].body["incident"]
    assert incident["name"] == f"HealthReport {namespace}/p1-first-look: failed"
    assert "backend" in incident["body"] and "503" in incident["body"]

    handler.code = 200

    def resolved() -> bool:
        return receivers.incidents[opened].get("status") == "resolved"

    wait_for(resolved, timeout=40, what="the incident resolved")
    patch = receivers.statuspage[-1]
    assert (patch.method, patch.path) == (
        "PATCH",
        f"/v1/pages/{receivers.page_id}/incidents/{opened}",
    )
    assert len(receivers.incidents) == 1  # one incident, opened once, resolved once
    record = notifications(kube, namespace, "HealthReport", "p1-first-look")
    assert record["moment"] == "completed" and not record.get("incidents")
