"""Talking to the cluster under test: the `Cluster` handle, polling, minted credentials.

`Cluster` is what the session fixture ``kube`` (tests/conftest.py) yields.
`mint_service_account_kubeconfig` gives a test the credentials of a
ServiceAccount through the TokenRequest API, so code under test runs with
exactly the RBAC bound to that account.
"""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Cluster:
    """The cluster the e2e tests run against.

    kubeconfig: admin kubeconfig; api_client: a kubernetes ApiClient built from it;
    kubectl: the kubectl to run (the test bed's own, or the one on PATH);
    local: True when it is the local test bed (tests/testbed), False for a cluster
    named by --kubeconfig / KUBECONFIG.
    """

    kubeconfig: Path
    api_client: client.ApiClient
    kubectl: str
    local: bool

    @property
    def api(self) -> client.ApiClient:
        """Short name for api_client."""
        return self.api_client

    def run_kubectl(
        self, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Runs kubectl with the admin kubeconfig; raises with its output when it fails."""
        argv = [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return result


def render_kustomization(kube: Cluster, path: Path, kinds: set[str]) -> list[dict[str, Any]]:
    """The objects of these kinds that `kubectl kustomize path` renders, as users get them."""
    rendered = kube.run_kubectl("kustomize", str(path)).stdout
    return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in kinds]


UNSERVED = "runbook-operator.test/unserved"
"""The label of the test bed's namespaces that no operator serves (create_namespace's
`served=False`, the benchmark's references)."""
FINALIZER_BINDING = "runbook-finalizer"


def finalizer_where_served(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """deploy/admission's objects for a test bed that several operators share, each serving
    namespaces of its own, beside namespaces none serves: the binding that puts the
    operator's finalizer on at creation is narrowed to namespaces not labelled UNSERVED, as
    deploy/namespaced narrows it to its own (else an object there could never go). The
    rest is applied as users get it."""
    out = []
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "MutatingAdmissionPolicyBinding" and name == FINALIZER_BINDING:
            served = {"matchExpressions": [{"key": UNSERVED, "operator": "DoesNotExist"}]}
            spec = {**obj["spec"], "matchResources": {"namespaceSelector": served}}
            out.append({**obj, "spec": spec})
        else:
            out.append(obj)
    return out


def apply_objects(kube: Cluster, objects: list[dict[str, Any]]) -> None:
    """Server-side apply as admin (taking over fields another apply set)."""
    subprocess.run(
        [
            kube.kubectl,
            f"--kubeconfig={kube.kubeconfig}",
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all(objects),
        text=True,
        check=True,
        capture_output=True,
    )


def api_client_from_kubeconfig(path: Path | str) -> client.ApiClient:
    """A new ApiClient for the current context of a kubeconfig file (close it when done)."""
    api: client.ApiClient = config.new_client_from_config(config_file=str(path))
    return api


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.25,
    message: str = "condition",
) -> T:
    """Polls `check` until it returns something other than None/False; that value is returned.

    Raises AssertionError naming `message` (and the last value seen) at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message}: not reached within {timeout:g} s (last: {value!r})")
        time.sleep(interval)


def unique_name(hint: str, prefix: str = "e2e", max_length: int = 63) -> str:
    """A DNS-1123 label from `hint`, with a random suffix so reruns never collide."""
    suffix = secrets.token_hex(3)
    body = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")
    body = body[: max_length - len(prefix) - len(suffix) - 2].strip("-")
    return "-".join(part for part in (prefix, body, suffix) if part)


def rollout_complete(deployment: Any) -> bool:
    """The `kubectl rollout status` criteria: every replica updated and available, old ones gone."""
    spec, status = deployment.spec, deployment.status
    wanted = spec.replicas if spec.replicas is not None else 1
    return bool(
        (status.observed_generation or 0) >= deployment.metadata.generation
        and (status.updated_replicas or 0) == wanted
        and (status.replicas or 0) == wanted
        and (status.available_replicas or 0) == wanted
        and (status.ready_replicas or 0) == wanted
    )


def wait_for_rollout(
    api_client: client.ApiClient, namespace: str, name: str, timeout: float = DEFAULT_TIMEOUT
) -> Any:
    """Waits until a Deployment's rollout is complete; returns the Deployment."""
    apps = client.AppsV1Api(api_client)

    def done() -> Any:
        deployment = apps.read_namespaced_deployment_status(name, namespace)
        return deployment if rollout_complete(deployment) else None

    return wait_until(done, timeout=timeout, message=f"rollout of deployment {namespace}/{name}")


def _ca_data(configuration: client.Configuration) -> str | None:
    """The CA bundle (base64) the admin client trusts, None when it skips verification."""
    if not configuration.verify_ssl:
        return None
    if configuration.ssl_ca_cert:
        return base64.b64encode(Path(configuration.ssl_ca_cert).read_bytes()).decode()
    return None


def mint_service_account_kubeconfig(
    api_client: client.ApiClient,
    namespace: str,
    sa_name: str,
    path: Path | str,
    *,
    expiration_seconds: int = 3600,
    audiences: list[str] | None = None,
) -> Path:
    """Writes a kubeconfig that authenticates as ServiceAccount `namespace/sa_name`.

    The token comes from the TokenRequest API (bound, expiring; the API server
    enforces at least 600 s); server and CA are those of `api_client`. The
    context's default namespace is `namespace`. Returns the path written (mode 0600).
    """
    spec = client.V1TokenRequestSpec(
        audiences=audiences or [], expiration_seconds=expiration_seconds
    )
    response = client.CoreV1Api(api_client).create_namespaced_service_account_token(
        sa_name, namespace, client.AuthenticationV1TokenRequest(spec=spec)
    )
    if response.status is None or not response.status.token:
        raise RuntimeError(f"TokenRequest for {namespace}/{sa_name} returned no token")
    token = response.status.token
    configuration = api_client.configuration
    cluster: dict[str, Any] = {"server": configuration.host}
    ca_data = _ca_data(configuration)
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    elif not configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    if getattr(configuration, "tls_server_name", None):
        cluster["tls-server-name"] = configuration.tls_server_name
    user = f"system:serviceaccount:{namespace}:{sa_name}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "cluster", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }
    target = Path(path)
    target.touch(mode=0o600)
    target.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
    return target


def create_namespace(
    api_client: client.ApiClient, name: str, timeout: float = 30.0, *, served: bool = True
) -> str:
    """Creates a namespace and waits for its `default` ServiceAccount (pods need it).
    `served=False`: no operator serves it, so admission puts no finalizer on there."""
    core = client.CoreV1Api(api_client)
    labels = {"app.kubernetes.io/created-by": "runbook-operator-e2e"}
    if not served:
        labels[UNSERVED] = "true"
    metadata = client.V1ObjectMeta(name=name, labels=labels)
    core.create_namespace(client.V1Namespace(metadata=metadata))

    def has_default_sa() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    wait_until(has_default_sa, timeout=timeout, message=f"default ServiceAccount in {name}")
    return name


def delete_namespace(api_client: client.ApiClient, name: str) -> None:
    """Deletes a namespace (in the background); a missing one is fine."""
    try:
        client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise
