"""MaintenanceWindow's pure decisions: plans, object judgements, and state-machine branches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.core.prometheus import Comparison, compare
from runbook_operator.kinds.maintenancewindow import logic
from runbook_operator.kinds.maintenancewindow.api import (
    FlagOriginal,
    MaintenanceMode,
    MaintenanceWindowSpec,
    MaintenanceWindowStatus,
    ReplicasOriginal,
    WindowPhase,
)
from runbook_operator.kinds.maintenancewindow.logic.policy import RuleResult
from runbook_operator.kinds.maintenancewindow.logic.steps import (
    Outcome,
    Step,
    end_plan,
    flag_drift,
    flag_original,
    flag_patch,
    replicas_drift,
    replicas_original,
    restart_patch,
    restored,
    rollback_entry,
    rollout_state,
    scaled_down,
    start_plan,
    template_annotation,
)

START = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
CREATED = START - timedelta(days=2)


def spec(**fields: Any) -> MaintenanceWindowSpec:
    return MaintenanceWindowSpec.model_validate(
        {"start": START.isoformat(), "duration": "1h", **fields}
    )


def window(
    s: MaintenanceWindowSpec | None = None, deleting: bool = False, **status: Any
) -> logic.Window:
    st = MaintenanceWindowStatus.model_validate(status)
    return logic.Window(s or spec(), st, CREATED, 1, deleting)


def ready(p: logic.Pass) -> tuple[str, str, str]:
    c = next(c for c in p.status.conditions if c.type == "Ready")
    return c.status, c.reason, c.message


def deployment(wanted: int = 2, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": 2, "annotations": {}},
        "spec": {
            "replicas": wanted,
            "template": {"metadata": {}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}},
        },
        "status": {"observedGeneration": 2, **status},
    }


# --- plans ---------------------------------------------------------------------------


def test_start_plan_only_has_what_the_spec_asks() -> None:
    assert start_plan(spec()) == []
    assert start_plan(spec(maintenanceMode={})) == [Step.RECORD_FLAG, Step.SET_FLAG]
    assert start_plan(spec(maintenanceMode={"restart": [{"name": "web"}]})) == [
        Step.ACQUIRE_HOLDS,
        Step.RECORD_FLAG,
        Step.SET_FLAG,
        Step.RECORD_RESTART,
        Step.RESTART,
        Step.AWAIT_RESTART,
    ]
    assert start_plan(spec(scaleDown=[{"name": "api", "replicas": 1}])) == [
        Step.ACQUIRE_HOLDS,
        Step.RECORD_REPLICAS,
        Step.SCALE_DOWN,
        Step.AWAIT_SCALE_DOWN,
    ]


def test_a_window_that_holds_nothing_releases_nothing() -> None:
    plan = [str(s) for s in start_plan(spec(maintenanceMode={}))]
    assert end_plan(plan, set(plan), deleting=False, health_check=False, was_active=True) == [
        Step.RESTORE_FLAG,
        Step.AWAIT_ROLLOUTS,
    ]


def test_end_plan_undoes_what_may_have_begun() -> None:
    plan = [
        str(s)
        for s in start_plan(
            spec(
                maintenanceMode={"restart": [{"name": "web"}]},
                scaleDown=[{"name": "api", "replicas": 1}],
                silence={"url": "http://am", "matchers": [{"name": "a", "value": "b"}]},
            )
        )
    ]
    # Only the holds were taken: release them, nothing else.
    assert end_plan(
        plan, {"AcquireHolds"}, deleting=False, health_check=True, was_active=False
    ) == [Step.CREATE_SILENCE and Step.EXPIRE_SILENCE, Step.RELEASE_HOLDS]
    # The flag's original is recorded: setting it may have begun.
    done = {"AcquireHolds", "CreateSilence", "RecordMaintenanceFlag"}
    assert end_plan(plan, done, deleting=False, health_check=False, was_active=False) == [
        Step.RESTORE_FLAG,
        Step.AWAIT_ROLLOUTS,
        Step.EXPIRE_SILENCE,
        Step.RELEASE_HOLDS,
    ]
    everything = set(plan)
    assert end_plan(plan, everything, deleting=False, health_check=True, was_active=True) == [
        Step.RESTORE_REPLICAS,
        Step.RESTORE_FLAG,
        Step.UNDO_RESTART,
        Step.AWAIT_ROLLOUTS,
        Step.HEALTH_CHECK,
        Step.EXPIRE_SILENCE,
        Step.RELEASE_HOLDS,
    ]
    assert end_plan(plan, everything, deleting=True, health_check=True, was_active=True) == [
        Step.RESTORE_REPLICAS,
        Step.RESTORE_FLAG,
        Step.UNDO_RESTART,
        Step.EXPIRE_SILENCE,
        Step.RELEASE_HOLDS,
    ]


# --- object judgements ---------------------------------------------------------------------


NOW = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)


def test_rollout_state() -> None:
    ready = deployment(2, replicas=2, updatedReplicas=2, availableReplicas=2)
    assert rollout_state(ready, None, NOW) == (True, None, "web: rolled out")
    moving = deployment(2, replicas=3, updatedReplicas=1, availableReplicas=2)
    assert rollout_state(moving, None, NOW) == (
        False,
        None,
        "web: 1 out of 2 new replicas have been updated",
    )
    stale = deployment(2, replicas=2, updatedReplicas=2, availableReplicas=2)
    stale["status"]["observedGeneration"] = 1
    assert not rollout_state(stale, None, NOW)[0]


def test_a_rollout_past_its_progress_deadline_fails_the_wait() -> None:
    """The window's rollout check used to ignore progress deadlines (only Rollback's did)."""
    stuck = deployment(2, replicas=3, updatedReplicas=1, availableReplicas=2)
    stuck["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "lastUpdateTime": (NOW + timedelta(seconds=30)).isoformat(),
        }
    ]
    done, failed, _ = rollout_state(stuck, NOW, NOW + timedelta(minutes=1))
    assert not done and failed == "Deployment web exceeded its progress deadline"


def test_restart_annotation() -> None:
    d = deployment()
    assert template_annotation(d) is None
    assert restart_patch("2025-03-02T02:00:00Z") == {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-03-02T02:00:00Z"}
                }
            }
        }
    }
    assert restart_patch(None)["spec"]["template"]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": None
    }


def test_rollback_entry() -> None:
    d = deployment()
    d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "7"
    entry = rollback_entry(d)
    assert (entry.revision, entry.images[0].image) == ("7", "i:1")


HPA = {"metadata": {"name": "hpa"}, "spec": {"minReplicas": 3, "maxReplicas": 10}}


def test_replicas_original_with_and_without_hpa() -> None:
    assert replicas_original(deployment(3), HPA, 1) == ReplicasOriginal(
        name="web", maintenance_replicas=1, replicas=3, hpa="hpa", min_replicas=3, max_replicas=10
    )
    plain = replicas_original(deployment(3), None, 0)
    assert plain.hpa is None and plain.replicas == 3


def test_scaled_down_and_restored() -> None:
    original = replicas_original(deployment(3), HPA, 1)
    assert not scaled_down(deployment(3), original, None, NOW)[0]
    one = deployment(1, replicas=1, updatedReplicas=1, availableReplicas=1)
    assert scaled_down(one, original, None, NOW)[0]
    settled = deployment(4, replicas=4, updatedReplicas=4, availableReplicas=4)
    assert restored(settled, original, None, NOW)[0]  # within the HPA's bounds 3-10
    low = deployment(1, replicas=1, updatedReplicas=1, availableReplicas=1)
    assert restored(low, original, None, NOW) == (
        False,
        None,
        "web: 1 replicas, waiting for the HPA's bounds",
    )
    plain = replicas_original(deployment(3), None, 1)
    assert not restored(settled, plain, None, NOW)[0]


def test_replicas_drift() -> None:
    original = replicas_original(deployment(3), HPA, 1)
    pinned = {"metadata": {"name": "hpa"}, "spec": {"minReplicas": 1, "maxReplicas": 1}}
    assert replicas_drift(original, deployment(1), pinned) == []
    assert replicas_drift(original, deployment(3), HPA) == []  # already restored: no drift
    moved = {"metadata": {"name": "hpa"}, "spec": {"minReplicas": 1, "maxReplicas": 5}}
    drift = replicas_drift(original, deployment(5), moved)
    assert len(drift) == 2 and "scaled to 5" in drift[0] and "1-5" in drift[1]


def test_flag_helpers() -> None:
    mode = MaintenanceMode()
    original = flag_original({"data": {"MAINTENANCE_MODE": "false"}}, mode)
    assert original == FlagOriginal(
        config_map="frontend-config",
        key="MAINTENANCE_MODE",
        present=True,
        value="false",
        maintenance_value="true",
    )
    absent = flag_original({}, mode)
    assert not absent.present and absent.value is None
    assert flag_patch("K", None) == {"data": {"K": None}}
    assert flag_drift(original, {"data": {"MAINTENANCE_MODE": "true"}}) == []
    assert "was removed during the window" in flag_drift(original, {"data": {}})[0]


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [(">", False), (">=", True), ("<", False), ("<=", True), ("==", True), ("!=", False)],
)
def test_compare(comparison: str, expected: bool) -> None:
    assert compare(1.0, Comparison(comparison), 1.0) is expected


# --- state machine branches ----------------------------------------------------------------


def test_first_pass_schedules_and_asks_for_the_checklist() -> None:
    p = logic.advance(window(), START - timedelta(hours=1))
    assert p.status.phase == WindowPhase.PENDING
    assert p.status.next_start == START and p.status.next_end == START + timedelta(hours=1)
    assert p.work == logic.Work(logic.WorkKind.POLICY)


def test_checklist_is_not_reevaluated_every_tick() -> None:
    now = START - timedelta(hours=1)
    w = window(
        phase="Pending",
        nextStart=START,
        observedGeneration=1,
        policyCheckedAt=now - timedelta(seconds=5),
    )
    assert logic.advance(w, now).work is None
    assert logic.advance(w, now + timedelta(seconds=10)).work is not None


def test_spec_change_reevaluates_at_once() -> None:
    now = START - timedelta(hours=1)
    w = window(phase="Pending", nextStart=START, observedGeneration=0, policyCheckedAt=now)
    assert logic.advance(w, now).work == logic.Work(logic.WorkKind.POLICY)


def ok(type_: str) -> RuleResult:
    return RuleResult(type_, True, type_, "fine")


def test_after_policy_before_start_waits_with_a_summary() -> None:
    w = window()
    p = logic.advance(w, START - timedelta(hours=1))
    results = [ok("NoticeGiven"), RuleResult("Approved", False, "NotApproved", "0 of 1.")]
    p = logic.after_policy(w, p, results, START - timedelta(hours=1), at_start=False)
    assert ready(p) == ("True", "PolicyNotMet", "Starts at 2025-03-02T02:00:00Z only if: 0 of 1.")
    assert [e.reason for e in p.events] == ["NoticeGiven", "NotApproved"]
    assert [e.type for e in p.events] == ["Normal", "Warning"]
    assert p.work is None and p.status.policy_checked_at is not None


def test_after_policy_at_start_goes_on_to_take_holds() -> None:
    w = window(spec(scaleDown=[{"name": "api", "replicas": 1}]))
    p = logic.advance(w, START)
    assert p.work == logic.Work(logic.WorkKind.POLICY, at_start=True)
    p = logic.after_policy(w, p, [ok("NoticeGiven")], START, at_start=True)
    assert p.work == logic.Work(logic.WorkKind.STEP, Step.ACQUIRE_HOLDS)
    assert p.status.phase == WindowPhase.PENDING  # Starting once the holds are taken


def test_after_policy_at_start_of_a_window_that_holds_nothing_starts_its_first_step() -> None:
    w = window(spec(maintenanceMode={}))
    p = logic.after_policy(w, logic.advance(w, START), [ok("NoticeGiven")], START, at_start=True)
    assert p.status.phase == WindowPhase.STARTING and p.status.started_at == START
    assert p.status.plan == ["RecordMaintenanceFlag", "SetMaintenanceFlag"]
    assert p.status.steps == []
    assert p.work == logic.Work(logic.WorkKind.STEP, Step.RECORD_FLAG)
    assert [e.reason for e in p.events][-1] == "Starting"


def test_a_window_with_nothing_to_do_is_active_at_its_start() -> None:
    w = window()
    p = logic.after_policy(w, logic.advance(w, START), [ok("NoticeGiven")], START, at_start=True)
    assert p.status.phase == WindowPhase.ACTIVE and p.work is None
    assert [e.reason for e in p.events][-2:] == ["Starting", "Active"]


def test_blocked_recurring_window_moves_on_after_its_end() -> None:
    s = spec(start=None, schedule="0 2 * * *")
    w = window(s, phase="Blocked", nextStart=START, nextEnd=START + timedelta(hours=1))
    assert logic.advance(w, START + timedelta(minutes=30)).status.phase == WindowPhase.BLOCKED
    p = logic.advance(w, START + timedelta(hours=1))
    assert p.status.phase == WindowPhase.PENDING
    assert p.status.next_start == START + timedelta(days=1)
    assert p.status.last_occurrence is not None
    assert p.status.last_occurrence.phase == "Blocked"


def test_blocked_one_off_stays_blocked_until_cancelled_or_deleted() -> None:
    w = window(phase="Blocked", nextStart=START, nextEnd=START + timedelta(hours=1))
    assert logic.advance(w, START + timedelta(days=3)).status.phase == WindowPhase.BLOCKED
    assert logic.advance(window(deleting=True, phase="Blocked"), START).finished
    cancelled = logic.advance(window(spec(cancel=True), phase="Blocked", nextStart=START), START)
    assert cancelled.status.phase == WindowPhase.CANCELLED


def test_final_phases_do_nothing_and_let_deletion_through() -> None:
    for phase in ("Completed", "Failed", "Cancelled"):
        p = logic.advance(window(phase=phase), START)
        assert p.work is None and not p.finished
        assert logic.advance(window(deleting=True, phase=phase), START).finished


def starting(**extra: Any) -> logic.Window:
    s = spec(maintenanceMode={})
    return window(
        s,
        phase="Starting",
        nextStart=START,
        startedAt=START,
        plan=["AcquireHolds", "RecordMaintenanceFlag", "SetMaintenanceFlag"],
        steps=[{"name": "AcquireHolds", "at": START}],
        **extra,
    )


def test_starting_asks_for_the_next_step_in_plan_order() -> None:
    p = logic.advance(starting(), START + timedelta(seconds=1))
    assert p.work == logic.Work(logic.WorkKind.STEP, Step.RECORD_FLAG)


def test_end_reached_while_starting_ends_it() -> None:
    p = logic.advance(starting(), START + timedelta(hours=1))
    assert p.status.phase == WindowPhase.ENDING and p.status.ending_reason == "Ended"
    assert p.work == logic.Work(logic.WorkKind.STEP, Step.RELEASE_HOLDS)


def test_step_error_is_retried_then_the_start_gives_up() -> None:
    w = starting()
    now = START + timedelta(seconds=30)
    p = logic.after_step(w, logic.advance(w, now), Step.RECORD_FLAG, Outcome.retry("boom"), now)
    assert p.status.phase == WindowPhase.STARTING and p.status.last_error == "boom"
    assert ready(p)[1:] == ("RecordMaintenanceFlag", "RecordMaintenanceFlag failed, retrying: boom")
    assert [e.reason for e in p.events] == ["StepFailed"]
    later = START + logic.ERROR_GRACE + timedelta(seconds=1)
    p = logic.after_step(w, logic.advance(w, later), Step.RECORD_FLAG, Outcome.retry("boom"), later)
    assert p.status.phase == WindowPhase.ENDING and p.status.ending_reason == "Failed"
    assert p.status.failure is not None and "kept failing" in p.status.failure


def test_step_error_while_ending_stalls_but_keeps_trying() -> None:
    w = window(
        spec(maintenanceMode={}),
        phase="Ending",
        nextStart=START,
        endingAt=START + timedelta(hours=1),
        endingReason="Ended",
        plan=["AcquireHolds", "RecordMaintenanceFlag", "SetMaintenanceFlag"],
        steps=[
            {"name": n, "at": START}
            for n in ("AcquireHolds", "RecordMaintenanceFlag", "SetMaintenanceFlag")
        ],
        originals={
            "maintenanceFlag": {
                "configMap": "c",
                "key": "k",
                "present": True,
                "value": "false",
                "maintenanceValue": "true",
            }
        },
    )
    now = START + timedelta(hours=1) + logic.ERROR_GRACE * 2
    p = logic.advance(w, now)
    assert p.work == logic.Work(logic.WorkKind.STEP, Step.RESTORE_FLAG)
    p = logic.after_step(w, p, Step.RESTORE_FLAG, Outcome.retry("forbidden"), now)
    stalled = next(c for c in p.status.conditions if c.type == "Stalled")
    assert p.status.phase == WindowPhase.ENDING and stalled.status == "True"
    assert "a human may be needed" in stalled.message


def test_active_window_does_nothing_until_its_end() -> None:
    w = window(
        phase="Active",
        nextStart=START,
        activeAt=START,
        observedGeneration=1,
        plan=["AcquireHolds"],
        steps=[{"name": "AcquireHolds", "at": START}],
    )
    p = logic.advance(w, START + timedelta(minutes=30))
    assert p.work is None and ready(p)[1] == "InMaintenance"
    assert logic.advance(w, START + timedelta(hours=1)).status.phase == WindowPhase.ENDING


def test_invalid_spec_blocks_a_pending_window() -> None:
    p = logic.invalid_spec(MaintenanceWindowStatus(), 3, "timeZone: unknown", START)
    assert p.status.phase == WindowPhase.BLOCKED and p.status.observed_generation == 3
    assert ready(p)[1] == "InvalidSpec" and len(p.events) == 1
    again = logic.invalid_spec(p.status, 3, "timeZone: unknown", START)
    assert again.events == ()


def test_spec_edit_under_way_is_explained_once() -> None:
    w = window(
        phase="Active",
        nextStart=START,
        activeAt=START,
        observedGeneration=0,
        plan=["AcquireHolds"],
        steps=[{"name": "AcquireHolds", "at": START}],
    )
    p = logic.advance(w, START + timedelta(minutes=1))
    assert [e.reason for e in p.events] == ["SpecChanged"]
    assert p.status.observed_generation == 1
    settled = window(
        phase="Active",
        nextStart=START,
        activeAt=START,
        observedGeneration=1,
        plan=["AcquireHolds"],
        steps=[{"name": "AcquireHolds", "at": START}],
    )
    assert logic.advance(settled, START + timedelta(minutes=1)).events == ()


def test_blocked_message_says_what_happens_next() -> None:
    one_off = logic.advance(window(), START + timedelta(minutes=10))
    assert one_off.status.phase == WindowPhase.BLOCKED
    assert ready(one_off)[2].endswith("fix the cause and create a new one.")
    recurring = window(spec(start=None, schedule="0 2 * * *"), phase="Pending", nextStart=START)
    p = logic.advance(recurring, START + timedelta(minutes=10))
    assert ready(p)[2].endswith("once this one's time is over.")


# --- the GitOps contract: a scheduled window is Current, a failed occurrence Degraded --------


def degraded(p: logic.Pass) -> tuple[str, str] | None:
    c = next((c for c in p.status.conditions if c.type == "Degraded"), None)
    return None if c is None else (c.status, c.reason)


def test_a_future_window_is_ready_so_a_gitops_wait_is_not_held() -> None:
    w = window(phase="Pending", nextStart=START, observedGeneration=1)
    now = START - timedelta(days=7)
    p = logic.advance(w, now)
    p = logic.after_policy(w, p, [ok("NoticeGiven")], now, at_start=False)
    assert ready(p)[:2] == ("True", "Scheduled")
    assert not any(c.type in ("Reconciling", "Stalled") for c in p.status.conditions)


def ended_occurrence(ending_reason: str, **status: Any) -> logic.Pass:
    s = spec(start=None, schedule="0 2 * * *")
    w = window(
        s,
        phase="Ending",
        nextStart=START,
        nextEnd=START + timedelta(hours=1),
        endingReason=ending_reason,
        endingAt=START + timedelta(hours=1),
        **status,
    )
    return logic.advance(w, START + timedelta(hours=1, minutes=1))


def test_a_recurring_window_whose_occurrence_failed_is_degraded_until_one_succeeds() -> None:
    failed = ended_occurrence("Failed", failure="the frontend did not roll out.")
    assert failed.status.phase == WindowPhase.PENDING
    assert failed.status.last_occurrence is not None
    assert failed.status.last_occurrence.phase == "Failed"
    assert degraded(failed) == ("True", "LastOccurrenceFailed")
    assert ready(failed)[:2] == ("True", "Scheduled")
    conditions = [c.wire() for c in failed.status.conditions]
    # the next occurrence succeeds: Degraded goes
    good = ended_occurrence("Ended", conditions=conditions)
    assert good.status.last_occurrence is not None
    assert good.status.last_occurrence.phase == "Completed"
    assert degraded(good) is None


def test_a_blocked_occurrence_leaves_a_recurring_window_degraded() -> None:
    s = spec(start=None, schedule="0 2 * * *")
    w = window(s, phase="Blocked", nextStart=START, nextEnd=START + timedelta(hours=1))
    p = logic.advance(w, START + timedelta(hours=1))
    assert p.status.phase == WindowPhase.PENDING
    assert degraded(p) == ("True", "LastOccurrenceFailed")
