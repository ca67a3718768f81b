"""EmergencyScale targets: what a workload looks like, how it is scaled, how it goes back.

Pure, per target. A workload under a HorizontalPodAutoscaler is scaled through
the HPA's bounds (minReplicas raised to the wanted count, maxReplicas when below
it or when given), never through its replicas, which the HPA would undo within
seconds; any other workload through spec.replicas. The same functions give the
patch back to the recorded original, and tell whether the workload got there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ....core.names import HOLD_ANNOTATION
from ..api import EmergencyScaleSpec, ScaleTarget, TargetKind, TargetOriginal

__all__ = [
    "Change",
    "Hpa",
    "Key",
    "Refused",
    "Workload",
    "World",
    "at_original",
    "describe_original",
    "hpa_change",
    "hpas_to_authorize",
    "key_of",
    "reached",
    "read_workload",
    "replicas_change",
    "snapshot",
    "summary",
    "to_emergency",
    "validate",
]

Key = tuple[str, str]
"""(kind, name) of a workload."""


# --- what the handler observed ----------------------------------------------


@dataclass(frozen=True)
class Hpa:
    name: str
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet as observed now (and the HPA that manages it)."""

    kind: str
    name: str
    replicas: int
    """spec.replicas"""
    current: int = 0
    """status.replicas: pods that exist."""
    ready: int = 0
    up_to_date: bool = True
    """Its controller has seen the latest spec (status.observedGeneration >= generation)."""
    held_by: str | None = None
    hpa: Hpa | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.name)


