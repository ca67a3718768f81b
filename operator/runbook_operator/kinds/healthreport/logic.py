"""A HealthReport's decisions: what was measured -> each check's verdict -> the report.

Each `judge_*` takes what one check measured (plain numbers, the workloads' objects as
the API server sent them) and returns its `CheckResult`: passed, value, threshold and a
message with the numbers. `report()` folds the results into the status (Ready only when
all passed; CheckFailed naming the first failing check otherwise) and the events: a
Warning for a check that starts failing, a Normal one for a check that recovers, nothing
for a run that changed nothing. `due()` says when the next run is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ...core.conditions import with_state
from ...core.events import NORMAL, WARNING, Event
from ...core.fields import parse_duration, span
from ...core.prometheus import compare
from .api import (
    CheckResult,
    CheckSpec,
    HealthReportSpec,
    HealthReportStatus,
    ReportPhase,
)

__all__ = [
    "ALL_PASSED",
    "CHECK_FAILED",
    "CHECK_RECOVERED",
    "WorkloadSeen",
    "due",
    "failed",
    "judge_http",
    "judge_postgres",
    "judge_prometheus",
    "judge_redis",
    "judge_workloads",
    "report",
    "seen",
    "selector",
    "timed_out",
    "timeout_of",
]

Obj = dict[str, Any]
CHECK_FAILED = "CheckFailed"
CHECK_RECOVERED = "CheckRecovered"
ALL_PASSED = "AllPassed"


def timeout_of(spec: HealthReportSpec, check: CheckSpec) -> float:
    """Seconds this check may take: its own timeout, else the report's."""
    return parse_duration(check.timeout or spec.timeout).total_seconds()


def _num(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.4g}"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def _result(check: CheckSpec, passed: bool, now: datetime, **fields: Any) -> CheckResult:
    return CheckResult(name=check.name, type=check.type, passed=passed, at=now, **fields)


def failed(check: CheckSpec, message: str, now: datetime) -> CheckResult:
    """No measurement: the server could not be reached, refused, had no data."""
    return _result(check, False, now, value="error", message=message)


def timed_out(check: CheckSpec, seconds: float, now: datetime) -> CheckResult:
    return _result(check, False, now, value="timeout", message=f"timed out after {_num(seconds)}s")


# --- workloads ---------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadSeen:
    """One Deployment or StatefulSet, as the check saw it."""

    kind: str
    name: str
    found: bool = True
    desired: int = 0
    ready: int = 0
    not_running: Counter[str] = field(default_factory=Counter)
    """Pods not running, by phase (Pending, Failed, Unknown)."""
    restarts: int = 0
    """Containers that restarted within the window."""
    total_restarts: int = 0
    """Sum of the pods' restartCount."""
    warnings: int = 0
    """Warning events about the workload, its ReplicaSets or its pods within the window."""

    @property
    def pods_not_running(self) -> int:
        return sum(self.not_running.values())


def selector(workload: Obj) -> str:
    """A workload's spec.selector as a label selector string."""
    sel = (workload.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _event_time(event: Obj) -> datetime | None:
    meta = event.get("metadata") or {}
    return (
        _time(event.get("lastTimestamp"))
        or _time(event.get("eventTime"))
        or _time(meta.get("creationTimestamp"))
    )


def _about(event: Obj, kind: str, name: str, pods: set[str]) -> bool:
    obj = event.get("involvedObject") or {}
    what, who = obj.get("kind"), str(obj.get("name") or "")
    return (
        (what == kind and who == name)
        or (what == "Pod" and who in pods)
        or (what == "ReplicaSet" and kind == "Deployment" and who.startswith(f"{name}-"))
    )


def seen(
    kind: str,
    name: str,
    workload: Obj | None,
    pods: list[Obj],
    events: list[Obj],
    window: timedelta,
    now: datetime,
) -> WorkloadSeen:
    """What the check needs from a workload, its pods and the namespace's Warning events."""
    if workload is None:
        return WorkloadSeen(kind, name, found=False)
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    since = now - window
    not_running: Counter[str] = Counter()
    restarts = total = 0
    names: set[str] = set()
    for pod in pods:
        meta = pod.get("metadata") or {}
        names.add(str(meta.get("name")))
        pstatus = pod.get("status") or {}
        phase = str(pstatus.get("phase") or "Unknown")
        if phase not in ("Running", "Succeeded") and not meta.get("deletionTimestamp"):
            not_running[phase] += 1
        for container in pstatus.get("containerStatuses") or []:
            total += int(container.get("restartCount") or 0)
            ended = _time(
                ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            )
            if ended is not None and ended >= since:
                restarts += 1
    warnings = sum(
        1
        for e in events
        if e.get("type") == WARNING
        and _about(e, kind, name, names)
        and (_event_time(e) or now) >= since
    )
    return WorkloadSeen(
        kind,
        name,
        desired=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        ready=int(status.get("readyReplicas") or 0),
        not_running=not_running,
        restarts=restarts,
        total_restarts=total,
        warnings=warnings,
    )


def _describe(w: WorkloadSeen, window: str) -> str:
    if not w.found:
        return f"{w.kind} {w.name} not found"
    text = f"{w.name} {w.ready}/{w.desired} ready"
    if w.not_running:
        phases = ", ".join(f"{n} {p}" for p, n in sorted(w.not_running.items()))
        text += f", {w.pods_not_running} pods not running ({phases})"
    if w.restarts:
        text += f", {w.restarts} restarts in {window}"
    if w.warnings:
        text += f", {w.warnings} Warning events in {window}"
    return text


def judge_workloads(check: CheckSpec, found: list[WorkloadSeen], now: datetime) -> CheckResult:
    probe = check.workloads
    assert probe is not None
    window = span(parse_duration(probe.window))
    ready = sum(w.ready for w in found)
    desired = sum(w.desired for w in found)
    not_running = sum(w.pods_not_running for w in found)
    restarts = sum(w.restarts for w in found)
    warnings = sum(w.warnings for w in found)
    bad = [w for w in found if not w.found or w.ready < w.desired or w.pods_not_running]
    too_many: list[str] = []
    if probe.max_restarts is not None and restarts > probe.max_restarts:
        too_many.append(f"{restarts} restarts in {window} (at most {probe.max_restarts})")
    if probe.max_warning_events is not None and warnings > probe.max_warning_events:
        too_many.append(
            f"{warnings} Warning events in {window} (at most {probe.max_warning_events})"
        )
    passed = not bad and not too_many
    shown = bad if bad else found
    message = "; ".join([*(_describe(w, window) for w in shown), *too_many])
    if passed:
        message = f"all ready: {message}"
    return _result(
        check,
        passed,
        now,
        value=f"{ready}/{desired} ready",
        threshold="all ready, every pod running",
        message=message,
        measures={
            "ready": ready,
            "desired": desired,
            "podsNotRunning": not_running,
            "restarts": restarts,
            "warningEvents": warnings,
        },
    )


# --- postgres ----------------------------------------------------------------


def judge_postgres(
    check: CheckSpec,
    *,
    connections: int,
    max_connections: int,
    long_queries: int,
    longest: float | None,
    queries: list[str],
    replicas: int,
    replication_lag: float | None,
    now: datetime,
) -> CheckResult:
    probe = check.postgres
    assert probe is not None
    percent = 100.0 * connections / max_connections if max_connections else 0.0
    long_limit = parse_duration(probe.long_query).total_seconds()
    problems: list[str] = []
    if percent > probe.max_connections_percent:
        problems.append(
            f"{connections}/{max_connections} connections ({percent:.0f}%) is over "
            f"{probe.max_connections_percent}%"
        )
    if long_queries:
        longest_text = f" (longest {longest:.1f}s)" if longest is not None else ""
        problems.append(
            f"{long_queries} queries active longer than {span(timedelta(seconds=long_limit))}"
            f"{longest_text}"
        )
    lag = probe.max_replication_lag
    limit = parse_duration(lag).total_seconds() if lag else None
    if limit is not None and replication_lag is not None and replication_lag > limit:
        problems.append(f"replication lag {replication_lag:.1f}s is over {lag}")
    measures: dict[str, float] = {
        "connections": connections,
        "maxConnections": max_connections,
        "connectionsPercent": round(percent, 1),
        "longQueries": long_queries,
        "replicas": replicas,
    }
    if longest is not None:
        measures["longestQuerySeconds"] = round(longest, 1)
    if replication_lag is not None:
        measures["replicationLagSeconds"] = round(replication_lag, 1)
    state = f"{connections}/{max_connections} connections ({percent:.0f}%)"
    state += f", {long_queries} long queries"
    if replicas:
        lag = "unknown" if replication_lag is None else f"{replication_lag:.1f}s"
        state += f", {replicas} standbys (lag {lag})"
    message = (
        f"{probe.where}: " + "; ".join(problems) if problems else f"{probe.where} answers: {state}"
    )
    return _result(
        check,
        not problems,
        now,
        value=f"{connections}/{max_connections} connections ({percent:.0f}%)",
        threshold=f"<= {probe.max_connections_percent}%, no query over {probe.long_query}",
        message=message,
        measures=measures,
        queries=queries if probe.show_queries else [],
    )


# --- redis -------------------------------------------------------------------


def judge_redis(
    check: CheckSpec,
    *,
    used_memory: int,
    used_memory_human: str,
    maxmemory: int,
    ping_seconds: float,
    now: datetime,
) -> CheckResult:
    probe = check.redis
    assert probe is not None
    where = f"Redis at {probe.address}"
    measures: dict[str, float] = {
        "usedMemory": used_memory,
        "maxmemory": maxmemory,
        "pingSeconds": round(ping_seconds, 4),
    }
    used = used_memory_human or f"{used_memory}B"
    if not maxmemory:
        return _result(
            check,
            True,
            now,
            value=f"{used} (no maxmemory)",
            threshold=f"<= {probe.max_memory_percent}% of maxmemory",
            message=f"{where} answers PING in {_seconds(ping_seconds)}; {used} in use, "
            "no maxmemory set",
            measures=measures,
        )
    percent = 100.0 * used_memory / maxmemory
    measures["memoryPercent"] = round(percent, 1)
    passed = percent <= probe.max_memory_percent
    words = "" if passed else f" is over {probe.max_memory_percent}%"
    return _result(
        check,
        passed,
        now,
        value=f"{percent:.0f}% of maxmemory",
        threshold=f"<= {probe.max_memory_percent}%",
        message=f"{where}: {used_memory} of {maxmemory} bytes ({percent:.0f}%){words}; "
        f"PING in {_seconds(ping_seconds)}",
        measures=measures,
    )


# --- http --------------------------------------------------------------------


def judge_http(
    check: CheckSpec, *, url: str, status: int, seconds: float, now: datetime
) -> CheckResult:
    """`url` as it may be shown (credentials redacted)."""
    probe = check.http
    assert probe is not None
    wanted = probe.expected_status
    status_ok = status == wanted if wanted is not None else 200 <= status < 300
    limit = parse_duration(probe.max_latency).total_seconds() if probe.max_latency else None
    fast = limit is None or seconds <= limit
    expected = f"HTTP {wanted}" if wanted is not None else "HTTP 2xx"
    threshold = expected + (f" within {probe.max_latency}" if probe.max_latency else "")
    problems = []
    if not status_ok:
        problems.append(f"expected {expected}")
    if not fast:
        problems.append(f"slower than {probe.max_latency}")
    message = f"{url} answered HTTP {status} in {_seconds(seconds)}"
    if problems:
        message += ": " + ", ".join(problems)
    return _result(
        check,
        status_ok and fast,
        now,
        value=f"HTTP {status} in {_seconds(seconds)}",
        threshold=threshold,
        message=message,
        measures={"status": status, "latencySeconds": round(seconds, 4)},
    )


# --- prometheus --------------------------------------------------------------


def judge_prometheus(check: CheckSpec, value: float, now: datetime) -> CheckResult:
    probe = check.prometheus
    assert probe is not None
    passed = compare(value, probe.comparison, probe.threshold)
    threshold = f"{probe.comparison} {_num(probe.threshold)}"
    verdict = "holds" if passed else "does not hold"
    return _result(
        check,
        passed,
        now,
        value=_num(value),
        threshold=threshold,
        message=f"{probe.query} = {_num(value)}: {threshold} {verdict}",
        measures={"value": value},
    )


# --- the report --------------------------------------------------------------


def due(
    spec: HealthReportSpec, status: HealthReportStatus, generation: int | None, now: datetime
) -> float | None:
    """Seconds until the next run (0: now); None when a one-shot report has run."""
    if status.last_run is None or status.observed_generation != generation:
        return 0.0
    if spec.interval is None:
        return None
    nxt = status.next_run or status.last_run + parse_duration(spec.interval)
    return max((nxt - now).total_seconds(), 0.0)


def _events(
    old: HealthReportStatus, results: list[CheckResult], passing: bool, summary: str
) -> list[Event]:
    out: list[Event] = []
    for r in results:
        before = old.result(r.name)
        was_passing = before is None or before.passed
        if was_passing and not r.passed:
            out.append(Event(WARNING, CHECK_FAILED, f"check {r.name} failed: {r.message}"))
        elif before is not None and not before.passed and r.passed:
            out.append(Event(NORMAL, CHECK_RECOVERED, f"check {r.name} passes again: {r.message}"))
    if passing and old.phase != ReportPhase.PASSING:
        out.append(Event(NORMAL, ALL_PASSED, f"all {summary} checks passed"))
    return out


def report(
    spec: HealthReportSpec,
    status: HealthReportStatus,
    results: list[CheckResult],
    *,
    generation: int | None,
    now: datetime,
) -> tuple[HealthReportStatus, list[Event]]:
    """The status after a run (results in spec order), and the events of what changed."""
    passed = sum(1 for r in results if r.passed)
    summary = f"{passed}/{len(results)}"
    failing = [r for r in results if not r.passed]
    first = failing[0] if failing else None
    interval = parse_duration(spec.interval) if spec.interval else None
    common = {"observed_generation": generation, "last_run": now, "summary": summary}
    if first is None:
        conditions = with_state(
            status.conditions,
            "ready",
            ALL_PASSED,
            f"{summary} checks passed",
            generation=generation,
            now=now,
        )
    else:
        others = f"; {len(failing) - 1} more failing" if len(failing) > 1 else ""
        message = f"check {first.name} failed: {first.message}{others} ({summary} passed)"
        conditions = with_state(
            status.conditions,
            "stalled",
            CHECK_FAILED,
            message,
            generation=generation,
            now=now,
        )
    new = status.model_copy(
        update={
            **common,
            "phase": ReportPhase.PASSING if first is None else ReportPhase.FAILING,
            "checks": results,
            "first_failing": first.name if first else None,
            "next_run": now + interval if interval is not None else None,
            "conditions": conditions,
        }
    )
    return new, _events(status, results, first is None, summary)
