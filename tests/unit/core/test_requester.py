"""Who asked: status.requestedBy rides on the first status write, and the Requested event
is told when the pass ends, once a write stored it: neither the write nor the change after
it waits for the event's round trip, and a write refused as stale tells nothing twice."""

from __future__ import annotations

from typing import Any

from runbook_operator.adapters.kube import Conflict
from runbook_operator.core.context import Pass
from runbook_operator.core.kind import Result
from runbook_operator.core.names import FINALIZER
from support.fake_kube import NS, FakeKube
from support.passes import Harness

from .test_reruns import ONCE, OnceKind, OnceStatus

STAMPS = {
    "ops.mailscore.com/requested-by": "rita",
    "ops.mailscore.com/requested-by-groups": "sre,system:authenticated",
}


class WatchedKind(OnceKind):
    """Records, at its status write, which events the pass had told by then."""

    def __init__(self, harness: list[Harness]) -> None:
        super().__init__()
        self.harness = harness
        self.told_before_write: list[list[str]] = []

    def reconcile(self, ctx: Pass) -> Result:
        status: OnceStatus = ctx.status()
        if not status.is_done():
            self.told_before_write.append(self.harness[0].reasons())
        return super().reconcile(ctx)


def make(stale_once: bool = False) -> tuple[Harness, WatchedKind, FakeKube]:
    kube, box = FakeKube(), list[Harness]()
    kind = WatchedKind(box)
    harness = Harness(kind, kube)
    box.append(harness)
    meta: dict[str, Any] = {"annotations": STAMPS, "finalizers": [FINALIZER]}
    body = {"metadata": {"name": "once", "namespace": NS, "uid": "u1", **meta}}
    kube.add_custom(ONCE.plural, {**body, "spec": {}})
    lost: list[dict[str, Any]] = []

    def conflict_once(name: str, patch: dict[str, Any]) -> None:
        if stale_once and not lost:
            lost.append(patch)  # someone changed the object since the pass read it
            raise Conflict("the object has been modified")

    kube.before_status = conflict_once
    return harness, kind, kube


def test_the_requester_is_stored_with_the_first_write_and_told_after_it() -> None:
    harness, kind, kube = make()
    harness.run("once")
    assert kind.told_before_write == [[]]  # the write did not wait for the event
    status = kube.obj(ONCE.plural, "once")["status"]
    assert status["requestedBy"] == {"user": "rita", "groups": ["sre", "system:authenticated"]}
    assert harness.reasons() == ["Requested"]
    (event,) = harness.events
    assert event.message == "Requested by rita (groups sre, system:authenticated)."
    harness.run("once")
    assert harness.reasons() == ["Requested"]  # once


def test_a_first_write_refused_as_stale_tells_the_requester_once() -> None:
    harness, kind, kube = make(stale_once=True)
    harness.run("once")
    assert len(kind.told_before_write) == 2  # decided again on a fresh read
    assert harness.reasons() == ["Requested"]
    assert kube.obj(ONCE.plural, "once")["status"]["requestedBy"]["user"] == "rita"
