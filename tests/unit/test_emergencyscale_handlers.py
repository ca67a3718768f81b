"""The EmergencyScale handlers' glue, with an in-memory Kube (the e2e tests use the real one).

What is checked here is what the logic cannot see: the order of the I/O (holds,
then patches, then releases), a hold lost to a race, status written only when it
changed, Prometheus asked at most once per tick, and the finalizer.
"""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest

from runbook_operator.adapters.kube import NotFound
from runbook_operator.api.emergencyscale import EmergencyScaleSpec, EmergencyScaleStatus
from runbook_operator.handlers import emergencyscale as handler
from runbook_operator.logic.gate import Problem
from runbook_operator.names import HOLD_ANNOTATION
from runbook_operator.settings import Settings

NS = "shop"
NAME = "high-traffic"
ME = "EmergencyScale/high-traffic"


class FakeKube:
    """Just the calls the EmergencyScale handlers make, on dicts, with a call log."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.hpas: dict[str, dict[str, Any]] = {}
        self.custom: dict[str, Any] = {}
        self.calls: list[tuple[str, ...]] = []
        self.steal_on_acquire: dict[str, str] = {}

    def add_deployment(self, name: str, replicas: int) -> None:
        self.objects[("Deployment", name)] = {
            "kind": "Deployment",
            "metadata": {"name": name, "generation": 1, "annotations": {}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas},
        }

    def add_hpa(self, name: str, target: str, low: int, high: int) -> None:
        self.hpas[name] = {
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": target},
                "minReplicas": low,
                "maxReplicas": high,
            },
        }

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        if not self.custom:
            raise NotFound(name)
        return copy.deepcopy(self.custom)

    def list_hpas(self, namespace: str) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.hpas.values()))

    def get_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        if (kind, name) not in self.objects:
            raise NotFound(name)
        return copy.deepcopy(self.objects[(kind, name)])

    def patch_workload(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch", kind, name, str(patch)))
        self.objects[(kind, name)]["spec"].update(patch["spec"])

    def patch_hpa(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch-hpa", name, str(patch)))
        self.hpas[name]["spec"].update(patch["spec"])

    def acquire_hold(self, kind: str, namespace: str, name: str, holder: str) -> str | None:
        self.calls.append(("acquire", name))
        annotations = self.objects[(kind, name)]["metadata"]["annotations"]
        if name in self.steal_on_acquire:
            annotations[HOLD_ANNOTATION] = self.steal_on_acquire[name]
        current = annotations.get(HOLD_ANNOTATION)
        if current not in (None, holder):
            return str(current)
        annotations[HOLD_ANNOTATION] = holder
        return None

    def release_hold(self, kind: str, namespace: str, name: str, holder: str) -> None:
        self.calls.append(("release", name))
        annotations = self.objects[(kind, name)]["metadata"]["annotations"]
        if annotations.get(HOLD_ANNOTATION) == holder:
            del annotations[HOLD_ANNOTATION]

    def held_by(self, name: str) -> str | None:
        value = self.objects[("Deployment", name)]["metadata"]["annotations"].get(HOLD_ANNOTATION)
        return None if value is None else str(value)


def make_memo(kube: FakeKube, settings: Settings) -> kopf.Memo:
    """What the startup handler puts in Kopf's memo."""
    return kopf.Memo(kube=kube, settings=settings, locks={}, locks_guard=threading.Lock())


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def record(kind: str) -> Any:
        def post(body: Any, *, reason: str, message: str) -> None:
            posted.append((kind, reason, message))

        return post

    monkeypatch.setattr(kopf, "info", record("Normal"))
    monkeypatch.setattr(kopf, "warn", record("Warning"))
    return posted


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube()
    k.add_deployment("mail-score-frontend", 2)
    k.add_deployment("mail-score-backend", 3)
    k.add_hpa("backend-hpa", "mail-score-backend", 3, 10)
    return k


