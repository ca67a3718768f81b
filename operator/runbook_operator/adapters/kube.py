"""The Kubernetes API, as plain wire-format dicts.

The official client is synchronous; the passes that use this module run in the
operator's thread pools (core.controller). Objects come back as the JSON the
API server sent (camelCase dicts), which the pure logic reads directly, rather
than the client's model classes. Errors are translated into `KubeError` and its
subclasses, with the client's exception chained.

Exceptions:
    KubeError
     +-- NotFound
     +-- Conflict      (optimistic-concurrency failure: re-read and retry)
     +-- Forbidden     (RBAC: the message names the verb and resource)
     +-- Fenced        (a write refused here: this process is not the leader)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ..apigroup import GROUP, VERSION
from . import metrics

__all__ = [
    "Conflict",
    "Fenced",
    "Forbidden",
    "Kube",
    "KubeError",
    "NotFound",
    "WorkloadKind",
    "api_client",
    "warm",
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


LOG = logging.getLogger("runbook_operator.kube")
POOL_SIZE = 32
"""HTTP connections kept to the API server: more than Kopf's handler threads (16),
so a burst of handlers never waits for, or throws away, a connection."""
WARM_CONNECTIONS = 4
"""Connections `warm` keeps open. A pass's first requests go side by side (its
finalizer beside its reads, then its Events, core.fanout), so the first operation after
a quiet spell would otherwise wait for that many new TLS handshakes: measured on the
test bed, 5 to 8 ms each, and a first request of 13 ms instead of 4 to 5."""
IDLE_CLOSE_SECONDS = 90.0
"""kube-apiserver closes a connection that carried no request for this long (its HTTP
server's idle timeout): on the test bed a pooled connection was still open after 85 s
idle, and closed after 95 s."""


class Fenced(KubeError):
    """A write refused before it was sent: this process is not (or no longer) the leader."""


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def api_client(
    kubeconfig: str | None = None,
    *,
    fence: Callable[[], bool] | None = None,
    counted: bool = True,
    user_agent: str | None = None,
) -> client.ApiClient:
    """A client from KUBECONFIG / the given file, or the in-cluster service account.

    `fence()` is asked before every write: while it returns True the write is refused
    (`Fenced`) and never reaches the API server. `counted` adds its requests to
    `runbook_api_requests_total`; `user_agent` names this process in the API server's
    audit log."""
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except config.ConfigException:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = POOL_SIZE
    api = client.ApiClient(configuration)
    if user_agent:
        api.user_agent = user_agent
    send = api.rest_client.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if fence is not None and method in WRITES and fence():
            metrics.FENCED_WRITES.inc()
            path = url.split("?", maxsplit=1)[0]
            LOG.warning("write refused: not the leader", extra={"verb": method, "path": path})
            raise Fenced(f"{method} {path} refused: this operator is not the leader")
        if counted:
            metrics.API_REQUESTS.labels(verb=method).inc()
        return send(method, url, *args, **kwargs)

    api.rest_client.request = request  # type: ignore[method-assign]  # count, fence
    return api


def warm(api: client.ApiClient, count: int = WARM_CONNECTIONS) -> int:
    """Open, or keep from closing, `count` connections of `api`'s pool: as many
    `GET /version` (readable by every authenticated client) one after another, each
    holding its connection until all are answered, so each goes over a connection of its
    own. Returns how many connections had to be opened (0: all were open already)."""
    version = client.VersionApi(api)
    pool = api.rest_client.pool_manager.connection_from_url(api.configuration.host)
    opened = pool.num_connections
    held: list[Any] = []  # urllib3 responses, each still holding its connection
    try:
        for _ in range(count):
            held.append(version.get_code(_preload_content=False))
    finally:
        for response in held:
            response.read()
            response.release_conn()
    return int(pool.num_connections - opened)


def _freshness(cached: bool) -> dict[str, str]:
    """A list's resourceVersion: "0" is the watch cache as it is (core.ports says when
    that is enough); none is a consistent list."""
    return {"resource_version": "0"} if cached else {}


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
        self.authorization = client.AuthorizationV1Api(api)

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

    def scale_workload(self, kind: WorkloadKind, namespace: str, name: str, replicas: int) -> Obj:
        """Only the replicas, through the `scale` subresource (what `kubectl scale` does):
        `patch` on deployments/scale, not on the whole object, is all it needs."""
        body = {"spec": {"replicas": replicas}}
        if kind == "StatefulSet":
            return _call(self.apps.patch_namespaced_stateful_set_scale, name, namespace, body)  # type: ignore[no-any-return]
        return _call(self.apps.patch_namespaced_deployment_scale, name, namespace, body)  # type: ignore[no-any-return]

    def get_deployment(self, namespace: str, name: str) -> Obj:
        return self.get_workload("Deployment", namespace, name)

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        return self.patch_workload("Deployment", namespace, name, patch)

    def list_replicasets(
        self, namespace: str, label_selector: str, *, cached: bool = False
    ) -> list[Obj]:
        listing = _call(
            self.apps.list_namespaced_replica_set,
            namespace,
            label_selector=label_selector,
            **_freshness(cached),
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
        """The HorizontalPodAutoscaler whose scaleTargetRef is this workload, if any (from
        the watch cache: core.ports)."""
        for hpa in self.list_hpas(namespace, cached=True):
            ref = hpa["spec"]["scaleTargetRef"]
            if ref.get("kind") == kind and ref.get("name") == name:
                return hpa
        return None

    def list_hpas(self, namespace: str, *, cached: bool = False) -> list[Obj]:
        """Every HorizontalPodAutoscaler in the namespace (one call for several targets)."""
        listing = _call(
            self.autoscaling.list_namespaced_horizontal_pod_autoscaler,
            namespace,
            **_freshness(cached),
        )
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

    def create_configmap(self, namespace: str, body: Obj) -> Obj:
        return _call(self.core.create_namespaced_config_map, namespace, body)  # type: ignore[no-any-return]

    def get_object(self, api_version: str, plural: str, namespace: str, name: str) -> Obj:
        """An object of another controller's custom resource (an Argo CD Application, a
        Flux Kustomization)."""
        group, version = api_version.split("/", 1)
        get = self.custom.get_namespaced_custom_object
        return _call(get, group, version, namespace, plural, name)  # type: ignore[no-any-return]

    def patch_object(
        self, api_version: str, plural: str, namespace: str, name: str, patch: Obj
    ) -> Obj:
        """A JSON merge patch of another controller's custom resource."""
        group, version = api_version.split("/", 1)
        change = self.custom.patch_namespaced_custom_object
        return _call(change, group, version, namespace, plural, name, patch)  # type: ignore[no-any-return]

    def read_secret(self, namespace: str, name: str) -> Obj:
        """One Secret, whole: its type and labels say whether it may be used (with `get`)."""
        return _call(self.core.read_namespaced_secret, name, namespace)  # type: ignore[no-any-return]

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        """One key of one Secret (the operator may `get` Secrets, never list or watch them)."""
        import base64

        secret = _call(self.core.read_namespaced_secret, name, namespace)
        data = secret.get("data") or {}
        if key not in data:
            raise NotFound(f"Secret {name} has no key {key!r}")
        return base64.b64decode(data[key])

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        """The pods a workload's selector picks (a HealthReport counts the ones not running)."""
        listing = _call(self.core.list_namespaced_pod, namespace, label_selector=label_selector)
        return list(listing["items"])

    def list_events(self, namespace: str, field_selector: str = "") -> list[Obj]:
        """core/v1 Events in a namespace, e.g. field_selector="type=Warning"."""
        listing = _call(self.core.list_namespaced_event, namespace, field_selector=field_selector)
        return list(listing["items"])

    def create_event(self, namespace: str, body: Obj) -> Obj:
        """A core/v1 Event (core.recorder builds it)."""
        return _call(self.core.create_namespaced_event, namespace, body)  # type: ignore[no-any-return]

    def get_namespace(self, name: str) -> Obj:
        """A Namespace (its labels select the cluster-wide policies that govern it)."""
        return _call(self.core.read_namespace, name)  # type: ignore[no-any-return]

    # --- authorization -------------------------------------------------------

    def allowed(
        self,
        user: str,
        groups: list[str],
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        name: str,
    ) -> bool:
        """Whether `user` (in `groups`) may `verb` the object now: a LocalSubjectAccessReview
        in its namespace, which a RoleBinding there allows (the namespaced install has no
        cluster-wide permission to ask with a SubjectAccessReview)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": namespace},
            "spec": {
                "user": user,
                "groups": groups,
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "namespace": namespace,
                    "name": name,
                },
            },
        }
        answer = _call(
            self.authorization.create_namespaced_local_subject_access_review, namespace, review
        )
        return bool((answer.get("status") or {}).get("allowed"))

    # --- our own objects ---------------------------------------------------

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj:
        return _call(  # type: ignore[no-any-return]
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
        )

    def list_custom(
        self, plural: str, namespace: str, label_selector: str = "", *, cached: bool = False
    ) -> list[Obj]:
        listing = _call(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            label_selector=label_selector,
            **_freshness(cached),
        )
        return list(listing["items"])

    def list_cluster_custom(self, plural: str, *, cached: bool = False) -> list[Obj]:
        """Every object of one of our cluster-scoped kinds (a MaintenancePolicy)."""
        listing = _call(
            self.custom.list_cluster_custom_object, GROUP, VERSION, plural, **_freshness(cached)
        )
        return list(listing["items"])

    def create_custom(self, plural: str, namespace: str, body: Obj) -> Obj:
        """Create one of our objects; an existing one of that name raises Conflict."""
        return _call(  # type: ignore[no-any-return]
            self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body
        )

    def patch_custom(self, plural: str, namespace: str, name: str, patch: Obj) -> Obj:
        """A JSON merge patch of one of our objects (metadata, spec); one that carries
        metadata.resourceVersion raises Conflict when the object changed since."""
        return _call(  # type: ignore[no-any-return]
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
        )

    def patch_custom_status(self, plural: str, namespace: str, name: str, patch: Obj) -> Obj:
        """A JSON merge patch of the status subresource; with metadata.resourceVersion in
        it, Conflict when the object changed since it was read."""
        return _call(  # type: ignore[no-any-return]
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
        )

    def delete_custom(self, plural: str, namespace: str, name: str) -> bool:
        """Delete one of our objects (its finalizer runs first); False if it was gone."""
        try:
            _call(
                self.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
        except NotFound:
            return False
        return True
