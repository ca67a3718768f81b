"""CacheFlush's pure decisions: the guard, the command, the words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from runbook_operator.kinds.cacheflush import logic
from runbook_operator.kinds.cacheflush.api import CacheFlushSpec, CacheFlushStatus

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def spec(**extra: Any) -> CacheFlushSpec:
    body: dict[str, Any] = {"redis": {"host": "redis"}, **extra}
    return CacheFlushSpec.model_validate(body)


def window(phase: str | None) -> dict[str, Any]:
    return {"metadata": {"name": "tonight"}, "status": {"phase": phase} if phase else {}}


def test_the_address_is_what_confirm_must_say() -> None:
    assert spec(confirm="x").redis.address == "redis:6379/0"
    ref = CacheFlushSpec.model_validate({"redis": {"host": "r", "port": 7000, "db": 3}})
    assert ref.redis.address == "r:7000/3"


def test_an_active_window_allows() -> None:
    allowed = logic.guard(spec(maintenanceWindow="tonight"), window("Active"))
    assert allowed == logic.Authorization(
        "MaintenanceWindow/tonight", "MaintenanceWindow tonight is Active"
    )


@pytest.mark.parametrize(
    ("found", "words"),
    [
        (None, "MaintenanceWindow tonight does not exist"),
        (window(None), "MaintenanceWindow tonight is not started"),
        (window("Pending"), "MaintenanceWindow tonight is Pending"),
        (window("Completed"), "MaintenanceWindow tonight is Completed"),
    ],
)
def test_a_window_not_active_blocks_and_waits(found: dict[str, Any] | None, words: str) -> None:
    refusal = logic.guard(spec(maintenanceWindow="tonight"), found)
    assert isinstance(refusal, logic.Refusal) and not refusal.final
    assert refusal.reason == "WaitingForWindow" and refusal.message.startswith(words)


def test_confirm_allows_even_when_the_window_is_not_active() -> None:
    allowed = logic.guard(spec(maintenanceWindow="tonight", confirm="redis:6379/0"), None)
    assert isinstance(allowed, logic.Authorization) and allowed.by == "confirm"


def test_a_wrong_confirm_without_a_window_is_refused_for_good() -> None:
    refusal = logic.guard(spec(confirm="redis:6379"), None)
    assert isinstance(refusal, logic.Refusal) and refusal.final
    assert refusal.reason == "NotAuthorized" and "'redis:6379/0'" in refusal.message


def test_a_wrong_confirm_with_a_window_waits_for_the_window() -> None:
    refusal = logic.guard(spec(maintenanceWindow="tonight", confirm="nope"), window("Pending"))
    assert isinstance(refusal, logic.Refusal) and not refusal.final


@pytest.mark.parametrize(
    ("extra", "major", "command"),
    [
        ({}, 7, "FLUSHDB ASYNC"),
        ({}, 4, "FLUSHDB ASYNC"),
        ({}, 3, "FLUSHDB"),
        ({"keyPattern": "session:*"}, 7, "SCAN MATCH session:* + UNLINK"),
    ],
)
def test_the_command_fits_the_server(extra: dict[str, Any], major: int, command: str) -> None:
    assert logic.command(spec(confirm="x", **extra), major) == command


def test_blocked_news_once() -> None:
    refusal = logic.Refusal("WaitingForWindow", "waiting", final=False)
    first, events = logic.blocked_or_refused(
        spec(maintenanceWindow="w"), CacheFlushStatus(), refusal, generation=1, now=NOW
    )
    assert first.phase == "Blocked" and len(events) == 1 and events[0].warning
    again, quiet = logic.blocked_or_refused(
        spec(maintenanceWindow="w"), first, refusal, generation=1, now=NOW
    )
    assert quiet == [] and again.phase == "Blocked"


def test_completed_says_before_removed_and_after() -> None:
    s = spec(confirm="x", keyPattern="s:*")
    before = logic.measure(10, 2048, "2.00K", NOW)
    started, _ = logic.flushing(
        s,
        CacheFlushStatus(),
        logic.Authorization("confirm", "confirm names redis:6379/0"),
        before,
        "SCAN MATCH s:* + UNLINK",
        None,
        generation=1,
        now=NOW,
    )
    assert started.phase == "Flushing" and started.before == before
    done, events = logic.completed(
        s, started, logic.measure(0, 1024, "1.00K", NOW), 10, generation=1, now=NOW
    )
    assert done.is_done() and done.is_ready() and done.removed == 10
    assert events[0].message == (
        "flushed keys matching 's:*' in Redis redis:6379/0: 10 keys before, 10 keys removed, "
        "0 after"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"redis": {"host": "redis"}, "confirm": "x", "keyPattern": "a b"},
        {"redis": {"host": "redis", "db": -1}, "confirm": "x"},
        {"redis": {"host": "red is"}, "confirm": "x"},
        {"redis": {"host": "redis", "port": 0}, "confirm": "x"},
        {"redis": {"host": "redis", "credentials": {}}, "confirm": "x"},
        {"confirm": "x"},
    ],
)
def test_malformed_specs_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CacheFlushSpec.model_validate(body)
