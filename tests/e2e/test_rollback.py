"""Rollback on the real test bed: completion, refusals, holds, deadlines, GitOps, crashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.crs import (
    cond,
    condition,
    create_cr,
    delete_cr,
    get_cr,
    patch_cr,
    wait_condition,
    wait_gone,
    wait_phase,
)
from support.events import events, wait_event, wait_reasons
from support.images import image
from support.kube import Cluster
from support.operator import OperatorProcess
from support.rollback_cluster import (
    HOLD,
    create_deployment,
    deployment,
    manifest,
    owned_replica_sets,
    revision,
    rollout,
    set_image,
)
from support.wait import wait_for

BACKEND, FRONTEND = "mail-score-backend", "mail-score-frontend"


def current_image(kube: Cluster, namespace: str, name: str) -> str:
    dep = deployment(kube, namespace, name)
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def three_revisions(kube: Cluster, namespace: str, name: str, replicas: int = 2) -> None:
    create_deployment(kube, namespace, manifest(name, image(f"{name}-1"), replicas=replicas))
    set_image(kube, namespace, name, image(f"{name}-2"))
    set_image(kube, namespace, name, image(f"{name}-3"))


def bad_then_good(kube: Cluster, namespace: str, progress_deadline: int) -> None:
    """Revision 1 asks for a node that does not exist (its pods never schedule), and is
    replaced at once by a good revision 2, before its progress deadline."""
    bad = manifest(
        "web",
        image("web-1"),
        progress_deadline=progress_deadline,
        node_selector={"disktype": "none"},
    )
    create_deployment(kube, namespace, bad, wait=False)
    wait_for(
        lambda: revision(deployment(kube, namespace, "web")) == 1,
        timeout=30,
        what="revision 1 recorded by the Deployment controller",
    )
    fix = json.dumps(
        [
            {"op": "remove", "path": "/spec/template/spec/nodeSelector"},
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": image("web-2"),
            },
        ]
    )
    kube.run_kubectl("-n", namespace, "patch", "deployment/web", "--type=json", "-p", fix)
    rollout(kube, namespace, "web")


def test_backend_and_frontend_roll_back_together(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    three_revisions(kube, namespace, BACKEND, replicas=3)
    three_revisions(kube, namespace, FRONTEND)
    spec = {"reason": "INC-1: 5xx", "targets": [{"name": BACKEND}, {"name": FRONTEND}]}
    create_cr(kube.api, namespace, "Rollback", "undo", spec)

    done = wait_condition(kube.api, namespace, "Rollback", "undo", "Ready", timeout=90)
    status = done["status"]
    assert status["phase"] == "Completed"
    assert status["targetsSummary"] == f"{BACKEND} 3→2, {FRONTEND} 3→2"
    for target in status["targets"]:
        assert target["state"] == "Complete"
        assert (target["fromRevision"], target["toRevision"], target["newRevision"]) == (3, 2, 4)
        assert target["fromImages"] == [f"app={image(target['name'] + '-3')}"]
        assert target["toImages"] == [f"app={image(target['name'] + '-2')}"]
        assert target["appliedAt"] <= target["completedAt"]
    assert condition(done, "Reconciling") is None
    assert done["status"]["observedGeneration"] == done["metadata"]["generation"]
    for name in (BACKEND, FRONTEND):
        assert current_image(kube, namespace, name) == image(f"{name}-2")
        dep = deployment(kube, namespace, name)
        assert HOLD not in dep["metadata"]["annotations"]
        assert all(
            HOLD not in (rs["metadata"].get("annotations") or {})
            for rs in owned_replica_sets(kube, namespace, name)
        )

    posted = wait_reasons(kube.api, namespace, "undo", {"Completed"})
    # Each step posts its Event once; log lines were posted a second time as "Logging".
    assert "Logging" not in posted, posted
    counts = {r: posted.count(r) for r in ("Started", "Completed")}
    assert counts == {"Started": 1, "Completed": 1}, posted
    assert posted.count("Restored") == 2 and posted.count("RolledOut") == 2

    def listing() -> str | None:  # kubectl's discovery cache may lag behind new CRDs
        result = kube.run_kubectl("-n", namespace, "get", "runbook", check=False)
        return result.stdout if result.returncode == 0 else None

    table = wait_for(listing, timeout=30, interval=2, what="kubectl get runbook")
    assert "undo" in table
    assert "Completed" in table and f"{BACKEND} 3→2" in table


def test_refusals_say_why_and_change_nothing(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    create_deployment(kube, namespace, manifest("web", image("web-1")))
    set_image(kube, namespace, "web", image("web-2"))
    create_deployment(kube, namespace, manifest("paused", image("paused-1")))
    set_image(kube, namespace, "paused", image("paused-2"))
    kube.run_kubectl("-n", namespace, "rollout", "pause", "deployment/paused")
    before = {
        n: deployment(kube, namespace, n)["metadata"]["generation"] for n in ("web", "paused")
    }

    cases: dict[str, tuple[dict[str, Any], str, str]] = {
        "paused": ({"name": "paused"}, "DeploymentPaused", "kubectl rollout resume"),
        "unknown": (
            {"name": "web", "toRevision": 7},
            "RevisionNotFound",
            "available revisions: 1, 2",
        ),
        "missing": ({"name": "nope"}, "DeploymentNotFound", "nope does not exist"),
    }
    for name, (target, _, _) in cases.items():
        create_cr(kube.api, namespace, "Rollback", name, {"targets": [target]})
    for name, (_, reason, words) in cases.items():
        obj = wait_condition(kube.api, namespace, "Rollback", name, "Stalled", reason=reason)
        assert obj["status"]["phase"] == "Refused"
        assert words in cond(obj, "Stalled")["message"]
        assert cond(obj, "Ready")["status"] == "False"
        warning = wait_event(kube.api, namespace, name, reason)
        assert warning["type"] == "Warning" and words in warning["message"]

    # kubectl refuses the same ones
    paused = kube.run_kubectl("-n", namespace, "rollout", "undo", "deployment/paused", check=False)
    assert paused.returncode != 0 and "paused" in paused.stderr
    unknown = kube.run_kubectl(
        "-n", namespace, "rollout", "undo", "deployment/web", "--to-revision=7", check=False
    )
    assert unknown.returncode != 0

    # already at that revision: reported, left alone (kubectl says "skipped rollback")
    create_cr(
        kube.api, namespace, "Rollback", "same", {"targets": [{"name": "web", "toRevision": 2}]}
    )
    same = wait_condition(
        kube.api, namespace, "Rollback", "same", "Ready", reason="AlreadyAtRevision"
    )
    assert same["status"]["phase"] == "Completed"
    assert same["status"]["targets"][0]["state"] == "AlreadyAtRevision"
    assert "already matches revision 2" in cond(same, "Ready")["message"]
    skipped = kube.run_kubectl(
        "-n", namespace, "rollout", "undo", "deployment/web", "--to-revision=2"
    ).stdout
    assert "skipped rollback" in skipped and "already matches revision 2" in skipped

    after = {n: deployment(kube, namespace, n)["metadata"]["generation"] for n in ("web", "paused")}
    assert after == before
    assert HOLD not in deployment(kube, namespace, "web")["metadata"]["annotations"]


def test_a_held_deployment_makes_it_wait_then_it_proceeds(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    create_deployment(kube, namespace, manifest("web", image("web-1")))
    set_image(kube, namespace, "web", image("web-2"))
    kube.run_kubectl("-n", namespace, "annotate", "deployment/web", f"{HOLD}=EmergencyScale/surge")
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})
    waiting = wait_condition(
        kube.api, namespace, "Rollback", "undo", "Ready", "False", reason="WorkloadHeld"
    )
    assert waiting["status"]["phase"] == "Pending"
    assert "EmergencyScale/surge" in cond(waiting, "Ready")["message"]
    assert condition(waiting, "Stalled") is None
    held = wait_event(kube.api, namespace, "undo", "WorkloadHeld")
    assert "EmergencyScale/surge" in held["message"]
    assert current_image(kube, namespace, "web") == image("web-2")

    kube.run_kubectl("-n", namespace, "annotate", "deployment/web", f"{HOLD}-")
    wait_condition(
        kube.api, namespace, "Rollback", "undo", "Ready", reason="RolledBack", timeout=60
    )
    assert current_image(kube, namespace, "web") == image("web-1")
    assert HOLD not in deployment(kube, namespace, "web")["metadata"]["annotations"]


def test_a_revision_that_never_becomes_ready_fails_at_the_progress_deadline(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    bad_then_good(kube, namespace, progress_deadline=8)
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})
    failed = wait_phase(kube.api, namespace, "Rollback", "undo", "Failed", timeout=90)
    stalled = cond(failed, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RolloutFailed"
    assert "progress deadline" in stalled["message"]
    target = failed["status"]["targets"][0]
    assert target["state"] == "Failed" and target["toRevision"] == 1
    assert HOLD not in deployment(kube, namespace, "web")["metadata"]["annotations"]


def test_gitops_managed_targets_roll_back_with_a_warning(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    tracked = {"argocd.argoproj.io/tracking-id": "mail-score:apps/Deployment:ns/web"}
    create_deployment(kube, namespace, manifest("web", image("web-1"), annotations=tracked))
    set_image(kube, namespace, "web", image("web-2"))
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})
    done = wait_condition(kube.api, namespace, "Rollback", "undo", "Ready", timeout=60)
    gitops = cond(done, "GitOpsManaged")
    assert gitops["status"] == "True"
    assert "Argo CD Application argocd/mail-score" in gitops["message"]
    assert "next sync re-applies" in gitops["message"]
    assert wait_event(kube.api, namespace, "undo", "GitOpsManaged")["type"] == "Warning"
    assert current_image(kube, namespace, "web") == image("web-1")


def test_sigkill_during_the_rollback_never_applies_a_second_one(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    three_revisions(kube, namespace, "web", replicas=10)
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})

    def restored() -> bool:
        return current_image(kube, namespace, "web") == image("web-2")

    wait_for(restored, timeout=60, interval=0.05, what="the template of revision 2 restored")
    operator.kill()
    operator.start()

    done = wait_phase(kube.api, namespace, "Rollback", "undo", "Completed", timeout=90)
    dep = deployment(kube, namespace, "web")
    assert current_image(kube, namespace, "web") == image("web-2")
    assert revision(dep) == 4  # one undo: revision 2 renumbered 4; a second would make 5
    assert sorted(revision(rs) for rs in owned_replica_sets(kube, namespace, "web")) == [1, 3, 4]
    assert done["status"]["targets"][0]["newRevision"] == 4
    restores = [e for e in events(kube.api, namespace, "undo") if e["reason"] == "Restored"]
    assert len(restores) <= 1  # the killed process may not have posted its event


def test_deleting_a_rollback_mid_way_releases_the_deployment(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    bad_then_good(kube, namespace, progress_deadline=600)
    create_cr(kube.api, namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})
    wait_for(
        lambda: (
            get_cr(kube.api, namespace, "Rollback", "undo")["status"]["targets"][0]["state"]
            == "RollingOut"
        ),
        timeout=60,
        what="the rollback rolling out",
    )
    assert deployment(kube, namespace, "web")["metadata"]["annotations"][HOLD] == "Rollback/undo"
    delete_cr(kube.api, namespace, "Rollback", "undo")
    wait_gone(kube.api, namespace, "Rollback", "undo")
    dep = deployment(kube, namespace, "web")
    assert HOLD not in dep["metadata"]["annotations"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == image("web-1")  # not undone


def test_the_api_server_rejects_what_makes_no_sense(
    kube: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    armed = {"query": "up", "threshold": 1, "window": "5m"}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"targets": [{"name": "web"}, {"name": "web"}]}, "listed only once"),
        ({"targets": [{"name": "web", "toRevision": 2}], "trigger": armed}, "cannot be combined"),
        ({"targets": [{"name": "web"}], "trigger": {**armed, "window": "soon"}}, "duration"),
        ({"targets": [{"name": "web", "toRevision": 0}]}, "toRevision"),
    ]
    for i, (spec, words) in enumerate(bad):
        with pytest.raises(ApiException) as refused:
            create_cr(kube.api, namespace, "Rollback", f"bad-{i}", spec)
        assert refused.value.status == 422 and words in str(refused.value.body), spec

    create_cr(kube.api, namespace, "Rollback", "fixed", {"targets": [{"name": "nope"}]})
    with pytest.raises(ApiException) as changed:
        patch_cr(kube.api, namespace, "Rollback", "fixed", {"spec": {"targets": [{"name": "web"}]}})
    assert "targets cannot be changed once set" in str(changed.value.body)
    with pytest.raises(ApiException) as armed_later:
        patch_cr(kube.api, namespace, "Rollback", "fixed", {"spec": {"trigger": armed}})
    assert "trigger cannot be added" in str(armed_later.value.body)
    patch_cr(kube.api, namespace, "Rollback", "fixed", {"spec": {"reason": "typo fixed"}})


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("get", "deployments.apps", "yes"),
        ("patch", "deployments.apps", "yes"),
        ("list", "deployments.apps", "yes"),  # watched: rollouts are followed, not polled
        ("watch", "deployments.apps", "yes"),
        ("update", "deployments.apps", "no"),
        ("list", "replicasets.apps", "yes"),
        ("patch", "replicasets.apps", "yes"),
        ("delete", "replicasets.apps", "no"),
        ("create", "replicasets.apps", "no"),
    ],
)
def test_rollback_rbac_is_exactly_what_it_uses(
    kube: Cluster, operator_credentials: Path, verb: str, resource: str, allowed: str
) -> None:
    sa = "system:serviceaccount:runbook-system:runbook-operator"
    result = kube.run_kubectl(
        "auth", "can-i", verb, resource, "--as", sa, "-n", "default", check=False
    )
    assert result.stdout.strip() == allowed, (verb, resource, result.stdout, result.stderr)
