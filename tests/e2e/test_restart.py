"""Restart on the real test bed: in order, health-checked, crash-safe, paused refused.

The runbook's "Application Restart": `kubectl rollout restart`, `rollout status`,
`curl -f .../health`. Deployments roll for real (kwok plays the nodes); the health
check is a real HTTP server on loopback; crashes are the operator dying at a
failpoint right after a step is recorded.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.crs import create_cr, get_cr, patch_cr, wait_phase
from support.events import reasons, wait_reasons
from support.health import Health
from support.health import health as health  # noqa: PLC0414  (the fixture)
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.rollback_cluster import (
    create_deployment,
    deployment,
    manifest,
    owned_replica_sets,
)
from support.wait import wait_for

KIND = "Restart"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HOLD = "ops.mailscore.com/held-by"
REVISION = "deployment.kubernetes.io/revision"
BACKEND, FRONTEND = "mail-score-backend", "mail-score-frontend"


def two_deployments(kube: Cluster, namespace: str) -> None:
    create_deployment(kube, namespace, manifest(BACKEND, image("backend-1.4.2"), replicas=3))
    create_deployment(kube, namespace, manifest(FRONTEND, image("frontend-2.1.0"), replicas=2))


def restarted_at(kube: Cluster, namespace: str, name: str) -> str | None:
    template = deployment(kube, namespace, name)["spec"]["template"]
    return (template["metadata"].get("annotations") or {}).get(RESTARTED_AT)


def test_two_deployments_in_order_each_after_the_previous(
    kube: Cluster, operator: OperatorProcess, namespace: str, health: tuple[str, type[Health]]
) -> None:
    two_deployments(kube, namespace)
    url, _ = health
    spec = {
        "targets": [{"name": BACKEND}, {"name": FRONTEND}],
        "healthCheck": {"http": {"url": url}},
    }
    create_cr(kube.api, namespace, KIND, "quick-fix", spec)
    done = wait_phase(kube.api, namespace, KIND, "quick-fix", "Completed", timeout=90)

    status = done["status"]
    stamp = status["restartStamp"]
    backend, frontend = status["targets"]
    assert (
        restarted_at(kube, namespace, BACKEND) == restarted_at(kube, namespace, FRONTEND) == stamp
    )
    # InOrder: the frontend was restarted only once the backend had rolled out.
    assert backend["state"] == frontend["state"] == "Complete"
    assert frontend["startedAt"] >= backend["completedAt"]
    for name, target in ((BACKEND, backend), (FRONTEND, frontend)):
        sets = {
            rs["metadata"]["annotations"][REVISION]: rs["metadata"]["name"]
            for rs in owned_replica_sets(kube, namespace, name)
        }
        assert sorted(sets) == ["1", "2"], f"{name}: one new ReplicaSet, no second restart"
        assert (target["oldReplicaSet"], target["newReplicaSet"]) == (sets["1"], sets["2"])
        assert (target["oldRevision"], target["newRevision"]) == ("1", "2")
        assert HOLD not in (deployment(kube, namespace, name)["metadata"].get("annotations") or {})
    assert "HTTP 200" in status["health"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Restarted"

    posted = wait_reasons(kube.api, namespace, "quick-fix", {"Completed"})
    assert posted.count("Restarted") == 2 and posted.count("RolledOut") == 2
    assert "Logging" not in posted


def test_a_failing_health_check_ends_failed_with_the_reason(
    kube: Cluster, operator: OperatorProcess, namespace: str, health: tuple[str, type[Health]]
) -> None:
    two_deployments(kube, namespace)
    url, handler = health
    handler.code = 503
    spec = {
        "targets": [{"name": BACKEND}],
        "healthCheck": {"http": {"url": url}, "timeout": "4s"},
    }
    create_cr(kube.api, namespace, KIND, "sick", spec)
    failed = wait_phase(kube.api, namespace, KIND, "sick", "Failed", timeout=60)
    stalled = next(c for c in failed["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "Unhealthy"
    assert "did not pass within 4s" in stalled["message"] and "HTTP 503" in stalled["message"]


def test_paused_deployment_is_refused_and_nothing_restarts(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    two_deployments(kube, namespace)
    kube.run_kubectl("-n", namespace, "rollout", "pause", f"deployment/{FRONTEND}")
    create_cr(
        kube.api, namespace, KIND, "paused", {"targets": [{"name": BACKEND}, {"name": FRONTEND}]}
    )
    refused = wait_phase(kube.api, namespace, KIND, "paused", "Refused", timeout=30)
    ready = next(c for c in refused["status"]["conditions"] if c["type"] == "Ready")
    assert "is paused" in ready["message"] and "rollout resume" in ready["message"]
    assert restarted_at(kube, namespace, BACKEND) is None
    assert restarted_at(kube, namespace, FRONTEND) is None


def test_dying_after_every_step_restarts_nothing_twice(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    two_deployments(kube, namespace)
    operator.stop()  # before the Restart exists: every step is taken by a dying operator
    create_cr(
        kube.api, namespace, KIND, "crashy", {"targets": [{"name": BACKEND}, {"name": FRONTEND}]}
    )
    deaths = operator.die_at(
        "restart-Restarting",
        lambda: (
            get_cr(kube.api, namespace, KIND, "crashy").get("status", {}).get("phase")
            == "Completed"
        ),
    )
    assert deaths >= 4  # holds+record, backend restarted, rolled out, frontend restarted, ...
    done = wait_phase(kube.api, namespace, KIND, "crashy", "Completed", timeout=90)
    stamp = done["status"]["restartStamp"]
    for name in (BACKEND, FRONTEND):
        assert restarted_at(kube, namespace, name) == stamp
        assert len(owned_replica_sets(kube, namespace, name)) == 2, f"{name} restarted twice"
    wait_for(
        lambda: reasons(kube.api, namespace, "crashy").count("Completed") == 1,
        timeout=10,
        what="one Completed event",
    )


OK: dict[str, Any] = {"targets": [{"name": BACKEND}]}
MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("no-targets", {}, "targets"),
    ("empty-targets", {"targets": []}, "targets"),
    ("duplicate-target", {"targets": [{"name": BACKEND}, {"name": BACKEND}]}, "only once"),
    ("daemonset", {"targets": [{"kind": "DaemonSet", "name": "x"}]}, "kind"),
    ("bad-name", {"targets": [{"name": "Mail_Score"}]}, "name"),
    ("order", {**OK, "order": "Randomly"}, "order"),
    ("timeout-words", {**OK, "timeout": "five minutes"}, "duration such as"),
    ("timeout-zero", {**OK, "timeout": "0s"}, "at least 1s"),
    (
        "health-both",
        {
            **OK,
            "healthCheck": {
                "http": {"url": "http://a"},
                "prometheus": {"query": "up", "threshold": 1},
            },
        },
        "exactly one of http or prometheus",
    ),
    ("health-url", {**OK, "healthCheck": {"http": {"url": "ftp://a/health"}}}, "url"),
    (
        "health-status",
        {**OK, "healthCheck": {"http": {"url": "http://a", "expectedStatus": 99}}},
        "expectedStatus",
    ),
    ("reason-too-long", {**OK, "reason": "x" * 1025}, "reason"),
]


@pytest.mark.parametrize(
    ("spec", "words"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_restarts_are_refused_by_the_api_server(
    kube: Cluster, namespace: str, spec: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api_client, namespace, KIND, "bad", spec)
    assert refused.value.status == 422, refused.value.body
    assert words.lower() in str(refused.value.body).lower(), refused.value.body


def test_a_restart_cannot_be_changed_once_created(kube: Cluster, namespace: str) -> None:
    create_cr(kube.api_client, namespace, KIND, "once", OK)
    with pytest.raises(ApiException) as refused:
        patch_cr(kube.api_client, namespace, KIND, "once", {"spec": {"order": "AllAtOnce"}})
    assert "cannot be changed once created" in str(refused.value.body)


def test_hold_copies_leave_the_replica_sets_of_a_match_expressions_selector(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    """The Deployment controller copies the hold onto the ReplicaSet the restart creates;
    a Deployment that selects by matchExpressions alone must lose those copies too."""
    body = manifest(BACKEND, image("backend-1.4.2"), replicas=2)
    body["spec"]["selector"] = {
        "matchExpressions": [{"key": "app", "operator": "In", "values": [BACKEND]}]
    }
    create_deployment(kube, namespace, body)
    create_cr(kube.api, namespace, KIND, "expressions", {"targets": [{"name": BACKEND}]})
    wait_phase(kube.api, namespace, KIND, "expressions", "Completed", timeout=90)

    uid = deployment(kube, namespace, BACKEND)["metadata"]["uid"]
    sets = [
        rs
        for rs in kube.api.sanitize_for_serialization(
            client.AppsV1Api(kube.api).list_namespaced_replica_set(
                namespace, label_selector=f"app={BACKEND}"
            )
        )["items"]
        if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
    ]
    assert len(sets) == 2, "the original ReplicaSet and the restart's"
    held = [rs["metadata"]["name"] for rs in sets if HOLD in rs["metadata"].get("annotations", {})]
    assert held == []
    assert HOLD not in (deployment(kube, namespace, BACKEND)["metadata"].get("annotations") or {})
