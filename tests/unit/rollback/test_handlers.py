"""Rollback through the core against the FakeKube: decision recorded before the template
is touched, never twice, holds all or none, a finalizer from status alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.names import FINALIZER, HOLD_ANNOTATION, HOLD_INSTANCE_ANNOTATION
from runbook_operator.kinds.rollback.handlers import RollbackKind
from support.fake_kube import FakeKube
from support.passes import Harness
from support.rollback_objects import history

NS = "ns"
PLURAL = "rollbacks"
ME = "Rollback/undo"


def world(*names: str) -> FakeKube:
    kube = FakeKube()
    for name in names:
        dep, sets = history(name)
        kube.put("Deployment", dep)
        for rs in sets:
            kube.put("ReplicaSet", rs)
    return kube


def create(kube: FakeKube, *names: str, to_revision: int | None = None) -> Harness:
    target: dict[str, Any] = {} if to_revision is None else {"toRevision": to_revision}
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "Rollback",
            "metadata": {"name": "undo", "namespace": NS},
            "spec": {"targets": [{"name": n, **target} for n in names]},
        },
    )
    return Harness(RollbackKind(), kube)


def image_of(kube: FakeKube, name: str) -> str:
    return str(
        kube.obj("Deployment", name, NS)["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def test_the_template_waits_for_one_read_of_the_target_and_no_event() -> None:
    """The template patch starts from the pass's read (and takes the hold with it), and
    the events of the pass are posted once its changes are made."""
    kube = world("web")
    h = create(kube, "web")
    before: list[tuple[str, ...]] = []
    posted: list[str] = []

    def restore(call: tuple[str, ...]) -> None:
        if call[0] == "json-patch" and not before:
            before.extend(kube.reads)
            posted.extend(e.reason for e in h.events)

    kube.reads.clear()
    kube.before_write = restore
    h.run("undo", NS)
    assert sorted(r for r in before if r[1] != PLURAL) == [
        ("get", "Deployment", "web"),
        ("list", "ReplicaSet", "cached"),
    ]
    assert posted == []
    assert "Started" in [e.reason for e in h.events]
    assert image_of(kube, "web") == "img:2"


def test_the_decision_is_written_with_the_holds_before_the_templates_are_restored() -> None:
    kube = world("web", "api")
    h = create(kube, "api", "web")
    finalized: list[bool] = []

    def recorded(name: str, patch: dict[str, object]) -> None:
        finalized.append(FINALIZER in (kube.obj(PLURAL, "undo", NS)["metadata"]["finalizers"]))

    kube.before_status = recorded
    h.run("undo", NS)
    writes = [c for c in kube.calls if c[0] in ("patch", "patch-status", "json-patch")]
    assert set(writes[:3]) == {  # side by side: the holds do not wait for the finalizer
        ("patch", PLURAL, "undo"),  # finalizer
        ("patch", "Deployment", "api"),  # hold
        ("patch", "Deployment", "web"),  # hold
    }
    assert writes[3:5] == [
        ("patch-status", PLURAL, "undo"),  # both Planned, back to revision 2
        ("json-patch", "Deployment", "api"),  # the template of revision 2
    ]
    assert finalized and all(finalized)  # on before the first status, so before any change
    status = h.status("undo", NS)
    assert status.phase == "Completed"
    assert [(t.from_revision, t.to_revision, t.state) for t in status.targets] == [
        (3, 2, "Complete"),
        (3, 2, "Complete"),
    ]
    assert image_of(kube, "web") == "img:2" and image_of(kube, "api") == "img:2"
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "web", NS)


def test_one_deployment_nobody_holds_takes_its_hold_with_the_restore() -> None:
    """One round trip less before the restore: the decision is written, then the one
    patch that restores the template carries the hold, guarded by the resourceVersion
    the decision was made on."""
    kube = world("web")
    kube.auto_rollout = False
    read_at = kube.obj("Deployment", "web", NS)["metadata"]["resourceVersion"]
    h = create(kube, "web")
    at_restore: list[dict[str, Any]] = []

    def restore(call: tuple[str, ...]) -> None:
        if call[0] == "json-patch" and not at_restore:
            at_restore.append(copy.deepcopy(kube.obj(PLURAL, "undo", NS)["status"]))

    sent: list[list[dict[str, object]]] = []
    json_patch = kube.json_patch_deployment

    def spy(namespace: str, name: str, operations: list[dict[str, object]]) -> dict[str, object]:
        sent.append(operations)
        return json_patch(namespace, name, operations)

    kube.json_patch_deployment = spy  # type: ignore[method-assign]
    kube.before_write = restore
    h.run("undo", NS)
    writes = [c for c in kube.calls if c[0] in ("patch", "patch-status", "json-patch")]
    assert ("patch", "Deployment", "web") not in writes  # no hold of its own
    first = writes.index(("patch-status", PLURAL, "undo"))
    assert writes[first : first + 2] == [
        ("patch-status", PLURAL, "undo"),  # web: Planned, back to revision 2
        ("json-patch", "Deployment", "web"),  # the template, with the hold
    ]
    (target,) = at_restore[0]["targets"]
    assert target["state"] == "Planned" and target["toRevision"] == 2
    assert sent[0][0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": read_at}
    annotations = kube.annotations("Deployment", "web", NS)
    assert annotations[HOLD_ANNOTATION] == f"{ME}/{h.obj('undo', NS)['metadata']['uid']}"
    assert annotations[HOLD_INSTANCE_ANNOTATION] == "test-instance"
    assert image_of(kube, "web") == "img:2"


def test_one_deployment_taken_by_another_after_the_decision_is_waited_for() -> None:
    kube = world("web")
    kube.auto_rollout = False
    h = create(kube, "web")

    def steal(call: tuple[str, ...]) -> None:
        if call[0] == "json-patch":
            dep = kube.obj("Deployment", "web", NS)
            if HOLD_ANNOTATION not in dep["metadata"]["annotations"]:
                dep["metadata"]["annotations"][HOLD_ANNOTATION] = "Freeze/x"
                dep["metadata"]["resourceVersion"] = "9999"

    kube.before_write = steal
    h.run("undo", NS)
    status = h.status("undo", NS)
    assert status.phase == "Pending" and status.targets[0].state == "Planned"
    assert "Freeze/x" in status.message()
    assert image_of(kube, "web") == "img:3"  # untouched
    assert kube.annotations("Deployment", "web", NS)[HOLD_ANNOTATION] == "Freeze/x"
    kube.before_write = None
    del kube.obj("Deployment", "web", NS)["metadata"]["annotations"][HOLD_ANNOTATION]
    kube.roll_out("web", NS)
    h.run("undo", NS)
    kube.roll_out("web", NS)
    h.run("undo", NS)
    assert h.status("undo", NS).phase == "Completed"
    assert image_of(kube, "web") == "img:2" and kube.template_changes["web"] == 1
    assert [e.reason for e in h.events if e.reason != "GitOpsManaged"] == [
        "Started",
        "WorkloadHeld",
        "Restored",
        "RolledOut",
        "Completed",
    ]


def test_a_template_restored_before_a_crash_is_found_and_never_restored_twice() -> None:
    kube = world("web")
    kube.auto_rollout = False
    h = create(kube, "web")

    def die(call: tuple[str, ...]) -> None:
        if call[0] == "patch-status" and any(c[0] == "json-patch" for c in kube.calls):
            raise RuntimeError("the operator died after the patch")

    kube.before_write = die
    with pytest.raises(RuntimeError):
        h.run("undo", NS)
    kube.before_write = None
    assert image_of(kube, "web") == "img:2"
    assert h.status("undo", NS).targets[0].state == "Planned"  # its RollingOut record was lost
    kube.calls.clear()
    h.run("undo", NS)
    assert not [c for c in kube.calls if c[0] == "json-patch"]
    assert "FoundRestored" in [e.reason for e in h.events]
    kube.roll_out("web", NS)
    h.run("undo", NS)
    assert h.status("undo", NS).phase == "Completed"
    assert kube.template_changes["web"] == 1


def test_holds_are_taken_all_or_none() -> None:
    kube = world("web", "api")
    kube.obj("Deployment", "web", NS)["metadata"]["annotations"][HOLD_ANNOTATION] = "Freeze/x"
    h = create(kube, "api", "web")
    h.run("undo", NS)
    status = h.status("undo", NS)
    assert status.phase == "Pending" and "Freeze/x" in status.message()
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "api", NS)  # given back
    assert image_of(kube, "api") == "img:3" and image_of(kube, "web") == "img:3"


def test_a_conflict_on_the_patch_decides_again_from_what_is_there() -> None:
    kube = world("web")
    h = create(kube, "web")
    failed: list[tuple[str, ...]] = []

    def conflict_once(call: tuple[str, ...]) -> None:
        if call[0] == "json-patch" and not failed:
            failed.append(call)
            raise Conflict("the object has been modified")

    kube.before_write = conflict_once
    h.run("undo", NS)
    assert failed and h.status("undo", NS).phase == "Completed"
    assert image_of(kube, "web") == "img:2" and kube.template_changes["web"] == 1


def test_finalizer_releases_from_status_when_the_spec_cannot_be_read() -> None:
    kube = world("web")
    kube.auto_rollout = False
    h = create(kube, "web")
    h.run("undo", NS)
    rs = next(o for (k, _, _), o in kube.store.items() if k == "ReplicaSet")
    mine = f"{ME}/{h.obj('undo', NS)['metadata']['uid']}"
    rs["metadata"]["annotations"][HOLD_ANNOTATION] = mine  # the controller copied the hold
    assert kube.annotations("Deployment", "web", NS)[HOLD_ANNOTATION] == mine
    h.obj("undo", NS)["spec"] = {"targets": "garbage"}
    h.delete("undo", NS)
    h.run("undo", NS)
    assert (PLURAL, NS, "undo") not in kube.store
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "web", NS)
    assert HOLD_ANNOTATION not in (rs["metadata"].get("annotations") or {})
    assert image_of(kube, "web") == "img:2"  # a restored template stays


def test_a_paused_deployment_is_refused_and_nothing_changes() -> None:
    kube = world("web")
    kube.obj("Deployment", "web", NS)["spec"]["paused"] = True
    before = copy.deepcopy(kube.obj("Deployment", "web", NS)["spec"])
    h = create(kube, "web")
    h.run("undo", NS)
    assert h.status("undo", NS).phase == "Refused"
    assert kube.obj("Deployment", "web", NS)["spec"] == before


def moved_on(kube: FakeKube, images: list[str]) -> None:
    """The Deployment rolls out the last of `images` after the watch delivered it (its
    event still in flight)."""
    dep, sets = history("web", images)
    dep["metadata"]["resourceVersion"] = "9999"
    kube.put("Deployment", dep)
    kube.put("ReplicaSet", sets[-1])


def decided_on_a_fresh_read(h: Harness, kube: FakeKube) -> tuple[tuple[int | None, ...], str]:
    """(from, to) revisions recorded and the image restored; never AlreadyAtRevision."""
    assert "AlreadyAtRevision" not in [e.reason for e in h.events]
    (target,) = h.status("undo", NS).targets
    return (target.from_revision, target.to_revision), image_of(kube, "web")


def test_a_new_rollback_restores_from_the_watch_copy_without_reading_the_deployment() -> None:
    """The operator's watch delivered the Deployment: the decision and the restore wait
    only for the list of its ReplicaSets."""
    kube = world("web")
    h = create(kube, "web")
    h.cache = kube.watched()
    before: list[tuple[str, ...]] = []

    def restore(call: tuple[str, ...]) -> None:
        if call[0] == "json-patch" and not before:
            before.extend(r for r in kube.reads if r[1] != PLURAL)

    kube.reads.clear()
    kube.before_write = restore
    h.run("undo", NS)
    assert before == [("list", "ReplicaSet", "cached")]
    assert image_of(kube, "web") == "img:2"
    status = h.status("undo", NS)
    assert [(t.from_revision, t.to_revision) for t in status.targets] == [(3, 2)]


def test_a_watch_copy_gone_stale_is_refused_by_its_resource_version_and_decided_again() -> None:
    """Someone changed the Deployment after the watch delivered it (its template is the
    same), and the event is still in flight: the restore written against the copy is
    refused by its resourceVersion, and the fresh read decides again."""
    kube = world("web")
    h = create(kube, "web")
    h.cache = kube.watched()
    kube.obj("Deployment", "web", NS)["spec"]["minReadySeconds"] = 5
    kube.obj("Deployment", "web", NS)["metadata"]["resourceVersion"] = "9999"
    h.run("undo", NS)
    restores = [c for c in kube.calls if c[0] == "json-patch"]
    assert len(restores) == 2  # the first one refused
    assert ("get", "Deployment", "web") in kube.reads  # the fresh read
    status = h.status("undo", NS)
    assert [(t.from_revision, t.to_revision, t.state) for t in status.targets] == [
        (3, 2, "Complete")
    ]
    assert image_of(kube, "web") == "img:2"
    assert kube.obj("Deployment", "web", NS)["spec"]["minReadySeconds"] == 5


def test_a_copy_behind_a_new_revision_decides_on_a_fresh_read() -> None:
    """Revision 4 rolled out after the watch delivered revision 3: on the copy, the
    previous revision looks like the current one (AlreadyAtRevision, no change); that end
    is decided again on a fresh read, which goes from 4 back to 3."""
    kube = world("web")
    h = create(kube, "web")
    h.cache = kube.watched()
    moved_on(kube, ["img:1", "img:2", "img:3", "img:4"])
    h.run("undo", NS)
    assert decided_on_a_fresh_read(h, kube) == ((4, 3), "img:3")


def test_an_end_without_a_change_is_never_decided_on_a_watch_copy() -> None:
    """The copy still shows revision 2, the revision asked for; the Deployment is at 3 by
    now. Deciding on the copy would end the Rollback as AlreadyAtRevision and leave the
    bad revision running; the end is decided on a fresh read, which restores revision 2."""
    kube = world("web")
    stale, _ = history("web", ["img:1", "img:2"])
    kube.put("Deployment", stale)
    h = create(kube, "web", to_revision=2)
    h.cache = kube.watched()
    moved_on(kube, ["img:1", "img:2", "img:3"])
    h.run("undo", NS)
    assert decided_on_a_fresh_read(h, kube) == ((3, 2), "img:2")


def test_a_deployment_deleted_after_its_watch_copy_fails_the_target_and_leaves_the_cache() -> None:
    kube = world("web")
    h = create(kube, "web")
    h.cache = kube.watched()
    del kube.store[("Deployment", NS, "web")]
    h.run("undo", NS)
    status = h.status("undo", NS)
    assert status.is_done(), status
    assert "deleted" in (status.targets[0].message or ""), status.targets
    assert h.cache.workload("Deployment", NS, "web") is None
