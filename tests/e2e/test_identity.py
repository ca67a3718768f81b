"""Who may do what, proven by the API server: the shipped admission policies (deploy/
admission/, applied by the session fixture) against people the test bed authenticates.

The people, each a user the admin impersonates (support.identity):
- rita, the requester: `edit` in the namespace (group sre);
- alice and bob, approvers: `runbook-approve` (bob through the group mw-approvers);
- oscar, an outsider with `edit` in the namespace, who tries to forge and to remove;
- nina, who may create runbook objects (`runbook-edit`) but has no other rights;
- dora, the DB admin: `edit` plus `runbook-restore`.

Each refusal is the API server's own (kubectl exits non-zero with its message), and each
message is checked for the words that tell a person what was missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from support.app import deploy_app
from support.crs import cond, create_cr, get_cr, wait_condition, wait_phase
from support.events import wait_event
from support.identity import (
    Refused,
    accepted_as,
    approve_as,
    as_user,
    create_as,
    created_as,
    dry_run_as,
    grant,
    grant_rules,
)
from support.kube import Cluster
from support.operator import OperatorProcess
from support.postgres import (
    AppDatabase,
    PostgresServer,
    backup_spec,
    create_credentials,
    scratch_database,
)
from support.postgres import postgres as postgres  # noqa: PLC0414  (the fixture)
from support.wait import wait_for

MW = "MaintenanceWindow"
API = "ops.mailscore.com/v1alpha1"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def obj(kind: str, name: str, namespace: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": spec,
    }


def window(**spec: Any) -> dict[str, Any]:
    """A window two hours away (so it stays Pending), needing alice and bob (by group)."""
    return {
        "start": rfc3339(datetime.now(UTC) + timedelta(hours=2)),
        "duration": "30m",
        "policy": {
            "minimumNotice": "1h",
            "approvals": {
                "required": 2,
                "approvers": ["alice"],
                "approverGroups": ["mw-approvers"],
            },
        },
        "approvals": [],
        **spec,
    }


@pytest.fixture
def people(kube: Cluster, namespace: str) -> str:
    grant(kube, namespace, "edit", "rita", "oscar", "dora")
    grant(kube, namespace, "runbook-approve", "alice", "bob")
    grant(kube, namespace, "runbook-edit", "nina")
    grant(kube, namespace, "runbook-restore", "dora")
    client.CoreV1Api(kube.api).create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "frontend-config"}, "data": {"MAINTENANCE_MODE": "false"}},
    )
    return namespace


def plan_revision(stored: dict[str, Any]) -> str:
    return str(stored["metadata"]["annotations"]["ops.mailscore.com/plan-revision"])


def test_the_requester_is_who_the_api_server_says_never_who_the_client_says(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    claimed = {"annotations": {"ops.mailscore.com/requested-by": "alice"}}
    stored = create_as(kube, "rita", obj(MW, "mw", ns, window(), **claimed), groups=("sre",))
    notes = stored["metadata"]["annotations"]
    assert notes["ops.mailscore.com/requested-by"] == "rita"
    assert notes["ops.mailscore.com/requested-by-groups"] == "sre,system:authenticated"

    recorded = wait_for(
        lambda: get_cr(kube.api, ns, MW, "mw").get("status", {}).get("requestedBy"),
        timeout=30,
        what="status.requestedBy",
    )
    assert recorded == {"user": "rita", "groups": ["sre", "system:authenticated"]}
    requested = wait_event(kube.api, ns, "mw", "Requested")
    assert requested["message"] == "Requested by rita (groups sre, system:authenticated)."

    # Nor can anyone rewrite it later: admission puts it back.
    as_user(
        kube, "oscar", "annotate", "-n", ns, "maintenancewindow", "mw", "--overwrite",
        "ops.mailscore.com/requested-by=oscar",
    )  # fmt: skip
    again = get_cr(kube.api, ns, MW, "mw")
    assert again["metadata"]["annotations"]["ops.mailscore.com/requested-by"] == "rita"

    # Cancelling is stamped the same way, and recorded before it is acted on.
    as_user(
        kube,
        "oscar",
        "patch",
        "-n",
        ns,
        "maintenancewindow",
        "mw",
        "--type=merge",
        "-p",
        '{"spec":{"cancel":true}}',
    )
    cancelled = wait_phase(kube.api, ns, MW, "mw", "Cancelled", timeout=30)
    assert cancelled["status"]["cancelledBy"] == "oscar"
    assert wait_event(kube.api, ns, "mw", "CancelRequested")["message"] == "Cancelled by oscar."


def test_approvals_are_bound_to_the_authenticated_approver(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    create_as(kube, "rita", obj(MW, "mw", ns, window(scaleDown=[])), groups=("sre",))
    wait_condition(kube.api, ns, MW, "mw", "Approved", "False", reason="NotApproved")

    # The outsider writes an approval in alice's name: the API server refuses it.
    with pytest.raises(Refused) as forged:
        approve_as(kube, ns, "mw", "oscar", approver="alice")
    assert "you are oscar, so you cannot add or change the approval of alice" in str(forged.value)

    # alice approves herself: recorded with the name the API server gave, and counted.
    stored = approve_as(kube, ns, "mw", "alice", comment="ok for Sunday")
    assert stored["spec"]["approvals"] == [
        {
            "approver": "alice",
            "comment": "ok for Sunday",
            "groups": "system:authenticated",
            "planRevision": 1,
        }
    ]
    wait_for(
        lambda: (
            "1 of 2 approvals recorded by alice"
            in cond(get_cr(kube.api, ns, MW, "mw"), "Approved")["message"]
        ),
        timeout=30,
        what="alice's approval counted",
    )

    # ... and the outsider may not remove it either.
    with pytest.raises(Refused) as removed:
        as_user(
            kube, "oscar", "patch", "-n", ns, "maintenancewindow", "mw", "--type=json",
            "-p", '[{"op":"remove","path":"/spec/approvals/0"}]',
        )  # fmt: skip
    assert "you (oscar) cannot remove the approval of alice" in str(removed.value)

    # The requester approving her own window does not count, even as a member of the named
    # group (the policy does not allow self-approval); bob, a member too, does.
    approve_as(kube, ns, "mw", "rita", groups=("sre", "mw-approvers"))
    approve_as(kube, ns, "mw", "bob", groups=("mw-approvers",))
    approved = wait_condition(kube.api, ns, MW, "mw", "Approved", "True")
    message = cond(approved, "Approved")["message"]
    assert message.startswith("Approved by alice, bob (2 of 2 needed).")
    assert "rita (self-approval by the requester does not count)" in message
    records = {r["approvedBy"]: r for r in approved["status"]["approvals"]}
    assert records["alice"]["counted"] and records["bob"]["counted"]
    assert records["bob"]["groups"] == ["mw-approvers", "system:authenticated"]
    assert not records["rita"]["counted"]
    assert all(r["planRevision"] == 1 and r["at"] for r in records.values())

    # rita then changes what the window does: every approval given before is void.
    edited = as_user(
        kube, "rita", "patch", "-n", ns, "maintenancewindow", "mw", "--type=merge", "-o", "json",
        "-p", '{"spec":{"maintenanceMode":{"value":"true"}}}',
    )  # fmt: skip
    assert '"ops.mailscore.com/plan-revision": "2"' in edited
    voided = wait_condition(kube.api, ns, MW, "mw", "Approved", "False", reason="ApprovalVoided")
    message = cond(voided, "Approved")["message"]
    assert "0 of 2 approvals recorded" in message
    assert "alice (voided: given for plan revision 1, and the window's plan was edited" in message
    # alice approves again (withdraw, then add): it counts for the new plan.
    as_user(
        kube, "alice", "patch", "-n", ns, "maintenancewindow", "mw", "--type=json",
        "-p", '[{"op":"remove","path":"/spec/approvals/0"}]',
    )  # fmt: skip
    again = approve_as(kube, ns, "mw", "alice")
    assert {a["approver"]: a["planRevision"] for a in again["spec"]["approvals"]}["alice"] == 2
    wait_for(
        lambda: (
            "1 of 2 approvals recorded by alice"
            in cond(get_cr(kube.api, ns, MW, "mw"), "Approved")["message"]
        ),
        timeout=30,
        what="alice's new approval counted",
    )


def test_an_approval_rule_must_name_who_may_approve(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    spec = window()
    spec["policy"]["approvals"] = {"required": 1}
    with pytest.raises(Refused) as refused:
        create_as(kube, "rita", obj(MW, "anyone", people, spec))
    assert "name who may approve: approvers (user names) or approverGroups" in str(refused.value)


def test_a_window_may_change_only_what_its_requester_could_change(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    flips = window(maintenanceMode={"configMap": "frontend-config"})
    with pytest.raises(Refused) as flag:
        create_as(kube, "nina", obj(MW, "mw", ns, flips))
    assert "you (nina) may not patch ConfigMap frontend-config in namespace " + ns in str(
        flag.value
    )

    scales = window(scaleDown=[{"name": "mail-score-backend", "replicas": 0}])
    with pytest.raises(Refused) as scale:
        create_as(kube, "nina", obj(MW, "mw", ns, scales))
    assert "you (nina) may not patch or scale every Deployment this window scales" in str(
        scale.value
    )
    assert "(mail-score-backend)" in str(scale.value) and "deployments/scale" in str(scale.value)

    # With exactly those rights (patch on that ConfigMap, update on deployments/scale), yes.
    grant_rules(
        kube,
        ns,
        "nina-hands",
        "nina",
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["frontend-config"],
                "verbs": ["patch"],
            },
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update"]},
        ],
    )
    both = window(
        maintenanceMode={"configMap": "frontend-config"},
        scaleDown=[{"name": "mail-score-backend", "replicas": 0}],
    )
    wait_for(
        lambda: created_as(kube, "nina", obj(MW, "mw", ns, both)),
        timeout=30,
        what="nina's window accepted once she holds the rights",
    )

    # Many Deployments: a right over the namespace's Deployments is asked once, not once per
    # Deployment (CEL allows two authorizer checks per expression).
    many = [f"mail-score-{n}" for n in ("web", "api", "worker", "mailer")]
    wide = window(
        maintenanceMode={"configMap": "frontend-config", "restart": [{"name": n} for n in many]},
        scaleDown=[{"name": n, "replicas": 0} for n in many],
    )
    create_as(kube, "rita", obj(MW, "many", ns, wide))  # edit: patch on every Deployment
    restarts = window(
        maintenanceMode={"configMap": "frontend-config", "restart": [{"name": n} for n in many]}
    )
    with pytest.raises(Refused) as restart:
        create_as(kube, "nina", obj(MW, "restarts", ns, restarts))
    assert "may not patch every Deployment this window restarts" in str(restart.value)
    assert "for more than two, on every Deployment of the namespace" in str(restart.value)


def _backup(ns: str, name: str = "nightly") -> dict[str, Any]:
    return obj(
        "DatabaseBackup",
        name,
        ns,
        {
            "postgres": {
                "host": "postgres.invalid",
                "database": "mail_score",
                "credentials": {"secretName": "pg-login"},
            }
        },
    )


def test_a_backup_may_read_only_a_secret_its_creator_may_read(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    with pytest.raises(Refused) as refused:
        create_as(kube, "nina", _backup(ns))
    message = str(refused.value)
    assert f"you (nina) may not get Secret pg-login in namespace {ns}" in message
    assert "ask for get on that Secret" in message
    stored = create_as(kube, "rita", _backup(ns))  # edit may read the namespace's Secrets
    assert stored["metadata"]["annotations"]["ops.mailscore.com/requested-by"] == "rita"


def _read_only(kube: Cluster, ns: str, user: str, secret: str) -> None:
    """A Role letting `user` get the one Secret `secret` in `ns`."""
    name = f"read-{secret}"
    grant_rules(
        kube,
        ns,
        name,
        user,
        [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get"],
                "resourceNames": [secret],
            }
        ],
    )


def test_an_s3_backup_may_read_only_secrets_its_creator_may_read(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    _read_only(kube, ns, "nina", "pg-login")
    backup = _backup(ns, "offsite")
    s3 = {
        "endpoint": "http://127.0.0.1:9",
        "bucket": "backups",
        "credentials": {"secretName": "s3-keys"},
        "encryption": {"secretName": "backup-key", "key": "k1"},
    }
    backup["spec"]["destination"] = {"s3": s3}
    # A schedule, so its spec may be edited later (a one-shot backup's may not).
    backup["spec"]["schedule"] = "0 2 1 1 *"

    def refused() -> str:
        with pytest.raises(Refused) as caught:
            create_as(kube, "nina", backup)
        return str(caught.value)

    # RBAC is read by the authorizer's cache: wait until nina's new Role counts.
    wait_for(
        lambda: "pg-login" not in refused(), timeout=30, what="nina's read of pg-login to count"
    )
    message = refused()
    assert f"you (nina) may not get Secret s3-keys in namespace {ns} (the S3 access keys)" in (
        message
    )
    # The API server names the first Secret refused; once nina may read it, the next.
    _read_only(kube, ns, "nina", "s3-keys")
    wait_for(lambda: "s3-keys" not in refused(), timeout=30, what="nina's read of s3-keys")
    message = refused()
    assert f"may not get Secret backup-key in namespace {ns} (the encryption key)" in message
    _read_only(kube, ns, "nina", "backup-key")
    wait_for(lambda: created_as(kube, "nina", backup), timeout=30, what="nina's S3 backup accepted")
    # Naming another Secret later is judged again; the ones named before are not.
    patch = json.dumps(
        [
            {
                "op": "replace",
                "path": "/spec/destination/s3/credentials/secretName",
                "value": "other-keys",
            }
        ]
    )
    with pytest.raises(Refused) as caught:
        as_user(
            kube, "nina", "patch", "-n", ns, "databasebackup", "offsite", "--type=json", "-p", patch
        )
    assert "may not get Secret other-keys in namespace" in str(caught.value)


def test_a_database_ca_is_a_secret_its_creator_must_be_able_to_read(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    _read_only(kube, ns, "nina", "pg-login")
    backup = _backup(ns, "verified")
    backup["spec"]["postgres"]["ca"] = {"name": "pg-ca"}

    def refused() -> str:
        with pytest.raises(Refused) as caught:
            create_as(kube, "nina", backup)
        return str(caught.value)

    wait_for(
        lambda: "pg-login" not in refused(), timeout=30, what="nina's read of pg-login to count"
    )
    assert f"you (nina) may not get Secret pg-ca in namespace {ns} (the database CA)" in (refused())
    _read_only(kube, ns, "nina", "pg-ca")
    wait_for(lambda: created_as(kube, "nina", backup), timeout=30, what="nina's backup accepted")


def test_a_restore_needs_its_own_verb_not_confirm_nor_any_active_window(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    create_as(kube, "rita", _backup(ns))
    # An unrelated emergency window, Active within seconds.
    create_cr(
        kube.api,
        ns,
        MW,
        "unrelated",
        {
            "start": rfc3339(datetime.now(UTC)),
            "duration": "10m",
            "emergency": {"reason": "something else entirely"},
        },
    )
    wait_phase(kube.api, ns, MW, "unrelated", "Active", timeout=30)

    restore = obj("DatabaseRestore", "restore", ns, {"backup": "nightly", "confirm": "mail_score"})
    with pytest.raises(Refused) as refused:
        create_as(kube, "rita", restore)  # edit, confirm typed, a window Active: still no
    message = str(refused.value)
    assert f"you (rita) may not restore DatabaseBackup nightly in namespace {ns}" in message
    assert "needs the verb restore on databasebackups (ClusterRole runbook-restore)" in message
    assert "confirm or an Active MaintenanceWindow do not replace it" in message

    # The DB admin may, and a narrower grant of `restore` alone allows no more than that.
    grant_rules(
        kube,
        ns,
        "restore-only",
        "ray",
        [
            {
                "apiGroups": ["ops.mailscore.com"],
                "resources": ["databasebackups"],
                "verbs": ["restore"],
            }
        ],
    )
    grant(kube, ns, "edit", "ray")
    unprotected = obj(
        "DatabaseRestore",
        "restore",
        ns,
        {"backup": "nightly", "confirm": "elsewhere", "targetDatabase": "elsewhere"},
    )
    with pytest.raises(Refused) as elsewhere:
        create_as(kube, "ray", unprotected)
    assert "into database elsewhere: naming a targetDatabase needs the verb" in str(elsewhere.value)
    no_net = obj(
        "DatabaseRestore",
        "restore",
        ns,
        {"backup": "nightly", "confirm": "mail_score", "safetyBackup": False},
    )
    with pytest.raises(Refused) as unsafe:
        create_as(kube, "ray", no_net)
    assert "without a safety backup: safetyBackup: false needs the verb" in str(unsafe.value)
    accepted = as_user(
        kube, "ray", "create", "--dry-run=server", "-o", "json", "-f", "-",
        stdin=json.dumps(restore),
    )  # fmt: skip
    assert '"ops.mailscore.com/requested-by": "ray"' in accepted
    as_user(
        kube, "dora", "create", "--dry-run=server", "-f", "-",
        stdin=json.dumps(no_net),
    )  # fmt: skip


def _workload_operations(ns: str, *names: str) -> list[dict[str, Any]]:
    """One of each kind that changes workloads, all aimed at `names`."""
    first = names[0]
    return [
        obj(
            "EmergencyScale", "surge", ns, {"targets": [{"name": n, "replicas": 0} for n in names]}
        ),
        obj("Rollback", "undo", ns, {"targets": [{"name": n} for n in names]}),
        obj("Restart", "bounce", ns, {"targets": [{"name": n} for n in names]}),
        obj(
            "ImageUpdate",
            "release",
            ns,
            {"deployment": first, "images": [{"container": "app", "image": "app:2"}]},
        ),
    ]


def test_an_operation_may_change_only_workloads_its_creator_may_change(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    # nina may create runbook objects but not touch a Deployment: each kind is refused,
    # an EmergencyScale to 0 replicas too, naming what she would need.
    for manifest in _workload_operations(ns, "web"):
        kind = manifest["kind"]
        with pytest.raises(Refused) as refused:
            dry_run_as(kube, "nina", manifest)
        message = str(refused.value)
        verbs = "patch or scale" if kind == "EmergencyScale" else "patch"
        assert f"you (nina) may not {verbs} Deployment web in namespace {ns}" in message, kind
        assert f"and this {kind} would change it for you: ask for patch on deployments" in message
        dry_run_as(kube, "rita", manifest)  # edit may patch every Deployment: accepted

    # sam may scale the one Deployment web (kubectl scale's right), nothing else.
    grant_rules(
        kube,
        ns,
        "scale-web",
        "sam",
        [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments/scale"],
                "verbs": ["update"],
                "resourceNames": ["web"],
            }
        ],
    )
    grant(kube, ns, "runbook-edit", "sam")
    surge, _, bounce, _ = _workload_operations(ns, "web")
    wait_for(lambda: created_as(kube, "sam", surge), timeout=30, what="sam's EmergencyScale of web")
    with pytest.raises(Refused) as restart:
        dry_run_as(kube, "sam", bounce)  # scaling is not restarting
    assert f"you (sam) may not patch Deployment web in namespace {ns}" in str(restart.value)
    with pytest.raises(Refused) as two:
        dry_run_as(kube, "sam", _workload_operations(ns, "web", "api")[0])
    message = str(two.value)
    assert "may not patch or scale Deployment web, Deployment api in namespace" in message
    assert "(for more than one, on every one of the namespace)" in message

    # Changing an existing object is judged on what it adds: web again is fine, api is not.
    add_api = json.dumps(
        [{"op": "add", "path": "/spec/targets/-", "value": {"name": "api", "replicas": 2}}]
    )
    with pytest.raises(Refused) as added:
        as_user(
            kube, "sam", "patch", "-n", ns, "emergencyscale", "surge", "--type=json", "-p", add_api
        )
    assert "may not patch or scale Deployment api in namespace" in str(added.value)
    resize = json.dumps([{"op": "replace", "path": "/spec/targets/0/replicas", "value": 3}])
    as_user(kube, "sam", "patch", "-n", ns, "emergencyscale", "surge", "--type=json", "-p", resize)


def test_cache_flushes_health_reports_and_notifiers_read_only_secrets_their_creator_may_read(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    ns = people
    flush = obj(
        "CacheFlush",
        "flush",
        ns,
        {"redis": {"host": "redis", "credentials": {"secretName": "redis-pass"}}, "confirm": "0"},
    )
    report = obj(
        "HealthReport",
        "health",
        ns,
        {
            "checks": [
                {
                    "name": "db",
                    "postgres": {
                        "host": "postgres",
                        "database": "mail_score",
                        "credentials": {"secretName": "pg-login"},
                    },
                },
                {
                    "name": "cache",
                    "redis": {"host": "redis", "credentials": {"secretName": "redis-pass"}},
                },
            ]
        },
    )
    notifier = obj(
        "Notifier",
        "oncall",
        ns,
        {"statuspage": {"pageId": "p1", "apiKey": {"name": "statuspage-key", "key": "key"}}},
    )
    slack = obj(
        "Notifier", "chat", ns, {"slack": {"webhookUrl": {"name": "slack-hook", "key": "url"}}}
    )
    refusals = [
        (flush, "may not get Secret redis-pass in namespace"),
        (report, "may not get Secret pg-login, redis-pass in namespace"),
        (notifier, "may not get Secret statuspage-key in namespace"),
        (slack, "may not get Secret slack-hook in namespace"),
    ]
    for manifest, words in refusals:
        kind = manifest["kind"]
        with pytest.raises(Refused) as refused:
            dry_run_as(kube, "nina", manifest)
        message = str(refused.value)
        assert f"you (nina) {words} {ns}, and this {kind} would read" in message, message
        dry_run_as(kube, "rita", manifest)  # edit may read the namespace's Secrets

    # A right to read just the one Secret is enough for the one it names.
    _read_only(kube, ns, "nina", "redis-pass")
    wait_for(
        lambda: accepted_as(kube, "nina", flush), timeout=30, what="nina's CacheFlush accepted"
    )
    with pytest.raises(Refused) as still:
        dry_run_as(kube, "nina", report)
    assert "ask for get on those Secrets" in str(still.value)


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[AppDatabase]:
    with scratch_database(postgres, "revoked", messages=2_000) as database:
        yield database


def test_a_restore_whose_permission_is_taken_away_overwrites_nothing(
    kube: Cluster, operator: OperatorProcess, people: str, db: AppDatabase
) -> None:
    ns = people
    api = kube.api
    create_credentials(api, ns, db)
    create_cr(api, ns, "DatabaseBackup", "nightly", backup_spec(db))
    wait_condition(api, ns, "DatabaseBackup", "nightly", "Ready", timeout=120)
    db.execute("DELETE FROM audit_log")
    damaged = db.fingerprint()

    # The operator dies right after it recorded the step Restoring (the safety backup is
    # done, nothing is overwritten yet): between admission and the overwrite, for sure.
    operator.stop()
    operator.env["RUNBOOK_FAILPOINTS"] = "databaserestore-restoring"
    try:
        operator.start(wait=False)
        restore = obj("DatabaseRestore", "restore", ns, {"backup": "nightly", "confirm": db.name})
        create_as(kube, "dora", restore)  # the DB admin may, at admission
        wait_for(lambda: not operator.running, timeout=180, what="the operator at Restoring")
        assert operator.exit_code() == 137, operator.tail()
    finally:
        operator.env.pop("RUNBOOK_FAILPOINTS")
    assert get_cr(api, ns, "DatabaseRestore", "restore")["status"]["step"] == "Restoring"

    # Meanwhile dora loses the restore verb.
    client.RbacAuthorizationV1Api(api).delete_namespaced_role_binding("runbook-restore-dora", ns)

    def revoked() -> bool:
        try:
            as_user(kube, "dora", "auth", "can-i", "restore", "databasebackups/nightly", "-n", ns)
        except Refused:
            return True
        return False

    wait_for(revoked, timeout=30, what="dora's restore verb to be gone")
    operator.start()
    failed = wait_phase(api, ns, "DatabaseRestore", "restore", "Failed", timeout=120)
    ready = cond(failed, "Ready")
    assert ready["reason"] == "NotAuthorized"
    assert "dora may no longer restore DatabaseBackup nightly" in ready["message"]
    assert "nothing was overwritten" in ready["message"]
    wait_event(api, ns, "restore", "NotAuthorized")
    assert db.fingerprint() == damaged  # the deleted rows stay deleted: nothing restored


def test_an_emergency_size_set_through_an_hpa_needs_the_right_to_patch_that_hpa(
    kube: Cluster, operator: OperatorProcess, people: str
) -> None:
    """Admission proves sam may scale mail-score-backend; that backend-hpa manages it is
    known only to the operator, which asks the API server before it changes anything."""
    ns = people
    deploy_app(kube, ns)
    grant_rules(
        kube,
        ns,
        "scale-backend",
        "sam",
        [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments/scale"],
                "verbs": ["update"],
                "resourceNames": ["mail-score-backend"],
            }
        ],
    )
    grant(kube, ns, "runbook-edit", "sam")
    surge = obj(
        "EmergencyScale", "surge", ns, {"targets": [{"name": "mail-score-backend", "replicas": 6}]}
    )
    wait_for(lambda: created_as(kube, "sam", surge), timeout=30, what="sam's EmergencyScale")
    stalled = wait_condition(
        kube.api, ns, "EmergencyScale", "surge", "Stalled", reason="NotAuthorized"
    )
    message = cond(stalled, "Stalled")["message"]
    assert "mail-score-backend is managed by HorizontalPodAutoscaler backend-hpa" in message
    assert "sam (who asked) may not patch it" in message
    autoscaling = client.AutoscalingV2Api(kube.api)
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler("backend-hpa", ns)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (3, 10)  # untouched
    assert not (stalled["status"].get("originals") or [])

    # rita (edit: HPAs too) may, and hers goes ahead through the HPA.
    create_as(kube, "rita", {**surge, "metadata": {"name": "surge-rita", "namespace": ns}})
    wait_phase(kube.api, ns, "EmergencyScale", "surge-rita", "Active", timeout=60)
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler("backend-hpa", ns)
    assert hpa.spec.min_replicas == 6
