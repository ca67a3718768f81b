"""DatabaseBackup decisions, pure: a one-shot's next step, a schedule's runs and
retention, and what a deletion cleans up. The handlers observe, call these, write the
status they return, then do what it records.

- oneshot: Start -> Dump -> Verify -> Completed (or Failed), attempts and retries;
- schedule: the slot due, missed slots, retention, the child object of a slot;
- deletion: the finalizer's plan, from status alone (the spec only as a fallback).
"""

from __future__ import annotations

from .deletion import Cleanup, cleanup
from .oneshot import (
    VERIFIED,
    Action,
    Dumped,
    compare_counts,
    completed,
    destination_of,
    dumped,
    failed,
    human_size,
    next_action,
    recorded,
    retried,
    scratch_database,
    stamp,
    started,
    verified,
)

__all__ = [
    "VERIFIED",
    "Action",
    "Cleanup",
    "Dumped",
    "cleanup",
    "compare_counts",
    "completed",
    "destination_of",
    "dumped",
    "failed",
    "human_size",
    "next_action",
    "recorded",
    "retried",
    "scratch_database",
    "stamp",
    "started",
    "verified",
]
