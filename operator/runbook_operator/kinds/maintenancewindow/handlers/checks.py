"""The checks a MaintenanceWindow makes outside the cluster's workloads.

The checklist's observations (which objects exist, which DatabaseBackups
count), the Alertmanager silence (created once per occurrence: found again by
the marker in its comment after a crash, extended with the window, expired at
its end) and the health check after the end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ....adapters.alertmanager import AlertmanagerError
from ....adapters.kube import KubeError, NotFound
from ....adapters.urls import URLNotAllowed, refusal
from ....core import fanout
from ....core.owners import owner_uids
from ....core.ports import Obj
from ....core.probing import probe
from ....core.schedule import instant
from ..api import MAINTENANCE_POLICY, MaintenancePolicySpec, MaintenanceWindowSpec, SilenceStatus
from ..logic import SILENCE_MARGIN
from ..logic.minimums import ClusterPolicy
from ..logic.policy import BackupSeen, PolicyObservation, needed_objects
from ..logic.steps import Outcome
from .env import Env, Target

__all__ = ["create_silence", "expire_silence", "extend_silence", "health_check", "observe_policy"]


# --- the checklist -------------------------------------------------------------------


def observe_policy(
    env: Env, namespace: str, spec: MaintenanceWindowSpec
) -> tuple[PolicyObservation, dict[str, Obj]]:
    """Which named objects exist, the DatabaseBackups the backup rule counts, and the
    cluster's minimums (MaintenancePolicies, and the namespace's labels they select on);
    beside it, the named objects as read ('Kind/name' -> object), which a step right
    after may start from instead of reading them again."""
    # Side by side: neither depends on the other, and each was a round trip before the
    # window's first change.
    reading = fanout.start(functools.partial(_cluster, env, namespace))
    try:
        namespaced, read = _observe(env, namespace, spec)
    finally:
        cluster = reading.result()  # it answers its errors, never raises them
    seen = replace(namespaced, refused_urls=_refused(spec))
    if cluster is None:  # the MaintenancePolicy kind is not installed: there is none
        return seen, read
    if isinstance(cluster, str):
        return replace(seen, cluster_error=cluster), read
    policies, labels = cluster
    return replace(seen, cluster_policies=policies, namespace_labels=labels), read


def _cluster(
    env: Env, namespace: str
) -> tuple[tuple[ClusterPolicy, ...], dict[str, str]] | str | None:
    """The MaintenancePolicies and the namespace's labels; None when the kind is not
    installed, the error's text when they could not be read."""
    reads: list[Callable[[], Any]] = [
        functools.partial(env.kube.get_namespace, namespace),
        functools.partial(env.kube.list_cluster_custom, MAINTENANCE_POLICY.plural, cached=True),
    ]
    try:
        # Side by side: the labels select among the policies only once both are here.
        found, listed = fanout.gather(reads)
        labels = (found.get("metadata") or {}).get("labels") or {}
        return tuple(_cluster_policy(obj) for obj in listed), dict(labels)
    except NotFound:
        return None
    except (KubeError, ValueError) as exc:
        return str(exc)


def _refused(spec: MaintenanceWindowSpec) -> tuple[str, ...]:
    """The URLs the window will call that the operator's allow-list refuses (its default
    Prometheus is always allowed)."""
    urls = [("Alertmanager", spec.silence.url)] if spec.silence else []
    check = spec.health_check
    if check is not None and check.http is not None:
        urls.append(("health check", check.http.url))
    if check is not None and check.prometheus is not None and check.prometheus.url:
        urls.append(("Prometheus", check.prometheus.url))
    return tuple(why for what, url in urls if (why := refusal(url, what)) is not None)


def _cluster_policy(obj: dict[str, Any]) -> ClusterPolicy:
    name = str(obj["metadata"]["name"])
    try:
        return ClusterPolicy(name, MaintenancePolicySpec.model_validate(obj.get("spec") or {}))
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ValueError(f"MaintenancePolicy {name}: spec.{where}: {problem['msg']}") from exc


def _read(env: Env, namespace: str, ref: str) -> Obj | None:
    """One named object ('Kind/name'); None when it does not exist."""
    kind, name = ref.split("/", 1)
    try:
        if kind == "ConfigMap":
            return env.kube.get_configmap(namespace, name)
        return env.kube.get_deployment(namespace, name)
    except NotFound:
        return None


