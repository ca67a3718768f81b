"""Targets that Argo CD or Flux manage: named, and their sync paused around the changes."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from runbook_operator.core import gitops
from runbook_operator.core.conditions import StatusBase, with_state
from runbook_operator.core.context import Pass
from runbook_operator.core.gitops import Owner, Paused
from runbook_operator.core.kind import Kind, Result
from runbook_operator.core.model import ApiModel
from runbook_operator.core.resource import Resource
from support.fake_kube import NS, FakeKube
from support.passes import Harness

TRACKING = "argocd.argoproj.io/tracking-id"
APP = Owner("argoproj.io/v1alpha1", "Application", "applications", "argocd", "mail-score")
KS = Owner("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations", "flux", "apps")

# --- the pure rules ---------------------------------------------------------------


def test_owner_from_argo_cd_tracking_id() -> None:
    meta = {"annotations": {TRACKING: "mail-score:apps/Deployment:mail/web"}}
    assert gitops.owner_of(meta, "argocd") == APP
    elsewhere = {"annotations": {TRACKING: "team-a_mail-score:apps/Deployment:mail/web"}}
    owner = gitops.owner_of(elsewhere, "argocd")
    assert owner is not None and (owner.namespace, owner.name) == ("team-a", "mail-score")
    assert owner.words() == "Argo CD Application team-a/mail-score"


def test_owner_from_flux_labels() -> None:
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux",
    }
    assert gitops.owner_of({"labels": labels, "namespace": "mail"}, "argocd") == KS
    helm = {"labels": {"helm.toolkit.fluxcd.io/name": "web"}, "namespace": "mail"}
    owner = gitops.owner_of(helm, "argocd")
    assert owner is not None
    assert (owner.kind, owner.plural, owner.namespace) == ("HelmRelease", "helmreleases", "mail")
    assert (owner.group, owner.version) == ("helm.toolkit.fluxcd.io", "v2")


def test_no_owner_without_tracking() -> None:
    assert gitops.owner_of({"labels": {"app.kubernetes.io/instance": "web"}}, "argocd") is None
    assert gitops.owner_of({"annotations": {TRACKING: "garbage"}}, "argocd") is None


def test_pausing_an_application_removes_automated_and_keeps_it_to_restore() -> None:
    live = {"spec": {"syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
    change = gitops.pause_patch(APP, live)
    assert change is not None
    original, patch = change
    assert patch == {"spec": {"syncPolicy": {"automated": None}}}
    paused = Paused(api_version=APP.api_version, kind="Application", namespace="argocd",
                    name="mail-score", original=original)  # fmt: skip
    assert gitops.restore_patch(paused) == live


def test_an_application_that_does_not_sync_by_itself_is_left_alone() -> None:
    assert gitops.pause_patch(APP, {"spec": {"syncPolicy": {}}}) is None
    off = {"spec": {"syncPolicy": {"automated": {"enabled": False}}}}
    assert gitops.pause_patch(APP, off) is None


def test_suspending_a_kustomization_and_restoring_exactly() -> None:
    change = gitops.pause_patch(KS, {"spec": {"interval": "5m"}})
    assert change == ("null", {"spec": {"suspend": True}})
    paused = Paused(api_version=KS.api_version, kind="Kustomization", namespace="flux",
                    name="apps", original="null")  # fmt: skip
    assert gitops.restore_patch(paused) == {"spec": {"suspend": None}}  # absent again
    assert gitops.pause_patch(KS, {"spec": {"suspend": False}}) == (
        "false",
        {"spec": {"suspend": True}},
    )
    assert gitops.pause_patch(KS, {"spec": {"suspend": True}}) is None  # suspended already


def test_acting_phases() -> None:
    terminal = {"Completed", "Failed"}
    assert gitops.acting("Active", terminal) and gitops.acting("Restarting", terminal)
    for phase in (None, "Pending", "Waiting", "Armed", "Blocked", "Completed", "Failed"):
        assert not gitops.acting(phase, terminal), phase


def test_messages_name_target_owner_and_the_way_out() -> None:
    managed = [("Deployment web", APP), ("ConfigMap flags", KS)]
    text = gitops.managed_message("EmergencyScale", managed, pause=False)
    assert text.startswith(
        "Managed by GitOps: Deployment web by Argo CD Application argocd/mail-score; "
        "ConfigMap flags by Flux Kustomization flux/apps."
    )
    assert "spec.gitops.pause: true" in text
    paused = gitops.managed_message("EmergencyScale", managed, pause=True)
    assert "is paused while this EmergencyScale acts" in paused


def test_listed_targets() -> None:
    spec = {"targets": [{"name": "a"}, {"kind": "StatefulSet", "name": "b"}, {"x": 1}]}
    assert gitops.listed(spec) == [("Deployment", "a"), ("StatefulSet", "b")]
    assert gitops.listed({}) == []


# --- through the real controller on the FakeKube -----------------------------------


class ActSpec(ApiModel):
    to: str = "Active"
    target: str = "web"


class ActStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset({"Completed"})


ACT = Resource(
    kind="Act",
    plural="acts",
    short_names=(),
    spec=ActSpec,
    status=ActStatus,
    description="a kind for tests",
    targets=lambda spec: [("Deployment", str(spec.get("target") or "web"))],
)


class ActKind(Kind):
    """Writes spec.to, then 'changes' the target, noting whether its Application synced
    by itself at that moment."""

    resource = ACT

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.automated_at_change: list[Any] = []

    def reconcile(self, ctx: Pass) -> Result:
        to = ctx.spec(ActSpec).to
        status: ActStatus = ctx.status()
        if status.phase == to:
            return Result()
        state = "ready" if to == "Completed" else "progressing"
        conditions = with_state(status.conditions, state, to, to, generation=1, now=ctx.now)
        ctx.write(status.model_copy(update={"phase": to, "conditions": conditions}))
        app = self.kube.store[("applications", "argocd", "mail-score")]
        policy = app["spec"].get("syncPolicy") or {}
        self.automated_at_change.append(policy.get("automated"))
        return Result()

    def finalize(self, ctx: Pass) -> Result | None:
        return None


AUTOMATED = {"prune": True, "selfHeal": True}


def setup(pause: bool, tracked: bool = True) -> tuple[FakeKube, ActKind, Harness]:
    kube = FakeKube()
    meta: dict[str, Any] = {"name": "web"}
    if tracked:
        meta["annotations"] = {TRACKING: f"mail-score:apps/Deployment:{NS}/web"}
    kube.put("Deployment", {"metadata": meta, "spec": {"replicas": 2}})
    app = {"metadata": {"name": "mail-score", "namespace": "argocd"}}
    app_spec = {"project": "default", "syncPolicy": {"automated": dict(AUTOMATED)}}
    kube.put("applications", {**app, "spec": app_spec})
    kind = ActKind(kube)
    harness = Harness(kind, kube)
    spec: dict[str, Any] = {"gitops": {"pause": True}} if pause else {}
    kube.add_custom("acts", {"metadata": {"name": "a", "namespace": NS, "uid": "u1"}, "spec": spec})
    return kube, kind, harness


def automated(kube: FakeKube) -> Any:
    app = kube.store[("applications", "argocd", "mail-score")]
    return (app["spec"].get("syncPolicy") or {}).get("automated")


def to(kube: FakeKube, phase: str) -> None:
    kube.store[("acts", NS, "a")]["spec"]["to"] = phase


def test_a_managed_target_is_named_once_and_left_syncing_without_pause() -> None:
    kube, kind, harness = setup(pause=False)
    harness.run("a")
    harness.run("a")
    found = harness.status("a").condition("GitOpsManaged")
    assert found.status == "True" and found.reason == "SelfHealMayRevert"
    assert "Deployment web by Argo CD Application argocd/mail-score" in found.message
    assert harness.reasons().count("GitOpsManaged") == 1
    assert kind.automated_at_change == [AUTOMATED]
    assert automated(kube) == AUTOMATED
    assert ("patch", "applications", "mail-score") not in kube.calls


def test_pause_comes_before_the_change_and_the_original_comes_back_after() -> None:
    kube, kind, harness = setup(pause=True)
    harness.run("a")
    assert kind.automated_at_change == [None]  # paused when the change was made
    record = harness.obj("a")["status"]["gitops"]["paused"]
    assert [(p["kind"], p["name"]) for p in record] == [("Application", "mail-score")]
    assert json.loads(record[0]["original"]) == AUTOMATED
    reason = harness.status("a").condition("GitOpsManaged").reason
    assert reason == "PausedDuringOperation"

    to(kube, "Completed")
    harness.run("a")
    assert automated(kube) == AUTOMATED
    assert not harness.obj("a")["status"].get("gitops", {}).get("paused")
    assert "GitOpsPaused" in harness.reasons() and "GitOpsResumed" in harness.reasons()
    assert kube.calls.count(("patch", "applications", "mail-score")) == 2


def test_the_write_that_ends_an_operation_finds_the_sync_restored() -> None:
    # Whoever reads Completed (kubectl, a GitOps health check, a test) finds the
    # owner syncing by itself again, not a moment later.
    kube, _, harness = setup(pause=True)
    harness.run("a")
    at_end: list[Any] = []

    def seen(name: str, patch: dict[str, Any]) -> None:
        if (patch.get("status") or {}).get("phase") == "Completed":
            at_end.append(automated(kube))

    kube.before_status = seen
    to(kube, "Completed")
    harness.run("a")
    assert at_end == [AUTOMATED]
    assert not harness.obj("a")["status"].get("gitops", {}).get("paused")
    assert kube.calls.count(("patch", "applications", "mail-score")) == 2


def test_deleting_an_acting_operation_restores_the_sync() -> None:
    kube, _, harness = setup(pause=True)
    harness.run("a")
    assert automated(kube) is None
    harness.delete("a")
    harness.run("a")
    assert automated(kube) == AUTOMATED
    assert ("acts", NS, "a") not in kube.store


def test_an_untracked_target_is_not_paused_or_named() -> None:
    _, kind, harness = setup(pause=True, tracked=False)
    harness.run("a")
    assert harness.status("a").condition("GitOpsManaged") is None
    assert kind.automated_at_change == [AUTOMATED]
    assert "gitops" not in harness.obj("a")["status"]


def test_a_crash_after_the_pause_is_restored_on_the_next_look() -> None:
    kube, _, harness = setup(pause=True)
    harness.run("a")
    # The operator died after writing Completed, before the restore.
    stored = kube.store[("acts", NS, "a")]
    stored["status"]["phase"] = "Completed"
    stored["spec"]["to"] = "Completed"
    harness.run("a")
    assert automated(kube) == AUTOMATED
