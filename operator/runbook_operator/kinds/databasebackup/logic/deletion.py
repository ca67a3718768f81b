"""What deleting a DatabaseBackup leaves to clean up, decided from its status.

Reconcile records in status everything this needs (whether it is a schedule, the
artifact's location, the deletion policy, the server, an interrupted verification's
scratch database), so a spec edited into something the operator cannot parse is still
cleaned up as asked. The spec is a fallback only where status lacks a field (an object
written by an older operator), and only when it parses. When the policy is unknown the
artifact is kept: a backup is never deleted on a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from ....core.postgres import PostgresRef
from ..api import BackupStep, DatabaseBackupSpec, DatabaseBackupStatus, DeletionPolicy, VerifyMethod
from .oneshot import scratch_database, stamp

__all__ = ["Cleanup", "cleanup"]


@dataclass(frozen=True)
class Cleanup:
    scheduled: bool
    """A schedule: its children go with it (owner references); nothing else to do."""
    scratch: tuple[PostgresRef, str] | None = None
    """A verification was interrupted: drop its scratch database (on this server)."""
    location: str | None = None
    """The recorded artifact."""
    unrecorded: str | None = None
    """While dumping: the stamp of an artifact that may be stored but not yet recorded (the
    deletion came between the two); it goes or stays as the recorded one would."""
    policy: DeletionPolicy | None = None
    """As recorded (or from the spec); None when neither says: then nothing is deleted."""

    @property
    def deletes(self) -> bool:
        return self.policy == DeletionPolicy.DELETE


def cleanup(status: DatabaseBackupStatus, spec: DatabaseBackupSpec | None, uid: str) -> Cleanup:
    """What to undo; `spec` is None when it does not parse."""
    scheduled = status.scheduled
    if scheduled is None:
        scheduled = spec is not None and spec.schedule is not None
    if scheduled:
        return Cleanup(scheduled=True)
    return Cleanup(
        scheduled=False,
        scratch=_scratch(status, spec, uid),
        location=status.location,
        unrecorded=(
            stamp(status.started_at)
            if status.step == BackupStep.DUMPING and status.started_at is not None
            else None
        ),
        policy=status.deletion_policy or (spec.deletion_policy if spec is not None else None),
    )


def _scratch(
    status: DatabaseBackupStatus, spec: DatabaseBackupSpec | None, uid: str
) -> tuple[PostgresRef, str] | None:
    """The scratch database of a restore-verification cut short, and its server."""
    if status.step != BackupStep.VERIFYING:
        return None
    connection = status.connection or (spec.postgres if spec is not None else None)
    verification = status.verification
    name = verification.scratch_database if verification is not None else None
    method = verification.method if verification is not None else None
    if name is None and spec is not None and spec.verify == VerifyMethod.RESTORE:
        name, method = scratch_database(uid), VerifyMethod.RESTORE  # an older operator's object
    if connection is None or name is None or method != VerifyMethod.RESTORE:
        return None
    return connection, name