def _observe(
    env: Env, namespace: str, spec: MaintenanceWindowSpec
) -> tuple[PolicyObservation, dict[str, Obj]]:
    refs = needed_objects(spec)
    # Side by side: each was a round trip of its own, one after another.
    found = fanout.gather([functools.partial(_read, env, namespace, ref) for ref in refs])
    read = {ref: obj for ref, obj in zip(refs, found, strict=True) if obj is not None}
    missing = frozenset(ref for ref in refs if ref not in read)
    if spec.policy.backup is None:
        return PolicyObservation(missing=missing), read
    try:
        items = env.kube.list_custom("databasebackups", namespace)
    except NotFound:
        return PolicyObservation(
            backups_error="the DatabaseBackup kind is not installed", missing=missing
        ), read
    except KubeError as exc:
        return PolicyObservation(backups_error=str(exc), missing=missing), read
    return PolicyObservation(backups=tuple(_backup(b) for b in items), missing=missing), read


def _backup(obj: dict[str, Any]) -> BackupSeen:
    status = obj.get("status") or {}
    completed = status.get("completedAt")
    return BackupSeen(
        name=obj["metadata"]["name"],
        phase=status.get("phase"),
        completed_at=datetime.fromisoformat(completed) if completed else None,
        uid=str(obj["metadata"].get("uid") or ""),
        owners=owner_uids(obj),
    )


# --- silence ---------------------------------------------------------------------------


def _silence_comment(t: Target) -> str:
    assert t.spec is not None
    extra = t.spec.silence.comment if t.spec.silence and t.spec.silence.comment else ""
    what = t.spec.reason or "maintenance"
    return f"MaintenanceWindow {t.namespace}/{t.name}: {what}. {extra} [{t.marker}]".replace(
        ".  [", ". ["
    )


def create_silence(env: Env, t: Target) -> Outcome:
    assert t.spec is not None
    spec = t.spec.silence
    assert spec is not None and t.status.next_end is not None
    try:
        am = env.silences(spec.url)
    except URLNotAllowed as exc:  # no retry makes it allowed: fail now, and undo
        return Outcome(done=False, failed=str(exc))
    ends = t.status.next_end + SILENCE_MARGIN
    found = am.find(t.marker)
    if found:
        silence_id = str(found[0]["id"])
        note = "found the silence created before a restart"
    else:
        matchers = [m.wire() for m in spec.matchers]
        silence_id = am.create(matchers, t.now, ends, _silence_comment(t))
        note = "created"
    return Outcome.ok(
        f"silence {silence_id} {note}, until {instant(ends)}",
        silence=SilenceStatus(id=silence_id, url=spec.url, ends_at=ends),
    )


def extend_silence(env: Env, t: Target) -> Outcome:
    """The window was extended: move the silence's end with it (same id where possible)."""
    assert t.spec is not None
    spec = t.spec.silence
    assert spec is not None and t.status.next_end is not None
    ends = t.status.next_end + SILENCE_MARGIN
    try:
        am = env.silences(spec.url)
        found = am.find(t.marker)
        starts = datetime.fromisoformat(found[0]["startsAt"]) if found else t.now
        old_id = str(found[0]["id"]) if found else None
        matchers = found[0]["matchers"] if found else [m.wire() for m in spec.matchers]
        silence_id = am.create(matchers, starts, ends, _silence_comment(t), old_id)
    except AlertmanagerError as exc:
        return Outcome.retry(str(exc))
    return Outcome.ok(
        f"silence {silence_id} now ends at {instant(ends)}",
        silence=SilenceStatus(id=silence_id, url=spec.url, ends_at=ends),
    )


def expire_silence(env: Env, t: Target) -> Outcome:
    recorded = t.status.silence.id if t.status.silence else None
    url = t.status.silence.url if t.status.silence else None
    if url is None and t.spec is not None and t.spec.silence is not None:
        url = t.spec.silence.url  # recorded by an operator before it kept the URL in status
    if url is None:
        return Outcome.ok("no silence configured any more; nothing to expire")
    try:
        am = env.silences(url)
    except URLNotAllowed as exc:  # never created there, or the allow-list changed since
        ends = t.status.silence.ends_at if t.status.silence else None
        by_itself = f"; it ends by itself at {instant(ends)}" if ends else ""
        return Outcome.ok(f"no silence expired: {exc}{by_itself}")
    ids = [i for i in [recorded, *(str(s["id"]) for s in am.find(t.marker))] if i]
    for silence_id in dict.fromkeys(ids):
        am.expire(silence_id)
    return Outcome.ok(
        f"silence {', '.join(dict.fromkeys(ids))} expired" if ids else "no silence to expire"
    )


# --- health ------------------------------------------------------------------------------


def health_check(env: Env, t: Target) -> Outcome:
    check = t.spec.health_check if t.spec is not None else None
    if check is None:
        return Outcome.ok("no health check configured any more")
    answer = probe(check, env.http_status, env.prometheus, env.prometheus_url)
    if answer.failed is not None:
        return Outcome(done=False, failed=answer.failed)
    return Outcome.ok(answer.text) if answer.healthy else Outcome.wait(answer.text)
