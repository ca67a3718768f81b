"""The one status writer: synchronous, optimistic, only what changed.

Modelled on CloudNativePG's `PatchWithOptimisticLock`. A pass holds the object as it
last read (or wrote) it; `write(status)` compares the new status with the one held,
returns at once when nothing changed (an idle pass costs no request), and otherwise
sends the JSON merge patch between the two together with the resourceVersion it
holds. The API server refuses it (409) if anything changed since; then `Stale` is
raised and the pass is decided again from a fresh read (core.controller), rather
than writing a decision taken on an old object. On success the caller's copy is the
server's answer, so the next write of the same pass carries the new resourceVersion.

It writes inside the pass, before the change it records is made: "recorded before
changed" holds by construction, with no cache, digest or timing guard. The same
optimistic lock guards the finalizer (`ensure_finalizer`, `remove_finalizer`).

The finalizer may also be added beside the pass's first steps (`add_finalizer_beside`):
the patch goes out at once, and the writer's next write, which precedes the pass's first
change, waits for its answer first (`settle`). A kind whose first pass changes nothing
before its first status write but holds asks for this (Kind.finalizer_beside): its reads
and holds no longer wait behind the finalizer's round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..adapters.kube import Conflict, KubeError, NotFound
from . import fanout
from .conditions import StatusBase
from .names import FINALIZER
from .ports import KubePort, Obj
from .resource import Resource

__all__ = ["Stale", "StatusWriter", "merge_patch"]

S = TypeVar("S", bound=StatusBase)


class Stale(KubeError):
    """The object changed since it was read: decide again from a fresh read."""


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns `old` into `new`: maps are merged key by key
    (at every depth), keys that went away become null, anything else is replaced whole."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            out[key] = value
        elif old[key] != value:
            out[key] = merge_patch(old[key], value)
    return out


class StatusWriter:
    """Writes one object's status and finalizer; `obj` is always the latest copy."""

    def __init__(self, kube: KubePort, resource: Resource, obj: Obj) -> None:
        self.kube = kube
        self.resource = resource
        self.obj = obj
        self.written: list[Obj] = []
        """Each status this writer stored, in order (the moments a pass went through)."""
        self.on_write: Callable[[Obj], None] | None = None
        """Told of each write as soon as the API server answered it (the controller, so
        the write's own watch event is known as an echo even while the pass runs)."""
        self.before_write: Callable[[Obj], None] | None = None
        """Told of each status the kind is about to write, before it goes out (the
        controller: GitOps owners are put back before the write that ends the changes)."""
        self.staged: dict[str, Any] = {}
        """Top-level status fields that go out with the next status write (`stage`)."""
        self._on_staged: list[Callable[[], None]] = []
        """Called when the pass ends if the staged fields were stored (`stage`'s `then`)."""
        self._stored: list[Callable[[], None]] = []
        """The `then` of staged fields a write stored: called by `ended`."""
        self.told: Callable[[], None] | None = None
        """Waits for the Events the pass decided so far (the recorder's `settle`)."""
        self._adding: Future[Obj] | None = None
        """The finalizer's patch while it runs beside the pass (`add_finalizer_beside`)."""

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    def _held(self) -> dict[str, Any]:
        raw = self.obj.get("status") or {}
        return self.resource.status.model_validate(raw).wire()

    def write(self, status: StatusBase) -> bool:
        """Patch the status to `status`; False when there was nothing to write."""
        new = status.wire()
        if self.before_write is not None:
            self.before_write(new)  # may write fields of its own: the diff comes after
        diff = merge_patch(self._held(), new)
        # A field the server has never stored reads back as its default, so the diff
        # against the parsed copy misses it (`rolledBack: false` would never be written).
        # Empty lists and maps say nothing that absence does not (and a merge patch cannot
        # store an empty map, which would then be sent again by every pass).
        stored = self.obj.get("status") or {}
        for key, value in new.items():
            if key not in stored and key not in diff and value not in ({}, []):
                diff[key] = value
        if not diff:
            return False
        self._patch_status(diff)
        self.written.append(dict(self.obj.get("status") or {}))
        return True

    def write_fields(self, fields: dict[str, Any]) -> bool:
        """Patch top-level status fields the kind's model does not hold (the core's own
        records, e.g. `notifications`); False when they already hold these values."""
        stored = self.obj.get("status") or {}
        diff = {k: merge_patch(stored.get(k), v) for k, v in fields.items() if stored.get(k) != v}
        if not diff:
            return False
        self._patch_status(diff)
        return True

    def stage(self, fields: dict[str, Any], then: Callable[[], None] | None = None) -> None:
        """Top-level status fields that record no change of their own (who asked): they
        ride on the pass's next status write, which precedes its first change, instead of
        costing a round trip of their own before it. `flush` writes them if none came.
        `then` (the Event that tells them) is called when the pass ends (`ended`), if a
        write stored them: neither that write nor the change after it waits for, or
        shares the API server with, its round trip, and a write refused as stale tells
        nothing (the pass decided again stages them again)."""
        stored = self.obj.get("status") or {}
        self.staged.update({k: v for k, v in fields.items() if stored.get(k) != v})
        if then is not None:
            self._on_staged.append(then)

    def flush(self) -> bool:
        """Write what is staged and no write took along; False when nothing was."""
        fields, self.staged = self.staged, {}
        return bool(fields) and self.write_fields(fields)

    def _patch_status(self, diff: dict[str, Any]) -> None:
        self.settle()
        body = {"metadata": {"resourceVersion": self.obj["metadata"]["resourceVersion"]}}
        stored = self.obj.get("status") or {}
        staged = {k: merge_patch(stored.get(k), v) for k, v in self.staged.items()}
        body["status"] = {**staged, **diff}
        try:
            self.obj = self.kube.patch_custom_status(
                self.resource.plural, self.namespace, self.name, body
            )
        except Conflict as exc:
            raise Stale(f"{self.resource.kind} {self.name} changed while being written") from exc
        self.staged.clear()
        self._wrote()
        self._stored += self._on_staged
        self._on_staged = []

    def ended(self) -> None:
        """The pass is over: what tells the staged fields it stored is called now."""
        stored, self._stored = self._stored, []
        for then in stored:
            then()

    def _finalizers_patch(self, finalizers: list[str]) -> Callable[[], Obj]:
        meta = self.obj["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": finalizers}}
        return functools.partial(
            self.kube.patch_custom, self.resource.plural, self.namespace, self.name, patch
        )

    def _finalizers(self, finalizers: list[str]) -> None:
        self.settle()
        self._answered(self._finalizers_patch(finalizers))

    def _answered(self, call: Callable[[], Obj]) -> None:
        try:
            self.obj = call()
        except (Conflict, NotFound) as exc:  # decided again on a fresh read: it may be gone
            raise Stale(f"{self.resource.kind} {self.name} changed while being written") from exc
        self._wrote()

    def _wrote(self) -> None:
        if self.on_write is not None:
            self.on_write(self.obj)

    def has_finalizer(self) -> bool:
        return FINALIZER in (self.obj["metadata"].get("finalizers") or [])

    def ensure_finalizer(self) -> None:
        """Before the first change: deletion must wait until everything is put back."""
        self.settle()
        if not self.has_finalizer():
            self._finalizers(self._with_ours())

    def add_finalizer_beside(self) -> None:
        """Send our finalizer's patch now and go on: the next write waits for its answer
        (`settle`), so it is on before any change that write records."""
        if self._adding is None and not self.has_finalizer():
            self._adding = fanout.start(self._finalizers_patch(self._with_ours()))

    def settle(self) -> None:
        """What the pass sent beside it is answered: its Events are posted (`told`),
        and the finalizer is on (its answer is `obj`), or its error is raised here:
        Stale when the object changed or went meanwhile."""
        if self.told is not None:
            self.told()
        adding, self._adding = self._adding, None
        if adding is not None:
            self._answered(adding.result)

    def _with_ours(self) -> list[str]:
        return [*(self.obj["metadata"].get("finalizers") or []), FINALIZER]

    def remove_finalizer(self) -> None:
        """Everything is put back: the object may go."""
        self.settle()
        if self.has_finalizer():
            self._finalizers([f for f in self.obj["metadata"]["finalizers"] if f != FINALIZER])
