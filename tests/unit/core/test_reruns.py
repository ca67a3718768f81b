"""A one-shot operation that Git creates again is not run again (core.reruns, core.rerunning)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from runbook_operator.core import reruns
from runbook_operator.core.conditions import StatusBase, with_state
from runbook_operator.core.context import Pass
from runbook_operator.core.kind import Kind, Result
from runbook_operator.core.model import ApiModel
from runbook_operator.core.names import FINALIZER
from runbook_operator.core.reruns import LEDGER, Entry
from runbook_operator.core.resource import Resource
from support.fake_kube import NS, FakeKube
from support.passes import Harness

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
ARGO = {"annotations": {"argocd.argoproj.io/tracking-id": "mail-score:apps/Deployment:mail/web"}}

# --- the pure rules ---------------------------------------------------------------


def test_run_key_is_the_run_id_when_given() -> None:
    assert reruns.run_key({"runId": "incident-4711", "replicas": 3}) == "incident-4711"


def test_run_key_hashes_what_the_spec_does_not_how_it_is_told() -> None:
    base = reruns.run_key({"replicas": 3, "target": "web"})
    assert base.startswith("spec:") and len(base) == 5 + 16
    assert reruns.run_key({"target": "web", "replicas": 3}) == base  # key order
    assert reruns.run_key({"replicas": 3, "target": "web", "notify": {"disabled": True}}) == base
    assert reruns.run_key({"replicas": 4, "target": "web"}) != base
    assert reruns.run_key(None) == reruns.run_key({})


def test_guarded_by_run_id_or_by_git() -> None:
    assert reruns.guarded({}, {"runId": "r1"})
    assert reruns.guarded(ARGO, {})
    assert not reruns.guarded({}, {"replicas": 3})
    assert not reruns.guarded({}, {"runId": ""})


def test_acted_only_after_a_change_could_have_been_made() -> None:
    for phase in (None, "Pending", "Waiting", "Blocked", "Refused", "Armed", "Skipped"):
        assert not reruns.acted(phase), phase
    for phase in ("Active", "RollingBack", "Restarting", "Completed", "Failed", "Running"):
        assert reruns.acted(phase), phase


def entry(run: str = "r1", uid: str = "old", at: datetime = T0) -> Entry:
    return Entry(run=run, uid=uid, phase="Completed", at=at)


def test_previous_run_matches_kind_name_and_run_but_never_itself() -> None:
    data = reruns.record({}, "Restart", "web", entry(), T0)
    assert list(data) == ["restart.web"]
    stored = {k: v for k, v in data.items() if v is not None}
    assert reruns.previous_run(stored, "Restart", "web", "r1", "new") == entry()
    assert reruns.previous_run(stored, "Restart", "web", "r2", "new") is None
    assert reruns.previous_run(stored, "Restart", "api", "r1", "new") is None
    assert reruns.previous_run(stored, "Rollback", "web", "r1", "new") is None
    assert reruns.previous_run(stored, "Restart", "web", "r1", "old") is None


def test_an_unreadable_entry_is_ignored() -> None:
    assert reruns.previous_run({"restart.web": "{not json"}, "Restart", "web", "r1", "n") is None


def test_record_prunes_runs_older_than_thirty_days() -> None:
    old = entry(at=T0 - timedelta(days=31)).model_dump_json(by_alias=True)
    fresh = entry(at=T0 - timedelta(days=29)).model_dump_json(by_alias=True)
    data = {"restart.a": old, "restart.b": fresh, "restart.c": "hand-written"}
    patch = reruns.record(data, "Restart", "d", entry(), T0)
    assert patch["restart.a"] is None
    assert "restart.b" not in patch and "restart.c" not in patch
    assert patch["restart.d"] is not None


def test_skipped_message_says_what_ran_and_how_to_run_again() -> None:
    text = reruns.skipped_message("Restart", "web", entry(run="spec:0123456789abcdef"))
    assert "ran already as web (uid old, Completed, deleted 2026-12-01 03:00:00 UTC)" in text
    assert "same spec" in text and "give spec.runId a new value" in text
    assert "same runId 'r1'" in reruns.skipped_message("Restart", "web", entry())


# --- through the real controller on the FakeKube -----------------------------------


class OnceSpec(ApiModel):
    to: str = "Completed"


class OnceStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset({"Completed", "Skipped"})


ONCE = Resource(
    kind="Once",
    plural="onces",
    short_names=(),
    spec=OnceSpec,
    status=OnceStatus,
    description="a one-shot kind for tests",
    one_shot=True,
)


class OnceKind(Kind):
    resource = ONCE

    def __init__(self) -> None:
        self.runs = 0

    def reconcile(self, ctx: Pass) -> Result:
        status: OnceStatus = ctx.status()
        if status.is_done():
            return Result()
        self.runs += 1
        to = ctx.spec(OnceSpec).to
        state = "ready" if to == "Completed" else "waiting"
        conditions = with_state(status.conditions, state, to, to, generation=1, now=ctx.now)
        ctx.write(status.model_copy(update={"phase": to, "conditions": conditions}))
        return Result()

    def finalize(self, ctx: Pass) -> Result | None:
        return None


def create(kube: FakeKube, uid: str, meta: dict[str, Any] | None = None, **spec: Any) -> None:
    body = {"metadata": {"name": "once", "namespace": NS, "uid": uid, **(meta or {})}}
    kube.add_custom("onces", {**body, "spec": spec})


def delete(harness: Harness) -> None:
    harness.delete("once")
    harness.run("once")  # finalize: remembers the run, then the finalizer goes
    assert ("onces", NS, "once") not in harness.kube.store


def test_a_copy_git_creates_again_is_skipped_with_one_event() -> None:
    kube, kind = FakeKube(), OnceKind()
    harness = Harness(kind, kube)
    create(kube, "u1", ARGO)
    harness.run("once")
    assert kind.runs == 1
    delete(harness)
    ledger = kube.obj("ConfigMap", LEDGER)["data"]
    assert Entry.model_validate_json(ledger["once.once"]).uid == "u1"

    create(kube, "u2", ARGO)  # self-heal puts it back
    harness.run("once")
    harness.run("once")
    assert kind.runs == 1
    status = harness.status("once")
    assert status.phase == "Skipped"
    ready = status.condition("Ready")
    assert ready.status == "True" and ready.reason == "AlreadyRan"
    assert "uid u1" in ready.message
    assert harness.reasons().count("AlreadyRan") == 1
    assert not harness.obj("once")["metadata"].get("finalizers")  # nothing to undo


def test_a_copy_created_with_the_admission_finalizer_is_skipped_and_let_go() -> None:
    """deploy/admission/finalizer.yaml puts the finalizer on at creation: a run that never
    starts takes it off again, so that deleting the copy never waits for the operator."""
    kube, kind = FakeKube(), OnceKind()
    harness = Harness(kind, kube)
    create(kube, "u1", ARGO)
    harness.run("once")
    delete(harness)
    create(kube, "u2", {**ARGO, "finalizers": [FINALIZER]})
    harness.run("once")
    assert kind.runs == 1 and harness.status("once").phase == "Skipped"
    assert not harness.obj("once")["metadata"].get("finalizers")
    harness.delete("once")
    assert ("onces", NS, "once") not in kube.store  # gone at once: no pass needed


def test_a_new_run_id_runs_again_and_is_remembered_in_its_place() -> None:
    kube, kind = FakeKube(), OnceKind()
    harness = Harness(kind, kube)
    create(kube, "u1", runId="first")
    harness.run("once")
    delete(harness)
    create(kube, "u2", runId="second")
    harness.run("once")
    assert kind.runs == 2 and harness.status("once").phase == "Completed"
    delete(harness)
    ledger = kube.obj("ConfigMap", LEDGER)["data"]
    assert Entry.model_validate_json(ledger["once.once"]).run == "second"


def test_an_object_made_by_hand_without_run_id_runs_each_time() -> None:
    kube, kind = FakeKube(), OnceKind()
    harness = Harness(kind, kube)
    create(kube, "u1")
    harness.run("once")
    delete(harness)
    assert ("ConfigMap", NS, LEDGER) not in kube.store  # nothing to remember
    create(kube, "u2")
    harness.run("once")
    assert kind.runs == 2


def test_an_operation_deleted_before_it_acted_runs_when_created_again() -> None:
    kube, kind = FakeKube(), OnceKind()
    harness = Harness(kind, kube)
    create(kube, "u1", ARGO, to="Pending")
    harness.run("once")
    delete(harness)
    assert ("ConfigMap", NS, LEDGER) not in kube.store
    create(kube, "u2", ARGO, to="Pending")
    harness.run("once")
    assert kind.runs == 2


def test_the_ledger_keeps_other_runs_when_one_is_added() -> None:
    kube, kind = FakeKube(), OnceKind()
    harness = Harness(kind, kube)
    other = entry(run="x", uid="u0", at=T0).model_dump_json(by_alias=True)
    kube.add_configmap(LEDGER, {"restart.web": other})
    create(kube, "u1", runId="r")
    harness.run("once")
    delete(harness)
    ledger = kube.obj("ConfigMap", LEDGER)["data"]
    assert set(ledger) == {"restart.web", "once.once"}