@pytest.fixture
def memo(kube: FakeKube) -> kopf.Memo:
    return make_memo(kube, Settings(max_replicas=50, tick_seconds=2))


def create(kube: FakeKube, spec: dict[str, Any]) -> None:
    kube.custom = {
        "apiVersion": "ops.mailscore.com/v1alpha1",
        "kind": "EmergencyScale",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": spec,
        "status": {},
    }


def run_pass(memo: kopf.Memo) -> kopf.Patch:
    """One handler pass, then store the status patch like the API server would."""
    patch = kopf.Patch()
    body = kopf.Body(copy.deepcopy(memo.kube.custom))
    handler.changed(body=body, patch=patch, memo=memo, logger=_Logger())
    if "status" in patch:
        memo.kube.custom["status"] = merge(memo.kube.custom.get("status", {}), patch["status"])
        meta = memo.kube.custom["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
    return patch


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append(message)

    warning = info


def status_of(kube: FakeKube) -> EmergencyScaleStatus:
    return EmergencyScaleStatus.model_validate(kube.custom["status"])


RUNBOOK = {
    "duration": "2h",
    "targets": [
        {"name": "mail-score-backend", "replicas": 10, "maxReplicas": 15},
        {"name": "mail-score-frontend", "replicas": 6},
    ],
}


def test_holds_then_record_then_patches(
    memo: kopf.Memo, kube: FakeKube, events: list[tuple[str, str, str]]
) -> None:
    create(kube, RUNBOOK)
    run_pass(memo)
    assert kube.calls == [("acquire", "mail-score-backend"), ("acquire", "mail-score-frontend")]
    assert status_of(kube).phase == "Pending"
    assert [o.name for o in status_of(kube).originals] == [
        "mail-score-backend",
        "mail-score-frontend",
    ]
    assert events[0][:2] == ("Normal", "RecordedOriginals")
    kube.calls.clear()
    run_pass(memo)
    assert kube.calls == [
        ("patch-hpa", "backend-hpa", str({"spec": {"minReplicas": 10, "maxReplicas": 15}})),
        ("patch", "Deployment", "mail-score-frontend", str({"spec": {"replicas": 6}})),
    ]
    assert kube.objects[("Deployment", "mail-score-backend")]["spec"]["replicas"] == 3
    assert status_of(kube).phase == "Active"
    assert kube.held_by("mail-score-frontend") == ME


def test_a_pass_does_not_repeat_a_step_whose_record_has_not_landed(
    memo: kopf.Memo, kube: FakeKube, events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kopf writes status after the handler returns: a pass in between reads the old
    object and must wait for the record instead of taking the same step again."""
    create(kube, RUNBOOK)
    first = kopf.Patch()
    handler.changed(
        body=kopf.Body(copy.deepcopy(kube.custom)), patch=first, memo=memo, logger=_Logger()
    )
    assert "status" in first  # ... but not stored yet
    kube.calls.clear()
    second = run_pass(memo)
    assert kube.calls == [] and "status" not in second
    assert len(events) == 1
    # Once the store moved on (or after a while, if the write was lost), passes resume.
    clock = time.monotonic() + handler.PENDING_SECONDS + 1
    monkeypatch.setattr(handler.time, "monotonic", lambda: clock)
    third = run_pass(memo)
    assert "status" in third


def test_a_hold_lost_to_a_race_gives_back_the_others(
    memo: kopf.Memo, kube: FakeKube, events: list[tuple[str, str, str]]
) -> None:
    create(kube, RUNBOOK)
    kube.steal_on_acquire["mail-score-frontend"] = "Rollback/oops"
    run_pass(memo)
    assert kube.calls == [
        ("acquire", "mail-score-backend"),
        ("acquire", "mail-score-frontend"),
        ("release", "mail-score-backend"),
    ]
    assert kube.held_by("mail-score-backend") is None
    status = status_of(kube)
    assert status.originals == []  # nothing recorded without every hold
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert ready.reason == "WorkloadHeld"
    assert "Rollback/oops" in ready.message
    assert events[-1][:2] == ("Warning", "WorkloadHeld")


def test_status_is_not_rewritten_when_nothing_changed(
    memo: kopf.Memo, kube: FakeKube, events: Any
) -> None:
    create(kube, {"targets": [{"name": "mail-score-frontend", "replicas": 60}]})
    first = run_pass(memo)
    assert "status" in first
    second = run_pass(memo)
    assert "status" not in second
    assert [e[1] for e in events] == ["OverCap"]


def test_a_deleting_object_is_left_to_the_finalizer(
    memo: kopf.Memo, kube: FakeKube, events: Any
) -> None:
    create(kube, RUNBOOK)
    kube.custom["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    patch = run_pass(memo)
    assert kube.calls == [] and "status" not in patch


def test_finalizer_restores_and_releases(memo: kopf.Memo, kube: FakeKube, events: Any) -> None:
    create(kube, RUNBOOK)
    run_pass(memo)
    run_pass(memo)
    kube.calls.clear()
    body = kopf.Body(copy.deepcopy(kube.custom))
    handler.deleted(body=body, memo=memo, logger=_Logger())
    assert kube.hpas["backend-hpa"]["spec"]["minReplicas"] == 3
    assert kube.hpas["backend-hpa"]["spec"]["maxReplicas"] == 10
    assert kube.objects[("Deployment", "mail-score-frontend")]["spec"]["replicas"] == 2
    assert kube.held_by("mail-score-backend") is None
    assert kube.held_by("mail-score-frontend") is None
    assert "uid-1" not in memo.locks


def test_prometheus_is_asked_once_per_tick(
    memo: kopf.Memo, kube: FakeKube, events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def sample(url: str, query: str) -> Any:
        asked.append((url, query))
        from runbook_operator.logic.gate import Sample

        return Sample.of(0.01)

    monkeypatch.setattr(handler.prometheus, "sample", sample)
    create(
        kube,
        {
            "targets": [{"name": "mail-score-frontend", "replicas": 6}],
            "trigger": {"url": "http://prom:9090", "query": "errors", "threshold": 0.1},
        },
    )
    run_pass(memo)
    run_pass(memo)  # within the same tick: the recorded evaluation is reused
    assert asked == [("http://prom:9090", "errors")]
    assert status_of(kube).phase == "Waiting"


def test_merge_patch_round_trip() -> None:
    old = {"phase": "Active", "gate": {"value": 0.2, "error": None, "holds": True}, "x": [1]}
    new = {"phase": "Reverting", "gate": {"holds": False}, "x": [1]}
    diff = handler._merge_patch(old, new)
    assert diff == {"phase": "Reverting", "gate": {"value": None, "error": None, "holds": False}}
    assert merge(old, diff) == new


def test_sample_without_any_url_says_where_to_set_one() -> None:
    es = EmergencyScaleSpec.model_validate(
        {
            "targets": [{"name": "x", "replicas": 1}],
            "trigger": {"query": "errors", "threshold": 0.1},
        }
    )
    now = datetime(2026, 3, 1, tzinfo=UTC)
    sample = handler._sample(Settings(prometheus_url=""), es, EmergencyScaleStatus(), now)
    assert sample is not None and sample.problem == Problem.BAD_QUERY
    assert "RUNBOOK_PROMETHEUS_URL" in sample.detail


def test_sample_is_skipped_when_the_last_one_is_fresh() -> None:
    es = EmergencyScaleSpec.model_validate(
        {
            "targets": [{"name": "x", "replicas": 1}],
            "trigger": {"url": "http://p", "query": "errors", "threshold": 0.1},
        }
    )
    now = datetime(2026, 3, 1, tzinfo=UTC)
    status = EmergencyScaleStatus.model_validate(
        {"gate": {"evaluatedAt": (now - timedelta(seconds=0.5)).isoformat()}}
    )
    assert handler._sample(Settings(tick_seconds=2), es, status, now) is None
