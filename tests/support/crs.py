"""Our custom resources in tests: create, read, patch, delete, wait for conditions."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from runbook_operator.kinds import kinds

from .wait import wait_for

__all__ = [
    "GROUP",
    "VERSION",
    "condition",
    "create_cr",
    "delete_cr",
    "get_cr",
    "patch_cr",
    "patch_cr_status",
    "plural_of",
    "wait_condition",
    "wait_gone",
    "wait_phase",
]

GROUP = "ops.mailscore.com"
VERSION = "v1alpha1"
Obj = dict[str, Any]

_PLURALS = {k.resource.kind: k.resource.plural for k in kinds()}
"""Every kind the operator serves, from its own registry (a new kind needs no entry here)."""


def plural_of(kind: str) -> str:
    return _PLURALS[kind]


def _api(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def create_cr(
    api: client.ApiClient,
    namespace: str,
    kind: str,
    name: str,
    spec: Obj,
    labels: dict[str, str] | None = None,
) -> Obj:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }
    return _api(api).create_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, plural_of(kind), body
    )


def get_cr(api: client.ApiClient, namespace: str, kind: str, name: str) -> Obj:
    return _api(api).get_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, plural_of(kind), name
    )


def patch_cr(api: client.ApiClient, namespace: str, kind: str, name: str, patch: Obj) -> Obj:
    return _api(api).patch_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, plural_of(kind), name, patch
    )


def patch_cr_status(
    api: client.ApiClient, namespace: str, kind: str, name: str, status: Obj
) -> Obj:
    """Write status as an admin would (for objects whose controller a test stands in for)."""
    return _api(api).patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, plural_of(kind), name, {"status": status}
    )


def delete_cr(api: client.ApiClient, namespace: str, kind: str, name: str) -> None:
    try:
        _api(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, plural_of(kind), name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def condition(obj: Obj, type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond  # type: ignore[no-any-return]
    return None


def cond(obj: Obj, type_: str) -> Obj:
    """The condition, which must be there."""
    found = condition(obj, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return found


def wait_condition(
    api: client.ApiClient,
    namespace: str,
    kind: str,
    name: str,
    type_: str,
    status: str = "True",
    *,
    reason: str | None = None,
    timeout: float = 60.0,
) -> Obj:
    """Wait until the object has condition `type_` with `status` (and `reason`, if given)."""

    def check() -> Obj | None:
        obj = get_cr(api, namespace, kind, name)
        cond = condition(obj, type_)
        if cond and cond.get("status") == status and (reason is None or cond["reason"] == reason):
            return obj
        return None

    return wait_for(
        check,
        timeout=timeout,
        what=f"{kind} {namespace}/{name} {type_}={status}" + (f" ({reason})" if reason else ""),
    )


def wait_phase(
    api: client.ApiClient,
    namespace: str,
    kind: str,
    name: str,
    phase: str,
    *,
    timeout: float = 60.0,
) -> Obj:
    def check() -> Obj | None:
        obj = get_cr(api, namespace, kind, name)
        return obj if (obj.get("status") or {}).get("phase") == phase else None

    return wait_for(check, timeout=timeout, what=f"{kind} {namespace}/{name} phase {phase}")


def wait_gone(
    api: client.ApiClient, namespace: str, kind: str, name: str, *, timeout: float = 60.0
) -> None:
    def gone() -> bool:
        try:
            get_cr(api, namespace, kind, name)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    wait_for(gone, timeout=timeout, what=f"{kind} {namespace}/{name} to be deleted")
