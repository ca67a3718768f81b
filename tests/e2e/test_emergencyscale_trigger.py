"""EmergencyScale gated by a real Prometheus (Debian's) scraping an exporter the test controls.

The exporter's gauge plays the backend's 5xx ratio. Scaling must wait for `for`,
reverting for the cooldown; Prometheus going away must do what onNoData says,
visibly in status; a query with several series must stall with the reason.
"""

from __future__ import annotations

import math
import time
from typing import Any

from support.app import deploy_app
from support.crs import cond, create_cr, get_cr
from support.kube import Cluster
from support.operator import OperatorProcess
from support.prometheus import Prometheus, prometheus  # noqa: F401  (the fixture)
from support.wait import wait_for

from .test_emergencyscale import (
    FRONTEND,
    KIND,
    held_by,
    make_deployment,
    parse_status_time,
    ready_message,
    replicas,
    status,
    wait_es,
)

METRIC = "http_errors_ratio"
QUERY = f'{METRIC}{{service="backend"}}'


def gated(prom: Prometheus, target: str, count: int, **trigger: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targets": [{"name": target, "replicas": count}],
        "trigger": {"url": prom.url, "query": QUERY, "threshold": 0.1, **trigger},
    }
    if "cooldown" in trigger:
        spec["cooldown"] = spec["trigger"].pop("cooldown")
    return spec


def set_ratio(prom: Prometheus, value: float) -> None:
    prom.exporter.set(METRIC, value, {"service": "backend"})
    prom.wait_for(QUERY, lambda values: values == [value])


