"""A one-shot operation runs once, even when Git creates it again.

Argo CD's self-heal and Flux's reconciliation put back an object that was deleted while
it is still in Git. For a one-shot operation (EmergencyScale, Rollback, Restart,
ImageUpdate, CacheFlush, DatabaseRestore) that would run it a second time. So each such
operation has a *run key*: `spec.runId` when it is given, else a hash of its spec. When
an operation that acted is deleted, its run key is remembered in the namespace's
`runbook-runs` ConfigMap (before its finalizer goes, so no re-creation can come first).
A new object of the same kind and name with the same run key is not run: its phase is
`Skipped`, Ready=True with reason `AlreadyRan`, and the message says how to run it again
on purpose: give `spec.runId` a new value.

This guard is on for objects that Argo CD or Flux manage (their tracking annotation or
labels are on them) and for any object with a `spec.runId`. An object someone creates by
hand without a runId runs every time it is created, as they would expect.

Pure: the I/O is in `core.rerunning`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, ValidationError

from .gitops import DEFAULT_ARGOCD_NAMESPACE, NOT_ACTING, SKIPPED, owner_of
from .model import ApiModel

__all__ = [
    "LEDGER",
    "NOT_ACTED",
    "SKIPPED",
    "Entry",
    "acted",
    "entry_key",
    "guarded",
    "previous_run",
    "record",
    "run_key",
    "skipped_message",
]

LEDGER = "runbook-runs"
"""The ConfigMap, in each namespace, that remembers the runs of deleted operations."""
ALREADY_RAN = "AlreadyRan"
NOT_ACTED = NOT_ACTING
"""Phases in which an operation has changed nothing yet: deleting it there forgets it, so
the same object created again is a new attempt (an armed Rollback arms again)."""
KEEP = timedelta(days=30)
"""How long a run is remembered (a ConfigMap holds about 6,000 of them)."""
RUN_ID = "runId"
CONTROL_FIELDS = frozenset({"notify", RUN_ID})
"""Spec fields that do not change what the operation does, left out of the hash."""


class Entry(ApiModel):
    """One remembered run."""

    run: Annotated[str, Field(max_length=128)]
    """The run key: spec.runId, or `spec:` and the spec's hash."""
    uid: str
    """The uid of the object that ran."""
    phase: str
    """Where it ended (or stood when it was deleted)."""
    at: datetime
    """When it was deleted."""


def run_key(spec: Mapping[str, Any] | None) -> str:
    """`spec.runId` when given, else `spec:` and 16 hex digits of the spec's sha256
    (without the fields that do not change what it does)."""
    spec = dict(spec or {})
    run_id = spec.get(RUN_ID)
    if isinstance(run_id, str) and run_id:
        return run_id
    kept = {k: v for k, v in spec.items() if k not in CONTROL_FIELDS}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return "spec:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def guarded(meta: Mapping[str, Any], spec: Mapping[str, Any] | None) -> bool:
    """Whether a re-created object must not run again: it has a runId, or Git manages it."""
    managed = owner_of(meta, DEFAULT_ARGOCD_NAMESPACE) is not None
    return bool((spec or {}).get(RUN_ID)) or managed


def entry_key(kind: str, name: str) -> str:
    """The ConfigMap key of one kind and name (ConfigMap keys allow `.`; names do too)."""
    return f"{kind.lower()}.{name}"


def acted(phase: str | None) -> bool:
    """Whether an operation in this phase changed anything (so a re-creation must not)."""
    return phase is not None and phase not in NOT_ACTED


def _entry(data: Mapping[str, str], key: str) -> Entry | None:
    raw = data.get(key)
    if not raw:
        return None
    try:
        return Entry.model_validate_json(raw)
    except ValidationError:
        return None  # not ours to read: a hand edit; the guard fails open, and says nothing


def previous_run(data: Mapping[str, str], kind: str, name: str, run: str, uid: str) -> Entry | None:
    """The remembered run that this object repeats, if any (never the object itself)."""
    found = _entry(data, entry_key(kind, name))
    if found is None or found.run != run or found.uid == uid:
        return None
    return found


def record(
    data: Mapping[str, str], kind: str, name: str, entry: Entry, now: datetime
) -> dict[str, str | None]:
    """The merge patch of the ledger's data: this run, and entries past KEEP removed."""
    patch: dict[str, str | None] = {
        key: None for key in _expired(data, now) if key != entry_key(kind, name)
    }
    patch[entry_key(kind, name)] = entry.model_dump_json(by_alias=True)
    return patch


def _expired(data: Mapping[str, str], now: datetime) -> Iterable[str]:
    for key in data:
        entry = _entry(data, key)
        if entry is not None and now - entry.at > KEEP:
            yield key


def skipped_message(kind: str, name: str, previous: Entry) -> str:
    when = previous.at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"Not run: this {kind} ran already as {name} (uid {previous.uid}, {previous.phase}, "
        f"deleted {when}) with the same {_what(previous.run)}; it was created again, most "
        f"likely by Git, and nothing was changed. To run it again on purpose, give "
        f"spec.runId a new value."
    )


def _what(run: str) -> str:
    return "spec" if run.startswith("spec:") else f"runId {run!r}"
