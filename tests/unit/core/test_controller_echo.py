"""A write's own watch event is an echo, even when it arrives while the pass still runs,
before the pass has taken the write's answer."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runbook_operator.core.context import Pass
from runbook_operator.core.controller import Controller, Key
from runbook_operator.core.kind import Result
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


def passes_with(*during: dict[str, Any], wake: bool = False) -> int:
    """How many passes run when these watch events of the object arrive while its first
    pass runs, before that pass has taken the answer to its own write (version 7); with
    `wake`, something else (another object it watches) wakes it meanwhile too."""

    async def drive() -> int:
        loop = asyncio.get_running_loop()
        controller = Controller(
            ProbeKind(), FakeKube(), ThreadPoolExecutor(1), _no_pass, lambda *_: None
        )
        key = (NS, "p")
        ran: list[Key] = []

        def on_loop(call: Callable[[], None]) -> None:
            done = threading.Event()

            def then() -> None:
                call()
                done.set()

            loop.call_soon_threadsafe(then)
            assert done.wait(5)

        def one_pass(key: Key) -> Result:
            ran.append(key)
            if len(ran) == 1:
                for event in during:
                    on_loop(functools.partial(controller.observe, "MODIFIED", event))
                if wake:
                    on_loop(functools.partial(controller.enqueue, key))
                controller._keep(key, body(7), written=True)  # the answer, taken late
            return Result()

        controller._pass = one_pass  # type: ignore[method-assign]
        controller.enqueue(key)
        while controller._tasks:
            await asyncio.gather(*list(controller._tasks))
        return len(ran)

    return asyncio.run(drive())


def _no_pass(*_: object) -> Pass:
    raise AssertionError("the test's pass makes no Pass")


def test_a_writes_own_event_that_beats_its_answer_runs_no_pass_again() -> None:
    assert passes_with(body(7)) == 1
    assert passes_with(body(6), body(7)) == 1


def test_a_change_by_someone_else_during_the_pass_runs_it_again() -> None:
    assert passes_with(body(7), body(8)) == 2
    assert passes_with(body(8)) == 2


def test_a_deletion_during_the_pass_runs_it_again() -> None:
    assert passes_with(body(7, deletionTimestamp="2026-01-01T00:00:00Z")) == 2


def test_another_objects_wake_up_during_the_pass_runs_it_again() -> None:
    assert passes_with(body(7), wake=True) == 2
