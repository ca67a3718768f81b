"""The Kubernetes API, as plain wire-format dicts.

The official client is synchronous; handlers that use this module are sync
handlers (Kopf runs them in its thread pool). Objects come back as the JSON the
API server sent (camelCase dicts), which the pure logic reads directly, rather
than the client's model classes. Errors are translated into `KubeError` and its
subclasses, with the client's exception chained.

Exceptions:
    KubeError
     +-- NotFound
     +-- Conflict      (optimistic-concurrency failure: re-read and retry)
     +-- Forbidden     (RBAC: the message names the verb and resource)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..logic.holds import hold_is_stale, parse_holder
from ..names import HOLD_ANNOTATION

__all__ = [
    "Conflict",
    "Forbidden",
    "Kube",
    "KubeError",
    "NotFound",
    "WorkloadKind",
    "api_client",
]

Obj = dict[str, Any]
T = TypeVar("T")
WorkloadKind = str  # "Deployment" | "StatefulSet"


class KubeError(Exception):
    """A Kubernetes API call failed."""


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Forbidden(KubeError):
    pass


POOL_SIZE = 32
"""HTTP connections kept to the API server: more than Kopf's handler threads (16),
so a burst of handlers never waits for, or throws away, a connection."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """A client from KUBECONFIG / the given file, or the in-cluster service account."""
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except config.ConfigException:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        response = fn(*args, _preload_content=False, **kwargs)
    except ApiException as exc:
        reason = _reason(exc)
        if exc.status == 404:
            raise NotFound(reason) from exc
        if exc.status == 409:
            raise Conflict(reason) from exc
        if exc.status == 403:
            raise Forbidden(reason) from exc
        raise KubeError(f"HTTP {exc.status}: {reason}") from exc
    data = response.data
    return json.loads(data) if data else None


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.reason)


class Kube:
    """The calls the handlers need, and no more (the RBAC in deploy/ mirrors them)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)
        self.custom = client.CustomObjectsApi(api)

    # --- workloads -------------------------------------------------------

    def get_workload(self, kind: WorkloadKind, namespace: str, name: str) -> Obj:
        if kind == "StatefulSet":
            return _call(self.apps.read_namespaced_stateful_set, name, namespace)  # type: ignore[no-any-return]
        return _call(self.apps.read_namespaced_deployment, name, namespace)  # type: ignore[no-any-return]

    def patch_workload(self, kind: WorkloadKind, namespace: str, name: str, patch: Obj) -> Obj:
        """A strategic-merge patch (the client's default for dict bodies)."""
        if kind == "StatefulSet":
            return _call(self.apps.patch_namespaced_stateful_set, name, namespace, patch)  # type: ignore[no-any-return]
        return _call(self.apps.patch_namespaced_deployment, name, namespace, patch)  # type: ignore[no-any-return]

    def get_deployment(self, namespace: str, name: str) -> Obj:
        return self.get_workload("Deployment", namespace, name)

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        return self.patch_workload("Deployment", namespace, name, patch)

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]:
        listing = _call(
            self.apps.list_namespaced_replica_set, namespace, label_selector=label_selector
        )
        return list(listing["items"])

    def json_patch_deployment(self, namespace: str, name: str, operations: list[Obj]) -> Obj:
        """A JSON patch (RFC 6902), the kind `kubectl rollout undo` sends. One that sets
        metadata.resourceVersion raises Conflict when the Deployment changed since."""
        return _call(self.apps.patch_namespaced_deployment, name, namespace, operations)  # type: ignore[no-any-return]

    def patch_replicaset(self, namespace: str, name: str, patch: Obj) -> Obj:
        return _call(self.apps.patch_namespaced_replica_set, name, namespace, patch)  # type: ignore[no-any-return]

    # --- autoscaling -----------------------------------------------------

    def find_hpa(self, namespace: str, kind: WorkloadKind, name: str) -> Obj | None:
        """The HorizontalPodAutoscaler whose scaleTargetRef is this workload, if any."""
        listing = _call(self.autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace)
        for hpa in listing["items"]:
            ref = hpa["spec"]["scaleTargetRef"]
            if ref.get("kind") == kind and ref.get("name") == name:
                return hpa  # type: ignore[no-any-return]
        return None

    def list_hpas(self, namespace: str) -> list[Obj]:
        """Every HorizontalPodAutoscaler in the namespace (one call for several targets)."""
        listing = _call(self.autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace)
        return list(listing["items"])

    def patch_hpa(self, namespace: str, name: str, patch: Obj) -> Obj:
        return _call(  # type: ignore[no-any-return]
            self.autoscaling.patch_namespaced_horizontal_pod_autoscaler, name, namespace, patch
        )

    # --- config ----------------------------------------------------------

    def get_configmap(self, namespace: str, name: str) -> Obj:
        return _call(self.core.read_namespaced_config_map, name, namespace)  # type: ignore[no-any-return]

    def patch_configmap(self, namespace: str, name: str, patch: Obj) -> Obj:
        return _call(self.core.patch_namespaced_config_map, name, namespace, patch)  # type: ignore[no-any-return]

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        """One key of one Secret (the operator may `get` Secrets, never list or watch them)."""
        import base64

        secret = _call(self.core.read_namespaced_secret, name, namespace)
        data = secret.get("data") or {}
        if key not in data:
            raise NotFound(f"Secret {name} has no key {key!r}")
        return base64.b64decode(data[key])

    # --- holds: one operation per workload --------------------------------

    def acquire_hold(
        self, kind: WorkloadKind, namespace: str, name: str, holder: str
    ) -> str | None:
        """Mark the workload as held by `holder`.

        Returns None when the hold is ours (newly or already), or the name of the
        operation that holds it. A stale hold (its operation gone or finished) is
        taken over. The write carries the resourceVersion read, so two operations
        racing for the same workload cannot both win.
        """
        for _ in range(5):
            obj = self.get_workload(kind, namespace, name)
            annotations = obj["metadata"].get("annotations") or {}
            current = annotations.get(HOLD_ANNOTATION)
            if current == holder:
                return None
            if current and not self._stale_hold(namespace, str(current)):
                return str(current)
            patch = {
                "metadata": {
                    "resourceVersion": obj["metadata"]["resourceVersion"],
                    "annotations": {HOLD_ANNOTATION: holder},
                }
            }
            try:
                self.patch_workload(kind, namespace, name, patch)
                return None
            except Conflict:
                continue
        raise Conflict(f"{kind} {name} kept changing while taking the hold")

    def _stale_hold(self, namespace: str, holder: str) -> bool:
        """A hold left by an operation that is gone or finished (see logic.holds)."""
        parsed = parse_holder(holder)
        if parsed is None:
            return False  # not ours to judge: someone else's convention
        plural, name = parsed
        try:
            return hold_is_stale(self.get_custom(plural, namespace, name))
        except NotFound:
            return hold_is_stale(None)

    def release_hold(self, kind: WorkloadKind, namespace: str, name: str, holder: str) -> None:
        """Remove our hold; someone else's is left alone; a missing workload is fine."""
        try:
            obj = self.get_workload(kind, namespace, name)
        except NotFound:
            return
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(HOLD_ANNOTATION) != holder:
            return
        patch = {
            "metadata": {
                "resourceVersion": obj["metadata"]["resourceVersion"],
                "annotations": {HOLD_ANNOTATION: None},
            }
        }
        try:
            self.patch_workload(kind, namespace, name, patch)
        except Conflict:
            self.release_hold(kind, namespace, name, holder)

    # --- our own objects ---------------------------------------------------

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj:
        from ..api.common import GROUP, VERSION

        return _call(  # type: ignore[no-any-return]
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
        )

    def list_custom(self, plural: str, namespace: str, label_selector: str = "") -> list[Obj]:
        from ..api.common import GROUP, VERSION

        listing = _call(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            label_selector=label_selector,
        )
        return list(listing["items"])

    def create_custom(self, plural: str, namespace: str, body: Obj) -> Obj:
        """Create one of our objects; an existing one of that name raises Conflict."""
        from ..api.common import GROUP, VERSION

        return _call(  # type: ignore[no-any-return]
            self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body
        )

    def delete_custom(self, plural: str, namespace: str, name: str) -> bool:
        """Delete one of our objects (its finalizer runs first); False if it was gone."""
        from ..api.common import GROUP, VERSION

        try:
            _call(
                self.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
        except NotFound:
            return False
        return True
