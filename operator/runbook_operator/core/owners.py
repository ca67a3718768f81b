"""Which object owns which: by ownerReference uid, the one thing a label cannot fake.

A scheduled DatabaseBackup's children carry its label (for `kubectl get -l`) and an
ownerReference with its uid. Anyone who may create a DatabaseBackup may also write the
label, so whatever counts a schedule's runs (a restore's "newest verified child", a
MaintenanceWindow's fresh-backup rule) asks `owned_by`, never the label. Pure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["owned_by", "owner_uids"]


def owner_uids(obj: dict[str, Any]) -> frozenset[str]:
    """The uids in the object's metadata.ownerReferences."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return frozenset(str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("uid"))


def owned_by(obj: dict[str, Any], uid: str | None) -> bool:
    """True when an ownerReference of `obj` names `uid` (never for an empty uid)."""
    return bool(uid) and uid in owner_uids(obj)
