"""High availability: two replicas of the operator, one leader elected on a Lease.

Two `runbook-operator run` processes share one Lease, each as the deploy/ ServiceAccount
(so the Lease RBAC in deploy/ is what they get). The leader dies in the middle of an
operation (SIGKILL, or a failpoint that exits at once as a SIGKILL does); the follower
takes the Lease over, finishes the operation, and nothing is applied twice: the same
checks as the single-operator crash tests. Take-over is timed against the Lease
duration. A leader frozen (SIGSTOP) past its Lease and then resumed writes nothing
more: the API server's audit log (the test bed records the operator's writes, each
replica naming itself in its User-Agent) shows no write of it after the follower took
over. A rolling update (new replica up, then the old one terminated) never shows two
leaders at once.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.alertmanager import (
    Alertmanager,
    alertmanager,  # noqa: F401  (fixture)
)
from support.app import deploy_app
from support.crs import create_cr, get_cr, patch_cr, wait_condition, wait_gone, wait_phase
from support.events import events, wait_reasons
from support.images import image
from support.kube import (
    Cluster,
    create_namespace,
    delete_namespace,
    unique_name,
    wait_for_rollout,
)
from support.operator import LEASE_NAMESPACE, LEASE_TIMINGS, OperatorProcess
from support.postgres import (
    AppDatabase,
    artifact,
    backup_spec,
    create_credentials,
)
from support.postgres import mail_score as mail_score  # noqa: PLC0414  (a fixture)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.rollback_cluster import deployment, owned_replica_sets, revision
from support.wait import wait_for

from .test_emergencyscale import FRONTEND, KIND, frontend_only, held_by, replicas, wait_es
from .test_emergencyscale_crash import kill_when
from .test_maintenancewindow import (
    BACKEND,
    approve,
    example_window,
    held_replicasets,
    ready_app_with_backup,
    replica_sets,
    snapshot,
    steps,
)
from .test_rollback import current_image, three_revisions

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]

LEASE_SECONDS = float(LEASE_TIMINGS["RUNBOOK_LEASE_DURATION"])
TAKEOVER_BUDGET = LEASE_SECONDS + 2.0
"""The goal: a follower leads at most the Lease duration plus 2 s after the leader died."""


class Pair:
    """Two replicas of one operator: `a` starts first and leads, `b` follows."""

    def __init__(self, a: OperatorProcess, b: OperatorProcess, prefix: str) -> None:
        self.a, self.b, self.prefix = a, b, prefix

    def start(self) -> None:
        self.a.start()
        self.b.start(lead=False)
        assert self.a.leads() and not self.b.leads()


@pytest.fixture
def pair(operator_credentials: Path, tmp_path: Path) -> Iterator[Pair]:
    prefix = f"rbha-{secrets.token_hex(3)}"
    backups = tmp_path / "backups"  # one volume both replicas mount (ReadWriteMany)
    backups.mkdir()
    replicas_ = [
        OperatorProcess(
            kubeconfig=operator_credentials,
            namespaces=[f"{prefix}-*"],
            log_path=tmp_path / f"operator-{who}.log",  # kept after the test bed is gone
            backup_root=backups,
            prefix=prefix,
            lease=f"runbook-{prefix}",
        )
        for who in ("a", "b")
    ]
    try:
        yield Pair(replicas_[0], replicas_[1], prefix)
    finally:
        for process in replicas_:
            process.stop()


@pytest.fixture
def ha_namespace(kube: Cluster, pair: Pair, request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_namespace(kube.api_client, unique_name(request.node.name, prefix=pair.prefix))
    try:
        yield name
    finally:
        for process in (pair.a, pair.b):
            if not process.running:
                process.start(lead=False)  # one of them runs the finalizers
        delete_namespace(kube.api_client, name)

        def gone() -> bool:
            try:
                client.CoreV1Api(kube.api).read_namespace(name)
            except client.ApiException as exc:
                return bool(exc.status == 404)
            return False

        wait_for(gone, timeout=60, what=f"namespace {name} deleted (finalizers run)")


def lease(kube: Cluster, pair: Pair) -> dict[str, Any]:
    api = client.CoordinationV1Api(kube.api)
    obj = api.read_namespaced_lease(pair.a.lease, LEASE_NAMESPACE)
    return dict(kube.api.sanitize_for_serialization(obj)["spec"])


def took_over(follower: OperatorProcess, since: float) -> float:
    """Wait until `follower` leads; the seconds since `since` (monotonic), printed (the
    figures are in the report with pytest -rP)."""
    wait_for(follower.leads, timeout=30, interval=0.05, what="the follower to take over")
    seconds = time.monotonic() - since
    print(f"take-over: {seconds:.2f} s")
    return seconds


def died(process: OperatorProcess, timeout: float = 60) -> float:
    """Wait for a failpoint to end the process; the monotonic time it was seen dead."""
    wait_for(lambda: not process.running, timeout=timeout, interval=0.02, what="the leader's death")
    assert process.exit_code() == 137, process.tail()
    return time.monotonic()


def no_errors(process: OperatorProcess) -> None:
    assert not [r for r in process.logs() if r.get("levelname") == "ERROR"], process.tail()


# --- the leader dies in the middle of an operation ----------------------------------------


def test_follower_is_ready_not_leading_and_takes_over_an_emergency_scale(
    kube: Cluster, pair: Pair, ha_namespace: str
) -> None:
    pair.start()
    role = pair.b.role()
    assert role == {"leader": False, "identity": role["identity"]}
    assert "runbook_leader 0.0" in pair.b.metrics()
    assert "runbook_leader 1.0" in pair.a.metrics()
    assert lease(kube, pair)["holderIdentity"] == pair.a.role()["identity"]
    # The follower watches nothing: it never even looked at the namespace's objects.
    deploy_app(kube, ha_namespace)
    create_cr(kube.api, ha_namespace, KIND, "recorded", frontend_only(6))
    kill_when(
        kube, ha_namespace, "recorded", pair.a, lambda o: bool(o.get("status", {}).get("originals"))
    )
    seconds = took_over(pair.b, time.monotonic())
    assert seconds <= TAKEOVER_BUDGET, f"took {seconds:.1f}s over"
    obj = wait_es(kube, ha_namespace, "recorded", phase="Active", ready=("True", "Scaled"))
    assert obj["status"]["originals"] == [{"kind": "Deployment", "name": FRONTEND, "replicas": 2}]
    assert replicas(kube, ha_namespace, FRONTEND) == 6
    spec = lease(kube, pair)
    assert spec["holderIdentity"] == pair.b.role()["identity"]
    assert spec["leaseTransitions"] >= 1
    assert any(r.get("message") == "took over the Lease" for r in pair.b.logs())
    # Ended by the new leader: everything back, no hold left.
    patch_cr(kube.api, ha_namespace, KIND, "recorded", {"spec": {"duration": "1s"}})
    wait_es(kube, ha_namespace, "recorded", phase="Completed", timeout=60)
    wait_for(lambda: replicas(kube, ha_namespace, FRONTEND) == 2, timeout=20, what="frontend 2")
    assert held_by(kube, ha_namespace, FRONTEND) is None
    no_errors(pair.b)


def test_leader_dies_mid_window_start_and_the_follower_completes_it_once(
    kube: Cluster,
    pair: Pair,
    ha_namespace: str,
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    pair.a.env["RUNBOOK_FAILPOINTS"] = "maintenancewindow-step-5"
    pair.start()
    before = ready_app_with_backup(kube, ha_namespace)
    spec = example_window(alertmanager, ha_namespace, start_in=10, duration="10m")
    create_cr(kube.api, ha_namespace, "MaintenanceWindow", "mw", spec)
    approve(kube, ha_namespace, "mw", "alice", "bob")  # each as themselves
    start = datetime.fromisoformat(spec["start"].replace("Z", "+00:00"))

    dead = died(pair.a)
    assert len(steps(get_cr(kube.api, ha_namespace, "MaintenanceWindow", "mw"))) == 5
    seconds = took_over(pair.b, dead)
    assert seconds <= TAKEOVER_BUDGET, f"took {seconds:.1f}s over"
    active = wait_phase(kube.api, ha_namespace, "MaintenanceWindow", "mw", "Active", timeout=60)
    assert len(steps(active)) == 11

    elapsed = int((datetime.now(UTC) - start).total_seconds()) + 3
    patch_cr(
        kube.api, ha_namespace, "MaintenanceWindow", "mw", {"spec": {"duration": f"{elapsed}s"}}
    )
    wait_phase(kube.api, ha_namespace, "MaintenanceWindow", "mw", "Completed", timeout=90)
    for name in (BACKEND, FRONTEND):
        wait_for_rollout(kube.api, ha_namespace, name)
    assert snapshot(kube, ha_namespace) == before
    # Nothing applied twice: one silence, the frontend rolled exactly twice.
    assert len(alertmanager.silences()) == 1 and alertmanager.active() == []
    assert len(replica_sets(kube, ha_namespace, FRONTEND)) == 2
    assert held_replicasets(kube, ha_namespace) == []
    no_errors(pair.b)


def test_leader_dies_mid_rollback_and_the_follower_never_applies_a_second_one(
    kube: Cluster, pair: Pair, ha_namespace: str
) -> None:
    pair.a.env["RUNBOOK_FAILPOINTS"] = "rollback-RollingBack"
    pair.start()
    three_revisions(kube, ha_namespace, "web", replicas=4)
    create_cr(kube.api, ha_namespace, "Rollback", "undo", {"targets": [{"name": "web"}]})
    dead = died(pair.a)
    seconds = took_over(pair.b, dead)
    assert seconds <= TAKEOVER_BUDGET, f"took {seconds:.1f}s over"
    done = wait_phase(kube.api, ha_namespace, "Rollback", "undo", "Completed", timeout=90)
    dep = deployment(kube, ha_namespace, "web")
    assert current_image(kube, ha_namespace, "web") == image("web-2")
    assert revision(dep) == 4  # one undo: revision 2 renumbered 4; a second would make 5
    revisions = sorted(revision(rs) for rs in owned_replica_sets(kube, ha_namespace, "web"))
    assert revisions == [1, 3, 4]
    assert done["status"]["targets"][0]["newRevision"] == 4
    no_errors(pair.b)


def test_leader_dies_mid_backup_and_the_follower_makes_the_one_artifact(
    kube: Cluster, pair: Pair, ha_namespace: str, mail_score: AppDatabase
) -> None:
    pair.start()
    api = kube.api
    create_credentials(api, ha_namespace, mail_score)
    with mail_score.connect() as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")  # pg_dump waits here
        create_cr(api, ha_namespace, "DatabaseBackup", "crash", backup_spec(mail_score))

        def attempt(n: int) -> dict[str, Any] | None:
            obj = get_cr(api, ha_namespace, "DatabaseBackup", "crash")
            status = obj.get("status") or {}
            return obj if status.get("step") == "Dumping" and status.get("attempt") == n else None

        first = wait_for(lambda: attempt(1), timeout=30, what="the dump to start")
        assert first["status"]["attemptBy"] == pair.a.role()["identity"]
        time.sleep(1)  # pg_dump is running, blocked on the lock, writing its partial file
        pair.a.kill()
        seconds = took_over(pair.b, time.monotonic())
        assert seconds <= TAKEOVER_BUDGET, f"took {seconds:.1f}s over"
        second = wait_for(lambda: attempt(2), timeout=30, what="attempt 2 by the new leader")
        assert second["status"]["attemptBy"] == pair.b.role()["identity"]
        wait_reasons(api, ha_namespace, "crash", {"Interrupted"})
        locker.execute("ROLLBACK")
    done = wait_condition(api, ha_namespace, "DatabaseBackup", "crash", "Ready", timeout=120)
    folder = artifact(done).parent
    assert [p.name for p in folder.iterdir()] == [artifact(done).name]
    assert done["status"]["startedAt"] == first["status"]["startedAt"]
    no_errors(pair.b)


def test_with_the_default_settings_a_follower_takes_over_within_15_seconds(
    kube: Cluster, pair: Pair
) -> None:
    """Lease duration 10 s, renew deadline 7 s, retry period 2 s: at most 14 s."""
    for process in (pair.a, pair.b):
        process.election = {}
    pair.start()
    time.sleep(3)  # the follower has seen a few renewals
    pair.a.kill()
    seconds = took_over(pair.b, time.monotonic())
    assert seconds <= 15, f"took {seconds:.1f}s over"
    assert lease(kube, pair)["leaseDurationSeconds"] == 10


# --- a partition, and a rolling update ---------------------------------------------------


READS = frozenset({"get", "list", "watch"})


def audited_writes(kube: Cluster, pair: Pair, namespace: str) -> list[dict[str, Any]]:
    """Every write of the operator's ServiceAccount to the objects of this namespace and to
    the pair's Lease, as the API server's audit log records them (each replica names
    itself in its User-Agent; other operators of the test session write elsewhere)."""
    path = kube.kubeconfig.parent / "logs" / "audit.log"
    out = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        lease_ = (ref.get("namespace"), ref.get("name")) == (LEASE_NAMESPACE, pair.a.lease)
        if (
            event.get("stage") == "ResponseComplete"
            and event.get("verb") not in READS  # the test bed records some reads too
            and (ref.get("namespace") == namespace or lease_)
        ):
            out.append(event)
    return out


def by(events_: list[dict[str, Any]], identity: str) -> list[dict[str, Any]]:
    return [e for e in events_ if e.get("userAgent") == f"runbook-operator/{identity}"]


def test_a_frozen_leader_resumed_after_its_lease_expired_writes_nothing(
    kube: Cluster, pair: Pair, ha_namespace: str
) -> None:
    if not kube.local:
        pytest.fail("needs the local test bed's audit log (tests/testbed records it)")
    pair.start()
    old = pair.a.role()["identity"]
    deploy_app(kube, ha_namespace)
    create_cr(kube.api, ha_namespace, KIND, "before", frontend_only(4))
    wait_es(kube, ha_namespace, "before", phase="Active")
    assert by(audited_writes(kube, pair, ha_namespace), old), (
        "the audit log records the leader's writes"
    )

    pair.a.pause()  # a partition: it neither renews nor acts, and knows nothing of it
    took_over(pair.b, time.monotonic())
    new = pair.b.role()["identity"]
    handover = datetime.now(UTC)
    # Work the old leader's watch delivers the moment it runs again.
    patch_cr(kube.api, ha_namespace, KIND, "before", {"spec": {"duration": "1s"}})
    create_cr(kube.api, ha_namespace, KIND, "during", {**frontend_only(5), "duration": "30s"})
    wait_es(kube, ha_namespace, "during", phase="Active", timeout=60)

    pair.a.resume()
    wait_for(lambda: not pair.a.running, timeout=40, what="the old leader to step down and exit")
    assert pair.a.exit_code() == 1, pair.a.tail()
    assert [r for r in pair.a.logs() if r.get("message", "").startswith("leadership lost")]

    # After the hand-over, every write to these namespaces (and to the Lease) came from the
    # new leader: none from the old one, nor from anything else in its process (Kopf).
    late = [
        e
        for e in audited_writes(kube, pair, ha_namespace)
        if datetime.fromisoformat(e["stageTimestamp"].replace("Z", "+00:00")) > handover
    ]
    assert by(late, new), "the new leader's writes are recorded"
    assert [e for e in late if e.get("userAgent") != f"runbook-operator/{new}"] == []
    wait_es(kube, ha_namespace, "before", phase="Completed", timeout=60)
    assert replicas(kube, ha_namespace, FRONTEND) == 5
    assert lease(kube, pair)["holderIdentity"] == new
    refused = [r for r in pair.a.logs() if r.get("message") == "write refused: not the leader"]
    print(f"old leader: {len(refused)} writes refused by its fence after resuming")


def test_a_rolling_update_never_has_two_leaders(kube: Cluster, pair: Pair) -> None:
    """Surge one replica, terminate the old one, twice over: at every sample exactly one
    process leads, and the hand-over takes no Lease expiry (the old one releases it)."""
    pair.a.start()
    leaders: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            count = 0
            for process in (pair.a, pair.b):
                # Not answering yet, or gone; or going, cut off in the middle of its answer.
                with contextlib.suppress(OSError, http.client.HTTPException):
                    count += bool(process.running and process.role()["leader"])
            leaders.append(count)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        old, new = pair.a, pair.b
        for _ in range(2):
            new.start(lead=False)
            assert old.leads() and not new.leads()
            ended = time.monotonic()
            assert old.stop() == 0, old.tail()
            seconds = took_over(new, ended)
            assert seconds < LEASE_SECONDS, f"{seconds:.1f}s: the Lease was not released"
            old, new = new, old
    finally:
        stop.set()
        sampler.join()
    assert max(leaders) == 1, leaders
    assert any(r.get("message") == "released the Lease" for r in pair.a.logs())


# --- what deploy/ ships, and the way out of a stuck deletion -----------------------------


def test_deploy_runs_two_replicas_one_at_a_time_and_the_api_server_accepts_it(
    kube: Cluster, operator_credentials: Path, tmp_path: Path
) -> None:
    """Every object of deploy/ passes the API server's validation (a server-side dry run;
    the namespace exists: the RBAC part is applied for the operator's credentials)."""
    rendered = kube.run_kubectl("kustomize", str(ROOT / "deploy")).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(rendered)
    kube.run_kubectl(
        "apply", "--dry-run=server", "--server-side", "--force-conflicts", "-f", str(manifest)
    )
    deployment_ = docs[("Deployment", "runbook-operator")]["spec"]
    assert deployment_["replicas"] == 2
    assert deployment_["strategy"]["type"] == "RollingUpdate"
    assert deployment_["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment_["template"]["spec"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"] for e in container["env"]}
    assert {"POD_NAME", "POD_NAMESPACE"} <= env
    assert docs[("PodDisruptionBudget", "runbook-operator")]["spec"]["minAvailable"] == 1
    assert docs[("PersistentVolumeClaim", "runbook-backups")]["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    role = docs[("Role", "runbook-operator-leader-election")]
    assert role["metadata"]["namespace"] == LEASE_NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]


def test_the_release_annotation_frees_a_stuck_deletion_with_an_event(
    kube: Cluster, pair: Pair, ha_namespace: str
) -> None:
    pair.start()
    deploy_app(kube, ha_namespace)
    create_cr(kube.api, ha_namespace, KIND, "stuck", frontend_only(5))
    wait_es(kube, ha_namespace, "stuck", phase="Active")
    annotation = {"ops.mailscore.com/release": "frontend replaced by hand (INC-42)"}
    patch_cr(kube.api, ha_namespace, KIND, "stuck", {"metadata": {"annotations": annotation}})
    client.CustomObjectsApi(kube.api).delete_namespaced_custom_object(
        "ops.mailscore.com", "v1alpha1", ha_namespace, "emergencyscales", "stuck"
    )
    wait_gone(kube.api, ha_namespace, KIND, "stuck", timeout=30)
    assert replicas(kube, ha_namespace, FRONTEND) == 5  # nothing put back, as asked
    released = [e for e in events(kube.api, ha_namespace, "stuck") if e["reason"] == "Released"]
    assert len(released) == 1 and "INC-42" in released[0]["message"], released
