"""What the operator's own watches have delivered: the newest copy of each workload and
HorizontalPodAutoscaler of the namespaces it serves.

The runtime watches Deployments and StatefulSets anyway, to wake the operations that
wait on them (core.interest). Kopf keeps the newest copy of each in an index
(core.runtime registers them) and runs no handler before every index holds the
complete initial listing, so an answer here is as fresh as the last watch event:
- a new operation decides its first step without reading its targets first, which was
  a round trip before every first change;
- a pass woken by a target's watch event reads the very copy that woke it, instead of
  the API server again, once per event of every target.

A copy may be behind the API server by the events still in flight. That is safe where it
is used: every change decided on it is written with the resourceVersion it was read at
(core.holding), so a stale copy costs a conflict and a fresh read, never a lost update;
and the event that makes it stale wakes the operation again.

An empty cache (`WatchCache()`, unit tests, a process whose indices are not bound yet)
knows nothing: every question answers None and the caller reads the API server.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from .ports import Obj

__all__ = [
    "HPA_INDEX",
    "WORKLOAD_INDICES",
    "WatchCache",
    "by_name",
    "by_namespace",
    "trimmed",
]

Index = Mapping[Any, Collection[Obj]]
"""A Kopf index, as far as it is read here: key -> the values indexed under it."""

WORKLOAD_INDICES = {"Deployment": "runbook_deployments", "StatefulSet": "runbook_statefulsets"}
"""The Kopf index of each workload kind, by the id its handler is registered with."""
HPA_INDEX = "runbook_hpas"


def trimmed(body: Mapping[str, Any]) -> Obj:
    """What is kept of a watched object: all of it but `managedFields`, which no decision
    reads and which is often the larger part of a Deployment."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return {**body, "metadata": meta}


def by_name(body: Mapping[str, Any]) -> dict[tuple[str, str], Obj]:
    """A workload's index entry: (namespace, name) -> the object."""
    meta = body.get("metadata") or {}
    return {(str(meta.get("namespace")), str(meta.get("name"))): trimmed(body)}


def by_namespace(body: Mapping[str, Any]) -> dict[str, Obj]:
    """An HPA's index entry: namespace -> the object (each namespace's HPAs together)."""
    return {str((body.get("metadata") or {}).get("namespace")): trimmed(body)}


class WatchCache:
    """Reads of the indices. Called from the passes' threads while the event loop updates
    the indices: each read copies what it returns in one step (a C-level iteration of a
    dict, which the event loop cannot interleave with), then deep-copies it, so a caller
    may keep or change what it got."""

    def __init__(self, indices: Mapping[str, Index] | None = None) -> None:
        self._indices: Mapping[str, Index] = indices or {}

    def workload(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The workload's newest copy; None when not known here (read it from the API
        server: it may not exist, or exist twice under one name while a deleted one's
        event is in flight)."""
        index = self._indices.get(WORKLOAD_INDICES.get(kind, ""))
        found = _values(index, (namespace, name))
        return copy.deepcopy(found[0]) if found is not None and len(found) == 1 else None

    def hpas(self, namespace: str) -> list[Obj] | None:
        """The namespace's HPAs (perhaps none); None when this cache does not follow them."""
        index = self._indices.get(HPA_INDEX)
        if index is None:
            return None
        return copy.deepcopy(_values(index, namespace) or [])


def _values(index: Index | None, key: object) -> list[Obj] | None:
    if index is None:
        return None
    try:
        store = index[key]
    except KeyError:
        return None
    return list(store)
