"""ImageUpdate on the real test bed: recorded, rolled out, undone on failure, like kubectl.

The runbook's emergency security patch: `kubectl set image`, `kubectl rollout status`,
and `kubectl rollout undo` when it goes wrong. Deployments roll for real (kwok plays
the nodes). A rollout that cannot finish is made by cordoning every node: the new pod
never schedules, so the Deployment passes its progress deadline. Crashes are the
operator dying at a failpoint right after a step is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.crs import cond, create_cr, get_cr, patch_cr, wait_phase
from support.events import wait_reasons
from support.health import Health
from support.health import health as health  # noqa: PLC0414  (the fixture)
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.rollback_cluster import (
    HOLD,
    create_deployment,
    deployment,
    extra_namespace,
    manifest,
    owned_replica_sets,
    rollout,
    snapshot,
)

KIND = "ImageUpdate"
NAME = "mail-score-backend"
REVISION = "deployment.kubernetes.io/revision"
Obj = dict[str, Any]


def backend(kube: Cluster, namespace: str, **kw: Any) -> Obj:
    body = manifest(NAME, image("backend-1.4.2"), replicas=2, **kw)
    body["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    create_deployment(kube, namespace, body)
    return deployment(kube, namespace, NAME)


def patch_spec(tag: str = "backend-1.4.3") -> Obj:
    return {"deployment": NAME, "images": [{"container": "app", "image": image(tag)}]}


def app_image(kube: Cluster, namespace: str) -> str:
    containers = deployment(kube, namespace, NAME)["spec"]["template"]["spec"]["containers"]
    return str(containers[0]["image"])


@contextmanager
def cordoned(kube: Cluster) -> Iterator[None]:
    """Every node unschedulable: new pods stay Pending, running ones stay."""
    core = client.CoreV1Api(kube.api)
    names = [n.metadata.name for n in core.list_node().items]
    try:
        for name in names:
            core.patch_node(name, {"spec": {"unschedulable": True}})
        yield
    finally:
        for name in names:
            core.patch_node(name, {"spec": {"unschedulable": None}})


def test_sets_the_image_after_recording_what_it_replaces(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    backend(kube, namespace)
    create_cr(kube.api, namespace, KIND, "security-patch", patch_spec())
    done = wait_phase(kube.api, namespace, KIND, "security-patch", "Completed", timeout=90)
    st = done["status"]
    assert [(p["container"], p["image"]) for p in st["previous"]] == [
        ("app", image("backend-1.4.2"))
    ]
    assert (st["previousRevision"], st["newRevision"]) == (1, 2)
    assert st["previousReplicaSet"] in {
        rs["metadata"]["name"] for rs in owned_replica_sets(kube, namespace, NAME)
    }
    assert st["rolledBack"] is False
    assert cond(done, "Ready")["reason"] == "Updated"
    assert app_image(kube, namespace) == image("backend-1.4.3")
    dep = deployment(kube, namespace, NAME)
    assert dep["metadata"]["annotations"][REVISION] == "2"
    assert HOLD not in dep["metadata"]["annotations"]
    sets = owned_replica_sets(kube, namespace, NAME)
    assert len(sets) == 2 and all(HOLD not in rs["metadata"]["annotations"] for rs in sets)
    table = kube.run_kubectl("get", "runbook", "-n", namespace).stdout
    assert "security-patch" in table and "Completed" in table
    wide = kube.run_kubectl("get", "imgup", "-n", namespace).stdout
    assert "backend-1.4.3" in wide and NAME in wide
    wait_reasons(kube.api, namespace, "security-patch", {"Updating"})


def test_matches_kubectl_set_image_on_a_twin(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    with extra_namespace(kube, operator.prefix, "twin") as twin:
        backend(kube, namespace)
        backend(kube, twin)
        assert snapshot(kube, namespace, NAME) == snapshot(kube, twin, NAME)
        kube.run_kubectl(
            "-n", namespace, "set", "image", f"deployment/{NAME}", f"app={image('backend-1.4.3')}"
        )
        rollout(kube, namespace, NAME)
        create_cr(kube.api, twin, KIND, "patch", patch_spec())
        wait_phase(kube.api, twin, KIND, "patch", "Completed", timeout=90)
        ours, theirs = snapshot(kube, twin, NAME), snapshot(kube, namespace, NAME)
        assert ours == theirs


def test_a_rollout_that_cannot_finish_is_rolled_back_to_the_recorded_revision(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    original = backend(kube, namespace, progress_deadline=8)
    with cordoned(kube):
        create_cr(kube.api, namespace, KIND, "stuck", patch_spec("backend-broken"))
        failed = wait_phase(kube.api, namespace, KIND, "stuck", "Failed", timeout=120)
    st = failed["status"]
    assert st["rolledBack"] is True and st["failureReason"] == "RolloutFailed"
    ready = cond(failed, "Ready")
    assert ready["reason"] == "RolloutFailed"
    assert "progress deadline" in ready["message"]
    assert "rolled back to revision 1" in ready["message"]
    dep = deployment(kube, namespace, NAME)
    assert dep["spec"]["template"] == original["spec"]["template"]
    assert dep["metadata"]["annotations"][REVISION] == "3"  # kubectl rollout undo numbering
    assert HOLD not in dep["metadata"]["annotations"]
    assert len(owned_replica_sets(kube, namespace, NAME)) == 2  # the old one came back
    wait_reasons(kube.api, namespace, "stuck", {"RollingBack"})


def test_a_failing_health_check_rolls_the_images_back(
    kube: Cluster, operator: OperatorProcess, namespace: str, health: tuple[str, type[Health]]
) -> None:
    original = backend(kube, namespace)
    url, handler = health
    handler.code = 503
    spec = {**patch_spec(), "healthCheck": {"http": {"url": url}, "timeout": "3s"}}
    create_cr(kube.api, namespace, KIND, "sick", spec)
    failed = wait_phase(kube.api, namespace, KIND, "sick", "Failed", timeout=90)
    st = failed["status"]
    assert st["rolledBack"] is True and st["failureReason"] == "Unhealthy"
    assert st["newRevision"] == 2 and "HTTP 503" in st["health"]
    message = cond(failed, "Ready")["message"]
    assert "did not pass within 3s" in message and "rolled back to revision 1" in message
    dep = deployment(kube, namespace, NAME)
    assert dep["spec"]["template"] == original["spec"]["template"]
    assert app_image(kube, namespace) == image("backend-1.4.2")
    assert dep["metadata"]["annotations"][REVISION] == "3"
    wait_reasons(kube.api, namespace, "sick", {"Verifying", "Unhealthy", "RollingBack"})


def test_dying_after_every_step_changes_nothing_twice(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    backend(kube, namespace, progress_deadline=8)
    operator.stop()  # every step below is taken by an operator that dies right after it
    with cordoned(kube):
        create_cr(kube.api, namespace, KIND, "crashy", patch_spec("backend-broken"))
        deaths = operator.die_at(
            "imageupdate-Updating,imageupdate-RollingBack",
            lambda: (
                get_cr(kube.api, namespace, KIND, "crashy").get("status", {}).get("phase")
                == "Failed"
            ),
        )
    assert deaths >= 3  # recorded, following the rollout, rolling back, undo sent, ...
    failed = wait_phase(kube.api, namespace, KIND, "crashy", "Failed", timeout=60)
    assert failed["status"]["rolledBack"] is True
    dep = deployment(kube, namespace, NAME)
    # One image change (revision 2) and one undo (revision 3): nothing was done twice.
    assert dep["metadata"]["annotations"][REVISION] == "3"
    assert app_image(kube, namespace) == image("backend-1.4.2")
    assert len(owned_replica_sets(kube, namespace, NAME)) == 2


def test_a_missing_container_is_refused_with_the_containers_there_are(
    kube: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    backend(kube, namespace)
    spec = {"deployment": NAME, "images": [{"container": "backend", "image": image("x")}]}
    create_cr(kube.api, namespace, KIND, "typo", spec)
    refused = wait_phase(kube.api, namespace, KIND, "typo", "Refused", timeout=30)
    message = cond(refused, "Ready")["message"]
    assert "no container named backend (its containers: app)" in message
    assert deployment(kube, namespace, NAME)["metadata"]["annotations"][REVISION] == "1"


OK: Obj = {"deployment": NAME, "images": [{"container": "app", "image": "a:1"}]}
MALFORMED: list[tuple[str, Obj, str]] = [
    ("no-deployment", {"images": OK["images"]}, "deployment"),
    ("no-images", {"deployment": NAME}, "images"),
    ("empty-images", {"deployment": NAME, "images": []}, "images"),
    (
        "container-twice",
        {"deployment": NAME, "images": [OK["images"][0], {"container": "app", "image": "b:2"}]},
        "only once",
    ),
    ("bad-container", {**OK, "images": [{"container": "App_1", "image": "a:1"}]}, "container"),
    ("image-with-space", {**OK, "images": [{"container": "app", "image": "a b"}]}, "image"),
    ("empty-image", {**OK, "images": [{"container": "app", "image": ""}]}, "image"),
    ("bad-on-failure", {**OK, "onFailure": "Pray"}, "onFailure"),
    ("timeout-words", {**OK, "timeout": "ten minutes"}, "duration such as"),
    ("timeout-sub-second", {**OK, "timeout": "0.5s"}, "at least 1s"),
    ("bad-deployment-name", {**OK, "deployment": "Mail_Score"}, "deployment"),
]


@pytest.mark.parametrize(
    ("spec", "words"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_image_updates_are_refused_by_the_api_server(
    kube: Cluster, namespace: str, spec: Obj, words: str
) -> None:
    with pytest.raises(ApiException) as refused:
        create_cr(kube.api, namespace, KIND, "bad", spec)
    assert refused.value.status == 422, refused.value.body
    assert words.lower() in str(refused.value.body).lower(), refused.value.body


def test_an_image_update_cannot_be_changed_once_created(kube: Cluster, namespace: str) -> None:
    create_cr(kube.api, namespace, KIND, "once", OK)
    with pytest.raises(ApiException) as refused:
        patch_cr(kube.api, namespace, KIND, "once", {"spec": {"timeout": "1m"}})
    assert "cannot be changed once created" in str(refused.value.body)
