"""Holds: one operation at a time per workload, taken and released with bounded retries.

A workload being changed carries `ops.mailscore.com/held-by: <Kind>/<name>/<uid>`, and
beside it the replica that took it (`held-by-instance`). Taking
the hold writes it with the resourceVersion read, so two operations racing for one
workload cannot both win; a hold whose operation is gone or finished is taken over
(core.holds). Releasing removes only our own. Both retry a Conflict a few times,
then raise it: the pass fails and is run again later, never looping without end.

The Deployment controller copies a Deployment's annotations onto its ReplicaSets and
`kubectl rollout undo` copies them back, so a release also removes our copies from the
ReplicaSets the Deployment owns (selected by its whole selector, matchExpressions too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from ..adapters.kube import Conflict, KubeError, NotFound
from .holds import hold_is_stale, parse_holder, same_holder
from .names import HOLD_ANNOTATION, HOLD_INSTANCE_ANNOTATION
from .ports import KubePort, Obj
from .reading import replica_sets

__all__ = [
    "ATTEMPTS",
    "acquire_hold",
    "clean_replicaset_holds",
    "hold_with",
    "holder_of",
    "let_go_unless_recorded",
    "release_hold",
]

ATTEMPTS = 5


def holder_of(workload: Obj) -> str | None:
    annotations = (workload.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(HOLD_ANNOTATION)
    return None if value is None else str(value)


def _stale(kube: KubePort, namespace: str, holder: str) -> bool:
    parsed = parse_holder(holder)
    if parsed is None:
        return False  # not ours to judge: someone else's convention
    resource, name, uid = parsed
    try:
        return hold_is_stale(resource, kube.get_custom(resource.plural, namespace, name), uid)
    except NotFound:
        return hold_is_stale(resource, None)


def _annotate(
    kube: KubePort,
    kind: str,
    workload: Obj,
    value: str | None,
    instance: str | None = None,
    change: Obj | None = None,
) -> Obj:
    meta = workload["metadata"]
    patch = {
        **(change or {}),
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {HOLD_ANNOTATION: value, HOLD_INSTANCE_ANNOTATION: instance},
        },
    }
    return kube.patch_workload(kind, meta["namespace"], meta["name"], patch)


def acquire_hold(
    kube: KubePort,
    kind: str,
    namespace: str,
    name: str,
    holder: str,
    instance: str = "",
    *,
    known: Obj | None = None,
    seen: Callable[[Obj], None] | None = None,
) -> str | None:
    """Mark the workload as held by `holder` (taken by the replica `instance`): None when
    the hold is ours (newly or already), else the operation that holds it. NotFound when
    the workload is gone.

    `known` is the workload as the caller's pass just read it: the first attempt starts
    from it instead of reading it again (the hold is written with its resourceVersion, so
    a copy that went stale costs one Conflict and a fresh read, never a lost update).
    `seen` is told of the workload as the hold left it (the patch's answer)."""
    for attempt in range(ATTEMPTS):
        if attempt == 0 and known is not None:
            workload = known
        else:
            workload = kube.get_workload(kind, namespace, name)
        current = holder_of(workload)
        if current == holder:
            return None
        if same_holder(current, holder):  # ours, from before holds carried the uid
            try:
                answer = _annotate(kube, kind, workload, holder, instance or None)
            except Conflict:
                continue
            if seen is not None:
                seen(answer)
            return None
        if current and not _stale(kube, namespace, current):
            return current
        try:
            answer = _annotate(kube, kind, workload, holder, instance or None)
        except Conflict:
            continue
        if seen is not None:
            seen(answer)
        return None
    raise Conflict(f"{kind} {name} kept changing while taking the hold ({ATTEMPTS} attempts)")


def hold_with(
    kube: KubePort,
    kind: str,
    known: Obj,
    holder: str,
    instance: str,
    change: Obj,
    still: Callable[[Obj], bool],
) -> Obj | None:
    """Take the hold of a workload nobody holds and make `change` to it in one patch: the
    workload as the patch left it, or None when the decision no longer stands.

    The patch is written with the resourceVersion of `known`, the copy the change was
    decided on (and its originals recorded from), so it lands only on the workload exactly
    as recorded. When the workload changed in between, a fresh read decides: still nobody's
    and `still(workload)` (what was recorded is what it is now), the same patch goes out
    with the new resourceVersion; otherwise nothing is changed and None says the change
    must be decided again. Only one of two operations racing for the workload wins, as
    with `acquire_hold`."""
    meta = known["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    workload = known
    for attempt in range(ATTEMPTS):
        try:
            if attempt > 0:
                workload = kube.get_workload(kind, namespace, name)
            if holder_of(workload) is not None or not still(workload):
                return None
            return _annotate(kube, kind, workload, holder, instance or None, change)
        except Conflict:
            continue
        except NotFound:
            return None  # gone: nothing to change, and the next decision says so
    raise Conflict(f"{kind} {name} kept changing while taking the hold ({ATTEMPTS} attempts)")


def release_hold(kube: KubePort, kind: str, namespace: str, name: str, holder: str) -> None:
    """Remove our hold; someone else's is left alone; a missing workload is fine."""
    for _ in range(ATTEMPTS):
        try:
            workload = kube.get_workload(kind, namespace, name)
        except NotFound:
            return
        if not same_holder(holder_of(workload), holder):
            return
        try:
            _annotate(kube, kind, workload, None)
            return
        except Conflict:
            continue
    raise Conflict(f"{kind} {name} kept changing while releasing the hold ({ATTEMPTS} attempts)")


def clean_replicaset_holds(kube: KubePort, namespace: str, name: str, holder: str) -> list[str]:
    """Remove our hold's copies from the ReplicaSets a Deployment owns; their names."""
    try:
        deployment = kube.get_deployment(namespace, name)
    except NotFound:
        return []
    uid = deployment["metadata"].get("uid")
    cleaned = []
    for rs in replica_sets(kube, namespace, deployment):
        owners = {o.get("uid") for o in rs["metadata"].get("ownerReferences") or []}
        if uid not in owners or not same_holder(holder_of(rs), holder):
            continue
        patch = {
            "metadata": {"annotations": {HOLD_ANNOTATION: None, HOLD_INSTANCE_ANNOTATION: None}}
        }
        try:
            kube.patch_replicaset(namespace, rs["metadata"]["name"], patch)
        except NotFound:
            continue
        cleaned.append(str(rs["metadata"]["name"]))
    return cleaned


@contextlib.contextmanager
def let_go_unless_recorded(
    kube: KubePort, namespace: str, holder: str, keys: Iterable[tuple[str, str]]
) -> Iterator[None]:
    """Around the status write that records the holds `keys` a step just took: when it
    fails (the object changed, or went before its finalizer was on), they are released
    before the error goes on, so an operation deleted then leaves no hold behind. A
    release that fails too leaves a hold of ours, which the next pass takes again, or,
    its operation gone, the next operation takes over (core.holds)."""
    try:
        yield
    except KubeError:
        with contextlib.suppress(KubeError):
            for kind, name in keys:
                release_hold(kube, kind, namespace, name, holder)
                if kind == "Deployment":
                    clean_replicaset_holds(kube, namespace, name, holder)
        raise
