"""ImageUpdate's decisions, step by step, on wire objects shaped like the API server's."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.names import HOLD_ANNOTATION, REVISION_ANNOTATION
from runbook_operator.kinds.imageupdate import logic
from runbook_operator.kinds.imageupdate.api import ImagePhase, ImageUpdateSpec, ImageUpdateStatus

Obj = dict[str, Any]
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
ME = "ImageUpdate/security-patch"
UID = "uid-web"


def spec(**extra: Any) -> ImageUpdateSpec:
    body: Obj = {"deployment": "web", "images": [{"container": "app", "image": "app:2"}]}
    return ImageUpdateSpec.model_validate({**body, **extra})


def template(image: str, init: str | None = None, hash_: str | None = None) -> Obj:
    labels = {"app": "web", **({"pod-template-hash": hash_} if hash_ else {})}
    pod: Obj = {"containers": [{"name": "app", "image": image}, {"name": "log", "image": "log:1"}]}
    if init is not None:
        pod["initContainers"] = [{"name": "migrate", "image": init}]
    return {"metadata": {"labels": labels}, "spec": pod}


def deployment(
    image: str,
    revision: int = 1,
    *,
    rolled: bool = True,
    init: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    paused: bool = False,
) -> Obj:
    ready = 2 if rolled else 0
    status = {
        "observedGeneration": 2,
        "replicas": 2,
        "updatedReplicas": 2 if rolled else 1,
        "availableReplicas": ready,
        "readyReplicas": ready,
    }
    spec_: Obj = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": template(image, init),
    }
    if paused:
        spec_["paused"] = True
    return {
        "metadata": {
            "name": "web",
            "uid": UID,
            "generation": 2,
            "resourceVersion": "7",
            "annotations": {REVISION_ANNOTATION: str(revision), **(annotations or {})},
            "labels": labels or {},
        },
        "spec": spec_,
        "status": status,
    }


def replica_set(name: str, image: str, revision: int) -> Obj:
    return {
        "metadata": {
            "name": name,
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [
                {"uid": UID, "kind": "Deployment", "name": "web", "controller": True}
            ],
        },
        "spec": {"template": template(image, hash_=name.rsplit("-", 1)[1])},
    }


def run(
    s: ImageUpdateSpec, status: ImageUpdateStatus, seen: logic.Observed, **kw: Any
) -> logic.Plan:
    return logic.reconcile(s, status, seen, holder=ME, generation=1, now=kw.get("now", NOW))


def started(s: ImageUpdateSpec | None = None) -> tuple[ImageUpdateSpec, logic.Plan]:
    s = s or spec()
    seen = logic.Observed(deployment("app:1"), (replica_set("web-aaa", "app:1", 1),))
    return s, run(s, ImageUpdateStatus(), seen)


def test_records_the_images_and_revision_before_the_change() -> None:
    _, plan = started()
    st = plan.status
    assert st.phase == ImagePhase.UPDATING and plan.acquire
    assert [(p.container, p.image, p.init) for p in st.previous] == [("app", "app:1", False)]
    assert st.previous_revision == 1 and st.previous_replica_set == "web-aaa"
    assert st.started_at == NOW
    assert plan.set_images == {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}
    }
    assert st.images_summary == "app: app:1 -> app:2"


def test_an_init_container_is_patched_in_its_own_list() -> None:
    s = spec(
        images=[
            {"container": "migrate", "image": "mig:2"},
            {"container": "app", "image": "a@sha256:" + "0" * 64},
        ]
    )
    dep = deployment("app:1", init="mig:1")
    plan = run(s, ImageUpdateStatus(), logic.Observed(dep))
    assert plan.set_images == {
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "migrate", "image": "mig:2"}],
                    "containers": [{"name": "app", "image": "a@sha256:" + "0" * 64}],
                }
            }
        }
    }
    assert [p.init for p in plan.status.previous] == [True, False]


@pytest.mark.parametrize(
    ("seen", "words"),
    [
        (None, "does not exist"),
        (deployment("app:1", paused=True), "is paused"),
    ],
)
def test_refused_without_any_change(seen: Obj | None, words: str) -> None:
    plan = run(spec(), ImageUpdateStatus(), logic.Observed(seen))
    assert plan.status.phase == ImagePhase.REFUSED
    assert plan.set_images is None and not plan.acquire
    ready = plan.status.condition("Ready")
    assert ready is not None and words in ready.message and "Nothing was changed" in ready.message


def test_a_container_that_is_not_there_is_named_with_the_ones_that_are() -> None:
    s = spec(images=[{"container": "backend", "image": "b:2"}])
    plan = run(s, ImageUpdateStatus(), logic.Observed(deployment("app:1")))
    ready = plan.status.condition("Ready")
    assert plan.status.phase == ImagePhase.REFUSED and ready is not None
    assert "no container named backend (its containers: app, log)" in ready.message


def test_waits_while_another_operation_holds_the_deployment() -> None:
    dep = deployment("app:1", annotations={HOLD_ANNOTATION: "Rollback/undo"})
    plan = run(spec(), ImageUpdateStatus(), logic.Observed(dep))
    assert plan.status.phase == ImagePhase.PENDING and plan.set_images is None
    assert [e.reason for e in plan.events] == ["WorkloadHeld"]
    again = run(spec(), plan.status, logic.Observed(dep))
    assert again.events == []  # not news any more


def test_a_gitops_managed_deployment_is_warned_about() -> None:
    dep = deployment("app:1", labels={"argocd.argoproj.io/instance": "mail-score"})
    plan = run(spec(), ImageUpdateStatus(), logic.Observed(dep))
    gitops = plan.status.condition(logic.GITOPS_MANAGED)
    assert gitops is not None and "Argo CD Application argocd/mail-score" in gitops.message
    assert logic.GITOPS_MANAGED in [e.reason for e in plan.events]


def test_a_patch_that_did_not_land_is_sent_again_and_a_landed_one_never() -> None:
    s, plan = started()
    lost = run(s, plan.status, logic.Observed(deployment("app:1")))
    assert lost.set_images is not None  # recorded, but the images are still the old ones
    landed = run(s, plan.status, logic.Observed(deployment("app:2", 2, rolled=False)))
    assert landed.set_images is None and landed.undo is None
    assert landed.status.phase == ImagePhase.UPDATING


def test_rolled_out_completes_and_releases() -> None:
    s, plan = started()
    done = run(s, plan.status, logic.Observed(deployment("app:2", 2)))
    assert done.status.phase == ImagePhase.COMPLETED and done.release
    assert done.status.new_revision == 2 and not done.status.rolled_back


def test_with_a_health_check_it_verifies_first() -> None:
    s, plan = started(spec(healthCheck={"http": {"url": "http://127.0.0.1:1/health"}}))
    rolled = run(s, plan.status, logic.Observed(deployment("app:2", 2)))
    assert rolled.status.phase == ImagePhase.VERIFYING and not rolled.release
    assert run(s, rolled.status, logic.Observed(deployment("app:2", 2))).probe
    ok = logic.after_probe(s, rolled.status, True, "HTTP 200", failed=None, generation=1, now=NOW)
    assert ok.status.phase == ImagePhase.COMPLETED and ok.release


def test_a_failed_health_check_rolls_back() -> None:
    s, plan = started(spec(healthCheck={"http": {"url": "http://127.0.0.1:1/health"}}))
    rolled = run(s, plan.status, logic.Observed(deployment("app:2", 2)))
    bad = logic.after_probe(
        s, rolled.status, False, "HTTP 503", failed="HTTP 503", generation=1, now=NOW
    )
    assert bad.status.phase == ImagePhase.ROLLING_BACK
    assert bad.status.failure_reason == "Unhealthy" and "HTTP 503" in (bad.status.failure or "")


def _past_deadline(image: str, revision: int) -> Obj:
    dep = deployment(image, revision, rolled=False)
    dep["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    return dep


def test_a_rollout_past_its_deadline_is_undone_like_kubectl_rollout_undo() -> None:
    s, plan = started()
    sets = (replica_set("web-aaa", "app:1", 1), replica_set("web-bbb", "app:2", 2))
    failing = run(s, plan.status, logic.Observed(_past_deadline("app:2", 2), sets))
    st = failing.status
    assert st.phase == ImagePhase.ROLLING_BACK and st.failure_reason == "RolloutFailed"
    assert "progress deadline" in (st.failure or "")
    undoing = run(s, st, logic.Observed(_past_deadline("app:2", 2), sets))
    assert undoing.status.rollback_started_at == NOW  # recorded before the undo is sent
    assert undoing.undo is not None
    template_op = next(op for op in undoing.undo if op["path"] == "/spec/template")
    assert template_op["value"] == template("app:1")  # pod-template-hash dropped, as kubectl
    # Sent, and landed: the old ReplicaSet is now the newest revision; never sent twice.
    undone = deployment("app:1", 3)
    sets_after = (replica_set("web-aaa", "app:1", 3), replica_set("web-bbb", "app:2", 2))
    final = run(s, undoing.status, logic.Observed(undone, sets_after))
    assert final.undo is None and final.set_images is None
    assert final.status.phase == ImagePhase.FAILED and final.status.rolled_back
    assert final.release
    ready = final.status.condition("Ready")
    assert ready is not None and ready.reason == "RolloutFailed"
    assert "rolled back to revision 1" in ready.message


def test_an_undo_that_did_not_land_is_sent_again() -> None:
    s, plan = started()
    sets = (replica_set("web-aaa", "app:1", 1), replica_set("web-bbb", "app:2", 2))
    failing = run(s, plan.status, logic.Observed(_past_deadline("app:2", 2), sets))
    undoing = run(s, failing.status, logic.Observed(_past_deadline("app:2", 2), sets))
    again = run(s, undoing.status, logic.Observed(_past_deadline("app:2", 2), sets))
    assert again.undo is not None and again.status.rollback_started_at == NOW


def test_on_failure_keep_leaves_the_new_images() -> None:
    s, plan = started(spec(onFailure="Keep"))
    failing = run(s, plan.status, logic.Observed(_past_deadline("app:2", 2)))
    assert failing.status.phase == ImagePhase.FAILED and not failing.status.rolled_back
    assert failing.undo is None and failing.release


def test_the_timeout_fails_a_rollout_that_is_slow_but_not_past_its_deadline() -> None:
    s, plan = started(spec(timeout="1m"))
    slow = run(
        s,
        plan.status,
        logic.Observed(deployment("app:2", 2, rolled=False)),
        now=NOW + timedelta(minutes=2),
    )
    assert slow.status.phase == ImagePhase.ROLLING_BACK
    assert "not rolled out within 1m" in (slow.status.failure or "")


def test_images_changed_by_someone_else_are_left_alone() -> None:
    s, plan = started()
    other = run(s, plan.status, logic.Observed(deployment("app:9", 2)))
    assert other.status.phase == ImagePhase.FAILED and other.undo is None
    ready = other.status.condition("Ready")
    assert ready is not None and ready.reason == "ChangedElsewhere"


def test_wake_up_is_the_timeout_while_updating() -> None:
    s, plan = started(spec(timeout="5m"))
    assert logic.wake_at(s, plan.status, NOW, timedelta(seconds=2)) == NOW + timedelta(minutes=5)
    done = copy.deepcopy(plan.status).model_copy(update={"phase": ImagePhase.COMPLETED})
    assert logic.wake_at(s, done, NOW, timedelta(seconds=2)) is None


def test_the_spec_refuses_a_container_twice_and_no_images() -> None:
    with pytest.raises(ValueError, match="images"):
        ImageUpdateSpec.model_validate({"deployment": "web", "images": []})
    with pytest.raises(ValueError, match="image"):
        ImageUpdateSpec.model_validate(
            {"deployment": "web", "images": [{"container": "app", "image": "has space"}]}
        )
