"""Restart through the core against the FakeKube: order, never twice, failures, holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.names import HOLD_ANNOTATION, RESTARTED_AT
from runbook_operator.kinds.restart.handlers import RestartKind
from runbook_operator.settings import Settings
from support.fake_kube import NS, FakeKube
from support.passes import Harness

PLURAL = "restarts"
NAME = "quick-fix"
ME = "Restart/quick-fix"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_deployment("mail-score-backend", 3)
    k.add_deployment("mail-score-frontend", 2)
    return k


def harness(kube: FakeKube, clock: Clock | None = None, codes: list[int] | None = None) -> Harness:
    answers = list(codes or [])
    kind = RestartKind(
        http_status=lambda url: answers.pop(0) if answers else 200,
        query=lambda url, query: 0.0,
    )
    return Harness(kind, kube, Settings(tick_seconds=2), clock=clock)


def create(kube: FakeKube, **spec: Any) -> None:
    spec.setdefault("targets", [{"name": "mail-score-backend"}, {"name": "mail-score-frontend"}])
    kube.add_custom(
        PLURAL,
        {
            "apiVersion": "ops.mailscore.com/v1alpha1",
            "kind": "Restart",
            "metadata": {"name": NAME},
            "spec": spec,
        },
    )


def stamp_of(kube: FakeKube, name: str, kind: str = "Deployment") -> str | None:
    template = kube.obj(kind, name)["spec"]["template"]
    return (template.get("metadata", {}).get("annotations") or {}).get(RESTARTED_AT)


def test_in_order_restarts_each_after_the_previous_finished(kube: FakeKube) -> None:
    kube.auto_rollout = False
    h = harness(kube)
    create(kube)
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Restarting" and status.restart_stamp
    assert stamp_of(kube, "mail-score-backend") == status.restart_stamp
    assert stamp_of(kube, "mail-score-frontend") is None  # its turn comes after the backend
    assert [t.state for t in status.targets] == ["Restarting", "Waiting"]
    kube.roll_out("mail-score-backend")
    h.run(NAME)
    assert stamp_of(kube, "mail-score-frontend") == status.restart_stamp
    kube.roll_out("mail-score-frontend")
    h.run(NAME)
    done = h.status(NAME)
    assert done.phase == "Completed" and done.is_ready()
    backend = done.targets[0]
    assert (backend.old_revision, backend.new_revision) == ("1", "2")
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "mail-score-backend")
    assert kube.template_changes["mail-score-backend"] == 1
    assert kube.template_changes["mail-score-frontend"] == 1


def test_all_at_once_in_one_pass(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, order="AllAtOnce")
    h.run(NAME)
    assert h.status(NAME).phase == "Completed"
    assert h.reasons().count("Restarted") == 2 and "Completed" in h.reasons()


def test_a_resumed_restart_never_restarts_again(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube)
    h.run(NAME)
    assert h.status(NAME).phase == "Completed"
    before = dict(kube.template_changes)
    for _ in range(3):
        h.run(NAME)
    assert dict(kube.template_changes) == before


def test_a_patch_lost_by_a_crash_is_made_once_when_resumed(kube: FakeKube) -> None:
    """Recorded Restarting, then the operator died before the patch: the next pass sees the
    original annotation still there and makes the patch, once."""
    kube.auto_rollout = False
    h = harness(kube)
    create(kube)

    def die(call: tuple[str, ...]) -> None:
        backend = ("patch", "Deployment", "mail-score-backend")
        held = kube.annotations("Deployment", "mail-score-backend").get(HOLD_ANNOTATION)
        if call == backend and h.status(NAME).restart_stamp and held:
            raise RuntimeError("the operator died")

    kube.before_write = die
    with pytest.raises(RuntimeError):
        h.run(NAME)
    kube.before_write = None
    assert h.status(NAME).targets[0].state == "Restarting"
    assert stamp_of(kube, "mail-score-backend") is None
    h.run(NAME)
    assert stamp_of(kube, "mail-score-backend") == h.status(NAME).restart_stamp
    assert kube.template_changes["mail-score-backend"] == 1


def test_someone_elses_restart_meanwhile_is_followed_not_repeated(kube: FakeKube) -> None:
    kube.auto_rollout = False
    h = harness(kube)
    create(kube, targets=[{"name": "mail-score-backend"}])
    h.run(NAME)
    kube.patch_deployment(
        NS,
        "mail-score-backend",
        {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "by-hand"}}}}},
    )
    kube.roll_out("mail-score-backend")
    h.run(NAME)
    assert stamp_of(kube, "mail-score-backend") == "by-hand"
    assert h.status(NAME).phase == "Completed"


def test_paused_deployment_is_refused_and_nothing_changes(kube: FakeKube) -> None:
    kube.obj("Deployment", "mail-score-frontend")["spec"]["paused"] = True
    h = harness(kube)
    create(kube)
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Refused"
    stalled = status.condition("Stalled")
    assert (
        stalled is not None
        and "kubectl rollout resume deployment/mail-score-frontend" in stalled.message
    )
    assert kube.template_changes == {}


def test_a_missing_target_is_refused(kube: FakeKube) -> None:
    h = harness(kube)
    create(kube, targets=[{"name": "nope"}])
    h.run(NAME)
    assert h.status(NAME).phase == "Refused"
    assert "Deployment nope does not exist" in h.status(NAME).message()


def test_a_rollout_that_does_not_finish_in_time_fails_naming_it(kube: FakeKube) -> None:
    kube.auto_rollout = False
    clock = Clock()
    h = harness(kube, clock)
    create(kube, timeout="30s")
    result = h.run(NAME)
    assert result is not None and result.requeue_after == pytest.approx(30, abs=1)
    clock.now = T0 + timedelta(seconds=31)
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Failed"
    assert "mail-score-backend did not finish rolling out within 30s" in status.message()
    assert "not restarted: mail-score-frontend" in status.message()
    assert stamp_of(kube, "mail-score-frontend") is None
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "mail-score-backend")


def test_health_check_must_pass_before_ready(kube: FakeKube) -> None:
    clock = Clock()
    h = harness(kube, clock, codes=[503, 200])
    create(kube, healthCheck={"http": {"url": "http://mail-score-frontend/healthz"}})
    result = h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Verifying" and "HTTP 503" in (status.health or "")
    assert result is not None and result.requeue_after == pytest.approx(2, abs=0.5)
    clock.now += timedelta(seconds=2)
    h.run(NAME)
    assert h.status(NAME).phase == "Completed" and "HTTP 200" in (h.status(NAME).health or "")


def test_health_check_that_never_passes_fails(kube: FakeKube) -> None:
    clock = Clock()
    h = harness(kube, clock, codes=[500] * 100)
    create(kube, healthCheck={"http": {"url": "http://x/healthz"}, "timeout": "10s"})
    h.run(NAME)
    clock.now += timedelta(seconds=11)
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Failed"
    ready = status.condition("Ready")
    assert ready is not None and ready.reason == "Unhealthy" and "within 10s" in ready.message


def test_statefulsets_restart_and_roll_out_too(kube: FakeKube) -> None:
    kube.add_statefulset("redis", 3)
    h = harness(kube)
    create(kube, targets=[{"kind": "StatefulSet", "name": "redis"}])
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Completed"
    assert (status.targets[0].old_revision, status.targets[0].new_revision) == (
        "redis-1",
        "redis-2",
    )
    assert stamp_of(kube, "redis", "StatefulSet") == status.restart_stamp


def test_a_held_workload_waits(kube: FakeKube) -> None:
    kube.obj("Deployment", "mail-score-backend")["metadata"]["annotations"][HOLD_ANNOTATION] = (
        "Freeze/x"
    )
    h = harness(kube)
    create(kube)
    h.run(NAME)
    h.run(NAME)
    status = h.status(NAME)
    assert status.phase == "Pending" and status.condition("Ready").reason == "WorkloadHeld"  # type: ignore[union-attr,unused-ignore]
    assert h.reasons().count("WorkloadHeld") == 1
    assert kube.template_changes == {}


def test_delete_releases_the_holds_and_restarts_nothing_back(kube: FakeKube) -> None:
    kube.auto_rollout = False
    h = harness(kube)
    create(kube)
    h.run(NAME)
    h.delete(NAME)
    h.run(NAME)
    assert (PLURAL, NS, NAME) not in kube.store
    assert HOLD_ANNOTATION not in kube.annotations("Deployment", "mail-score-backend")
    assert kube.template_changes["mail-score-backend"] == 1


def test_deleted_before_its_finalizer_is_on_it_leaves_no_hold(kube: FakeKube) -> None:
    """The holds go out beside the finalizer; the object gone before the finalizer was
    on, nothing is restarted and the holds it took are let go."""
    h = harness(kube)
    create(kube)

    def deleted(call: tuple[str, ...]) -> None:
        if call == ("patch", PLURAL, NAME):
            kube.store.pop((PLURAL, NS, NAME))

    kube.before_write = deleted
    h.run(NAME)
    assert ("patch", "Deployment", "mail-score-backend") in kube.calls  # it took the hold
    for name in ("mail-score-backend", "mail-score-frontend"):
        assert HOLD_ANNOTATION not in kube.annotations("Deployment", name)
        assert stamp_of(kube, name) is None
