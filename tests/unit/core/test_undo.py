"""`kubectl rollout undo` / `rollout status` semantics, as pure functions (logic/rollout_undo)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from runbook_operator.core.names import HOLD_ANNOTATION, HOLD_INSTANCE_ANNOTATION
from runbook_operator.core.rollout import label_selector, rollout_status
from runbook_operator.core.undo import (
    HASH_LABEL,
    Choice,
    Refusal,
    choose,
    equal_ignore_hash,
    gitops_manager,
    images,
    owned_replica_sets,
    revision,
    rollback_annotations,
    rollback_patch,
)
from support.rollback_objects import deployment, history, replica_set, template

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- revisions and ownership --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0), ("3", 3), ("+4", 4), ("12", 12), ("x", None), ("", None), ("1.5", None)],
)
def test_revision_annotation_is_read_like_kubectl(value: str | None, expected: int | None) -> None:
    rs = replica_set(template("a"), None)
    if value is not None:
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = value
    assert revision(rs) == expected


def test_only_replica_sets_controlled_by_the_deployment_count() -> None:
    dep, sets = history()
    stranger = replica_set(template("other"), 9, owner="someone-else")
    not_controller = replica_set(template("other2"), 8, controller=False)
    owned = owned_replica_sets(dep, [*sets, stranger, not_controller])
    assert owned == sets


def test_templates_compare_without_the_hash_label_and_empty_fields() -> None:
    a = template("img:1")
    b = copy.deepcopy(a)
    b["metadata"]["labels"][HASH_LABEL] = "abc"
    b["metadata"]["annotations"] = {}
    b["spec"]["containers"][0].pop("resources")
    assert equal_ignore_hash(a, b)
    assert not equal_ignore_hash(a, template("img:2"))


# --- choosing the revision ------------------------------------------------------


def test_previous_is_the_second_highest_revision() -> None:
    dep, sets = history(images=["a", "b", "c"])
    choice = choose("web", dep, reversed(sets), None)
    assert isinstance(choice, Choice)
    assert choice.to_revision == 2
    assert choice.replica_set is sets[1]
    assert not choice.already


def test_named_revision_is_found() -> None:
    dep, sets = history(images=["a", "b", "c"])
    choice = choose("web", dep, sets, 1)
    assert isinstance(choice, Choice) and choice.to_revision == 1 and choice.replica_set is sets[0]


def test_undo_of_an_undo_goes_back_to_the_undone_revision() -> None:
    # After undoing 3 -> 2, the controller renumbers revision 2 as 4 (history "2").
    dep, sets = history(images=["a", "b", "c"])
    sets[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
    dep = deployment(tpl=template("b"), revision=4)
    choice = choose("web", dep, sets, None)
    assert isinstance(choice, Choice)
    assert choice.to_revision == 3 and images(choice.replica_set["spec"]["template"]) == ["app=c"]


def test_unknown_revision_is_refused_with_the_available_ones() -> None:
    dep, sets = history(images=["a", "b", "c"])
    refusal = choose("web", dep, sets, 7)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "RevisionNotFound"
    assert "no revision 7" in refusal.message
    assert "available revisions: 1, 2, 3" in refusal.message


def test_a_deployment_without_history_is_refused() -> None:
    dep, sets = history(images=["only"])
    refusal = choose("web", dep, sets, None)
    assert isinstance(refusal, Refusal) and refusal.reason == "NoRolloutHistory"


def test_paused_deployment_is_refused_before_anything_else() -> None:
    dep, sets = history(paused=True)
    refusal = choose("web", dep, sets, 99)
    assert isinstance(refusal, Refusal) and refusal.reason == "DeploymentPaused"
    assert "kubectl rollout resume deployment/web" in refusal.message


def test_missing_deployment_is_refused() -> None:
    refusal = choose("web", None, [], None)
    assert isinstance(refusal, Refusal) and refusal.reason == "DeploymentNotFound"


def test_current_revision_named_is_reported_as_already_there() -> None:
    dep, sets = history(images=["a", "b", "c"])
    choice = choose("web", dep, sets, 3)
    assert isinstance(choice, Choice) and choice.already and choice.to_revision == 3


def test_replica_sets_with_unreadable_revisions_are_skipped() -> None:
    dep, sets = history(images=["a", "b", "c"])
    sets[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "garbage"
    choice = choose("web", dep, sets, None)
    assert isinstance(choice, Choice) and choice.to_revision == 1


def test_replica_sets_of_other_deployments_are_never_chosen() -> None:
    dep, sets = history(images=["a", "b"])
    stranger = replica_set(template("evil"), 5, owner="other-uid")
    choice = choose("web", dep, [*sets, stranger], None)
    assert isinstance(choice, Choice) and choice.to_revision == 1


# --- what is sent ---------------------------------------------------------------


def test_annotations_kept_copied_and_dropped_like_kubectl() -> None:
    dep = deployment(
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision-history": "1",
            "team": "mail",
            "kubernetes.io/change-cause": "deploy c",
        },
        revision=3,
    )
    rs = replica_set(
        template("b"),
        2,
        annotations={
            "kubernetes.io/change-cause": "deploy b",
            "deployment.kubernetes.io/desired-replicas": "3",
            "deployment.kubernetes.io/max-replicas": "4",
            HOLD_ANNOTATION: "EmergencyScale/stale",
            HOLD_INSTANCE_ANNOTATION: "replica-gone",  # copied with the stale hold
        },
    )
    out = rollback_annotations(dep, rs)
    assert out == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/revision-history": "1",
        "kubernetes.io/change-cause": "deploy b",
    }
    assert rollback_annotations(dep, rs, "Rollback/x")[HOLD_ANNOTATION] == "Rollback/x"
    taking = rollback_annotations(dep, rs, "Rollback/x", "replica-b")  # the patch takes it
    assert taking[HOLD_INSTANCE_ANNOTATION] == "replica-b"
    dep["metadata"]["annotations"][HOLD_INSTANCE_ANNOTATION] = "replica-a"
    held = rollback_annotations(dep, rs, "Rollback/x", "replica-b")
    assert held[HOLD_INSTANCE_ANNOTATION] == "replica-a"  # who took the hold stays beside it


def test_patch_replaces_template_without_hash_guarded_by_resource_version() -> None:
    dep, sets = history(images=["a", "b", "c"])
    ops = rollback_patch(dep, sets[0], "Rollback/x")
    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "1000"}
    assert ops[1]["op"] == "replace" and ops[1]["path"] == "/spec/template"
    assert HASH_LABEL not in ops[1]["value"]["metadata"]["labels"]
    assert HASH_LABEL in sets[0]["spec"]["template"]["metadata"]["labels"]  # not mutated
    assert images(ops[1]["value"]) == ["app=a"]
    assert ops[2]["path"] == "/metadata/annotations"
    assert ops[2]["value"][HOLD_ANNOTATION] == "Rollback/x"


def test_images_lists_init_containers_first() -> None:
    tpl = template("main:1")
    tpl["spec"]["initContainers"] = [{"name": "migrate", "image": "tool:2"}]
    assert images(tpl) == ["migrate=tool:2", "app=main:1"]


def test_label_selector_renders_labels_and_expressions() -> None:
    dep = deployment()
    dep["spec"]["selector"] = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["x", "y"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "has", "operator": "Exists"},
            {"key": "hasnt", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(dep) == "a=1,b=2,tier in (x,y),env notin (dev),has,!hasnt"


# --- rollout status -------------------------------------------------------------


def _status(**fields: int) -> dict[str, int]:
    base = {"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    return base | fields


@pytest.mark.parametrize(
    ("status", "done", "text"),
    [
        (_status(observedGeneration=4), False, "controller"),
        (_status(updatedReplicas=1), False, "1 out of 3 new replicas have been updated"),
        (_status(replicas=5), False, "2 old replicas are pending termination"),
        (_status(availableReplicas=2), False, "2 of 3 updated replicas are available"),
        (_status(), True, "successfully rolled out"),
    ],
)
def test_rollout_status_follows_kubectl(status: dict[str, int], done: bool, text: str) -> None:
    dep = deployment(generation=5, status=status)
    result = rollout_status(dep, NOW, NOW)
    assert result.done is done and not result.failed
    assert text in result.message


def _timed_out(at: datetime) -> dict[str, str]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }


def test_progress_deadline_exceeded_after_the_rollback_fails_it() -> None:
    dep = deployment(generation=5, status=_status(updatedReplicas=0))
    dep["status"]["conditions"] = [_timed_out(NOW + timedelta(seconds=30))]
    result = rollout_status(dep, NOW, NOW + timedelta(seconds=31))
    assert result.failed and "exceeded its progress deadline" in result.message


def test_a_deadline_exceeded_before_the_rollback_counts_only_after_a_full_deadline() -> None:
    dep = deployment(generation=5, status=_status(updatedReplicas=0))
    dep["status"]["conditions"] = [_timed_out(NOW - timedelta(minutes=5))]
    assert not rollout_status(dep, NOW, NOW + timedelta(seconds=10)).failed
    assert rollout_status(dep, NOW, NOW + timedelta(seconds=600)).failed


def test_a_deadline_without_a_known_start_counts_like_kubectl() -> None:
    dep = deployment(generation=5, status=_status(updatedReplicas=0))
    dep["status"]["conditions"] = [_timed_out(NOW)]
    assert rollout_status(dep, None, NOW).failed


# --- GitOps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        (
            {},
            {"argocd.argoproj.io/tracking-id": "mail:apps/Deployment:ns/web"},
            "Argo CD Application argocd/mail",
        ),
        ({"argocd.argoproj.io/instance": "mail"}, {}, "Argo CD Application argocd/mail"),
        (
            {"app.kubernetes.io/instance": "mail"},
            {"argocd.argoproj.io/sync-options": "Prune=false"},
            "Argo CD Application argocd/mail",
        ),
        ({"app.kubernetes.io/instance": "mail"}, {}, None),  # Helm sets it too
        (
            {
                "kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            },
            {},
            "Flux Kustomization flux-system/apps",
        ),
        ({"helm.toolkit.fluxcd.io/name": "mail"}, {}, "Flux HelmRelease ns/mail"),
        ({}, {}, None),
    ],
)
def test_gitops_tools_are_recognised(
    labels: dict[str, str], annotations: dict[str, str], expected: str | None
) -> None:
    dep = deployment(labels=labels, annotations=annotations)
    assert gitops_manager(dep) == expected
