"""The cluster under test behaves like a real one where the operator relies on it.

Deployments roll out, restart and undo with real ReplicaSet revisions, Jobs
complete, deleted pods go away, HPAs (autoscaling/v2) are served, and RBAC is
enforced for ServiceAccount tokens. The last tests start a second, separate
local test bed to prove start-up failure handling and that tear-down leaves
no process behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.images import image
from support.kube import (
    Cluster,
    api_client_from_kubeconfig,
    create_namespace,
    delete_namespace,
    mint_service_account_kubeconfig,
    unique_name,
    wait_for_rollout,
    wait_until,
)
from testbed.testbed import (
    ComponentError,
    LocalTestBed,
    Ports,
    ProcessRecord,
    cached_bin_dir,
    process_running,
    processes_matching,
)

pytestmark = pytest.mark.timeout(240)

REVISION = "deployment.kubernetes.io/revision"
IMAGE_V1 = image("backend-1.0")
IMAGE_V2 = image("backend-1.1")


@pytest.fixture(autouse=True)
def _local_only(kube: Cluster) -> None:
    """These tests are about the local test bed itself (kwok's nodes, its processes)."""
    if not kube.local:
        pytest.skip("tests of the local test bed; KUBECONFIG names another cluster")


@pytest.fixture
def ns(kube: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace that no operator serves: these tests check the cluster alone."""
    name = create_namespace(
        kube.api_client, unique_name(request.node.name, prefix="testbed"), served=False
    )
    try:
        yield name
    finally:
        delete_namespace(kube.api_client, name)


def deployment(name: str, replicas: int = 3, image: str = IMAGE_V1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def replica_sets(kube: Cluster, namespace: str, app: str) -> dict[str, Any]:
    """The Deployment's ReplicaSets by revision number."""
    listing = client.AppsV1Api(kube.api_client).list_namespaced_replica_set(
        namespace, label_selector=f"app={app}"
    )
    return {rs.metadata.annotations[REVISION]: rs for rs in listing.items}


def create_ready_deployment(
    kube: Cluster, namespace: str, name: str, replicas: int = 3, image: str = IMAGE_V1
) -> Any:
    client.AppsV1Api(kube.api_client).create_namespaced_deployment(
        namespace, deployment(name, replicas, image)
    )
    return wait_for_rollout(kube.api_client, namespace, name)


def test_deployment_reaches_all_replicas_ready(kube: Cluster, ns: str) -> None:
    ready = create_ready_deployment(kube, ns, "backend", replicas=3)

    assert (ready.status.ready_replicas, ready.status.available_replicas) == (3, 3)
    pods = client.CoreV1Api(kube.api_client).list_namespaced_pod(ns, label_selector="app=backend")
    assert len(pods.items) == 3
    assert all(p.status.phase == "Running" and p.spec.node_name for p in pods.items)


def test_rollout_restart_completes_with_a_new_replica_set(kube: Cluster, ns: str) -> None:
    create_ready_deployment(kube, ns, "backend")

    kube.run_kubectl("-n", ns, "rollout", "restart", "deployment/backend")
    kube.run_kubectl("-n", ns, "rollout", "status", "deployment/backend", "--timeout=120s")

    def restarted() -> dict[str, Any] | None:
        sets = replica_sets(kube, ns, "backend")
        if sorted(sets) != ["1", "2"]:
            return None
        old, new = sets["1"], sets["2"]
        settled = old.spec.replicas == 0 and not old.status.replicas
        return sets if settled and new.status.ready_replicas == 3 else None

    sets = wait_until(restarted, message="new ReplicaSet ready, old one at 0")
    annotations = sets["2"].spec.template.metadata.annotations or {}
    assert "kubectl.kubernetes.io/restartedAt" in annotations


def test_rollout_undo_returns_to_the_previous_revision(kube: Cluster, ns: str) -> None:
    apps = client.AppsV1Api(kube.api_client)
    create_ready_deployment(kube, ns, "backend", image=IMAGE_V1)
    kube.run_kubectl("-n", ns, "set", "image", "deployment/backend", f"app={IMAGE_V2}")
    kube.run_kubectl("-n", ns, "rollout", "status", "deployment/backend", "--timeout=120s")
    assert apps.read_namespaced_deployment("backend", ns).metadata.annotations[REVISION] == "2"

    kube.run_kubectl("-n", ns, "rollout", "undo", "deployment/backend")
    kube.run_kubectl("-n", ns, "rollout", "status", "deployment/backend", "--timeout=120s")

    undone = wait_for_rollout(kube.api_client, ns, "backend")
    assert undone.metadata.annotations[REVISION] == "3"
    assert undone.spec.template.spec.containers[0].image == IMAGE_V1
    sets = replica_sets(kube, ns, "backend")
    # The revision-1 ReplicaSet is reused and renumbered 3; the v2 one is scaled to 0.
    assert sorted(sets) == ["2", "3"]
    assert sets["3"].spec.template.spec.containers[0].image == IMAGE_V1
    assert (sets["3"].spec.replicas, sets["2"].spec.replicas) == (3, 0)


def test_job_completes(kube: Cluster, ns: str) -> None:
    batch = client.BatchV1Api(kube.api_client)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "backup"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "dump", "image": image("pg-dump-16")}],
                }
            },
        },
    }
    batch.create_namespaced_job(ns, job)

    def complete() -> Any:
        status = batch.read_namespaced_job_status("backup", ns).status
        conditions = {c.type: c.status for c in status.conditions or []}
        return status if conditions.get("Complete") == "True" else None

    status = wait_until(complete, message="Job Complete")
    assert status.succeeded == 1
    assert not status.failed


