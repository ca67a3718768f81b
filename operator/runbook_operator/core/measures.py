"""The domain metrics, read off the statuses a pass wrote: one pure mapping for every kind.

Nothing in a kind sets a metric. After each pass the controller hands this module the
object as it now is and the statuses the pass went through (the one it started from,
then each one the writer stored); it answers with plain samples that adapters.metrics
puts on /metrics:

- `gauges(kind, obj)` — what the object shows now: its phase, whether a window or an
  emergency scale is active, a backup's last success, size and duration, how old a
  schedule's last success may be. Every call gives the full set for the object, so a
  series the object no longer shows (the phase it left) is removed by the adapter.
- `counts(kind, obj, statuses)` — events, one per *transition the writer recorded*: a
  backup that became Failed, a Rollback that finished, an operation that became
  Blocked. A pass that writes nothing counts nothing, so a pass run twice, an operator
  restarted or a replica that takes over never counts an event a second time.

Labels are the object's namespace and name (plus kind, phase, result or rule where
named), so cardinality is bounded by the objects that exist; the adapter removes an
object's series when it is deleted. A scheduled backup's runs count their failures
under the schedule's name (`ops.mailscore.com/schedule`), so the counter outlives the
runs retention deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

from .fields import parse_duration

__all__ = [
    "METRICS",
    "Metric",
    "MetricType",
    "Owner",
    "Sample",
    "counts",
    "gauges",
]

Obj = dict[str, Any]
Owner = tuple[str, str, str]
"""(kind, namespace, name) of the object whose deletion removes a series."""

SCHEDULE_LABEL = "ops.mailscore.com/schedule"
DEFAULT_STARTING_DEADLINE = timedelta(hours=1)
"""DatabaseBackup's startingDeadline when the spec leaves it out (its api says so too)."""

BACKUP = "DatabaseBackup"
WINDOW = "MaintenanceWindow"
EMERGENCY = "EmergencyScale"
ROLLBACK = "Rollback"
BLOCKED = "Blocked"
FAILED = "Failed"
ROLLBACK_RESULTS = frozenset({"Completed", "Failed", "Refused"})


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"


@dataclass(frozen=True)
class Metric:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]


_OBJ = ("namespace", "name")

BACKUP_LAST_SUCCESS = Metric(
    "runbook_backup_last_success_timestamp_seconds",
    MetricType.GAUGE,
    "When the backup (or the schedule's newest run) last completed, seconds since the epoch.",
    _OBJ,
)
BACKUP_SIZE = Metric(
    "runbook_backup_size_bytes",
    MetricType.GAUGE,
    "Size of a completed backup's artifact, bytes.",
    _OBJ,
)
BACKUP_DURATION = Metric(
    "runbook_backup_duration_seconds",
    MetricType.GAUGE,
    "From start to completion of a completed backup, seconds.",
    _OBJ,
)
BACKUP_MAX_AGE = Metric(
    "runbook_backup_max_age_seconds",
    MetricType.GAUGE,
    "How old a schedule's last success may be: the time between its last and next slot "
    "plus its startingDeadline, seconds (absent while suspended or before its first slot).",
    _OBJ,
)
BACKUP_FAILURES = Metric(
    "runbook_backup_failures_total",
    MetricType.COUNTER,
    "Backups that failed; a scheduled run counts under its schedule's name.",
    _OBJ,
)
WINDOW_ACTIVE = Metric(
    "runbook_maintenance_window_active",
    MetricType.GAUGE,
    "1 while the MaintenanceWindow is Active, else 0.",
    _OBJ,
)
EMERGENCY_ACTIVE = Metric(
    "runbook_emergency_scale_active",
    MetricType.GAUGE,
    "1 while the EmergencyScale holds its targets scaled (Active), else 0.",
    _OBJ,
)
ROLLBACK_TOTAL = Metric(
    "runbook_rollback_total",
    MetricType.COUNTER,
    "Rollbacks that ended, by result (Completed, Failed, Refused).",
    (*_OBJ, "result"),
)
OPERATION_PHASE = Metric(
    "runbook_operation_phase",
    MetricType.GAUGE,
    "1 for the phase the operation is in now (one series per object).",
    ("kind", *_OBJ, "phase"),
)
POLICY_BLOCK = Metric(
    "runbook_policy_block_total",
    MetricType.COUNTER,
    "Operations that became Blocked, by the rule that blocked them (the Stalled reason).",
    ("kind", *_OBJ, "rule"),
)

METRICS: tuple[Metric, ...] = (
    BACKUP_LAST_SUCCESS,
    BACKUP_SIZE,
    BACKUP_DURATION,
    BACKUP_MAX_AGE,
    BACKUP_FAILURES,
    WINDOW_ACTIVE,
    EMERGENCY_ACTIVE,
    ROLLBACK_TOTAL,
    OPERATION_PHASE,
    POLICY_BLOCK,
)
"""Every domain metric, for the adapter to declare."""


