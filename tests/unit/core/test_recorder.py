"""The recorder posts each Event once, synchronously, and never fails the pass over it."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from runbook_operator.adapters.kube import Forbidden
from runbook_operator.core.events import Event
from runbook_operator.core.recorder import Recorder
from support.fake_kube import FakeKube

OBJ: dict[str, Any] = {
    "apiVersion": "ops.mailscore.com/v1alpha1",
    "kind": "Restart",
    "metadata": {"name": "quick-fix", "namespace": "mail-score", "uid": "u-1"},
}


def test_an_event_is_created_at_once_about_the_object() -> None:
    kube = FakeKube()
    Recorder(OBJ, kube, instance="abc").warn("RolloutFailed", "backend did not finish")
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
    assert recorder.posted == [Event("Normal", "Completed", "done")]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "event Completed not posted" in warning.getMessage()
    assert "forbidden" in json.dumps(warning.getMessage())


def test_without_a_client_events_are_only_kept() -> None:
    recorder = Recorder(OBJ)
    recorder.info("Completed", "done")
    assert recorder.posted == [Event("Normal", "Completed", "done")]