def test_deleting_a_pod_really_deletes_it(kube: Cluster, ns: str) -> None:
    core = client.CoreV1Api(kube.api_client)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "scratch"},
        "spec": {"containers": [{"name": "app", "image": IMAGE_V1}]},
    }
    core.create_namespaced_pod(ns, pod)
    wait_until(
        lambda: core.read_namespaced_pod("scratch", ns).status.phase == "Running",
        message="pod Running",
    )

    core.delete_namespaced_pod("scratch", ns)  # default grace period: 30 s

    def gone() -> bool:
        try:
            core.read_namespaced_pod("scratch", ns)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    # Well inside the 30 s grace period: the fake kubelet confirms the kill at once.
    wait_until(gone, timeout=20, message="pod gone from the API")


def test_hpa_v2_can_be_created_and_patched(kube: Cluster, ns: str) -> None:
    create_ready_deployment(kube, ns, "backend", replicas=1)
    autoscaling = client.AutoscalingV2Api(kube.api_client)
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "backend"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    autoscaling.create_namespaced_horizontal_pod_autoscaler(ns, hpa)

    autoscaling.patch_namespaced_horizontal_pod_autoscaler(
        "backend", ns, {"spec": {"minReplicas": 2, "maxReplicas": 10}}
    )

    patched = autoscaling.read_namespaced_horizontal_pod_autoscaler("backend", ns)
    assert (patched.spec.min_replicas, patched.spec.max_replicas) == (2, 10)
    assert patched.spec.scale_target_ref.name == "backend"
    assert patched.spec.metrics[0].resource.target.average_utilization == 70


