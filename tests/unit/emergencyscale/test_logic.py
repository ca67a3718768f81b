"""EmergencyScale decisions (kinds/emergencyscale/logic), pass by pass, on a simulated world."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.conditions import READY, RECONCILING, STALLED, ConditionStatus, find
from runbook_operator.core.gate import Problem, Sample
from runbook_operator.core.names import HOLD_ANNOTATION
from runbook_operator.kinds.emergencyscale import logic
from runbook_operator.kinds.emergencyscale.api import (
    EmergencyScalePhase as Phase,
)
from runbook_operator.kinds.emergencyscale.api import (
    EmergencyScaleSpec,
    EmergencyScaleStatus,
    EndReason,
    GateStatus,
    TargetOriginal,
)

ME = "EmergencyScale/high-traffic"
OTHER = "MaintenanceWindow/sunday"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
POLL = timedelta(seconds=2)
BACKEND = ("Deployment", "mail-score-backend")
FRONTEND = ("Deployment", "mail-score-frontend")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def spec(**fields: Any) -> EmergencyScaleSpec:
    fields.setdefault("targets", [{"name": "mail-score-frontend", "replicas": 6}])
    return EmergencyScaleSpec.model_validate(fields)


def runbook_spec(**fields: Any) -> EmergencyScaleSpec:
    """The runbook's "Scale Up for High Traffic"."""
    return spec(
        targets=[
            {"name": "mail-score-backend", "replicas": 10, "maxReplicas": 15},
            {"name": "mail-score-frontend", "replicas": 6},
        ],
        **fields,
    )


def frontend(replicas: int = 2, **kw: Any) -> logic.Workload:
    return logic.Workload(
        kind="Deployment",
        name="mail-score-frontend",
        replicas=replicas,
        current=kw.pop("current", replicas),
        ready=kw.pop("ready", replicas),
        **kw,
    )


def backend(min_replicas: int = 3, max_replicas: int = 10, **kw: Any) -> logic.Workload:
    hpa = logic.Hpa("backend-hpa", min_replicas, max_replicas)
    replicas = kw.pop("replicas", min_replicas)
    return logic.Workload(
        kind="Deployment",
        name="mail-score-backend",
        replicas=replicas,
        current=replicas,
        ready=replicas,
        hpa=hpa,
        **kw,
    )


class Sim:
    """Runs passes like the handler does and plays the cluster's part in between."""

    def __init__(self, es: EmergencyScaleSpec, *workloads: logic.Workload, cap: int = 50) -> None:
        self.spec = es
        self.status = EmergencyScaleStatus()
        self.world: dict[logic.Key, logic.Workload | None] = {w.key: w for w in workloads}
        self.cap = cap
        self.outcomes: list[logic.Outcome] = []

    def ctx(self, now: datetime) -> logic.Context:
        return logic.Context(holder=ME, cap=self.cap, generation=1, now=now)

    def step(self, seconds: float = 0, sample: Sample | None = None) -> logic.Outcome:
        out = logic.reconcile(self.spec, self.status, self.world, sample, self.ctx(at(seconds)))
        self.carry_out(out)
        self.status = out.status
        self.outcomes.append(out)
        return out

    def carry_out(self, out: logic.Outcome) -> None:
        for key in out.acquire:
            self.world[key] = replace(self._w(key), held_by=ME)
        for change in out.changes:
            w = self._w(change.key)
            spec = change.patch["spec"]
            if change.hpa is not None:
                assert w.hpa is not None and w.hpa.name == change.hpa
                hpa = logic.Hpa(w.hpa.name, spec["minReplicas"], spec["maxReplicas"])
                self.world[change.key] = replace(w, hpa=hpa)
            else:
                self.world[change.key] = replace(w, replicas=spec["replicas"])
        for key in out.release:
            held = self.world.get(key)
            if held is not None and held.held_by == ME:
                self.world[key] = replace(held, held_by=None)

    def settle(self) -> None:
        """The controllers act: pods to the wanted count, HPAs to within their bounds."""
        for key, w in self.world.items():
            if w is None:
                continue
            replicas = w.replicas
            if w.hpa is not None:
                replicas = min(max(replicas, w.hpa.min_replicas), w.hpa.max_replicas)
            self.world[key] = replace(w, replicas=replicas, current=replicas, ready=replicas)

    def _w(self, key: logic.Key) -> logic.Workload:
        w = self.world[key]
        assert w is not None
        return w

    def ready(self) -> tuple[str, str]:
        c = find(self.status.conditions, READY)
        assert c is not None
        return c.status.value, c.reason

    def condition(self, type_: str) -> str | None:
        c = find(self.status.conditions, type_)
        return None if c is None else c.status.value


def reasons(out: logic.Outcome) -> list[str]:
    return [n.reason for n in out.notes]


# --- immediate, no HPA -------------------------------------------------------------


