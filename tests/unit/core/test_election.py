"""Leader election decisions (client-go's rules) and the elector's fence, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runbook_operator.adapters.kube import Conflict
from runbook_operator.core import election
from runbook_operator.core.election import Observed, Record, claim, fenced, observe, released
from runbook_operator.core.leader import Elector
from runbook_operator.settings import Election

T0 = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
HELD = Record("other", 10, acquire_time=T0, renew_time=T0, transitions=3)


def test_no_lease_is_created_as_ours() -> None:
    record = claim(None, "me", 10, T0, now=0.0)
    assert record == Record("me", 10, acquire_time=T0, renew_time=T0, transitions=0)


def test_a_lease_held_by_another_waits_its_duration_on_our_clock() -> None:
    seen = observe(None, HELD, now=100.0)
    assert claim(seen, "me", 10, T0, now=109.9) is None
    took = claim(seen, "me", 10, T0 + timedelta(seconds=10), now=110.0)
    assert took is not None
    assert (took.holder, took.transitions) == ("me", 4)
    assert took.acquire_time == took.renew_time == T0 + timedelta(seconds=10)


def test_the_clock_restarts_only_when_the_record_changes() -> None:
    seen = observe(None, HELD, now=100.0)
    assert observe(seen, HELD, now=105.0) is seen
    renewed = Record("other", 10, acquire_time=T0, renew_time=T0 + timedelta(seconds=2))
    again = observe(seen, renewed, now=105.0)
    assert again.since == 105.0
    assert claim(again, "me", 10, T0, now=114.0) is None


def test_its_renew_time_is_never_compared_with_our_wall_clock() -> None:
    """A renewTime far in the past (a skewed clock) does not make the Lease ours early."""
    stale = Record("other", 10, renew_time=T0 - timedelta(days=1))
    assert claim(observe(None, stale, now=50.0), "me", 10, T0, now=51.0) is None


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    mine = Record("me", 10, acquire_time=T0, renew_time=T0, transitions=2)
    later = T0 + timedelta(seconds=2)
    renewed = claim(Observed(mine, 0.0), "me", 15, later, now=1000.0)
    assert renewed == Record("me", 15, acquire_time=T0, renew_time=later, transitions=2)


def test_a_released_lease_is_taken_at_once() -> None:
    gone = released(Record("other", 10, transitions=3), T0)
    assert (gone.holder, gone.duration) == ("", 1)
    took = claim(observe(None, gone, now=10.0), "me", 10, T0, now=10.0)
    assert took is not None and took.transitions == 4


def test_fenced_before_the_first_renewal_and_after_the_deadline() -> None:
    assert fenced(None, 7.0, now=0.0)
    assert not fenced(100.0, 7.0, now=106.9)
    assert fenced(100.0, 7.0, now=107.0)


def test_the_spec_round_trips_in_the_wire_format() -> None:
    record = Record("me", 10, acquire_time=T0, renew_time=T0, transitions=1)
    spec = election.to_spec(record)
    assert spec["renewTime"] == "2026-12-03T23:00:00.000000Z"
    assert spec["leaseDurationSeconds"] == 10
    assert election.from_spec(spec) == record
    assert election.from_spec({}) == Record("", 0)


def test_settings_refuse_a_renew_deadline_not_below_the_lease_duration() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        Election(lease_duration=5, renew_deadline=5, retry_period=1)
    assert Election(lease_duration=10, renew_deadline=7, retry_period=2).lease_duration == 10


# --- the elector against an in-memory Lease ------------------------------------------------


class MemoryLease:
    """The LeaseStore's three calls over one in-memory Lease, with resourceVersions."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None
        self.version = 0

    def get(self) -> tuple[dict[str, Any], str] | None:
        return None if self.spec is None else (dict(self.spec), str(self.version))

    def create(self, spec: dict[str, Any]) -> None:
        if self.spec is not None:
            raise Conflict("already exists")
        self.spec, self.version = dict(spec), self.version + 1

    def replace(self, spec: dict[str, Any], resource_version: str) -> None:
        if resource_version != str(self.version):
            raise Conflict("changed")
        self.spec, self.version = dict(spec), self.version + 1


def elector(store: MemoryLease, identity: str) -> Elector:
    settings = Election(identity=identity, lease_duration=3, renew_deadline=2, retry_period=0.5)
    return Elector(settings, store)  # type: ignore[arg-type]


def test_the_first_candidate_leads_and_the_second_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("runbook_operator.core.leader.time.monotonic", lambda: clock[0])
    store = MemoryLease()
    a, b = elector(store, "a"), elector(store, "b")
    assert a._try(clock[0]) and not b._try(clock[0])
    a._renewed_at = clock[0]
    a.leading.set()
    assert a.is_leader() and not a.is_fenced()
    assert b.is_fenced()
    clock[0] += 2.0  # a could not renew for its renew deadline: fenced, and lost for good
    assert a.is_fenced() and a.lost.is_set() and not a.is_leader()
    clock[0] += 0.9  # b has not yet seen the Lease unchanged for its duration
    assert not b._try(clock[0])
    clock[0] += 0.1
    assert b._try(clock[0])
    assert store.spec is not None
    assert (store.spec["holderIdentity"], store.spec["leaseTransitions"]) == ("b", 1)


def test_a_leader_that_finds_another_holder_steps_down(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryLease()
    a = elector(store, "a")
    assert a._try(0.0)
    a._renewed_at = 0.0
    a.leading.set()
    assert store.spec is not None
    store.spec = {**store.spec, "holderIdentity": "b"}
    store.version += 1
    assert not a._try(0.1)
    assert a.lost.is_set()


def test_release_hands_the_lease_over(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [10.0]
    monkeypatch.setattr("runbook_operator.core.leader.time.monotonic", lambda: clock[0])
    store = MemoryLease()
    a = elector(store, "a")
    assert a._try(clock[0])
    a._renewed_at = clock[0]
    a.leading.set()
    a.release()
    assert store.spec is not None
    assert (store.spec["holderIdentity"], store.spec["leaseDurationSeconds"]) == ("", 1)
    assert not a.is_leader()
    assert elector(store, "b")._try(clock[0])