def read_workload(kind: str, obj: Mapping[str, Any], hpas: Iterable[Mapping[str, Any]]) -> Workload:
    """A Workload from the API server's JSON of the workload and its namespace's HPAs."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    name = meta["name"]
    return Workload(
        kind=kind,
        name=name,
        replicas=int(spec.get("replicas", 1)),
        current=int(status.get("replicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        up_to_date=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
        held_by=(meta.get("annotations") or {}).get(HOLD_ANNOTATION),
        hpa=_hpa_for(kind, name, hpas),
    )


def _hpa_for(kind: str, name: str, hpas: Iterable[Mapping[str, Any]]) -> Hpa | None:
    for hpa in hpas:
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if ref.get("kind") == kind and ref.get("name") == name:
            return Hpa(
                name=hpa["metadata"]["name"],
                min_replicas=int(spec.get("minReplicas", 1)),
                max_replicas=int(spec["maxReplicas"]),
            )
    return None


World = Mapping[Key, Workload | None]
"""Every target and every recorded original, as observed; None: it does not exist."""


@dataclass(frozen=True)
class Change:
    """One change: the HPA `hpa`'s bounds (`patch`) when set, else the workload's replicas
    through its scale subresource."""

    key: Key
    hpa: str | None
    patch: dict[str, Any]
    text: str
    """For the event, e.g. `backend-hpa minReplicas 3 -> 10, maxReplicas 10 -> 15`."""
    replicas: int | None = None


def key_of(target: ScaleTarget | TargetOriginal) -> Key:
    return (target.kind.value, target.name)


# --- validation ---------------------------------------------------------------


def validate(
    spec: EmergencyScaleSpec,
    originals: list[TargetOriginal],
    world: World,
    cap: int,
    refused: Refused | None = None,
) -> list[tuple[str, str]]:
    """What only the operator can judge: (reason, message) for each problem."""
    recorded = {key_of(o): o for o in originals}
    problems: list[tuple[str, str]] = []
    for target in spec.targets:
        key = key_of(target)
        problems += _target_problems(target, world.get(key), recorded.get(key), cap, refused)
    return problems


@dataclass(frozen=True)
class Refused:
    """HPAs the requester may not patch, as the API server authorized them (the handler
    asks, for each HPA through which an emergency size is still to be set)."""

    requester: str
    hpas: frozenset[str]


def hpas_to_authorize(
    spec: EmergencyScaleSpec, originals: list[TargetOriginal], world: World
) -> list[str]:
    """The HPAs this EmergencyScale would set a size through for the first time: admission
    checked the requester's right over the workloads, but which HPA manages one is known
    only here, so the handler asks about these before anything is changed."""
    recorded = {key_of(o) for o in originals}
    found = (world.get(key_of(t)) for t in spec.targets if key_of(t) not in recorded)
    return sorted({w.hpa.name for w in found if w is not None and w.hpa is not None})


def _target_problems(
    target: ScaleTarget,
    workload: Workload | None,
    original: TargetOriginal | None,
    cap: int,
    refused: Refused | None = None,
) -> list[tuple[str, str]]:
    name = target.name
    if workload is None:
        return [("TargetNotFound", f"{target.kind.value} {name} does not exist in this namespace")]
    out = []
    hpa = workload.hpa.name if workload.hpa else None
    if original is None and refused is not None and hpa in refused.hpas:
        out.append(
            (
                "NotAuthorized",
                f"{name} is managed by HorizontalPodAutoscaler {hpa}, and the emergency "
                f"size would be set through it, but {refused.requester} (who asked) may not "
                f"patch it: ask for patch on horizontalpodautoscalers, or have someone who "
                f"may create this EmergencyScale",
            )
        )
    asked = max(target.replicas, target.max_replicas or 0)
    if asked > cap:
        out.append(
            (
                "OverCap",
                f"{name}: {asked} replicas is over the operator's cap of {cap} "
                "(RUNBOOK_MAX_REPLICAS); ask for at most that",
            )
        )
    if original is not None and original.hpa != hpa:
        was = original.hpa or "no HPA"
        out.append(
            (
                "AutoscalerChanged",
                f"{name} was managed by {was} when its original was recorded and is now "
                f"managed by {hpa or 'no HPA'}; delete this EmergencyScale and create a new one",
            )
        )
    if hpa is None and target.max_replicas is not None:
        out.append(
            (
                "NoAutoscaler",
                f"maxReplicas is set for {name}, but no HorizontalPodAutoscaler manages it; "
                "remove maxReplicas",
            )
        )
    if hpa is not None and target.replicas == 0:
        out.append(
            (
                "AutoscalerMinimum",
                f"{name} is managed by {hpa}, whose minReplicas cannot be 0; ask for 1 or more",
            )
        )
    return out


# --- changes ------------------------------------------------------------------


def snapshot(workload: Workload) -> TargetOriginal:
    kind = TargetKind(workload.kind)
    if workload.hpa is None:
        return TargetOriginal(kind=kind, name=workload.name, replicas=workload.replicas)
    return TargetOriginal(
        kind=kind,
        name=workload.name,
        hpa=workload.hpa.name,
        replicas=workload.replicas,
        min_replicas=workload.hpa.min_replicas,
        max_replicas=workload.hpa.max_replicas,
    )


def describe_original(original: TargetOriginal) -> str:
    if original.hpa:
        return (
            f"{original.name} via {original.hpa} "
            f"(minReplicas {original.min_replicas}, maxReplicas {original.max_replicas})"
        )
    return f"{original.name} ({original.replicas} replicas)"


def hpa_bounds(target: ScaleTarget, original: TargetOriginal) -> tuple[int, int]:
    low = target.replicas
    high = target.max_replicas or max(original.max_replicas or low, low)
    return low, high


def to_emergency(
    target: ScaleTarget, original: TargetOriginal, workload: Workload
) -> Change | None:
    if original.hpa is not None and workload.hpa is not None:
        low, high = hpa_bounds(target, original)
        return hpa_change(workload, low, high)
    return replicas_change(workload, target.replicas)


def hpa_change(workload: Workload, low: int, high: int) -> Change | None:
    hpa = workload.hpa
    assert hpa is not None
    if (hpa.min_replicas, hpa.max_replicas) == (low, high):
        return None
    parts = []
    if hpa.min_replicas != low:
        parts.append(f"minReplicas {hpa.min_replicas} -> {low}")
    if hpa.max_replicas != high:
        parts.append(f"maxReplicas {hpa.max_replicas} -> {high}")
    return Change(
        key=workload.key,
        hpa=hpa.name,
        patch={"spec": {"minReplicas": low, "maxReplicas": high}},
        text=f"{hpa.name} (manages {workload.name}) " + ", ".join(parts),
    )


def replicas_change(workload: Workload, replicas: int) -> Change | None:
    if workload.replicas == replicas:
        return None
    return Change(
        key=workload.key,
        hpa=None,
        patch={"spec": {"replicas": replicas}},
        replicas=replicas,
        text=f"{workload.kind} {workload.name} replicas {workload.replicas} -> {replicas}",
    )


def reached(target: ScaleTarget, original: TargetOriginal, workload: Workload) -> str | None:
    """None when the workload has the emergency size; else what it is waiting for."""
    if original.hpa is not None:
        if workload.ready >= target.replicas:
            return None
        return f"{workload.name} {workload.ready}/{target.replicas} ready (via {original.hpa})"
    wanted = target.replicas
    if workload.up_to_date and workload.current == wanted and workload.ready == wanted:
        return None
    return f"{workload.name} {workload.ready}/{wanted} ready"


def at_original(original: TargetOriginal, workload: Workload) -> bool:
    if original.hpa is None:
        return workload.replicas == original.replicas
    hpa = workload.hpa
    return hpa is not None and (hpa.min_replicas, hpa.max_replicas) == (
        original.min_replicas,
        original.max_replicas,
    )


def summary(spec: EmergencyScaleSpec, originals: Iterable[TargetOriginal]) -> str:
    """The targets in one line: `mail-score-backend 3->10 (backend-hpa), frontend 2->6`."""
    recorded = {key_of(o): o for o in originals}
    parts = []
    for target in spec.targets:
        original = recorded.get(key_of(target))
        if original is None:
            parts.append(f"{target.name} ->{target.replicas}")
        elif original.hpa:
            parts.append(
                f"{target.name} {original.min_replicas}->{target.replicas} ({original.hpa})"
            )
        else:
            parts.append(f"{target.name} {original.replicas}->{target.replicas}")
    return ", ".join(parts)