def test_first_pass_records_originals_and_takes_holds_without_changing_anything() -> None:
    sim = Sim(spec(duration="1h"), frontend(2))
    out = sim.step()
    assert out.changes == ()
    assert out.acquire == (FRONTEND,)
    assert sim.status.phase == Phase.PENDING
    assert sim.status.originals == [TargetOriginal(name="mail-score-frontend", replicas=2)]
    assert sim.condition(RECONCILING) == "True"
    assert sim.ready() == ("False", "RecordedOriginals")
    assert reasons(out) == ["RecordedOriginals"]


def test_second_pass_scales_and_is_active_then_ready_when_the_pods_are() -> None:
    sim = Sim(spec(duration="1h"), frontend(2))
    sim.step()
    out = sim.step(1)
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 6}}]
    assert out.changes[0].hpa is None
    assert sim.status.phase == Phase.ACTIVE
    assert sim.status.activated_at == at(1)
    assert sim.status.expires_at == at(3601)
    assert sim.ready() == ("False", "Scaling")
    assert sim.condition("Scaled") == "True"
    assert reasons(out) == ["Applied", "Scaling"]
    sim.settle()
    out = sim.step(2)
    assert out.changes == ()
    assert sim.ready() == ("True", "Scaled")
    assert sim.condition(RECONCILING) is None
    assert sim.status.targets_summary == "mail-score-frontend 2->6"


def test_a_pass_repeated_on_a_stale_status_changes_nothing_more() -> None:
    """The handler may run a step twice (crash, or a pass that starts before the last
    one's status is stored): the second run must not record the emergency size."""
    sim = Sim(spec(), frontend(2))
    sim.step()
    recorded = sim.status
    sim.step(1)  # scaled to 6
    again = logic.reconcile(sim.spec, recorded, sim.world, None, sim.ctx(at(2)))
    assert again.changes == ()
    assert again.status.originals == recorded.originals  # still 2, not 6


def test_record_pass_repeated_records_the_same_originals() -> None:
    sim = Sim(spec(), frontend(2))
    first = sim.step()
    again = logic.reconcile(sim.spec, EmergencyScaleStatus(), sim.world, None, sim.ctx(at(0)))
    assert again.status.originals == first.status.originals
    assert again.acquire == ()  # the hold is ours already


def test_expiry_reverts_exactly_and_releases_the_holds() -> None:
    sim = Sim(spec(duration="10m"), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.step(2)
    assert logic.wake_at(sim.spec, sim.status, at(300), POLL) == at(601)
    out = sim.step(601)
    assert out.changes == ()  # the decision is recorded first
    assert sim.status.phase == Phase.REVERTING
    assert sim.status.end_reason == EndReason.EXPIRED
    out = sim.step(602)
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 2}}]
    assert out.release == ()  # not before the workload is back
    assert sim.status.phase == Phase.REVERTING
    sim.settle()
    out = sim.step(603)
    assert out.release == (FRONTEND,)
    assert sim.status.phase == Phase.COMPLETED
    assert sim.status.completed_at == at(603)
    assert sim.ready() == ("True", "Reverted")
    assert sim.condition("Scaled") == "False"
    assert sim.world[FRONTEND] == frontend(2)
    assert "Completed" in reasons(out)
    assert logic.wake_at(sim.spec, sim.status, at(700), POLL) is None


def test_reverting_waits_for_the_workload_to_settle() -> None:
    sim = Sim(spec(duration="1m"), frontend(2))
    for t in (0, 1):
        sim.step(t)
    sim.settle()
    sim.step(61)
    sim.step(62)  # restored spec
    out = sim.step(63)  # pods not gone yet
    assert sim.status.phase == Phase.REVERTING
    assert out.changes == ()
    c = find(sim.status.conditions, READY)
    assert c is not None and "mail-score-frontend 6 -> 2 replicas" in c.message


