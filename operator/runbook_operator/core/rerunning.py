"""The re-run guard of one-shot operations, around every pass (core.reruns decides).

`skip(ctx)` runs before a one-shot kind's first pass: an object that repeats a run the
namespace's ledger remembers is written `Skipped` (Ready=True, reason AlreadyRan) with one
event, and the kind never sees it. Only an object with no phase yet is looked up, so an
operation costs at most one read of the ledger in its life. `remember(ctx)` runs in the
finalize pass before the finalizer goes: an operation that acted leaves its run key.
"""

from __future__ import annotations

import logging

from ..adapters.kube import Conflict, NotFound
from . import reruns
from .conditions import ready
from .context import Pass
from .reruns import LEDGER, SKIPPED, Entry

__all__ = ["remember", "skip"]

LOG = logging.getLogger("runbook_operator.reruns")
ATTEMPTS = 5
"""Conflicts in a row (two operations of a namespace deleted at once) before giving up."""


def skip(ctx: Pass) -> bool:
    """True when this pass has nothing to do: the object repeats a remembered run."""
    if not ctx.resource.one_shot:
        return False
    status = ctx.status()
    if status.phase == SKIPPED:
        return True
    if status.phase is not None:
        return False
    spec = ctx.obj.get("spec") or {}
    if not reruns.guarded(ctx.meta, spec):
        return False
    try:
        data = ctx.kube.get_configmap(ctx.namespace, LEDGER).get("data") or {}
    except NotFound:
        return False
    kind = ctx.resource.kind
    previous = reruns.previous_run(data, kind, ctx.name, reruns.run_key(spec), ctx.uid)
    if previous is None:
        return False
    message = reruns.skipped_message(kind, ctx.name, previous)
    conditions = ready(
        status.conditions, reruns.ALREADY_RAN, message, generation=ctx.generation, now=ctx.now
    )
    skipped = ctx.resource.status.model_validate(
        {
            **status.model_dump(),
            "phase": SKIPPED,
            "conditions": conditions,
            "observed_generation": ctx.generation,
        }
    )
    if ctx.write(skipped):
        ctx.recorder.info(reruns.ALREADY_RAN, message)
    return True


def remember(ctx: Pass) -> None:
    """Leave this operation's run key in the ledger if it acted (and may not run again)."""
    if not ctx.resource.one_shot:
        return
    phase = ctx.status().phase
    spec = ctx.obj.get("spec") or {}
    if not reruns.acted(phase) or not reruns.guarded(ctx.meta, spec):
        return
    entry = Entry(run=reruns.run_key(spec), uid=ctx.uid, phase=str(phase), at=ctx.now)
    kind = ctx.resource.kind
    for _ in range(ATTEMPTS):
        try:
            ledger = ctx.kube.get_configmap(ctx.namespace, LEDGER)
        except NotFound:
            body = {
                "metadata": {
                    "name": LEDGER,
                    "labels": {"app.kubernetes.io/managed-by": "runbook-operator"},
                },
                "data": reruns.record({}, kind, ctx.name, entry, ctx.now),
            }
            try:
                ctx.kube.create_configmap(ctx.namespace, body)
                return
            except Conflict:
                continue  # created by another deletion meanwhile: patch it
        version = ledger["metadata"].get("resourceVersion")
        data = reruns.record(ledger.get("data") or {}, kind, ctx.name, entry, ctx.now)
        patch = {"metadata": {"resourceVersion": version}, "data": data}
        try:
            ctx.kube.patch_configmap(ctx.namespace, LEDGER, patch)
            return
        except Conflict:
            continue
    raise Conflict(f"the {LEDGER} ConfigMap changed {ATTEMPTS} times while this run was recorded")
