"""Transitional: per-object locks for the handlers not yet on the operation core."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["object_lock"]


def object_lock(memo: Any, uid: str) -> threading.Lock:
    """One lock per object, so a timer and a change handler never act at once."""
    with memo.locks_guard:
        return memo.locks.setdefault(uid, threading.Lock())  # type: ignore[no-any-return]