def test_revert_false_keeps_the_new_size() -> None:
    sim = Sim(spec(duration="1m", revert=False), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    out = sim.step(61)
    assert out.changes == ()
    assert out.release == (FRONTEND,)
    assert sim.status.phase == Phase.COMPLETED
    assert sim.ready() == ("True", "KeptNewSize")
    scaled = sim.world[FRONTEND]
    assert scaled is not None and scaled.replicas == 6


def test_without_duration_it_stays_active() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.step(2)
    sim.step(10 * 86400)
    assert sim.status.phase == Phase.ACTIVE
    assert sim.status.expires_at is None


# --- HPA ---------------------------------------------------------------------------


def test_under_an_hpa_the_bounds_change_not_the_deployment() -> None:
    sim = Sim(runbook_spec(duration="2h"), backend(3, 10), frontend(2))
    sim.step()
    assert sim.status.originals[0] == TargetOriginal(
        name="mail-score-backend", hpa="backend-hpa", replicas=3, min_replicas=3, max_replicas=10
    )
    out = sim.step(1)
    by_target = {c.key: c for c in out.changes}
    assert by_target[BACKEND].hpa == "backend-hpa"
    assert by_target[BACKEND].patch == {"spec": {"minReplicas": 10, "maxReplicas": 15}}
    assert by_target[FRONTEND].patch == {"spec": {"replicas": 6}}
    assert sim.status.targets_summary == (
        "mail-score-backend 3->10 (backend-hpa), mail-score-frontend 2->6"
    )
    sim.settle()
    sim.step(2)
    assert sim.ready() == ("True", "Scaled")
    sim.step(7201)
    out = sim.step(7202)
    by_target = {c.key: c for c in out.changes}
    assert by_target[BACKEND].patch == {"spec": {"minReplicas": 3, "maxReplicas": 10}}
    assert by_target[FRONTEND].patch == {"spec": {"replicas": 2}}
    sim.settle()
    sim.step(7203)
    assert sim.status.phase == Phase.COMPLETED
    w = sim.world[BACKEND]
    assert w is not None and w.hpa == logic.Hpa("backend-hpa", 3, 10)


@pytest.mark.parametrize(
    ("hpa_max", "target", "bounds"),
    [
        (10, {"replicas": 8}, (8, 10)),  # max already high enough: left alone
        (10, {"replicas": 12}, (12, 12)),  # raised to the wanted count
        (10, {"replicas": 8, "maxReplicas": 20}, (8, 20)),  # explicit
        (30, {"replicas": 8, "maxReplicas": 9}, (8, 9)),  # explicit, even lower
    ],
)
def test_hpa_bounds(hpa_max: int, target: dict[str, Any], bounds: tuple[int, int]) -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-backend", **target}]), backend(3, hpa_max))
    sim.step()
    out = sim.step(1)
    low, high = bounds
    assert out.changes[0].patch == {"spec": {"minReplicas": low, "maxReplicas": high}}


def test_hpa_ready_when_the_deployment_reached_the_minimum() -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-backend", "replicas": 10}]), backend(3, 10))
    sim.step()
    sim.step(1)
    sim.step(2)  # the HPA has not scaled yet
    assert sim.ready() == ("False", "Scaling")
    c = find(sim.status.conditions, READY)
    assert c is not None and "mail-score-backend 3/10 ready (via backend-hpa)" in c.message
    sim.settle()
    sim.step(3)
    assert sim.ready() == ("True", "Scaled")


# --- edits while active -------------------------------------------------------------


def test_editing_replicas_while_active_applies_at_once() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.step(2)
    sim.spec = spec(targets=[{"name": "mail-score-frontend", "replicas": 8}])
    out = sim.step(3)
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 8}}]
    assert sim.status.originals[0].replicas == 2  # the original stays the original
    assert sim.status.activated_at == at(1)


