"""The notification step after every pass, through the real controller on the FakeKube."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from runbook_operator.adapters.webhooks import DeliveryError
from runbook_operator.core.conditions import StatusBase, with_state
from runbook_operator.core.context import Pass
from runbook_operator.core.kind import Kind, Result
from runbook_operator.core.model import ApiModel
from runbook_operator.core.notifying import Notifying
from runbook_operator.core.resource import Resource
from support.fake_kube import NS, FakeKube
from support.passes import Harness


class ProbeSpec(ApiModel):
    to: str = "Running"
    reason: str | None = None


class ProbeStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset({"Completed", "Failed"})


PROBE = Resource(
    kind="Probe",
    plural="probes",
    short_names=(),
    spec=ProbeSpec,
    status=ProbeStatus,
    description="a kind for tests",
)
STATE = {"Running": "progressing", "Blocked": "waiting", "Completed": "ready", "Failed": "stalled"}


class ProbeKind(Kind):
    """Moves to spec.to; with `through`, first writes Running in the same pass."""

    resource = PROBE

    def __init__(self, through: bool = False) -> None:
        self.through = through

    def reconcile(self, ctx: Pass) -> Result:
        spec = ctx.spec(ProbeSpec)
        status: ProbeStatus = ctx.status()
        if status.is_done():
            return Result()
        phases = ["Running", spec.to] if self.through else [spec.to]
        for phase in phases:
            conditions = with_state(
                status.conditions, STATE[phase], phase, f"now {phase}", generation=1, now=ctx.now
            )
            status = status.model_copy(update={"phase": phase, "conditions": conditions})
            ctx.write(status)
        return Result()

    def finalize(self, ctx: Pass) -> Result | None:
        return None


class Transport:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.fail = fail
        self.incidents = 0

    def _maybe_fail(self) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise DeliveryError("Slack answered HTTP 500 (rollup_error)")

    def slack(self, url: str, text: str, timeout: float) -> None:
        self._maybe_fail()
        self.sent.append(("slack", text))

    def post_json(self, url: str, document: dict[str, Any], timeout: float) -> None:
        self._maybe_fail()
        self.sent.append(("webhook", document))

    def open_incident(self, base: str, page_id: str, key: str, **kw: Any) -> str:
        self._maybe_fail()
        self.incidents += 1
        self.sent.append(("open", kw["name"]))
        return f"inc{self.incidents}"

    def update_incident(
        self, base: str, page_id: str, key: str, incident_id: str, **kw: Any
    ) -> None:
        self._maybe_fail()
        self.sent.append((kw["status"], incident_id))


def setup(
    kube: FakeKube, transport: Transport, *, through: bool = False, notifier: Any = None
) -> Harness:
    harness = Harness(ProbeKind(through), kube)
    harness.controller.notifying = Notifying(transport)
    kube.add_secret("hooks", {"slack": "http://127.0.0.1:9/services/T/B/X", "key": "k"})
    spec = notifier or {"slack": {"webhookUrl": {"name": "hooks", "key": "slack"}}, "default": True}
    kube.add_custom("notifiers", {"metadata": {"name": "ops", "namespace": NS}, "spec": spec})
    return harness


def probe(kube: FakeKube, to: str, **spec: Any) -> None:
    kube.add_custom(
        "probes",
        {"metadata": {"name": "p", "namespace": NS, "uid": "u1"}, "spec": {"to": to, **spec}},
    )


def set_to(kube: FakeKube, to: str) -> None:
    kube.store[("probes", NS, "p")]["spec"]["to"] = to


def record(harness: Harness) -> dict[str, Any]:
    return dict(harness.obj("p")["status"]["notifications"])


def test_each_moment_is_told_once() -> None:
    kube, transport = FakeKube(), Transport()
    harness = setup(kube, transport)
    probe(kube, "Running", reason="P1 incident")
    harness.run("p")
    harness.run("p")  # the same moment again: nothing more
    assert len(transport.sent) == 1
    text = transport.sent[0][1]
    assert text.startswith(f"Probe {NS}/p started (Running, Running).")
    assert "Why: P1 incident" in text and "kubectl describe probe p -n" in text
    set_to(kube, "Completed")
    harness.run("p")
    harness.run("p")
    assert [t.split("\n")[0].split(" ")[2] for _, t in transport.sent] == ["started", "completed"]
    assert record(harness)["deliveries"][0]["state"] == "Sent"
    notified = next(c for c in harness.obj("p")["status"]["conditions"] if c["type"] == "Notified")
    assert notified["status"] == "True" and notified["reason"] == "Delivered"


def test_two_moments_reached_in_one_pass_are_both_told() -> None:
    kube, transport = FakeKube(), Transport()
    harness = setup(kube, transport, through=True)
    probe(kube, "Completed")
    harness.run("p")
    assert [t.split("\n")[0].split(" ")[2] for _, t in transport.sent] == ["started", "completed"]


def test_a_failing_webhook_is_retried_then_marked_and_the_operation_goes_on() -> None:
    kube, transport = FakeKube(), Transport(fail=3)
    harness = setup(kube, transport)
    probe(kube, "Completed")
    result = harness.run("p")
    assert harness.status("p").phase == "Completed"  # the operation is not held up
    assert result is not None and result.requeue_after is not None  # woken for the retry
    delivery = record(harness)["deliveries"][0]
    assert delivery["state"] == "Pending" and delivery["attempts"] == 1
    assert "HTTP 500" in delivery["error"]
    for _ in range(3):  # due at once when the clock is moved on
        kube.store[("probes", NS, "p")]["status"]["notifications"]["deliveries"][0][
            "nextAttempt"
        ] = "2000-01-01T00:00:00Z"
        harness.run("p")
    delivery = record(harness)["deliveries"][0]
    assert delivery["state"] == "Sent" and delivery["attempts"] == 4
    assert len(transport.sent) == 1


def test_attempts_used_up_make_the_notified_condition_false() -> None:
    kube, transport = FakeKube(), Transport(fail=99)
    spec = {
        "slack": {"webhookUrl": {"name": "hooks", "key": "slack"}},
        "default": True,
        "attempts": 2,
    }
    harness = setup(kube, transport, notifier=spec)
    probe(kube, "Failed")
    harness.run("p")
    kube.store[("probes", NS, "p")]["status"]["notifications"]["deliveries"][0]["nextAttempt"] = (
        "2000-01-01T00:00:00Z"
    )
    result = harness.run("p")
    assert record(harness)["deliveries"][0]["state"] == "Failed"
    conditions = {c["type"]: c for c in harness.obj("p")["status"]["conditions"]}
    assert conditions["Notified"]["status"] == "False"
    assert conditions["Notified"]["reason"] == "DeliveryFailed"
    assert conditions["Stalled"]["reason"] == "Failed"  # the operation's own state
    assert result is not None and result.requeue_after is None  # nothing more to try


def test_without_notifiers_nothing_is_written() -> None:
    kube, transport = FakeKube(), Transport()
    harness = Harness(ProbeKind(), kube)
    harness.controller.notifying = Notifying(transport)
    probe(kube, "Running")
    harness.run("p")
    assert "notifications" not in harness.obj("p")["status"]
    assert transport.sent == []


def test_disabled_tells_nobody_even_with_a_default() -> None:
    kube, transport = FakeKube(), Transport()
    harness = setup(kube, transport)
    probe(kube, "Running", notify={"disabled": True})
    harness.run("p")
    assert transport.sent == []


def test_a_missing_notifier_is_an_event() -> None:
    kube, transport = FakeKube(), Transport()
    harness = setup(kube, transport)
    probe(kube, "Running", notify={"notifiers": ["nobody"]})
    harness.run("p")
    assert "NotifierNotFound" in harness.reasons() and transport.sent == []


def test_an_operation_already_finished_when_first_seen_is_not_told_of() -> None:
    kube, transport = FakeKube(), Transport()
    harness = setup(kube, transport)
    probe(kube, "Completed")
    kube.store[("probes", NS, "p")]["status"] = {
        "phase": "Completed",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Completed",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    harness.run("p")
    assert transport.sent == []


@pytest.mark.parametrize("moments", [["failed"], ["started", "failed"]])
def test_a_notifier_tells_only_its_moments(moments: list[str]) -> None:
    kube, transport = FakeKube(), Transport()
    spec = {"webhook": {"url": "http://127.0.0.1:9/hook"}, "default": True, "moments": moments}
    harness = setup(kube, transport, notifier=spec)
    probe(kube, "Running")
    harness.run("p")
    set_to(kube, "Failed")
    harness.run("p")
    told = [doc["moment"] for _, doc in transport.sent]
    assert told == moments


def test_statuspage_opens_on_failure_and_resolves_on_completion() -> None:
    kube, transport = FakeKube(), Transport()
    spec = {
        "statuspage": {"pageId": "abc", "apiKey": {"name": "hooks", "key": "key"}},
        "default": True,
    }
    harness = setup(kube, transport, notifier=spec)
    probe(kube, "Running")
    harness.run("p")
    assert transport.sent == []  # started is not a Statuspage moment
    set_to(kube, "Blocked")
    harness.run("p")
    assert transport.sent == [("open", f"Probe {NS}/p: blocked")]
    assert record(harness)["incidents"] == [{"notifier": "ops", "id": "inc1"}]
    set_to(kube, "Completed")
    harness.run("p")
    assert transport.sent[-1] == ("resolved", "inc1")
    assert "incidents" not in record(harness) or record(harness)["incidents"] == []


def test_asked_by_is_the_stamped_requester_never_a_field_manager() -> None:
    from runbook_operator.core.notifying import asked_by
    from runbook_operator.core.watchcache import lean

    body: dict[str, Any] = {
        "metadata": {
            "name": "p",
            "annotations": {
                "ops.mailscore.com/requested-by": "rita",
                "ops.mailscore.com/requested-by-groups": "sre,system:authenticated",
            },
            "managedFields": [
                {"manager": "kubectl-create", "fieldsV1": {"f:spec": {}}},
                {"manager": "runbook-operator", "fieldsV1": {"f:status": {}}},
            ],
        },
        "spec": {},
    }
    kept = lean(body)
    assert "managedFields" not in kept["metadata"]
    assert asked_by(kept) == asked_by(body) == "rita"
    unstamped = {"metadata": {"name": "p", "managedFields": body["metadata"]["managedFields"]}}
    assert asked_by(unstamped) is None  # a client's field manager proves nothing
    assert body["metadata"]["managedFields"][0]["fieldsV1"]  # the watch's copy is untouched
    assert lean({"metadata": {"name": "q"}}) == {"metadata": {"name": "q"}}