def test_service_account_token_is_bound_by_rbac(kube: Cluster, ns: str, tmp_path: Path) -> None:
    core = client.CoreV1Api(kube.api_client)
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    path = mint_service_account_kubeconfig(
        kube.api_client, ns, "reader", tmp_path / "reader.kubeconfig", expiration_seconds=600
    )

    with api_client_from_kubeconfig(path) as reader:
        apps = client.AppsV1Api(reader)
        with pytest.raises(ApiException) as denied:
            apps.list_namespaced_deployment(ns)
        assert denied.value.status == 403
        assert f"system:serviceaccount:{ns}:reader" in str(denied.value.body)

        rbac.create_namespaced_role(
            ns,
            {
                "metadata": {"name": "deployment-reader"},
                "rules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "deployment-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
            },
        )

        def allowed() -> bool:
            try:
                apps.list_namespaced_deployment(ns)
            except ApiException as error:
                if error.status == 403:
                    return False
                raise
            return True

        wait_until(allowed, timeout=30, message="listing allowed after the RoleBinding")

    # The minted kubeconfig works for kubectl too, and only as far as the Role goes.
    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [kube.kubectl, f"--kubeconfig={path}", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)

    listed = kubectl("get", "deployments")
    assert listed.returncode == 0, listed.stderr
    denied_pods = kubectl("get", "pods")
    assert denied_pods.returncode != 0
    assert "forbidden" in denied_pods.stderr.lower()


# ----------------------------------------------------------------------- a second test bed


def _free_port_base() -> int:
    """A port block clear of the main test bed's and of anything listening now."""
    taken = {port for _, port in Ports.from_env().items()}

    def listening(port: int) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    for base in range(17400, 30000, 100):
        ports = [port for _, port in Ports.from_base(base).items()]
        if not taken.intersection(ports) and not any(listening(p) for p in ports):
            return base
    raise AssertionError("no free port block")


@pytest.fixture
def bin_dir() -> Path:
    found = cached_bin_dir()
    if found is None:
        pytest.fail("the test bed's binaries are not built: run `make testbed-build`")
    return found


def assert_nothing_left(bed: LocalTestBed, records: list[ProcessRecord]) -> None:
    still = [r for r in records if process_running(r)]
    assert not still, f"processes left behind: {still}"
    leftovers = processes_matching(bed.markers())
    assert not leftovers, f"processes still naming the test bed's dirs: {leftovers}"
    assert not bed.state_dir.exists()
    assert not bed.data_dir.exists()
    assert not bed.lock_path.exists(), "the lock file stays behind in the temp dir"


@pytest.mark.timeout(300)
def test_second_test_bed_starts_and_leaves_no_process_behind(bin_dir: Path, tmp_path: Path) -> None:
    bed = LocalTestBed(tmp_path / "bed", _free_port_base(), bin_dir=bin_dir)
    records: list[ProcessRecord] = []
    try:
        assert bed.up(timeout=240) is True
        assert bed.up() is False  # already up: nothing done
        records = bed.processes()
        names = sorted(r.name for r in records)
        assert names == sorted(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        )
        assert all(process_running(r) for r in records)
        found = {pid for pid, _ in processes_matching(bed.markers())}
        assert {r.pid for r in records} <= found
        with api_client_from_kubeconfig(bed.kubeconfig) as api:
            nodes = client.CoreV1Api(api).list_node().items
        assert sorted(n.metadata.name for n in nodes) == bed.node_names()
    finally:
        bed.down()

    assert_nothing_left(bed, records)


@pytest.mark.timeout(300)
def test_a_component_that_dies_is_named_and_everything_is_stopped(
    bin_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "bin"
    broken.mkdir()
    for entry in bin_dir.iterdir():
        (broken / entry.name).symlink_to(entry)
    (broken / "kube-scheduler").unlink()
    (broken / "kube-scheduler").write_text(
        "#!/bin/sh\necho 'scheduler: simulated failure' >&2\nexit 3\n"
    )
    os.chmod(broken / "kube-scheduler", 0o755)
    bed = LocalTestBed(tmp_path / "bed", _free_port_base(), bin_dir=broken)

    with pytest.raises(ComponentError) as failure:
        bed.up(timeout=240)

    assert failure.value.component == "kube-scheduler"
    assert "simulated failure" in str(failure.value)
    records = [r for r in bed.processes() if r.name != "kube-scheduler"]
    bed.down()
    assert_nothing_left(bed, records)