def test_removing_a_target_while_active_puts_it_back_and_lets_it_go() -> None:
    sim = Sim(runbook_spec(), backend(3, 10), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.spec = spec(targets=[{"name": "mail-score-backend", "replicas": 10, "maxReplicas": 15}])
    out = sim.step(2)
    assert [(c.key, c.patch) for c in out.changes] == [(FRONTEND, {"spec": {"replicas": 2}})]
    assert out.release == (FRONTEND,)
    assert [o.name for o in sim.status.originals] == ["mail-score-backend"]


def test_adding_a_target_while_active_records_it_first() -> None:
    sim = Sim(spec(), frontend(2), backend(3, 10))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.spec = runbook_spec()
    out = sim.step(2)
    assert out.changes == ()
    assert out.acquire == (BACKEND,)
    assert sim.status.phase == Phase.ACTIVE
    out = sim.step(3)
    assert [c.key for c in out.changes] == [BACKEND]


def test_lengthening_the_duration_moves_the_expiry() -> None:
    sim = Sim(spec(duration="10m"), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.spec = spec(duration="1h")
    sim.step(300)
    assert sim.status.expires_at == at(3601)
    sim.step(700)
    assert sim.status.phase == Phase.ACTIVE


# --- refusals that need a human -------------------------------------------------


def test_over_the_cap_stalls_with_the_reason_and_touches_nothing() -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-frontend", "replicas": 60}]), frontend(2))
    out = sim.step()
    assert (out.acquire, out.changes) == ((), ())
    assert sim.status.phase == Phase.PENDING
    assert sim.condition(STALLED) == "True"
    assert sim.ready() == ("False", "OverCap")
    c = find(sim.status.conditions, READY)
    assert c is not None
    assert c.message == (
        "mail-score-frontend: 60 replicas is over the operator's cap of 50 "
        "(RUNBOOK_MAX_REPLICAS); ask for at most that"
    )
    assert out.notes[0].warning


def test_max_replicas_over_the_cap_stalls_too() -> None:
    es = spec(targets=[{"name": "mail-score-backend", "replicas": 10, "maxReplicas": 80}])
    sim = Sim(es, backend())
    sim.step()
    assert sim.ready() == ("False", "OverCap")


def test_a_missing_target_stalls() -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-frontnd", "replicas": 6}]))
    sim.world[("Deployment", "mail-score-frontnd")] = None
    sim.step()
    assert sim.ready() == ("False", "TargetNotFound")
    c = find(sim.status.conditions, READY)
    assert (
        c is not None
        and c.message == "Deployment mail-score-frontnd does not exist in this namespace"
    )


def test_a_stall_is_fixed_by_an_edit() -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-frontend", "replicas": 60}]), frontend(2))
    sim.step()
    sim.spec = spec()
    sim.step(1)
    assert sim.condition(STALLED) is None
    assert sim.ready() == ("False", "RecordedOriginals")


def test_max_replicas_without_an_hpa_stalls() -> None:
    sim = Sim(
        spec(targets=[{"name": "mail-score-frontend", "replicas": 6, "maxReplicas": 8}]),
        frontend(2),
    )
    sim.step()
    assert sim.ready() == ("False", "NoAutoscaler")


def test_zero_under_an_hpa_stalls() -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-backend", "replicas": 0}]), backend())
    sim.step()
    assert sim.ready() == ("False", "AutoscalerMinimum")


def test_several_problems_are_all_listed() -> None:
    es = spec(
        targets=[
            {"name": "mail-score-frontend", "replicas": 60},
            {"name": "mail-score-backend", "replicas": 0},
        ]
    )
    sim = Sim(es, frontend(2), backend())
    sim.step()
    _, reason = sim.ready()
    assert reason == "InvalidTargets"
    c = find(sim.status.conditions, READY)
    assert c is not None and "cap of 50" in c.message and "minReplicas cannot be 0" in c.message


def test_an_hpa_appearing_after_the_record_stalls_instead_of_fighting_it() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    w = sim.world[FRONTEND]
    assert w is not None
    sim.world[FRONTEND] = replace(w, hpa=logic.Hpa("frontend-hpa", 2, 4))
    out = sim.step(1)
    assert out.changes == ()
    assert sim.ready() == ("False", "AutoscalerChanged")


def test_stalled_while_active_keeps_the_phase_and_the_size() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.spec = spec(targets=[{"name": "mail-score-frontend", "replicas": 99}])
    out = sim.step(2)
    assert out.changes == ()
    assert sim.status.phase == Phase.ACTIVE
    assert sim.condition("Scaled") == "True"
    assert sim.ready() == ("False", "OverCap")


# --- holds ------------------------------------------------------------------------------


def test_a_target_held_by_another_operation_waits_and_names_it() -> None:
    sim = Sim(runbook_spec(), backend(held_by=OTHER), frontend(2))
    out = sim.step()
    assert (out.acquire, out.changes) == ((), ())
    assert sim.status.phase == Phase.PENDING
    assert sim.status.originals == []
    assert sim.ready() == ("False", "WorkloadHeld")
    assert sim.condition(STALLED) is None
    c = find(sim.status.conditions, READY)
    assert c is not None and f"mail-score-backend is held by {OTHER}" in c.message
    assert out.notes[0].warning and out.notes[0].reason == "WorkloadHeld"
    again = sim.step(1)
    assert again.notes == ()  # one event per change of state, not per pass
    w = sim.world[BACKEND]
    assert w is not None
    sim.world[BACKEND] = replace(w, held_by=None)
    sim.step(2)
    assert sim.ready() == ("False", "RecordedOriginals")


def test_with_a_trigger_a_held_target_waits_in_waiting() -> None:
    es = spec(trigger={"query": "errors", "threshold": 0.1})
    sim = Sim(es, frontend(2, held_by=OTHER))
    sim.step(0, Sample.of(0.5))
    assert sim.status.phase == Phase.WAITING
    assert sim.ready() == ("False", "WorkloadHeld")


def test_held_elsewhere_after_a_lost_race() -> None:
    es = spec()
    ctx = logic.Context(holder=ME, cap=50, generation=1, now=T0)
    out = logic.held_elsewhere(es, EmergencyScaleStatus(), "mail-score-frontend", OTHER, ctx)
    assert out.status.phase == Phase.PENDING
    assert out.status.originals == []
    assert out.notes[0].warning and OTHER in out.notes[0].message


def test_a_lost_hold_is_taken_again_while_active() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    sim.step(1)
    w = sim.world[FRONTEND]
    assert w is not None
    sim.world[FRONTEND] = replace(w, held_by=None)
    out = sim.step(2)
    assert out.acquire == (FRONTEND,)


# --- the trigger -----------------------------------------------------------------


def trigger_spec(**fields: Any) -> EmergencyScaleSpec:
    trigger = {"query": "errors", "threshold": 0.1, "for": "30s", **fields.pop("trigger", {})}
    trigger = {k: v for k, v in trigger.items() if v is not None}  # "for": None: at once
    return spec(trigger=trigger, cooldown=fields.pop("cooldown", "1m"), **fields)


def test_trigger_waits_while_clear() -> None:
    sim = Sim(trigger_spec(), frontend(2))
    out = sim.step(0, Sample.of(0.01))
    assert out.acquire == () and out.changes == ()
    assert sim.status.phase == Phase.WAITING
    assert sim.ready() == ("True", "WaitingForTrigger")
    assert sim.status.gate == GateStatus(value=0.01, holds=False, since=at(0), evaluated_at=at(0))


def test_trigger_scales_only_after_for_then_reverts_after_cooldown() -> None:
    sim = Sim(trigger_spec(), frontend(2))
    sim.step(0, Sample.of(0.2))
    assert sim.status.phase == Phase.WAITING
    c = find(sim.status.conditions, READY)
    assert c is not None and "acts at 12:00:30Z" in c.message
    sim.step(15, Sample.of(0.3))
    assert sim.status.originals == []
    out = sim.step(30, Sample.of(0.3))
    assert out.acquire == (FRONTEND,)
    assert sim.status.phase == Phase.PENDING
    out = sim.step(31)  # the next step, with no new sample
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 6}}]
    assert sim.status.phase == Phase.ACTIVE
    sim.settle()
    sim.step(32, Sample.of(0.3))
    assert sim.ready() == ("True", "Scaled")
    sim.step(40, Sample.of(0.0))  # clear: the cooldown starts
    sim.step(99, Sample.of(0.0))
    assert sim.status.phase == Phase.ACTIVE
    sim.step(100, Sample.of(0.0))
    assert sim.status.phase == Phase.REVERTING
    assert sim.status.end_reason == EndReason.TRIGGER_CLEARED
    out = sim.step(101)
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 2}}]
    sim.settle()
    sim.step(102)
    assert sim.status.phase == Phase.COMPLETED


