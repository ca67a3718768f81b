"""Reading the hold annotation an operation puts on a workload it changes."""

from __future__ import annotations

__all__ = ["HOLD", "operation_of"]

HOLD = "ops.mailscore.com/held-by"


def operation_of(hold: str | None) -> str | None:
    """The `Kind/name` a hold names. Its value is `Kind/name/uid`: the uid tells an
    operation from one created again under the same name."""
    if hold is None:
        return None
    kind, name, uid = [*hold.split("/"), ""][:3]
    assert uid, f"a hold without the operation's uid: {hold}"
    return f"{kind}/{name}"