def test_scales_only_after_for_and_reverts_after_the_cooldown(
    kube: Cluster,
    namespace: str,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    deploy_app(kube, namespace)
    set_ratio(prometheus, 0.01)
    spec = gated(prometheus, FRONTEND, 6, **{"for": "10s", "cooldown": "10s"})
    create_cr(kube.api, namespace, KIND, "on-errors", spec)

    obj = wait_es(
        kube, namespace, "on-errors", phase="Waiting", ready=("True", "WaitingForTrigger")
    )
    gate = status(obj)["gate"]
    assert gate["value"] == 0.01 and gate["holds"] is False and gate["evaluatedAt"]
    assert "> 0.1 clear" in ready_message(obj)

    set_ratio(prometheus, 0.2)
    raised = time.time()
    obj = wait_es(kube, namespace, "on-errors", phase="Waiting")
    wait_for(
        lambda: status(get_cr(kube.api, namespace, KIND, "on-errors"))["gate"].get("holds"),
        timeout=10,
        what="the gate to see the condition hold",
    )
    # During `for`, nothing is touched.
    while time.time() < raised + 7:
        assert replicas(kube, namespace, FRONTEND) == 2
        assert held_by(kube, namespace, FRONTEND) is None
        time.sleep(0.5)
    obj = wait_es(kube, namespace, "on-errors", phase="Active", timeout=30)
    st = status(obj)
    # activatedAt is kept to the second; `for` (10s) was waited out from `since`.
    since = parse_status_time(st["gate"]["since"])
    assert parse_status_time(st["activatedAt"]) >= math.floor(since) + 10
    wait_for(lambda: replicas(kube, namespace, FRONTEND) == 6, timeout=10, what="frontend 6")

    set_ratio(prometheus, 0.02)
    dropped = time.time()
    obj = wait_es(kube, namespace, "on-errors", phase="Completed", timeout=40)
    st = status(obj)
    assert st["endReason"] == "TriggerCleared"
    # The cooldown (10s) was waited out: completedAt is kept to the second, and the
    # operator may have sampled the drop up to a second before this test saw it.
    assert parse_status_time(st["completedAt"]) >= dropped + 8
    assert cond(obj, "Ready")["reason"] == "Reverted"
    assert replicas(kube, namespace, FRONTEND) == 2
    assert held_by(kube, namespace, FRONTEND) is None


def test_prometheus_down_does_what_on_no_data_says(
    kube: Cluster,
    namespace: str,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    for name in ("hold", "activate", "fail", "fail-active"):
        make_deployment(kube, namespace, name, 1)
    set_ratio(prometheus, 0.01)
    create_cr(kube.api, namespace, KIND, "hold", gated(prometheus, "hold", 3))
    create_cr(
        kube.api, namespace, KIND, "activate", gated(prometheus, "activate", 3, onNoData="Activate")
    )
    create_cr(kube.api, namespace, KIND, "fail", gated(prometheus, "fail", 3, onNoData="Fail"))
    create_cr(
        kube.api,
        namespace,
        KIND,
        "fail-active",
        gated(prometheus, "fail-active", 3, onNoData="Fail", threshold=0.001),
    )
    for name in ("hold", "activate", "fail"):
        wait_es(kube, namespace, name, phase="Waiting", ready=("True", "WaitingForTrigger"))
    wait_es(kube, namespace, "fail-active", phase="Active")
    # Active is written before the change it records: wait for the change itself.
    wait_for(
        lambda: replicas(kube, namespace, "fail-active") == 3, timeout=10, what="fail-active at 3"
    )

    prometheus.stop()

    obj = wait_es(kube, namespace, "fail", phase="Failed", ready=("False", "TriggerFailed"))
    assert cond(obj, "Stalled")["status"] == "True"
    assert "cannot be reached" in status(obj)["gate"]["error"]
    assert "onNoData: Fail" in ready_message(obj)
    assert replicas(kube, namespace, "fail") == 1

    obj = wait_es(kube, namespace, "fail-active", phase="Failed", timeout=30)
    assert status(obj)["endReason"] == "TriggerFailed"
    assert replicas(kube, namespace, "fail-active") == 1  # what it changed was put back
    assert held_by(kube, namespace, "fail-active") is None

    obj = wait_es(kube, namespace, "activate", phase="Active")
    wait_for(lambda: replicas(kube, namespace, "activate") == 3, timeout=10, what="activate at 3")
    assert "cannot be reached" in status(obj)["gate"]["error"]

    def hold_reports_it() -> dict[str, Any] | None:
        obj = get_cr(kube.api, namespace, KIND, "hold")
        return obj if "cannot be reached" in (status(obj)["gate"].get("error") or "") else None

    obj = wait_for(hold_reports_it, timeout=20, what="hold to report Prometheus down")
    assert status(obj)["phase"] == "Waiting"
    assert "cannot be reached" in ready_message(obj)
    assert prometheus.url.split("//")[1] in ready_message(obj)
    time.sleep(3)  # Hold means: nothing happens, however long it lasts
    assert status(get_cr(kube.api, namespace, KIND, "hold"))["phase"] == "Waiting"
    assert replicas(kube, namespace, "hold") == 1

    prometheus.start()
    set_ratio(prometheus, 0.5)
    wait_es(kube, namespace, "hold", phase="Active", timeout=30)
    wait_for(lambda: replicas(kube, namespace, "hold") == 3, timeout=10, what="hold at 3")


def test_a_query_returning_several_series_stalls_with_the_reason(
    kube: Cluster,
    namespace: str,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    deploy_app(kube, namespace)
    prometheus.exporter.set(METRIC, 0.5, {"service": "backend"})
    prometheus.exporter.set(METRIC, 0.5, {"service": "frontend"})
    prometheus.wait_for(METRIC, lambda values: len(values) == 2)
    spec = gated(prometheus, FRONTEND, 6)
    spec["trigger"]["query"] = METRIC
    create_cr(kube.api, namespace, KIND, "ambiguous", spec)
    obj = wait_es(kube, namespace, "ambiguous", phase="Waiting", ready=("False", "TriggerInvalid"))
    assert cond(obj, "Stalled")["status"] == "True"
    message = ready_message(obj)
    assert "the query returned 2 series" in message
    assert 'service="backend"' in message and 'service="frontend"' in message
    assert "sum() or max()" in message
    assert replicas(kube, namespace, FRONTEND) == 2


def test_a_refused_query_stalls_with_prometheus_own_words(
    kube: Cluster,
    namespace: str,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    deploy_app(kube, namespace)
    spec = gated(prometheus, FRONTEND, 6)
    spec["trigger"]["query"] = "sum(rate(http_requests_total[5m]"
    create_cr(kube.api, namespace, KIND, "typo", spec)
    obj = wait_es(kube, namespace, "typo", phase="Waiting", ready=("False", "TriggerInvalid"))
    assert "Prometheus refused the query" in ready_message(obj)
    assert "parse error" in ready_message(obj)


def test_the_default_prometheus_comes_from_the_operator_setting(
    kube: Cluster,
    namespace: str,
    operator: OperatorProcess,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    deploy_app(kube, namespace)
    set_ratio(prometheus, 0.5)
    operator.env["RUNBOOK_PROMETHEUS_URL"] = prometheus.url
    operator.restart()
    try:
        spec = gated(prometheus, FRONTEND, 3)
        del spec["trigger"]["url"]
        create_cr(kube.api, namespace, KIND, "default-url", spec)
        obj = wait_es(kube, namespace, "default-url", phase="Active")
        assert status(obj)["gate"]["value"] == 0.5
    finally:
        del operator.env["RUNBOOK_PROMETHEUS_URL"]
        operator.restart()