def test_trigger_with_duration_reverts_at_the_end_even_if_it_still_holds() -> None:
    sim = Sim(trigger_spec(duration="5m", trigger={"for": None}), frontend(2))
    sim.step(0, Sample.of(0.5))
    sim.step(1)
    sim.settle()
    sim.step(301, Sample.of(0.5))
    assert sim.status.phase == Phase.REVERTING
    assert sim.status.end_reason == EndReason.EXPIRED


def test_trigger_no_data_with_fail_before_scaling_fails_at_once() -> None:
    sim = Sim(trigger_spec(trigger={"onNoData": "Fail"}), frontend(2))
    out = sim.step(0, Sample.failed(Problem.UNREACHABLE, "Prometheus cannot be reached"))
    assert out.changes == () and out.acquire == ()
    assert sim.status.phase == Phase.FAILED
    assert sim.condition(STALLED) == "True"
    assert sim.ready() == ("False", "TriggerFailed")
    assert sim.status.gate is not None
    assert sim.status.gate.error == "Prometheus cannot be reached"


def test_trigger_no_data_with_fail_while_active_reverts_then_fails() -> None:
    sim = Sim(trigger_spec(trigger={"onNoData": "Fail", "for": None}), frontend(2))
    sim.step(0, Sample.of(0.5))
    sim.step(1)
    sim.settle()
    sim.step(2, Sample.failed(Problem.NO_DATA, "the query returned no series"))
    assert sim.status.phase == Phase.REVERTING
    assert sim.status.end_reason == EndReason.TRIGGER_FAILED
    sim.step(3)
    sim.settle()
    sim.step(4)
    assert sim.status.phase == Phase.FAILED
    assert sim.world[FRONTEND] == frontend(2, held_by=None)
    c = find(sim.status.conditions, READY)
    assert c is not None and "the query returned no series" in c.message


def test_trigger_no_data_with_hold_keeps_waiting_and_says_why() -> None:
    sim = Sim(trigger_spec(), frontend(2))
    sim.step(0, Sample.failed(Problem.UNREACHABLE, "Prometheus at http://p:9090 cannot be reached"))
    assert sim.status.phase == Phase.WAITING
    assert sim.status.gate is not None
    assert sim.status.gate.error == "Prometheus at http://p:9090 cannot be reached"
    c = find(sim.status.conditions, READY)
    assert c is not None and "cannot be reached" in c.message


def test_trigger_no_data_with_hold_while_active_stays_active() -> None:
    sim = Sim(trigger_spec(trigger={"for": None}), frontend(2))
    sim.step(0, Sample.of(0.5))
    sim.step(1)
    sim.settle()
    for t in range(2, 200, 10):
        sim.step(t, Sample.failed(Problem.UNREACHABLE, "down"))
    assert sim.status.phase == Phase.ACTIVE


def test_trigger_no_data_with_activate_scales() -> None:
    sim = Sim(trigger_spec(trigger={"onNoData": "Activate", "for": None}), frontend(2))
    sim.step(0, Sample.failed(Problem.UNREACHABLE, "down"))
    assert sim.status.phase == Phase.PENDING
    assert sim.status.originals


