"""EmergencyScale's glue on the core, against the one FakeKube (e2e uses the real API).

What is checked is what the logic cannot see: the order of the I/O (holds, then the
recorded originals, then patches), steps following each other in one pass, a hold
lost to a race, no write when nothing changed, Prometheus asked at most once per
tick, and a finalizer that works from status alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.gate import Problem, Sample
from runbook_operator.core.names import FINALIZER, HOLD_ANNOTATION, RELEASE_ANNOTATION
from runbook_operator.kinds.emergencyscale.api import EmergencyScaleSpec, EmergencyScaleStatus
from runbook_operator.kinds.emergencyscale.handlers import EmergencyScaleKind
from runbook_operator.settings import Settings
from support.fake_kube import NS, FakeKube
from support.passes import Harness

NAME = "high-traffic"
ME = "EmergencyScale/high-traffic"
PLURAL = "emergencyscales"
RUNBOOK = {
    "duration": "2h",
    "targets": [
        {"name": "mail-score-backend", "replicas": 10, "maxReplicas": 15},
        {"name": "mail-score-frontend", "replicas": 6},
    ],
}


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_deployment("mail-score-frontend", 2)
    k.add_deployment("mail-score-backend", 3)
    k.add_hpa("backend-hpa", "mail-score-backend", 3, 10)
    return k


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def harness(kube: FakeKube, sample: Any = None, clock: Clock | None = None) -> Harness:
    kind = EmergencyScaleKind(sample=sample or (lambda url, query: Sample.of(0.0)))
    return Harness(kind, kube, Settings(max_replicas=50, tick_seconds=2), clock=clock)


def create(kube: FakeKube, spec: dict[str, Any]) -> None:
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "EmergencyScale",
            "metadata": {"name": NAME},
            "spec": spec,
        },
    )


def held_by(kube: FakeKube, name: str) -> str | None:
    return kube.annotations("Deployment", name).get(HOLD_ANNOTATION)


def freeze_before_our_hold(
    kube: FakeKube, name: str = "mail-score-frontend"
) -> Callable[[tuple[str, ...]], None]:
    """A write hook: someone holds the workload by hand just before our patch reaches it."""

    def steal(call: tuple[str, ...]) -> None:
        if call == ("patch", "Deployment", name) and not held_by(kube, name):
            front = kube.obj("Deployment", name)
            front["metadata"]["annotations"][HOLD_ANNOTATION] = "Freeze/by-hand"
            front["metadata"]["resourceVersion"] = "9999"

    return steal


def writes(kube: FakeKube) -> list[tuple[str, ...]]:
    return [c for c in kube.calls if c[0] in ("patch", "scale", "patch-status", "json-patch")]


def test_one_pass_takes_holds_records_then_patches(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    recorded: list[dict[str, Any]] = []

    def first_change(call: tuple[str, ...]) -> None:
        if call[1] == "HorizontalPodAutoscaler" and not recorded:
            recorded.append(kube.obj(PLURAL, NAME)["status"])

    kube.before_write = first_change
    h.run(NAME)
    # Both originals were stored before the first change, with the holds taken beside.
    assert [o["name"] for o in recorded[0]["originals"]] == [
        "mail-score-backend",
        "mail-score-frontend",
    ]
    done = writes(kube)
    assert sorted(done[:4]) == [  # side by side: the holds and the record of the originals
        ("patch", "Deployment", "mail-score-backend"),  # hold
        ("patch", "Deployment", "mail-score-frontend"),  # hold
        ("patch", PLURAL, NAME),  # our finalizer, before anything changes
        ("patch-status", PLURAL, NAME),  # originals and Active, recorded before ...
    ]
    assert done.index(("patch", PLURAL, NAME)) < done.index(("patch-status", PLURAL, NAME))
    assert done[4:] == [
        ("patch", "HorizontalPodAutoscaler", "backend-hpa"),  # ... the changes
        ("scale", "Deployment", "mail-score-frontend"),  # replicas, by the scale subresource
    ]  # and no second status: it said already how many pods each has of those wanted
    status = h.status(NAME)
    ready = status.condition("Ready")
    # The frontend has its 6; the backend waits for its HPA to add pods (a watch event).
    assert status.phase == "Active" and ready is not None and ready.reason == "Scaling"
    assert "mail-score-backend 3/10 ready" in ready.message
    assert [o.name for o in status.originals] == ["mail-score-backend", "mail-score-frontend"]
    assert kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"] == 10
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    # The hold names the operation with its uid: one re-created under the name is another.
    assert held_by(kube, "mail-score-frontend") == f"{ME}/{h.obj(NAME)['metadata']['uid']}"
    assert FINALIZER in h.obj(NAME)["metadata"]["finalizers"]
    assert h.reasons()[:3] == ["RecordedOriginals", "Applied", "Applied"]


def test_the_first_change_waits_for_one_read_of_each_workload(kube: FakeKube) -> None:
    """Holds and later steps start from what the pass read and from our patches' answers:
    every read before the first change is a round trip an incident waits for."""
    h = harness(kube)
    create(kube, RUNBOOK)
    kube.reads.clear()
    before: list[tuple[str, ...]] = []

    def first_change(call: tuple[str, ...]) -> None:
        if call[1] == "HorizontalPodAutoscaler" and not before:
            before.extend(kube.reads)

    kube.before_write = first_change
    h.run(NAME)
    assert sorted(r for r in before if r[1] != PLURAL) == [
        ("get", "Deployment", "mail-score-backend"),
        ("get", "Deployment", "mail-score-frontend"),
        ("list", "HorizontalPodAutoscaler", "cached"),
    ]


def test_the_holds_go_out_beside_the_finalizer_and_the_first_change_after_it(
    kube: FakeKube,
) -> None:
    """On a first pass the reads and the holds do not wait for our finalizer; the status
    that records the originals, and so every change, come after its answer."""
    held = threading.Event()
    overlapped: list[bool] = []
    finalized_at: dict[str, bool] = {}

    def finalized() -> bool:
        return FINALIZER in (kube.obj(PLURAL, NAME)["metadata"].get("finalizers") or [])

    def watch(call: tuple[str, ...]) -> None:
        if call == ("patch", PLURAL, NAME) and not overlapped:
            overlapped.append(held.wait(5))  # sent; its answer only once a hold was taken
        elif call[:2] == ("patch", "Deployment"):
            held.set()
        elif call[0] == "scale":
            finalized_at.setdefault("scale", finalized())

    def status(name: str, patch: dict[str, Any]) -> None:
        finalized_at.setdefault("status", finalized())

    h = harness(kube)
    create(kube, RUNBOOK)
    kube.before_write = watch
    kube.before_status = status
    h.run(NAME)
    assert overlapped == [True]
    assert finalized_at == {"status": True, "scale": True}
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    assert kube.calls.count(("patch", PLURAL, NAME)) == 1


def test_the_hold_of_a_workload_its_hpa_scales_goes_beside_the_record_of_its_original(
    kube: FakeKube,
) -> None:
    """The change is on the HPA, the hold on the workload: the hold does not wait for the
    status that records the original, nor the status for the hold, and the HPA is patched
    once both are answered."""
    h = harness(kube)
    create(kube, {"targets": [{"name": "mail-score-backend", "replicas": 10}]})
    recording = threading.Event()
    overlapped: list[bool] = []
    at_change: list[tuple[str | None, list[str]]] = []

    def status(name: str, patch: dict[str, Any]) -> None:
        if "originals" in str(patch):
            recording.set()

    def watch(call: tuple[str, ...]) -> None:
        if call == ("patch", "Deployment", "mail-score-backend") and not overlapped:
            overlapped.append(recording.wait(2))  # the record is under way already
        elif call[1] == "HorizontalPodAutoscaler":
            stored = kube.obj(PLURAL, NAME)["status"].get("originals") or []
            at_change.append((held_by(kube, "mail-score-backend"), [o["name"] for o in stored]))

    kube.before_write = watch
    kube.before_status = status
    h.run(NAME)
    assert overlapped == [True]
    me = f"{ME}/{h.obj(NAME)['metadata']['uid']}"
    assert at_change == [(me, ["mail-score-backend"])]  # held and recorded, then changed
    assert kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"] == 10
    assert h.status(NAME).phase == "Active"


def test_a_deletion_before_the_finalizer_is_on_lets_go_of_the_holds_taken(
    kube: FakeKube,
) -> None:
    """Deleted while its finalizer was on its way: nothing is changed, and the holds the
    pass took are not left behind on the workloads."""
    h = harness(kube)
    create(kube, RUNBOOK)

    def deleted(call: tuple[str, ...]) -> None:
        if call == ("patch", PLURAL, NAME):
            kube.store.pop((PLURAL, NS, NAME))

    kube.before_write = deleted
    h.run(NAME)
    for name in ("mail-score-frontend", "mail-score-backend"):
        assert held_by(kube, name) is None
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 2
    assert not [c for c in kube.calls if c[0] == "scale"]


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"targets": [{"name": "mail-score-frontend", "replicas": 6}]}, id="one"),
        pytest.param(RUNBOOK, id="with-an-hpa-target"),
    ],
)
def test_a_stale_copy_of_a_workload_costs_a_conflict_never_a_lost_update(
    kube: FakeKube, spec: dict[str, Any]
) -> None:
    """Someone scales a target between the pass's read and its hold: the hold, written
    with the resourceVersion read, is refused and taken again on a fresh read, and the
    original recorded is what it was when the change landed (3), not the first read (2),
    which the revert would otherwise put back over their change."""
    h = harness(kube)
    create(kube, spec)
    touched: list[tuple[str, ...]] = []

    def someone_scales(call: tuple[str, ...]) -> None:
        if call == ("patch", "Deployment", "mail-score-frontend") and not touched:
            touched.append(call)
            obj = kube.obj("Deployment", "mail-score-frontend")
            obj["spec"]["replicas"] = 3
            obj["metadata"]["resourceVersion"] = "9999"

    kube.before_write = someone_scales
    h.run(NAME)
    assert touched
    assert held_by(kube, "mail-score-frontend") is not None
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    originals = {o.name: o.replicas for o in h.status(NAME).originals}
    assert originals["mail-score-frontend"] == 3
    assert h.status(NAME).phase == "Active"


def test_one_target_nobody_holds_takes_its_hold_with_its_size_after_the_status(
    kube: FakeKube,
) -> None:
    """One round trip less before the change: the status records the original, then one
    patch carries the hold and the replicas, written with the resourceVersion the original
    was read at."""
    kube.auto_rollout = False  # the patch's answer shows the old pods, as the API server's
    h = harness(kube)
    create(kube, {"targets": [{"name": "mail-score-frontend", "replicas": 6}]})
    read_at = kube.obj("Deployment", "mail-score-frontend")["metadata"]["resourceVersion"]
    at_change: list[dict[str, Any]] = []
    patches: list[dict[str, Any]] = []
    patch_workload = kube.patch_workload

    def spy(kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        patches.append(patch)
        at_change.append(kube.obj(PLURAL, NAME)["status"])
        return patch_workload(kind, namespace, name, patch)

    kube.patch_workload = spy  # type: ignore[method-assign]
    h.run(NAME)
    assert [c for c in writes(kube) if c[1] != PLURAL] == [
        ("patch", "Deployment", "mail-score-frontend")
    ]  # no hold of its own, no scale subresource
    assert writes(kube)[-2:] == [
        ("patch-status", PLURAL, NAME),
        ("patch", "Deployment", "mail-score-frontend"),
    ]  # and no second status: it said already how many pods it has of those wanted
    assert patches[0]["metadata"]["resourceVersion"] == read_at
    assert patches[0]["spec"] == {"replicas": 6}
    assert at_change[0]["originals"] == [
        {"kind": "Deployment", "name": "mail-score-frontend", "replicas": 2}
    ]
    assert held_by(kube, "mail-score-frontend") == f"{ME}/{h.obj(NAME)['metadata']['uid']}"
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    assert h.reasons()[:2] == ["RecordedOriginals", "Applied"]


def _size(kube: FakeKube, target: str) -> int:
    """The size an EmergencyScale changes: the HPA's minimum for the backend, else replicas."""
    if target == "mail-score-backend":
        return int(kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"])
    return int(kube.obj("Deployment", target)["spec"]["replicas"])


@pytest.mark.parametrize(
    ("target", "size"),
    [
        pytest.param("mail-score-frontend", 6, id="hold-with-its-size"),
        pytest.param("mail-score-backend", 10, id="hold-beside-the-record"),
    ],
)
def test_one_target_taken_by_another_before_its_hold_leaves_no_original_behind(
    kube: FakeKube, target: str, size: int
) -> None:
    """Its original was recorded (its hold went out with its size, or beside the record),
    and another operation held it first: the hold is refused, nothing changes, the record
    goes back and the operation waits its turn."""
    h = harness(kube)
    create(kube, {"targets": [{"name": target, "replicas": size}]})
    before = _size(kube, target)
    kube.before_write = freeze_before_our_hold(kube, target)
    h.run(NAME)
    assert held_by(kube, target) == "Freeze/by-hand"
    assert _size(kube, target) == before
    status = h.status(NAME)
    assert status.originals == []
    ready = status.condition("Ready")
    assert ready is not None and ready.reason == "WorkloadHeld"
    assert "Applied" not in h.reasons()


def test_the_wake_up_is_the_end_of_the_duration(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    result = h.run(NAME)
    assert result is not None and result.requeue_after is not None
    assert timedelta(hours=2) - timedelta(seconds=5) < timedelta(seconds=result.requeue_after)
    assert ("Deployment", "mail-score-backend") in result.watch


def test_a_pass_with_nothing_new_changes_nothing_and_writes_nothing(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    h.run(NAME)  # applied; the rollouts are news for the next pass (a watch event)
    h.run(NAME)
    assert h.status(NAME).phase == "Active"
    kube.calls.clear()
    h.run(NAME)
    assert writes(kube) == []


def test_a_scaled_workload_is_known_from_the_scale_answer_not_read_again(
    kube: FakeKube,
) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)

    def scaling(call: tuple[str, ...]) -> None:
        if call[0] == "scale":
            kube.reads.clear()  # what the pass reads from here on

    kube.before_write = scaling
    h.run(NAME)
    scaled = [c for c in kube.calls if c[0] == "scale"]
    assert scaled == [("scale", "Deployment", "mail-score-frontend")]
    assert ("get", "Deployment", "mail-score-frontend") not in kube.reads
    status = h.status(NAME)
    ready = status.condition("Ready")
    assert ready is not None and "mail-score-frontend 2/6 ready" in ready.message


def test_the_holds_are_gone_before_the_status_says_completed(kube: FakeKube) -> None:
    clock = Clock()
    h = harness(kube, clock=clock)
    create(kube, RUNBOOK)
    h.run(NAME)
    seen: list[tuple[str, str | None, str | None]] = []

    def record(name: str, patch: dict[str, Any]) -> None:
        phase = patch["status"].get("phase")
        if phase is not None:
            frontend = held_by(kube, "mail-score-frontend")
            seen.append((phase, held_by(kube, "mail-score-backend"), frontend))

    kube.before_status = record
    clock.now += timedelta(hours=2, seconds=1)
    for _ in range(4):
        h.run(NAME)
    assert h.status(NAME).phase == "Completed"
    assert seen[-1] == ("Completed", None, None)


def test_a_hold_lost_to_a_race_gives_back_the_others(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    kube.before_write = freeze_before_our_hold(kube)
    h.run(NAME)
    assert held_by(kube, "mail-score-backend") is None
    status = h.status(NAME)
    assert status.originals == []  # nothing recorded without every hold
    ready = status.condition("Ready")
    assert ready is not None and ready.reason == "WorkloadHeld"
    assert "Freeze/by-hand" in ready.message
    assert h.events[-1].type == "Warning" and h.events[-1].reason == "WorkloadHeld"


def test_status_is_not_rewritten_when_nothing_changed(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, {"targets": [{"name": "mail-score-frontend", "replicas": 60}]})
    h.run(NAME)
    kube.calls.clear()
    h.run(NAME)
    assert writes(kube) == []
    assert h.reasons() == ["OverCap"]


def test_finalizer_restores_and_releases(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    h.run(NAME)
    h.delete(NAME)
    h.run(NAME)
    hpa = kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 2
    assert held_by(kube, "mail-score-backend") is None
    assert held_by(kube, "mail-score-frontend") is None
    assert (PLURAL, NS, NAME) not in kube.store  # the finalizer went, and so did the object


def test_the_release_annotation_lets_a_stuck_object_go_with_an_event(kube: FakeKube) -> None:
    """An SRE gives up on the undo: the object goes, nothing is put back, and the Warning
    event says so with the reason given."""
    h = harness(kube)
    create(kube, RUNBOOK)
    h.run(NAME)
    annotations = h.obj(NAME)["metadata"].setdefault("annotations", {})
    annotations[RELEASE_ANNOTATION] = "the backend was replaced by hand (INC-42)"
    h.delete(NAME)
    h.run(NAME)
    assert (PLURAL, NS, NAME) not in kube.store
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    released = [e for e in h.events if e.reason == "Released"]
    assert len(released) == 1 and "INC-42" in released[0].message
    assert "without putting anything back" in released[0].message


def test_finalizer_works_from_status_when_the_spec_cannot_be_read(kube: FakeKube) -> None:
    """A spec edited into something the operator rejects is still undone on delete."""
    h = harness(kube)
    create(kube, RUNBOOK)
    h.run(NAME)
    h.obj(NAME)["spec"] = {"targets": "not a list", "duration": "0.0000001s"}
    h.run(NAME)
    ready = h.status(NAME).condition("Ready")
    assert ready is not None and ready.reason == "InvalidSpec"
    assert "https://errors.pydantic.dev" not in ready.message
    assert "spec.targets" in ready.message
    h.delete(NAME)
    h.run(NAME)
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 2
    assert held_by(kube, "mail-score-frontend") is None
    assert (PLURAL, NS, NAME) not in kube.store


def test_revert_false_recorded_in_status_keeps_the_size_on_delete(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, {**RUNBOOK, "revert": False})
    h.run(NAME)
    assert h.status(NAME).revert is False
    h.delete(NAME)
    h.run(NAME)
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    assert held_by(kube, "mail-score-frontend") is None


def test_prometheus_is_asked_once_per_tick(kube: FakeKube) -> None:
    asked: list[tuple[str, str]] = []

    def sample(url: str, query: str) -> Sample:
        asked.append((url, query))
        return Sample.of(0.01)

    h = harness(kube, sample)
    create(
        kube,
        {
            "targets": [{"name": "mail-score-frontend", "replicas": 6}],
            "trigger": {"url": "http://prom:9090", "query": "errors", "threshold": 0.1},
        },
    )
    result = h.run(NAME)
    h.run(NAME)  # within the same tick: the recorded evaluation is reused
    assert asked == [("http://prom:9090", "errors")]
    assert h.status(NAME).phase == "Waiting"
    assert result is not None and result.requeue_after == pytest.approx(2, abs=0.5)


def test_sample_without_any_url_says_where_to_set_one(kube: FakeKube) -> None:
    h = harness(kube)
    create(
        kube,
        {
            "targets": [{"name": "mail-score-frontend", "replicas": 6}],
            "trigger": {"query": "errors", "threshold": 0.1},
        },
    )
    h.run(NAME)
    gate = h.status(NAME).gate
    assert gate is not None and gate.error is not None and "RUNBOOK_PROMETHEUS_URL" in gate.error


def test_sample_is_skipped_when_the_last_one_is_fresh() -> None:
    kind = EmergencyScaleKind(sample=lambda url, query: pytest.fail("asked"))
    spec = EmergencyScaleSpec.model_validate(
        {
            "targets": [{"name": "x", "replicas": 1}],
            "trigger": {"url": "http://p", "query": "errors", "threshold": 0.1},
        }
    )
    now = datetime.now(UTC)
    status = EmergencyScaleStatus.model_validate(
        {"gate": {"evaluatedAt": (now - timedelta(seconds=0.5)).isoformat()}}
    )

    class Ctx:
        settings = Settings(tick_seconds=2)

    Ctx.now = now  # type: ignore[attr-defined]
    assert kind._sample(Ctx(), spec, status) is None  # type: ignore[arg-type]
    assert Problem.BAD_QUERY == "BadQuery"


def requested(kube: FakeKube, user: str) -> None:
    obj = kube.store[(PLURAL, NS, NAME)]
    obj["metadata"]["annotations"] = {"ops.mailscore.com/requested-by": user}


def test_a_size_set_through_an_hpa_needs_its_requester_to_be_allowed_to_patch_it(
    kube: FakeKube,
) -> None:
    """Admission proved sam may scale the Deployments; only the operator knows that
    backend-hpa manages one, so it asks the API server before touching anything."""
    h = harness(kube)
    create(kube, RUNBOOK)
    requested(kube, "sam")
    kube.denied.add(("sam", "patch", "horizontalpodautoscalers", "backend-hpa"))
    h.run(NAME)
    assert ("allowed", "sam", "patch", "horizontalpodautoscalers", "backend-hpa") in kube.calls
    status = h.status(NAME)
    stalled = status.condition("Stalled")
    assert stalled is not None and stalled.status == "True" and stalled.reason == "NotAuthorized"
    assert "managed by HorizontalPodAutoscaler backend-hpa" in stalled.message
    assert "sam (who asked) may not patch it" in stalled.message
    assert status.originals == []
    # Nothing was changed, nor held.
    assert not [w for w in writes(kube) if w[1] in ("Deployment", "HorizontalPodAutoscaler")]
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 2
    assert kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"] == 3


def test_a_requester_allowed_to_patch_the_hpa_is_asked_once_and_goes_ahead(
    kube: FakeKube,
) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    requested(kube, "rita")
    h.run(NAME)
    h.run(NAME)
    asked = [c for c in kube.calls if c[0] == "allowed"]
    assert asked == [("allowed", "rita", "patch", "horizontalpodautoscalers", "backend-hpa")]
    assert h.status(NAME).phase == "Active"
    assert kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"] == 10


def test_without_a_requester_nobody_is_asked(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, RUNBOOK)
    h.run(NAME)
    assert not [c for c in kube.calls if c[0] == "allowed"]


def test_a_first_pass_reads_each_target_once_gitops_owner_included(kube: FakeKube) -> None:
    """The GitOps owner of a target is taken from the pass's own read of it: at a
    thousand operations at once, every read is API-server time the others wait for."""
    h = harness(kube)
    create(kube, RUNBOOK)
    kube.reads.clear()
    h.run(NAME)
    deployments = [r for r in kube.reads if r[:2] == ("get", "Deployment")]
    assert sorted(deployments) == [
        ("get", "Deployment", "mail-score-backend"),
        ("get", "Deployment", "mail-score-frontend"),
    ]


def test_a_target_its_watch_delivered_is_changed_without_a_read_first(kube: FakeKube) -> None:
    """From the operator's watch cache: the status that records the original, then the
    change, and no round trip to read the target or its HPAs before them."""
    kube.auto_rollout = False  # the patch's answer shows the old pods, as the API server's
    h = harness(kube)
    h.cache = kube.watched()
    create(kube, {"targets": [{"name": "mail-score-frontend", "replicas": 6}]})
    kube.reads.clear()
    h.run(NAME)
    assert [r for r in kube.reads if r[1] != PLURAL] == [
        ("list", "HorizontalPodAutoscaler", "cached")
    ]
    assert writes(kube)[-2:] == [
        ("patch-status", PLURAL, NAME),
        ("patch", "Deployment", "mail-score-frontend"),
    ]
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    assert [(o.name, o.replicas) for o in h.status(NAME).originals] == [("mail-score-frontend", 2)]


def test_several_targets_from_the_watch_cache_need_only_the_hpa_list(kube: FakeKube) -> None:
    """Whether an HPA manages a target is asked of the API server (an HPA the operator
    has not seen would look absent); the targets themselves are not read."""
    h = harness(kube)
    h.cache = kube.watched()
    create(kube, RUNBOOK)
    kube.reads.clear()
    h.run(NAME)
    assert [r for r in kube.reads if r[1] != PLURAL] == [
        ("list", "HorizontalPodAutoscaler", "cached")
    ]
    assert kube.obj("HorizontalPodAutoscaler", "backend-hpa")["spec"]["minReplicas"] == 10
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    originals = {o.name: o.replicas for o in h.status(NAME).originals}
    assert originals == {"mail-score-backend": 3, "mail-score-frontend": 2}


@pytest.mark.parametrize(
    "spec",
    [{"targets": [{"name": "mail-score-frontend", "replicas": 6}]}, RUNBOOK],
    ids=["hold-with-the-change", "holds-first"],
)
def test_a_watch_copy_gone_stale_costs_a_conflict_never_a_lost_update(
    kube: FakeKube, spec: dict[str, Any]
) -> None:
    """Someone scaled the frontend after the watch delivered it, and its event is still in
    flight: the hold, written with the resourceVersion of the copy, is refused; a fresh
    read decides, and the original recorded is their 3, not the copy's 2."""
    h = harness(kube)
    h.cache = kube.watched()
    front = kube.obj("Deployment", "mail-score-frontend")
    front["spec"]["replicas"] = 3
    front["metadata"]["resourceVersion"] = "9999"
    create(kube, spec)
    h.run(NAME)
    assert kube.obj("Deployment", "mail-score-frontend")["spec"]["replicas"] == 6
    assert {o.name: o.replicas for o in h.status(NAME).originals}["mail-score-frontend"] == 3
    assert h.status(NAME).phase == "Active"
    assert ("get", "Deployment", "mail-score-frontend") in kube.reads  # the fresh read


def test_a_target_deleted_after_its_watch_copy_is_not_found(kube: FakeKube) -> None:
    h = harness(kube)
    h.cache = kube.watched()
    del kube.store[("Deployment", NS, "mail-score-frontend")]
    create(kube, {"targets": [{"name": "mail-score-frontend", "replicas": 6}]})
    h.run(NAME)
    status = h.status(NAME)
    assert status.originals == []
    ready = status.condition("Ready")
    assert ready is not None and ready.reason == "TargetNotFound", ready
    # The API server said it is gone: the next pass does not start from the copy again.
    assert h.cache.workload("Deployment", NS, "mail-score-frontend") is None