@dataclass(frozen=True)
class Sample:
    metric: Metric
    labels: tuple[str, ...]
    """Values of `metric.labels`, in that order."""
    value: float
    """A gauge's value, or how much a counter goes up."""
    owner: Owner


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _phase(status: Obj | None) -> str:
    return str((status or {}).get("phase") or "")


def _condition(status: Obj, type_: str) -> Obj:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return {}


def _max_age(spec: Obj, status: Obj) -> float | None:
    """The age a schedule's last success may reach: one interval (last slot to next slot,
    so an irregular cron is judged by the gap it has now) plus the startingDeadline."""
    if not spec.get("schedule") or spec.get("suspend"):
        return None
    last, nxt = _when(status.get("lastScheduleTime")), _when(status.get("nextScheduleTime"))
    if last is None or nxt is None or nxt <= last:
        return None
    try:
        deadline = (
            parse_duration(str(spec["startingDeadline"]))
            if spec.get("startingDeadline")
            else DEFAULT_STARTING_DEADLINE
        )
    except ValueError:
        return None
    return (nxt - last + deadline).total_seconds()


def _backup(owner: Owner, obj: Obj, status: Obj) -> list[Sample]:
    ns, name = owner[1], owner[2]
    out: list[Sample] = []
    spec = obj.get("spec") or {}

    def add(metric: Metric, value: float) -> None:
        out.append(Sample(metric, (ns, name), value, owner))

    if spec.get("schedule"):
        success = _when(status.get("lastSuccessfulTime"))
        if success is not None:
            add(BACKUP_LAST_SUCCESS, success.timestamp())
        allowed = _max_age(spec, status)
        if allowed is not None:
            add(BACKUP_MAX_AGE, allowed)
        add(BACKUP_FAILURES, 0)  # a counter exists from the start: rate() needs its zero
        return out
    if _phase(status) == "Completed":
        done, started = _when(status.get("completedAt")), _when(status.get("startedAt"))
        if done is not None:
            add(BACKUP_LAST_SUCCESS, done.timestamp())
            if started is not None:
                add(BACKUP_DURATION, max((done - started).total_seconds(), 0.0))
        if status.get("sizeBytes") is not None:
            add(BACKUP_SIZE, float(status["sizeBytes"]))
    if _schedule_of(obj) is None:
        add(BACKUP_FAILURES, 0)
    return out


def _schedule_of(obj: Obj) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    parent = labels.get(SCHEDULE_LABEL)
    return str(parent) if parent else None


def gauges(kind: str, obj: Obj) -> list[Sample]:
    """Every gauge the object shows now (and the zero of its counters); the full set."""
    ns, name = _meta(obj)
    owner: Owner = (kind, ns, name)
    status = obj.get("status") or {}
    phase = _phase(status)
    out: list[Sample] = []
    if phase:
        out.append(Sample(OPERATION_PHASE, (kind, ns, name, phase), 1.0, owner))
    if kind == BACKUP:
        out += _backup(owner, obj, status)
    elif kind == WINDOW:
        out.append(Sample(WINDOW_ACTIVE, (ns, name), float(phase == "Active"), owner))
    elif kind == EMERGENCY:
        out.append(Sample(EMERGENCY_ACTIVE, (ns, name), float(phase == "Active"), owner))
    elif kind == ROLLBACK:  # counters exist from the start: increase() needs their zero
        out += [Sample(ROLLBACK_TOTAL, (ns, name, r), 0, owner) for r in sorted(ROLLBACK_RESULTS)]
    return out


def _rule(status: Obj) -> str:
    """What blocked it: the Stalled reason (NoticeTooShort, BackupMissing, NotApproved…)."""
    stalled = _condition(status, "Stalled")
    if stalled.get("status") == "True" and stalled.get("reason"):
        return str(stalled["reason"])
    return str(_condition(status, "Ready").get("reason") or "Unknown")


def counts(kind: str, obj: Obj, statuses: Sequence[Obj | None]) -> list[Sample]:
    """One increment per event among the transitions from statuses[0] (where the pass
    started) through each status the pass wrote, in order."""
    ns, name = _meta(obj)
    owner: Owner = (kind, ns, name)
    out: list[Sample] = []
    for before, after in pairwise(statuses):
        old, new = _phase(before), _phase(after)
        if new == old or not new:
            continue
        status = after or {}
        if new == BLOCKED:
            out.append(Sample(POLICY_BLOCK, (kind, ns, name, _rule(status)), 1.0, owner))
        if kind == BACKUP and new == FAILED:
            parent = _schedule_of(obj)
            who = (BACKUP, ns, parent) if parent else owner
            out.append(Sample(BACKUP_FAILURES, (ns, who[2]), 1.0, who))
        if kind == ROLLBACK and new in ROLLBACK_RESULTS:
            out.append(Sample(ROLLBACK_TOTAL, (ns, name, new), 1.0, owner))
    return out
