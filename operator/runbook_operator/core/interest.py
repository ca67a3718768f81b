"""Which operations wait on which objects, so a change wakes exactly those.

After each pass an operation says what it watches (core.kind.Result.watch): the
Deployments it is rolling, the backups its checklist counts, "any MaintenanceWindow"
for a restore. A watch event of one of those objects enqueues the operation. Used in
the event loop only. What a pass watches is known when it ends, so a change made to a
newly watched object while the pass ran reached nobody: the runtime passes an operation
once more when it starts watching something that changed since the pass began (each
change is numbered, `changed`). Not when nothing did: every new operation's first pass
starts watching, and passing each once more for nothing cost a pass per operation (and
a pending MaintenanceWindow, whose checklist had just been evaluated, a re-evaluation
15 s later).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Interest", "Owner"]

Owner = tuple[str, str, str]
"""(kind of the operation, namespace, name)"""
Target = tuple[str, str, str]
"""(namespace, kind of the watched object, its name or "*")"""
Seen = tuple[str | None, str, str]
"""(namespace, None for a cluster-scoped object; its kind; its name or "*")"""
KEEP_CHANGES = 10_000
"""Changes remembered before those older than every pass still running are let go (and,
while a long pass holds them, twice as many as were kept then)."""


class Interest:
    def __init__(self) -> None:
        self._owners: dict[Target, set[Owner]] = {}
        self._targets: dict[Owner, set[Target]] = {}
        self.seq = 0
        """The number of the last change seen (`changed`)."""
        self._changes: dict[Seen, int] = {}
        self._limit = KEEP_CHANGES

    def changed(self, namespace: str | None, kind: str, name: str) -> None:
        """A watched kind's object changed (a watch event): numbered, for `watch`."""
        self.seq += 1
        if kind == "Namespace":
            namespace = name
        self._changes[(namespace, kind, name)] = self.seq
        self._changes[(namespace, kind, "*")] = self.seq

    def prune(self, oldest: int) -> None:
        """Forget the changes numbered `oldest` or less (no pass began before them), once
        there are many. A pass that runs for minutes (a dump) holds every change since it
        began: the next pruning waits until they have doubled, so that each pass's end
        does not go through them all again for nothing."""
        if len(self._changes) > self._limit:
            self._changes = {k: v for k, v in self._changes.items() if v > oldest}
            self._limit = max(KEEP_CHANGES, 2 * len(self._changes))

    def _changed_since(self, target: Target, since: int) -> bool:
        namespace, kind, name = target
        return any(
            self._changes.get(seen, 0) > since
            for seen in ((namespace, kind, name), (None, kind, name))
        )

    def watch(self, owner: Owner, watches: Iterable[tuple[str, str]], since: int = 0) -> bool:
        """What `owner` watches from now on (replacing what it watched); True when it
        watches something it did not before that changed after change `since` (the last
        one seen when its pass began)."""
        targets = {(owner[1], kind, name) for kind, name in watches}
        added = targets - self._targets.get(owner, set())
        new = any(self._changed_since(target, since) for target in added)
        for target in self._targets.get(owner, set()) - targets:
            owners = self._owners.get(target)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._owners[target]
        for target in targets:
            self._owners.setdefault(target, set()).add(owner)
        if targets:
            self._targets[owner] = targets
        else:
            self._targets.pop(owner, None)
        return new

    def drop(self, owner: Owner) -> None:
        self.watch(owner, ())

    def owners(self, namespace: str | None, kind: str, name: str) -> set[Owner]:
        """The operations to wake for a change of this object. A cluster-scoped object
        (namespace None) wakes those of every namespace that watch it; a Namespace is
        its own namespace."""
        if kind == "Namespace":
            namespace = name
        if namespace is None:
            return {
                owner
                for (_, k, n), owners in self._owners.items()
                if k == kind and n in (name, "*")
                for owner in owners
            }
        return self._owners.get((namespace, kind, name), set()) | self._owners.get(
            (namespace, kind, "*"), set()
        )