def test_several_series_stall_with_the_reason() -> None:
    sim = Sim(trigger_spec(), frontend(2))
    detail = 'the query returned 2 series ({pod="a"}, {pod="b"}); it must return exactly one'
    out = sim.step(0, Sample.failed(Problem.SEVERAL_SERIES, detail))
    assert out.acquire == () and out.changes == ()
    assert sim.status.phase == Phase.WAITING
    assert sim.condition(STALLED) == "True"
    assert sim.ready() == ("False", "TriggerInvalid")
    c = find(sim.status.conditions, READY)
    assert c is not None and detail in c.message


def test_the_gate_advances_with_the_clock_between_samples() -> None:
    sim = Sim(trigger_spec(), frontend(2))
    sim.step(0, Sample.of(0.5))
    sim.step(31)  # no new sample, but `for` has passed
    assert sim.status.originals


# --- deletion -----------------------------------------------------------------------


def test_finalize_puts_the_originals_back_and_releases() -> None:
    sim = Sim(runbook_spec(), backend(3, 10), frontend(2))
    sim.step()
    sim.step(1)
    out = logic.finalize(sim.status, sim.world, sim.ctx(at(2)), spec=sim.spec)
    assert {(c.key, str(c.patch)) for c in out.changes} == {
        (BACKEND, str({"spec": {"minReplicas": 3, "maxReplicas": 10}})),
        (FRONTEND, str({"spec": {"replicas": 2}})),
    }
    assert set(out.release) == {BACKEND, FRONTEND}


def test_finalize_with_revert_false_only_releases() -> None:
    sim = Sim(spec(revert=False), frontend(2))
    sim.step()
    sim.step(1)
    out = logic.finalize(sim.status, sim.world, sim.ctx(at(2)), spec=sim.spec)
    assert out.changes == ()
    assert out.release == (FRONTEND,)


def test_finalize_before_anything_happened_releases_a_hold_left_by_a_crash() -> None:
    sim = Sim(spec(), frontend(2, held_by=ME))
    out = logic.finalize(EmergencyScaleStatus(), sim.world, sim.ctx(at(0)), spec=sim.spec)
    assert out.changes == ()
    assert out.release == (FRONTEND,)


def test_finalize_leaves_a_workload_someone_else_holds() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    sim.step(1)
    w = sim.world[FRONTEND]
    assert w is not None
    sim.world[FRONTEND] = replace(w, held_by=OTHER)
    out = logic.finalize(sim.status, sim.world, sim.ctx(at(2)), spec=sim.spec)
    assert out.changes == () and out.release == ()
    assert out.notes[0].reason == "NotRestored" and out.notes[0].warning


def test_finalize_of_a_vanished_workload() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    sim.step(1)
    sim.world[FRONTEND] = None
    out = logic.finalize(sim.status, sim.world, sim.ctx(at(2)), spec=sim.spec)
    assert out.changes == () and out.release == ()
    assert out.notes[0].reason == "TargetGone"


def test_finalize_after_completion_does_not_restore_again() -> None:
    sim = Sim(spec(duration="1m"), frontend(2))
    for t in (0, 1, 61, 62):
        sim.step(t)
        sim.settle()
    sim.step(63)
    assert sim.status.phase == Phase.COMPLETED
    out = logic.finalize(sim.status, sim.world, sim.ctx(at(100)), spec=sim.spec)
    assert out.changes == () and out.release == ()


# --- the timers' questions, reading -------------------------------------------------


def test_wake_at_is_the_clock_only_where_no_event_can_tell() -> None:
    es = spec()
    assert logic.wake_at(es, EmergencyScaleStatus(), T0, POLL) is None  # watch events move it
    assert logic.wake_at(es, EmergencyScaleStatus(phase=Phase.COMPLETED), T0, POLL) is None
    active = EmergencyScaleStatus(phase=Phase.ACTIVE, expires_at=at(60))
    assert logic.wake_at(es, active, T0, POLL) == at(60)
    triggered = spec(trigger={"query": "q", "threshold": 1})
    assert logic.wake_at(triggered, active, T0, POLL) == T0 + POLL  # Prometheus is asked
    reverting = EmergencyScaleStatus(phase=Phase.REVERTING)
    assert logic.wake_at(triggered, reverting, T0, POLL) is None


def test_terminal_objects_are_left_alone() -> None:
    done = EmergencyScaleStatus(phase=Phase.COMPLETED)
    ctx = logic.Context(holder=ME, cap=50, generation=2, now=T0)
    out = logic.reconcile(spec(), done, {FRONTEND: frontend(2)}, None, ctx)
    assert out == logic.Outcome(status=done)


def test_conditions_carry_the_generation() -> None:
    sim = Sim(spec(), frontend(2))
    sim.step()
    assert sim.status.observed_generation == 1
    assert all(c.observed_generation == 1 for c in sim.status.conditions)


