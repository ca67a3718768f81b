"""The recorder posts each Event once, after the change it precedes (at the pass's next
status write, its end, or HOLD_SECONDS later), and never fails the pass over it."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from runbook_operator.adapters.kube import Forbidden
from runbook_operator.core import recorder as recording
from runbook_operator.core.context import Pass
from runbook_operator.core.events import Event
from runbook_operator.core.kind import Kind, Result
from runbook_operator.core.names import FINALIZER
from runbook_operator.core.recorder import Recorder
from runbook_operator.core.runtime import Runtime
from runbook_operator.core.writer import StatusWriter
from runbook_operator.kinds.restart.api import RESTART as RESOURCE
from runbook_operator.settings import Settings
from support.fake_kube import FakeKube
from support.passes import Harness

OBJ: dict[str, Any] = {
    "apiVersion": "ops.mailscore.com/v1alpha1",
    "kind": "Restart",
    "metadata": {"name": "quick-fix", "namespace": "mail-score", "uid": "u-1"},
}


def test_an_event_is_created_about_the_object() -> None:
    kube = FakeKube()
    recorder = Recorder(OBJ, kube, instance="abc")
    recorder.warn("RolloutFailed", "backend did not finish")
    recorder.settle()
    [body] = kube.events
    assert body["involvedObject"] == {
        "apiVersion": "ops.mailscore.com/v1alpha1",
        "kind": "Restart",
        "name": "quick-fix",
        "uid": "u-1",
        "namespace": "mail-score",
    }
    assert (body["type"], body["reason"], body["message"]) == (
        "Warning",
        "RolloutFailed",
        "backend did not finish",
    )
    assert body["metadata"] == {"generateName": "quick-fix.", "namespace": "mail-score"}
    assert body["source"] == {"component": "runbook-operator"}
    assert body["reportingInstance"] == "abc"
    assert body["firstTimestamp"] == body["lastTimestamp"]
    assert body["firstTimestamp"].endswith("Z") and body["count"] == 1


def test_each_event_is_posted_once_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    kube = FakeKube()
    recorder = Recorder(OBJ, kube)
    with caplog.at_level(logging.INFO, logger="runbook_operator"):
        recorder.events([Event("Normal", "Started", "a"), Event("Normal", "Completed", "b")])
    recorder.settle()
    assert [e["reason"] for e in kube.events] == ["Started", "Completed"]
    assert [r.getMessage() for r in caplog.records] == ["Started: a", "Completed: b"]
    assert all(getattr(r, "k8s_skip", False) for r in caplog.records)  # Kopf never re-posts


class Refusing(FakeKube):
    def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        raise Forbidden('events is forbidden: cannot create resource "events"')


def test_a_refused_post_is_logged_and_the_pass_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(OBJ, Refusing())
    with caplog.at_level(logging.INFO, logger="runbook_operator"):
        recorder.info("Completed", "done")
        recorder.settle()
    assert recorder.posted == [Event("Normal", "Completed", "done")]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "event Completed not posted" in warning.getMessage()
    assert "forbidden" in json.dumps(warning.getMessage())


def test_without_a_client_events_are_only_kept() -> None:
    recorder = Recorder(OBJ)
    recorder.info("Completed", "done")
    assert recorder.posted == [Event("Normal", "Completed", "done")]


class Slow(FakeKube):
    """Answers an Event only once `go` is set; tells whether one was pending at each
    status write."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.posting = threading.Event()
        self.events_at_status: list[list[str]] = []

    def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.posting.set()
        assert self.go.wait(5)
        return super().create_event(namespace, body)

    def patch_custom_status(
        self, plural: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self.events_at_status.append([e["reason"] for e in self.events])
        return super().patch_custom_status(plural, namespace, name, patch)


def test_the_pass_goes_on_while_its_events_are_posted() -> None:
    kube = Slow()
    recorder = Recorder(OBJ, kube)
    for reason in ("RecordedOriginals", "Applied", "Scaling"):
        recorder.info(reason, "x")
    recorder.release()  # returns although no post was answered
    assert kube.posting.wait(5) and kube.events == []
    kube.go.set()
    recorder.settle()
    assert sorted(e["reason"] for e in kube.events) == ["Applied", "RecordedOriginals", "Scaling"]
    recorder.info("Scaled", "y")
    recorder.settle()
    assert [e["reason"] for e in kube.events].count("Scaled") == 1


class Counting(FakeKube):
    """Counts the Events posted while a change (a ConfigMap patch) is being made."""

    def __init__(self) -> None:
        super().__init__()
        self.beside_change: list[int] = []

    def patch_configmap(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        before = len(self.events)
        threading.Event().wait(0.02)  # the change's round trip
        self.beside_change.append(len(self.events) - before)
        return {}


def test_events_decided_before_a_change_are_not_posted_beside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recording, "HOLD_SECONDS", 5.0)  # however slow this machine is
    kube = Counting()
    recorder = Recorder(OBJ, kube)
    recorder.events([Event("Normal", "Starting", "a"), Event("Normal", "MaintenanceOn", "b")])
    kube.patch_configmap("mail-score", "flags", {})  # the change they announce
    assert kube.beside_change == [0] and kube.events == []
    recorder.settle()
    assert [e["reason"] for e in kube.events] == ["Starting", "MaintenanceOn"]


def test_events_of_a_pass_that_goes_on_for_long_are_posted_all_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recording, "HOLD_SECONDS", 0.01)
    kube = Slow()
    kube.go.set()
    recorder = Recorder(OBJ, kube)
    recorder.info("CreatingSilence", "x")  # then a slow call outside the cluster
    assert kube.posting.wait(5)  # with no status write and no end of the pass
    recorder.settle()
    assert [e["reason"] for e in kube.events] == ["CreatingSilence"]


