"""A MaintenanceWindow's life, as pure decisions: (spec, status, clock) -> next status + work.

Phases: Pending -> Starting -> Active -> Ending -> Completed, or Blocked (the
checklist was unmet at the start, or it could not start in time), Failed (a
step or the verification failed; the rest was still restored) and Cancelled.
A recurring window goes back to Pending with its next occurrence when one
ends.

One step of a pass is: `advance()` (transitions that need no I/O), then at most one
piece of `Work` for the handler (evaluate the checklist, or one step), then
`after_policy()` / `after_step()` judge what the handler saw. Everything is derived
from status and the clock, so a step can run at any time, twice, or after a crash,
and reach the same decision. lifecycle.py holds the transitions, after.py the
judgements, policy.py the checklist, steps.py the steps and their plans,
occurrences.py when the window happens.
"""

from __future__ import annotations

from .after import after_policy, after_release, after_silence_extended, after_step, invalid_spec
from .deletion import after_undo, deletion
from .lifecycle import (
    ERROR_GRACE,
    POLICY_INTERVAL,
    SILENCE_MARGIN,
    Event,
    Pass,
    Window,
    Work,
    WorkKind,
    advance,
    policy_due,
    wake_at,
)

__all__ = [
    "ERROR_GRACE",
    "POLICY_INTERVAL",
    "SILENCE_MARGIN",
    "Event",
    "Pass",
    "Window",
    "Work",
    "WorkKind",
    "advance",
    "after_policy",
    "after_release",
    "after_silence_extended",
    "after_step",
    "after_undo",
    "deletion",
    "invalid_spec",
    "policy_due",
    "wake_at",
]
