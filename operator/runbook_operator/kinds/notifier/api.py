"""Notifier: a destination for the messages operations send (the models are the core's,
`core.notify`, since every kind's passes deliver through them)."""

from __future__ import annotations

from typing import ClassVar

from ...core.conditions import StatusBase
from ...core.notify import NotifierSpec
from ...core.resource import Column, Resource

__all__ = ["NOTIFIER", "NotifierSpec", "NotifierStatus"]


class NotifierStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset()

    target: str | None = None
    """Where messages go (Slack, a webhook, a Statuspage page), for `kubectl get`."""
    moments: list[str] | None = None
    """The moments it sends."""


NOTIFIER = Resource(
    kind="Notifier",
    plural="notifiers",
    short_names=("notif",),
    spec=NotifierSpec,
    status=NotifierStatus,
    operation=False,
    description=(
        "Where operations tell people of what happens to them: a Slack incoming webhook, a "
        "JSON webhook, or a Statuspage page (an incident opened, updated and resolved). "
        "Operations name it in spec.notify; with default: true it covers every operation "
        "of its namespace that names none."
    ),
    columns=(
        Column("Target", ".status.target"),
        Column("Default", ".spec.default", type="boolean"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
