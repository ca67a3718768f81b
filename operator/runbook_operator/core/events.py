"""The Kubernetes Events a decision asks for, as plain values (pure)."""

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

    @property
    def warning(self) -> bool:
        return self.type == WARNING
