"""A write's own watch event is an echo, even when it arrives while the pass still runs."""

from __future__ import annotations

from typing import Any

from support.fake_kube import NS, FakeKube
from support.passes import Harness

from .test_notifying import ProbeKind


def body(version: int, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": NS, "resourceVersion": str(version), **meta}}


def test_events_at_or_below_an_answered_write_wake_nothing() -> None:
    kube = FakeKube()
    harness = Harness(ProbeKind(), kube)
    woken: list[tuple[str, str]] = []
    harness.controller.enqueue = woken.append  # type: ignore[method-assign,assignment]
    # A write answered with version 7, told at once (before the pass ends).
    harness.controller._keep((NS, "p"), body(7), written=True)
    harness.controller.observe("MODIFIED", body(6))  # an older event, already seen
    harness.controller.observe("MODIFIED", body(7))  # the write's own event
    assert woken == []
    harness.controller.observe("MODIFIED", body(8))  # someone else's change
    harness.controller.observe("MODIFIED", body(7, deletionTimestamp="2026-01-01T00:00:00Z"))
    assert woken == [(NS, "p"), (NS, "p")]


def test_the_writer_tells_the_controller_as_soon_as_a_write_is_answered() -> None:
    kube = FakeKube()
    harness = Harness(ProbeKind(), kube)
    kube.add_custom("probes", {"metadata": {"name": "p", "namespace": NS}, "spec": {}})
    told: list[str] = []
    keep = harness.controller._keep

    def spy(key: tuple[str, str], obj: dict[str, Any], written: bool) -> None:
        told.append(str(obj["metadata"]["resourceVersion"]))
        keep(key, obj, written)

    harness.controller._keep = spy  # type: ignore[method-assign]
    harness.run("p")
    # finalizer, status, then the pass's own end: each write was told when answered
    assert len(told) >= 3 and told[-1] == told[-2]