def test_a_status_write_finds_the_events_decided_before_it_posted() -> None:
    kube = Slow()
    stored = {**OBJ, "metadata": {**OBJ["metadata"], "resourceVersion": "1"}, "spec": {}}
    kube.add_custom(RESOURCE.plural, stored)
    writer = StatusWriter(kube, RESOURCE, kube.store[(RESOURCE.plural, "mail-score", "quick-fix")])
    recorder = Recorder(OBJ, kube)
    writer.told = recorder.settle
    recorder.info("Started", "x")
    threading.Timer(0.05, kube.go.set).start()
    writer.write_fields({"requestedBy": {"username": "alice"}})
    assert kube.events_at_status == [["Started"]]


class Telling(Kind):
    """Tells one thing in each pass and writes nothing; deletion is never done."""

    resource = RESOURCE

    def reconcile(self, ctx: Pass) -> Result:
        ctx.recorder.info("Looked", "nothing to do")
        return Result()

    def finalize(self, ctx: Pass) -> Result | None:
        ctx.recorder.info("StillUndoing", "not yet")
        return Result(requeue_after=5)


def test_a_pass_ends_only_once_its_events_are_posted() -> None:
    kube = Slow()
    stored = {**OBJ, "metadata": {**OBJ["metadata"], "finalizers": [FINALIZER]}, "spec": {}}
    kube.add_custom(RESOURCE.plural, stored)
    kind = Telling()
    harness = Harness(kind, kube)
    harness.controller.new_pass = Runtime(Settings(), kube, [kind]).new_pass  # posts Events
    threading.Timer(0.05, kube.go.set).start()
    harness.run("quick-fix", "mail-score")
    assert [e["reason"] for e in kube.events] == ["Looked"]
    harness.delete("quick-fix", "mail-score")
    harness.run("quick-fix", "mail-score")  # a finalize pass that writes nothing
    assert [e["reason"] for e in kube.events] == ["Looked", "StillUndoing"]


class Failing(Recorder):
    def release(self) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")


def test_one_failed_release_leaves_the_later_passes_their_events(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(recording, "HOLD_SECONDS", 0.01)
    with caplog.at_level(logging.ERROR, logger="runbook_operator"):
        Failing(OBJ, FakeKube()).info("Lost", "x")
        kube = Slow()
        kube.go.set()
        Recorder(OBJ, kube).info("Told", "y")  # no status write, no end: only the thread
        assert kube.posting.wait(5)
    assert any(r.getMessage() == "events not sent" for r in caplog.records)