def test_read_workload_from_the_api_json() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {
            "name": "mail-score-backend",
            "generation": 4,
            "annotations": {HOLD_ANNOTATION: ME},
        },
        "spec": {"replicas": 5},
        "status": {"observedGeneration": 3, "replicas": 4, "readyReplicas": 2},
    }
    hpas = [
        {
            "metadata": {"name": "other"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3},
        },
        {
            "metadata": {"name": "backend-hpa"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "mail-score-backend"},
                "minReplicas": 3,
                "maxReplicas": 10,
            },
        },
    ]
    w = logic.read_workload("Deployment", deployment, hpas)
    assert w == logic.Workload(
        kind="Deployment",
        name="mail-score-backend",
        replicas=5,
        current=4,
        ready=2,
        up_to_date=False,
        held_by=ME,
        hpa=logic.Hpa("backend-hpa", 3, 10),
    )


def test_read_workload_defaults() -> None:
    obj = {"metadata": {"name": "s", "generation": 1}, "spec": {}, "status": {}}
    w = logic.read_workload("StatefulSet", obj, [])
    assert (w.replicas, w.current, w.ready, w.up_to_date, w.held_by, w.hpa) == (
        1,
        0,
        0,
        False,
        None,
        None,
    )


def test_summary_before_the_record() -> None:
    assert logic.summary(runbook_spec(), []) == "mail-score-backend ->10, mail-score-frontend ->6"


def test_stalled_condition_status_values() -> None:
    sim = Sim(spec(targets=[{"name": "mail-score-frontend", "replicas": 60}]), frontend(2))
    sim.step()
    stalled = find(sim.status.conditions, STALLED)
    assert stalled is not None and stalled.status == ConditionStatus.TRUE


def test_a_revert_step_repeated_after_the_release_says_nothing_misleading() -> None:
    sim = Sim(spec(duration="1m"), frontend(2))
    for t in (0, 1, 61, 62):
        sim.step(t)
        sim.settle()
    reverting = sim.status
    sim.step(63)
    assert sim.status.phase == Phase.COMPLETED
    again = logic.reconcile(sim.spec, reverting, sim.world, None, sim.ctx(at(64)))
    assert again.changes == () and again.release == ()
    assert not any(n.warning for n in again.notes)
    assert again.status.phase == Phase.COMPLETED


# --- advance: the record step and the apply step as one ------------------------------


def test_advance_records_and_applies_in_one_step_with_the_holds_first() -> None:
    es = spec(duration="1h")
    out = logic.advance(es, EmergencyScaleStatus(), {FRONTEND: frontend(2)}, None, Sim(es).ctx(T0))
    assert out.acquire == (FRONTEND,)
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 6}}]
    # The one status written before the patch holds the originals.
    assert out.status.originals == [TargetOriginal(name="mail-score-frontend", replicas=2)]
    assert out.status.phase == Phase.ACTIVE
    assert out.status.expires_at == at(3600)
    assert find(out.status.conditions, READY) is not None
    assert reasons(out) == ["RecordedOriginals", "Applied", "Scaling"]


def test_the_status_before_a_change_says_what_the_next_look_will_find() -> None:
    """Written before the scale, the status already counts the pods there are of those
    wanted, as the pass right after the change sees it: that pass writes nothing."""
    es = spec(duration="1h")
    sim = Sim(es, frontend(2))
    out = logic.advance(es, sim.status, sim.world, None, sim.ctx(T0))
    before = find(out.status.conditions, READY)
    assert before is not None and "mail-score-frontend 2/6 ready" in before.message
    sim.carry_out(out)  # the scale made, no pod started yet
    again = logic.advance(es, out.status, sim.world, None, sim.ctx(T0))
    assert again.status == out.status
    assert not again.changes


def test_advance_with_an_hpa_records_its_bounds_and_raises_them() -> None:
    es = runbook_spec()
    world = {BACKEND: backend(3, 10), FRONTEND: frontend(2)}
    out = logic.advance(es, EmergencyScaleStatus(), world, None, Sim(es).ctx(T0))
    assert out.acquire == (BACKEND, FRONTEND)
    assert [(c.key, c.hpa) for c in out.changes] == [(BACKEND, "backend-hpa"), (FRONTEND, None)]
    recorded = {o.name: o for o in out.status.originals}
    assert (
        recorded["mail-score-backend"].min_replicas,
        recorded["mail-score-backend"].max_replicas,
    ) == (3, 10)


def test_advance_is_one_step_when_nothing_is_recorded() -> None:
    held = Sim(runbook_spec(), backend(held_by=OTHER), frontend(2))
    out = logic.advance(held.spec, held.status, held.world, None, held.ctx(T0))
    assert (out.acquire, out.changes, out.status.originals) == ((), (), [])
    sim = Sim(trigger_spec(), frontend(2))
    out = logic.advance(sim.spec, sim.status, sim.world, Sample.of(0.2), sim.ctx(T0))
    assert (out.acquire, out.changes) == ((), ())
    assert out.status.phase == Phase.WAITING


