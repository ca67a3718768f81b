"""Named points where the operator can be made to die, to prove crash safety exactly.

Set `RUNBOOK_FAILPOINTS` to a comma-separated list of names (e.g.
`maintenancewindow-step-4`) and the operator exits at once with status 137, as if
SIGKILLed, the first time it passes one of them: no cleanup, no status write, no
graceful stop. The e2e crash tests use it to stop the operator between a recorded
step and the next one, which a kill from outside can only hit by luck when steps
follow each other within milliseconds. Unset (always, in production) it costs one
set lookup.
"""

from __future__ import annotations

import os

__all__ = ["hit"]

_ARMED = frozenset(
    name.strip() for name in os.environ.get("RUNBOOK_FAILPOINTS", "").split(",") if name.strip()
)


def hit(name: str) -> None:
    """Die here if this failpoint is armed."""
    if name in _ARMED:
        os._exit(137)
