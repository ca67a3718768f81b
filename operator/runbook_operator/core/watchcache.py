"""What the operator's own watches have delivered: the newest copy of each workload of the
namespaces it serves.

The runtime watches Deployments and StatefulSets anyway, to wake the operations that
wait on them (core.interest); it keeps the last copy each event brought here:
- a new operation decides its first step without reading its targets first, which was
  a round trip before every first change;
- a pass woken by a target's watch event reads the very copy that woke it, instead of
  the API server again, once per event of every target.

A copy may be behind the API server by the events still in flight, and a workload not
seen yet (the watch's first listing still under way, a namespace just served) is not
here: the caller reads the API server then. A stale copy is safe where it is used:
every change decided on it is written with the resourceVersion it was read at
(core.holding), so it costs a conflict and a fresh read, never a lost update; and the
event that makes it stale wakes the operation again. Nothing here answers "there is
none": absence is always asked of the API server.

Kopf's indices were tried for this and let go: no handler runs before every index holds
its initial listing, and every object's arrival wakes every waiting event, so an
operator starting beside 3,000 Deployments took 60 s to make its first change (3 s
without).
"""

from __future__ import annotations

import copy

from .ports import Obj

__all__ = ["KINDS", "WatchCache", "lean"]

KINDS = frozenset({"Deployment", "StatefulSet"})
"""The kinds kept (those the runtime watches for their rollouts)."""

Key = tuple[str, str, str]
"""(kind, namespace, name)"""


def lean(body: Obj) -> Obj:
    """A watched object as the operator keeps it (here, and in each kind's queue,
    core.controller): without managedFields, which no decision reads and which is often
    the larger part of an object, so thousands of kept objects carried every field
    manager's field set for nothing (who asked is admission's stamp, core.identity, not a
    field manager). The watch's own copy is left as it was."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return body
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


class WatchCache:
    """Written by the event loop (`observe`), read by the passes' threads: each entry is
    replaced whole, never changed in place, and a read deep-copies what it returns, so a
    caller may keep or change it."""

    def __init__(self) -> None:
        self._objects: dict[Key, Obj] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def observe(self, kind: str, event_type: str | None, body: Obj) -> None:
        """A watch event of a workload: keep its copy, or drop it once deleted. A deleted
        object's late event never removes its successor under the same name."""
        if kind not in KINDS:
            return
        meta = body.get("metadata") or {}
        key = (kind, str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED":
            kept = self._objects.get(key)
            if kept is not None and _uid(kept) == meta.get("uid"):
                del self._objects[key]
            return
        self._objects[key] = lean(body)

    def workload(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The workload's newest copy; None when not known here (read it from the API
        server: it may not exist)."""
        found = self._objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The API server says it is gone (a deletion the watch missed while reconnecting)."""
        self._objects.pop((kind, namespace, name), None)


def _uid(obj: Obj) -> object:
    return (obj.get("metadata") or {}).get("uid")