def test_advance_with_a_trigger_that_holds_scales_at_once() -> None:
    sim = Sim(trigger_spec(trigger={"for": None}), frontend(2))
    out = logic.advance(sim.spec, sim.status, sim.world, Sample.of(0.5), sim.ctx(T0))
    assert out.acquire == (FRONTEND,)
    assert [c.patch for c in out.changes] == [{"spec": {"replicas": 6}}]
    assert out.status.gate is not None and out.status.gate.holds


def test_advance_adds_a_target_while_active_in_one_step() -> None:
    sim = Sim(spec(), frontend(2), backend(3, 10))
    sim.step()
    sim.step(1)
    sim.settle()
    sim.spec = runbook_spec()
    out = logic.advance(sim.spec, sim.status, sim.world, None, sim.ctx(at(2)))
    assert out.acquire == (BACKEND,)
    assert [c.key for c in out.changes] == [BACKEND]
    assert [o.name for o in out.status.originals] == ["mail-score-frontend", "mail-score-backend"]
    assert out.status.phase == Phase.ACTIVE
    assert out.status.activated_at == at(1)  # the first activation stays


# --- the hold that travels with its change ----------------------------------------------


def _advance(es: EmergencyScaleSpec, *workloads: logic.Workload) -> logic.Outcome:
    world = {w.key: w for w in workloads}
    ctx = logic.Context(holder=ME, cap=50, generation=1, now=T0)
    return logic.advance(es, EmergencyScaleStatus(), world, None, ctx)


def test_one_free_workload_recorded_now_takes_its_hold_with_its_size() -> None:
    out = _advance(spec(), frontend(2))
    change = logic.hold_with_change(out, EmergencyScaleStatus(), {FRONTEND: frontend(2)})
    assert change is not None and change.key == FRONTEND and change.replicas == 6


# --- the holds taken beside the record of their originals -----------------------------


@pytest.mark.parametrize("case", ["hpa", "two-holds"])
def test_holds_go_beside_the_record_of_their_originals(case: str) -> None:
    """An HPA changed instead of the workload, or two workloads: their holds go out beside
    the status that records them (the one free workload sized directly takes its hold
    with its size instead)."""
    if case == "hpa":
        workloads: tuple[logic.Workload, ...] = (backend(),)
        es = spec(targets=[{"name": "mail-score-backend", "replicas": 10}])
    else:
        workloads = (backend(), frontend(2))
        es = runbook_spec()
    out = _advance(es, *workloads)
    world = {w.key: w for w in workloads}
    assert out.acquire and out.changes
    assert logic.holds_beside_record(out, EmergencyScaleStatus(), world)


@pytest.mark.parametrize("why", ["held", "with-its-change", "recorded-before", "no-change"])
def test_holds_go_before_the_record_otherwise(why: str) -> None:
    """A hold someone has (a stale one to judge), a hold that travels with its change, an
    original recorded by an earlier step (a crash in between), or nothing to change after
    the record: the holds are taken first, as before."""
    status = EmergencyScaleStatus()
    workloads: tuple[logic.Workload, ...] = (backend(),)
    es = spec(targets=[{"name": "mail-score-backend", "replicas": 10}])
    if why == "held":
        workloads = (backend(held_by="Rollback/old"),)
    elif why == "with-its-change":
        workloads, es = (frontend(2),), spec()
    out = _advance(es, *workloads)
    if why == "recorded-before":
        status = out.status
    elif why == "no-change":
        out = replace(out, changes=())
    world = {w.key: w for w in workloads}
    assert not logic.holds_beside_record(out, status, world)


@pytest.mark.parametrize(
    "why",
    ["held", "hpa", "two-holds", "recorded-before"],
)
def test_the_hold_goes_first_otherwise(why: str) -> None:
    """A stale hold to judge, an HPA changed instead, two holds that must be all or none,
    or an original recorded by an earlier step: the hold is taken on its own, first."""
    status = EmergencyScaleStatus()
    if why == "held":
        workloads: tuple[logic.Workload, ...] = (frontend(2, held_by="Rollback/old"),)
        out = _advance(spec(), *workloads)  # a finished operation's hold, say
    elif why == "hpa":
        workloads = (backend(),)
        out = _advance(spec(targets=[{"name": "mail-score-backend", "replicas": 10}]), backend())
    elif why == "two-holds":
        workloads = (backend(), frontend(2))
        out = _advance(runbook_spec(), *workloads)
    else:
        workloads = (frontend(2),)
        out = _advance(spec(), frontend(2))
        status = out.status
    world = {w.key: w for w in workloads}
    assert logic.hold_with_change(out, status, world) is None
