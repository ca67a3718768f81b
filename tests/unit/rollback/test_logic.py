"""The Rollback's steps (logic/rollback): every branch, with plain values."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_operator.core.gate import Problem, Sample
from runbook_operator.core.names import HOLD_ANNOTATION, HOLD_INSTANCE_ANNOTATION
from runbook_operator.core.undo import equal_ignore_hash
from runbook_operator.kinds.rollback import logic
from runbook_operator.kinds.rollback.api import (
    RollbackPhase,
    RollbackSpec,
    RollbackStatus,
    TargetState,
    TargetStatus,
)
from support.rollback_objects import history, template

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOLDER = "Rollback/undo"
Obj = dict[str, Any]


def spec(*targets: Obj, trigger: Obj | None = None) -> RollbackSpec:
    body: Obj = {"targets": list(targets) or [{"name": "web"}]}
    if trigger:
        body["trigger"] = trigger
    return RollbackSpec.model_validate(body)


def run(
    s: RollbackSpec,
    status: RollbackStatus | None,
    observed: dict[str, logic.Observed],
    now: datetime = NOW,
    generation: int = 1,
) -> logic.Plan:
    return logic.reconcile(
        s, status or RollbackStatus(), observed, holder=HOLDER, generation=generation, now=now
    )


def seen(dep: Obj | None, sets: list[Obj] | None = None) -> logic.Observed:
    return logic.Observed(dep, tuple(sets or ()))


def condition(status: RollbackStatus, type_: str) -> Any:
    return next((c for c in status.conditions if c.type == type_), None)


def apply_patch(dep: Obj, operations: list[Obj]) -> Obj:
    """What the API server does with our JSON patch (enough for these tests)."""
    out = copy.deepcopy(dep)
    assert operations[0]["path"] == "/metadata/resourceVersion"
    assert operations[0]["value"] == dep["metadata"]["resourceVersion"]
    out["spec"]["template"] = operations[1]["value"]
    out["metadata"]["annotations"] = operations[2]["value"]
    out["metadata"]["generation"] += 1
    return out


def rolled_out(dep: Obj, number: int) -> Obj:
    out = copy.deepcopy(dep)
    out["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(number)
    out["status"]["observedGeneration"] = out["metadata"]["generation"]
    return out


# --- the immediate rollback, step by step -----------------------------------------


def test_happy_path_from_decision_to_completed() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"], causes={2: "deploy b"})

    # 1. decide and take the holds; the decision is in the status to write
    plan = run(s, None, {"web": seen(dep, sets)})
    assert plan.hold == ("web",) and plan.apply is None
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.ROLLING_BACK
    target = status.targets[0]
    assert target.state == TargetState.PLANNED
    assert (target.from_revision, target.to_revision) == (3, 2)
    assert target.from_images == ["app=c"] and target.to_images == ["app=b"]
    assert target.to_replica_set == sets[1]["metadata"]["name"]
    assert target.from_replica_set == sets[2]["metadata"]["name"]
    assert status.targets_summary == "web 3→2"
    assert condition(status, "Reconciling").status == "True"
    assert [e.reason for e in plan.events] == ["Started"]

    # 2. restore the template (the JSON patch kubectl would send, plus our hold)
    held = copy.deepcopy(dep)
    held["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER
    plan = run(s, status, {"web": seen(held, sets)}, NOW + timedelta(seconds=1))
    assert plan.apply is not None and plan.apply[0] == "web"
    status = plan.status
    assert status is not None and status.targets[0].state == TargetState.ROLLING_OUT
    assert status.targets[0].applied_at == NOW + timedelta(seconds=1)
    restored = apply_patch(held, plan.apply[1])
    assert equal_ignore_hash(restored["spec"]["template"], sets[1]["spec"]["template"])
    assert restored["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy b"

    # 3. the controller has not caught up yet: still rolling out
    plan = run(s, status, {"web": seen(restored, sets)}, NOW + timedelta(seconds=2))
    assert plan.status is not None
    assert plan.status.targets[0].state == TargetState.ROLLING_OUT
    assert "controller" in (plan.status.targets[0].message or "")
    status = plan.status


def test_completion_waits_until_our_marks_are_gone() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"])
    status: RollbackStatus | None = planned(s, dep, sets)
    plan = run(s, status, {"web": seen(dep, sets)})
    assert plan.apply is not None and plan.status is not None
    restored, status = apply_patch(dep, plan.apply[1]), plan.status

    # 4. rolled out: complete, but our marks are still on the objects -> release
    done = rolled_out(restored, 4)
    marked_rs = copy.deepcopy(sets[1])
    marked_rs["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER
    plan = run(s, status, {"web": seen(done, [sets[0], marked_rs, sets[2]])})
    assert plan.release == ("web",)
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.ROLLING_BACK
    assert status.targets[0].state == TargetState.COMPLETE
    assert status.targets[0].new_revision == 4
    assert any(e.reason == "RolledOut" for e in plan.events)

    # 5. released: Completed, Ready
    clean = copy.deepcopy(done)
    del clean["metadata"]["annotations"][HOLD_ANNOTATION]
    plan = run(s, status, {"web": seen(clean, sets)})
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.COMPLETED
    assert plan.release == () and status.completed_at == NOW
    ready = condition(status, "Ready")
    assert (ready.status, ready.reason) == ("True", "RolledBack")
    assert condition(status, "Reconciling") is None
    assert [e.reason for e in plan.events] == ["Completed"]

    # 6. finished: nothing more to do
    assert run(s, status, {"web": seen(clean, sets)}).status is None


def planned(s: RollbackSpec, dep: Obj, sets: list[Obj]) -> RollbackStatus:
    status = run(s, None, {"web": seen(dep, sets)}).status
    assert status is not None
    return status


def test_a_template_found_restored_is_never_restored_twice() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"])
    status = planned(s, dep, sets)
    # The operator died after the patch, before writing status: the Deployment has revision 2's
    # template now, and "previous" would be revision 3 again. The recorded decision wins.
    after = copy.deepcopy(dep)
    after["spec"]["template"] = copy.deepcopy(template("b"))
    plan = run(s, status, {"web": seen(after, sets)})
    assert plan.apply is None
    assert plan.status is not None and plan.status.targets[0].state == TargetState.ROLLING_OUT
    assert "already restored" in (plan.status.targets[0].message or "")


def test_a_deployment_changed_by_someone_else_is_not_touched() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"])
    status = planned(s, dep, sets)
    edited = copy.deepcopy(dep)
    edited["spec"]["template"] = template("d")
    plan = run(s, status, {"web": seen(edited, sets)})
    assert plan.apply is None
    assert plan.status is not None
    assert plan.status.targets[0].state == TargetState.FAILED
    assert "changed" in (plan.status.targets[0].message or "")
    # ... and the operation ends Failed once the hold is released
    final = run(s, plan.status, {"web": seen(edited, sets)}).status
    assert final is not None and final.phase == RollbackPhase.FAILED
    assert condition(final, "Stalled").status == "True"


def test_a_deployment_paused_or_deleted_after_the_decision_fails_that_target() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"])
    status = planned(s, dep, sets)
    paused = copy.deepcopy(dep)
    paused["spec"]["paused"] = True
    plan = run(s, status, {"web": seen(paused, sets)})
    assert plan.status is not None and plan.status.targets[0].state == TargetState.FAILED
    plan = run(s, status, {"web": seen(None)})
    assert plan.status is not None and plan.status.targets[0].state == TargetState.FAILED
    vanished = [rs for rs in sets if rs is not sets[1]]
    plan = run(s, status, {"web": seen(dep, vanished)})
    assert plan.status is not None
    assert "no longer exists" in (plan.status.targets[0].message or "")


def test_from_replica_set_missing_falls_back_to_the_revision() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"])
    status = planned(s, dep, sets)
    without_current = sets[:2]
    plan = run(s, status, {"web": seen(dep, without_current)})
    assert plan.apply is not None


def test_two_targets_are_restored_one_per_pass() -> None:
    s = spec({"name": "web"}, {"name": "api", "toRevision": 1})
    web, web_sets = history("web", ["a", "b"])
    api, api_sets = history("api", ["x", "y", "z"])
    observed = {"web": seen(web, web_sets), "api": seen(api, api_sets)}
    plan = run(s, None, observed)
    assert plan.hold == ("web", "api")
    assert plan.status is not None and plan.status.targets_summary == "web 2→1, api 3→1"
    plan = run(s, plan.status, observed)
    assert plan.apply is not None and plan.apply[0] == "web"
    plan = run(s, plan.status, observed)
    assert plan.apply is not None and plan.apply[0] == "api"


def test_rollout_past_its_deadline_fails() -> None:
    s = spec()
    dep, sets = history(images=["a", "b", "c"])
    status = planned(s, dep, sets)
    plan = run(s, status, {"web": seen(dep, sets)})
    assert plan.apply is not None
    restored = apply_patch(dep, plan.apply[1])
    restored["status"] = {
        "observedGeneration": restored["metadata"]["generation"],
        "replicas": 4,
        "updatedReplicas": 1,
        "availableReplicas": 3,
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "lastUpdateTime": "2024-05-01T12:00:30Z",
            }
        ],
    }
    later = NOW + timedelta(seconds=31)
    plan = run(s, plan.status, {"web": seen(restored, sets)}, later)
    assert plan.status is not None and plan.status.targets[0].state == TargetState.FAILED
    assert "progress deadline" in (plan.status.targets[0].message or "")
    release = run(s, plan.status, {"web": seen(restored, sets)}, later)
    assert release.release == ("web",)
    del restored["metadata"]["annotations"][HOLD_ANNOTATION]
    final = run(s, release.status, {"web": seen(restored, sets)}, later).status
    assert final is not None and final.phase == RollbackPhase.FAILED
    stalled = condition(final, "Stalled")
    assert (stalled.status, stalled.reason) == ("True", "RolloutFailed")


# --- refusals, waiting, nothing to do ------------------------------------------------


def test_refusals_change_nothing_and_say_why() -> None:
    s = spec({"name": "web"}, {"name": "api", "toRevision": 9}, {"name": "gone"})
    web, web_sets = history("web", paused=True)
    api, api_sets = history("api")
    plan = run(s, None, {"web": seen(web, web_sets), "api": seen(api, api_sets)})
    assert plan.hold == () and plan.apply is None
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.REFUSED
    stalled = condition(status, "Stalled")
    assert stalled.reason == "DeploymentPaused"
    assert "paused" in stalled.message
    assert "no revision 9" in stalled.message and "available revisions: 1, 2, 3" in stalled.message
    assert "gone does not exist" in stalled.message
    assert "Nothing was changed" in stalled.message
    assert condition(status, "Ready").status == "False"
    assert [e.type for e in plan.events] == ["Warning"]
    assert status.completed_at == NOW


def test_already_at_revision_completes_without_touching_anything() -> None:
    s = spec({"name": "web", "toRevision": 3})
    dep, sets = history()
    plan = run(s, None, {"web": seen(dep, sets)})
    assert plan.hold == ()
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.COMPLETED
    assert status.targets[0].state == TargetState.ALREADY_AT_REVISION
    ready = condition(status, "Ready")
    assert (ready.status, ready.reason) == ("True", "AlreadyAtRevision")
    assert "already matches revision 3" in ready.message


def test_mixed_already_and_planned_rolls_back_only_what_is_needed() -> None:
    s = spec({"name": "web", "toRevision": 3}, {"name": "api"})
    web, web_sets = history("web")
    api, api_sets = history("api")
    plan = run(s, None, {"web": seen(web, web_sets), "api": seen(api, api_sets)})
    assert plan.hold == ("api",)
    assert plan.status is not None
    assert [t.state for t in plan.status.targets] == [
        TargetState.ALREADY_AT_REVISION,
        TargetState.PLANNED,
    ]


def test_a_target_held_by_another_operation_makes_it_wait() -> None:
    s = spec()
    dep, sets = history(annotations={HOLD_ANNOTATION: "EmergencyScale/surge"})
    plan = run(s, None, {"web": seen(dep, sets)})
    assert plan.hold == ()
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.PENDING
    ready = condition(status, "Ready")
    assert (ready.status, ready.reason) == ("False", "WorkloadHeld")
    assert "EmergencyScale/surge" in ready.message
    assert condition(status, "Stalled") is None
    assert [e.reason for e in plan.events] == ["WorkloadHeld"]
    # the next pass says nothing new
    again = run(s, status, {"web": seen(dep, sets)})
    assert again.events == ()
    # released: it starts
    free, _ = history()
    assert run(s, status, {"web": seen(free, sets)}).hold == ("web",)


def test_held_builds_the_waiting_status() -> None:
    plan = logic.held(RollbackStatus(), "web", "MaintenanceWindow/sunday", generation=3, now=NOW)
    assert plan.status is not None and plan.status.phase == RollbackPhase.PENDING
    assert plan.status.observed_generation == 3
    assert "MaintenanceWindow/sunday" in condition(plan.status, "Ready").message


def test_our_own_hold_does_not_block() -> None:
    dep, sets = history(annotations={HOLD_ANNOTATION: HOLDER})
    assert run(spec(), None, {"web": seen(dep, sets)}).hold == ("web",)


def test_waits_for_the_deployment_controller_before_deciding() -> None:
    dep, sets = history(observed=1)
    plan = run(spec(), None, {"web": seen(dep, sets)})
    assert plan.hold == ()
    assert plan.status is not None
    assert condition(plan.status, "Ready").reason == "ControllerCatchingUp"


def test_gitops_managed_targets_are_rolled_back_with_a_warning() -> None:
    dep, sets = history(
        annotations={"argocd.argoproj.io/tracking-id": "mail:apps/Deployment:ns/web"}
    )
    plan = run(spec(), None, {"web": seen(dep, sets)})
    assert plan.hold == ("web",)
    assert plan.status is not None
    gitops = condition(plan.status, "GitOpsManaged")
    assert gitops.status == "True"
    assert "Argo CD Application argocd/mail" in gitops.message
    assert "next sync re-applies" in gitops.message
    assert "GitOpsManaged" in [e.reason for e in plan.events]
    assert plan.status.targets[0].gitops == "Argo CD Application argocd/mail"


def test_a_finished_rollback_only_records_a_new_generation() -> None:
    status = RollbackStatus(phase=RollbackPhase.COMPLETED, observed_generation=1)
    assert run(spec(), status, {}).status is None
    plan = run(spec(), status, {}, generation=2)
    assert plan.status is not None and plan.status.observed_generation == 2


def test_marked_sees_our_hold_on_the_deployment_or_its_replica_sets() -> None:
    dep, sets = history()
    assert not logic.marked(seen(dep, sets), HOLDER)
    assert not logic.marked(seen(None), HOLDER)
    sets[0]["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER
    assert logic.marked(seen(dep, sets), HOLDER)
    dep["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER
    assert logic.marked(seen(dep, []), HOLDER)


def test_summary_shows_decisions_or_names() -> None:
    targets = [
        TargetStatus(name="a", from_revision=3, to_revision=2),
        TargetStatus(name="b", watched_revision=5),
        TargetStatus(name="c"),
    ]
    assert logic.summary(targets) == "a 3→2, b watching 5, c"


# --- armed ------------------------------------------------------------------------

TRIGGER = {"query": "errors", "threshold": 0.1, "window": "10m"}


def completed_at(at: datetime) -> Obj:
    return {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetAvailable",
        "lastUpdateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def armed_history(rolled_out: datetime, name: str = "web") -> tuple[Obj, list[Obj]]:
    return history(name, progressing=completed_at(rolled_out))


def test_arming_watches_and_opens_a_window_after_a_recent_rollout() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = armed_history(NOW - timedelta(minutes=2))
    plan = run(s, None, {"web": seen(dep, sets)})
    status = plan.status
    assert status is not None and status.phase == RollbackPhase.ARMED
    assert plan.evaluate == ("web",)
    t = status.targets[0]
    assert t.watched_revision == 3
    assert t.rolled_out_at == NOW - timedelta(minutes=2)
    assert t.window_ends_at == NOW + timedelta(minutes=8)
    assert [e.reason for e in plan.events] == ["Armed", "Watching"]
    evaluated = logic.after_trigger(s, status, ("web",), Sample.of(0.0), generation=1, now=NOW)
    assert evaluated.status is not None
    ready = condition(evaluated.status, "Ready")
    assert (ready.status, ready.reason) == ("True", "Armed")
    assert "window open for web" in ready.message


def test_outside_the_window_the_trigger_is_not_evaluated() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = armed_history(NOW - timedelta(minutes=30))
    plan = run(s, None, {"web": seen(dep, sets)})
    assert plan.evaluate == ()
    assert plan.status is not None and "outside its window" in (
        plan.status.targets[0].message or ""
    )
    assert "Watching" not in [e.reason for e in plan.events]


def test_a_rollout_in_progress_does_not_open_the_window() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = armed_history(NOW)
    dep["status"]["updatedReplicas"] = 1
    plan = run(s, None, {"web": seen(dep, sets)})
    assert plan.evaluate == ()
    assert plan.status is not None and plan.status.targets[0].watched_revision is None


def test_a_first_revision_has_nothing_to_roll_back_to() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = history(images=["only"], progressing=completed_at(NOW))
    plan = run(s, None, {"web": seen(dep, sets)})
    assert plan.evaluate == ()
    assert "cannot be rolled back" in (plan.status.targets[0].message or "")  # type: ignore[union-attr]


def test_a_new_revision_rolled_out_later_opens_a_new_window() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = armed_history(NOW - timedelta(hours=1))
    status = run(s, None, {"web": seen(dep, sets)}).status
    assert status is not None
    later = NOW + timedelta(minutes=1)
    new_dep, new_sets = history(images=["a", "b", "c", "d"], progressing=completed_at(later))
    plan = run(s, status, {"web": seen(new_dep, new_sets)}, later + timedelta(seconds=5))
    assert plan.evaluate == ("web",)
    assert plan.status is not None and plan.status.targets[0].watched_revision == 4


def test_an_armed_rollback_of_a_missing_deployment_is_refused() -> None:
    plan = run(spec(trigger=TRIGGER), None, {"web": seen(None)})
    assert plan.status is not None and plan.status.phase == RollbackPhase.REFUSED


def armed(s: RollbackSpec, observed: dict[str, logic.Observed]) -> logic.Plan:
    plan = run(s, None, observed)
    assert plan.status is not None
    return plan


def test_the_trigger_fires_once_its_condition_holds_inside_the_window() -> None:
    s = spec({"name": "web"}, {"name": "api"}, trigger={**TRIGGER, "for": "30s"})
    web, web_sets = armed_history(NOW - timedelta(minutes=1))
    api, api_sets = armed_history(NOW - timedelta(hours=1), "api")
    observed = {"web": seen(web, web_sets), "api": seen(api, api_sets)}
    plan = armed(s, observed)
    assert plan.evaluate == ("web",)
    status = plan.status
    assert status is not None

    first = logic.after_trigger(s, status, ("web",), Sample.of(0.5), generation=1, now=NOW)
    assert first.status is not None and first.status.phase == RollbackPhase.ARMED
    assert first.status.trigger is not None and first.status.trigger.holds
    assert first.status.trigger.since == NOW

    later = NOW + timedelta(seconds=31)
    fired = logic.after_trigger(s, first.status, ("web",), Sample.of(0.6), generation=1, now=later)
    status = fired.status
    assert status is not None and status.phase == RollbackPhase.PENDING
    assert status.trigger is not None and status.trigger.fired_at == later
    assert [t.state for t in status.targets] == [TargetState.PENDING, TargetState.NOT_RECENT]
    assert [e.reason for e in fired.events] == ["TriggerFired"]
    assert "web revision 3" in fired.events[0].message

    # then it rolls back the recent one only, to its previous revision
    plan = run(s, status, observed, later)
    assert plan.hold == ("web",)
    assert plan.status is not None
    web_target = plan.status.targets[0]
    assert (web_target.from_revision, web_target.to_revision) == (3, 2)
    assert plan.status.targets[1].state == TargetState.NOT_RECENT


def test_a_newer_revision_after_firing_is_not_rolled_back() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = armed_history(NOW - timedelta(minutes=1))
    status = armed(s, {"web": seen(dep, sets)}).status
    assert status is not None
    fired = logic.after_trigger(s, status, ("web",), Sample.of(1), generation=1, now=NOW).status
    assert fired is not None and fired.phase == RollbackPhase.PENDING
    newer, newer_sets = history(images=["a", "b", "c", "d"])
    plan = run(s, fired, {"web": seen(newer, newer_sets)})
    assert plan.status is not None and plan.status.phase == RollbackPhase.REFUSED
    assert condition(plan.status, "Stalled").reason == "RevisionChanged"


def test_a_clear_condition_keeps_it_armed() -> None:
    s = spec(trigger=TRIGGER)
    dep, sets = armed_history(NOW)
    status = armed(s, {"web": seen(dep, sets)}).status
    assert status is not None
    plan = logic.after_trigger(s, status, ("web",), Sample.of(0.01), generation=1, now=NOW)
    assert plan.status is not None and plan.status.phase == RollbackPhase.ARMED
    assert plan.status.trigger is not None and plan.status.trigger.holds is False
    assert "errors = 0.01" in condition(plan.status, "Ready").message


def test_no_data_with_fail_fails_and_a_bad_query_needs_a_human() -> None:
    s = spec(trigger={**TRIGGER, "onNoData": "Fail"})
    dep, sets = armed_history(NOW)
    status = armed(s, {"web": seen(dep, sets)}).status
    assert status is not None
    none = Sample.failed(Problem.NO_DATA, "no series")
    plan = logic.after_trigger(s, status, ("web",), none, generation=1, now=NOW)
    assert plan.status is not None and plan.status.phase == RollbackPhase.FAILED
    assert condition(plan.status, "Stalled").reason == "TriggerFailed"

    several = Sample.failed(Problem.SEVERAL_SERIES, "3 series")
    plan = logic.after_trigger(s, status, ("web",), several, generation=1, now=NOW)
    assert plan.status is not None and plan.status.phase == RollbackPhase.ARMED
    assert condition(plan.status, "Stalled").reason == "InvalidQuery"
    assert [e.reason for e in plan.events] == ["InvalidQuery"]
    again = logic.after_trigger(s, plan.status, ("web",), several, generation=1, now=NOW)
    assert again.events == ()  # said once


def test_closing_the_window_forgets_the_streak() -> None:
    dep, sets = armed_history(NOW - timedelta(minutes=9))
    s2 = spec(trigger={**TRIGGER, "for": "5m"})
    status = armed(s2, {"web": seen(dep, sets)}).status
    assert status is not None
    status = logic.after_trigger(s2, status, ("web",), Sample.of(1), generation=1, now=NOW).status
    assert status is not None and status.trigger is not None and status.trigger.since == NOW
    plan = run(s2, status, {"web": seen(dep, sets)}, NOW + timedelta(minutes=2))
    assert plan.evaluate == ()
    assert plan.status is not None and plan.status.trigger is not None
    assert plan.status.trigger.since is None and plan.status.trigger.holds is None
    ready = condition(plan.status, "Ready")
    assert (ready.status, ready.reason) == ("True", "Armed")
    assert "no window open" in ready.message


# --- the hold that travels with the restore -------------------------------------------


def test_one_free_deployment_takes_its_hold_with_the_restore() -> None:
    dep, sets = history(images=["a", "b", "c"])
    observed = {"web": seen(dep, sets)}
    plan = run(spec(), None, observed)
    assert logic.hold_with_restore(plan, observed)
    assert plan.status is not None
    plan = logic.reconcile(
        spec(), plan.status, observed, holder=HOLDER, generation=1, now=NOW, instance="pod-a"
    )  # the next step, on the same read: the restore
    assert plan.apply is not None
    restored = apply_patch(dep, plan.apply[1])
    annotations = restored["metadata"]["annotations"]
    assert annotations[HOLD_ANNOTATION] == HOLDER
    assert annotations[HOLD_INSTANCE_ANNOTATION] == "pod-a"


def test_several_deployments_or_a_held_one_take_their_holds_first() -> None:
    web, web_sets = history("web", images=["a", "b", "c"])
    api, api_sets = history("api", images=["a", "b", "c"])
    both = {"web": seen(web, web_sets), "api": seen(api, api_sets)}
    plan = run(spec({"name": "web"}, {"name": "api"}), None, both)
    assert plan.hold and not logic.hold_with_restore(plan, both)
    mine = copy.deepcopy(web)
    mine["metadata"]["annotations"][HOLD_ANNOTATION] = HOLDER  # ours already (a crash)
    observed = {"web": seen(mine, web_sets)}
    plan = run(spec(), None, observed)
    assert plan.hold == ("web",) and not logic.hold_with_restore(plan, observed)


def test_a_deployment_taken_by_another_after_the_decision_waits_untouched() -> None:
    dep, sets = history(images=["a", "b", "c"])
    decided = run(spec(), None, {"web": seen(dep, sets)}).status
    taken = copy.deepcopy(dep)
    taken["metadata"]["annotations"][HOLD_ANNOTATION] = "ImageUpdate/other/u1"
    plan = run(spec(), decided, {"web": seen(taken, sets)})
    assert plan.apply is None
    # Pending again, its decision kept: it starts (and checks the template is still the
    # one decided on) once the hold is released.
    assert plan.status is not None and plan.status.phase == RollbackPhase.PENDING
    assert plan.status.targets[0].state == TargetState.PLANNED
    assert "ImageUpdate/other/u1" in plan.status.message()
