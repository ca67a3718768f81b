"""The Events the operator posts, as the tests read them.

The operator writes an operation's status first and posts the event that tells of it
afterwards, in the same pass. A test that has just seen the status must therefore wait for
the event, never read the list once: `wait_event` and `wait_reasons` do that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kubernetes import client

from support.wait import wait_for

__all__ = ["events", "reasons", "wait_event", "wait_reasons"]

Event = dict[str, Any]


def events(api: Any, namespace: str, name: str | None = None) -> list[Event]:
    """The Events in a namespace (about one object when `name` is given), oldest first."""
    selector = f"involvedObject.name={name}" if name else None
    response = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=selector, _preload_content=False
    )
    items: list[Event] = json.loads(response.data)["items"]
    return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def reasons(api: Any, namespace: str, name: str) -> list[str]:
    """The reasons of the events about one object, oldest first."""
    return [e["reason"] for e in events(api, namespace, name)]


def wait_event(api: Any, namespace: str, name: str, reason: str, timeout: float = 30) -> Event:
    """The first event about `name` with `reason`, once it has been posted."""

    def find() -> Event | None:
        return next((e for e in events(api, namespace, name) if e["reason"] == reason), None)

    return wait_for(find, timeout=timeout, what=f"event {reason} on {name}")


def wait_reasons(
    api: Any, namespace: str, name: str, expected: Iterable[str], timeout: float = 30
) -> list[str]:
    """The reasons about `name` once every one of `expected` is among them."""
    wanted = set(expected)

    def seen() -> list[str] | None:
        found = reasons(api, namespace, name)
        return found if wanted <= set(found) else None

    try:
        return wait_for(seen, timeout=timeout, what=f"events {sorted(wanted)} on {name}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nposted: {reasons(api, namespace, name)}") from None
