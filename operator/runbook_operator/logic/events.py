"""The Kubernetes Events a decision asks the handler to post on its object."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NORMAL", "WARNING", "Event"]

NORMAL, WARNING = "Normal", "Warning"


@dataclass(frozen=True)
class Event:
    """One Event: `type` is Normal or Warning, `reason` a CamelCase word, `message` a sentence."""

    type: str
    reason: str
    message: str
