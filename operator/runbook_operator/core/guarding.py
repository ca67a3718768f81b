"""GitOps owners of an operation's targets, around its passes (core.gitops decides).

- `before(ctx)`: on an operation's first pass, when it asked for a pause, its targets
  are read before anything is changed; an operation left paused by a crash is put
  back when it no longer acts.
- `written(ctx)`: after each status write (the writer's hook, inside the pass): a write
  that starts the operation's changes pauses the owners (recorded, then paused). The
  kind's change comes after the write, so a pause always comes before it.
- `writing(ctx)`: before each status write: one that ends the operation's changes
  (a terminal or waiting phase) goes out only once the owners are restored, so whoever
  reads Completed finds them syncing by themselves again.
- `after(ctx)`: after the first pass, targets not read yet are read (off the critical
  path of an EmergencyScale), and any owner is named in the GitOpsManaged condition.
- `release(ctx)`: in the finalize pass, everything paused is put back.

Targets are read once per operation and process; nothing is read for an idle object.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ..adapters.kube import KubeError, NotFound
from . import gitops
from .conditions import set_condition
from .context import Pass
from .gitops import GitOpsRecord, GitOpsSpec, Owner, Paused

__all__ = ["Guarding"]

LOG = logging.getLogger("runbook_operator.gitops")
Obj = dict[str, Any]
BUSY = "gitops-busy"


class Guarding:
    """One per controller: which operations' targets were read, and their owners."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, str], tuple[str, list[tuple[str, Owner]]]] = {}
        """(namespace, name) → (uid, [(target in words, owner)]): targets read once."""
        self._lock = threading.Lock()

    def forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._owners.pop(key, None)

    # --- the hooks ----------------------------------------------------------

    def before(self, ctx: Pass) -> None:
        if ctx.resource.targets is None:
            return
        if _pause(ctx.obj):
            self._read(ctx)
        self._settle(ctx, ctx.obj)

    def written(self, ctx: Pass, obj: Obj) -> None:
        if ctx.resource.targets is None or ctx.extra.get(BUSY) or not _pause(obj):
            return
        with _busy(ctx):
            self._settle(ctx, obj)

    def writing(self, ctx: Pass, status: Obj) -> None:
        if ctx.resource.targets is None or ctx.extra.get(BUSY):
            return
        record = _record(ctx.obj)
        if not record.paused or gitops.acting(status.get("phase"), ctx.resource.status.TERMINAL):
            return
        with _busy(ctx):
            self._restore(ctx, record)

    def after(self, ctx: Pass) -> None:
        if ctx.resource.targets is None or ctx.deleting or ctx.status().is_done():
            return  # an operation found finished (e.g. at start-up) is not read again
        managed = self._read(ctx)
        if not managed:
            return
        status = ctx.status()
        message = gitops.managed_message(ctx.resource.kind, managed, _pause(ctx.obj))
        if status.condition(gitops.GITOPS_MANAGED) is not None:
            return  # said already (by us, or by the kind in its own words: Rollback)
        reason = "PausedDuringOperation" if _pause(ctx.obj) else "SelfHealMayRevert"
        conditions = set_condition(
            status.conditions,
            gitops.GITOPS_MANAGED,
            True,
            reason,
            message,
            generation=ctx.generation,
            now=ctx.now,
        )
        if ctx.write(status.model_copy(update={"conditions": conditions})):
            ctx.recorder.warn(gitops.GITOPS_MANAGED, message)

    def release(self, ctx: Pass) -> None:
        if ctx.resource.targets is not None:
            self._restore(ctx, _record(ctx.obj))

    # --- reading targets ----------------------------------------------------

    def _read(self, ctx: Pass) -> list[tuple[str, Owner]]:
        key = (ctx.namespace, ctx.name)
        with self._lock:
            known = self._owners.get(key)
        if known is not None and known[0] == ctx.uid:
            return known[1]
        targets = ctx.resource.targets
        assert targets is not None
        managed: list[tuple[str, Owner]] = []
        for kind, name in targets(dict(ctx.obj.get("spec") or {})):
            try:
                obj = ctx.read.get((kind, name)) or _get(ctx, kind, name)
            except KubeError:
                continue  # a missing target is the kind's to report
            owner = gitops.owner_of(obj.get("metadata") or {}, ctx.settings.argocd_namespace)
            if owner is not None:
                managed.append((f"{kind} {name}", owner))
        with self._lock:
            self._owners[key] = (ctx.uid, managed)
        return managed

    # --- pausing and restoring ------------------------------------------------

    def _settle(self, ctx: Pass, obj: Obj) -> None:
        status = obj.get("status") or {}
        record = _record(obj)
        terminal = ctx.resource.status.TERMINAL
        if gitops.acting(status.get("phase"), terminal) and not ctx.deleting:
            if _pause(obj):
                self._pause(ctx, record)
        elif record.paused:
            self._restore(ctx, record)

    def _pause(self, ctx: Pass, record: GitOpsRecord) -> None:
        for _, owner in self._read(ctx):
            if any(owner.same(p) for p in record.paused):
                continue
            try:
                live = ctx.kube.get_object(
                    owner.api_version, owner.plural, owner.namespace, owner.name
                )
            except NotFound:
                LOG.warning(f"{owner.words()} does not exist: nothing to pause")
                continue
            change = gitops.pause_patch(owner, live)
            if change is None:
                continue  # it does not sync by itself
            original, patch = change
            paused = Paused(
                api_version=owner.api_version,
                kind=owner.kind,
                namespace=owner.namespace,
                name=owner.name,
                original=original,
            )
            record = record.model_copy(update={"paused": [*record.paused, paused]})
            ctx.writer.write_fields({"gitops": record.wire()})  # the original, first
            ctx.kube.patch_object(
                owner.api_version, owner.plural, owner.namespace, owner.name, patch
            )
            ctx.recorder.info("GitOpsPaused", f"Paused the automated sync of {owner.words()}")

    def _restore(self, ctx: Pass, record: GitOpsRecord) -> None:
        for paused in list(record.paused):
            plural = "applications" if paused.kind == "Application" else f"{paused.kind.lower()}s"
            with contextlib.suppress(NotFound):  # deleted meanwhile: nothing to put back
                ctx.kube.patch_object(
                    paused.api_version,
                    plural,
                    paused.namespace,
                    paused.name,
                    gitops.restore_patch(paused),
                )
            words = f"{paused.kind} {paused.namespace}/{paused.name}"
            record = record.model_copy(update={"paused": [p for p in record.paused if p != paused]})
            ctx.writer.write_fields({"gitops": record.wire()})
            ctx.recorder.info("GitOpsResumed", f"Restored the sync setting of {words}")


@contextlib.contextmanager
def _busy(ctx: Pass) -> Iterator[None]:
    """The hooks' own status writes (their records) call no hook again."""
    ctx.extra[BUSY] = True
    try:
        yield
    finally:
        ctx.extra[BUSY] = False


def _get(ctx: Pass, kind: str, name: str) -> Obj:
    if kind == "ConfigMap":
        return ctx.kube.get_configmap(ctx.namespace, name)
    return ctx.kube.get_workload(kind, ctx.namespace, name)


def _record(obj: Obj) -> GitOpsRecord:
    return GitOpsRecord.model_validate((obj.get("status") or {}).get("gitops") or {})


def _pause(obj: Obj) -> bool:
    raw = (obj.get("spec") or {}).get("gitops") or {}
    try:
        return GitOpsSpec.model_validate(raw).pause
    except ValueError:
        return False
