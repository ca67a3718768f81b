"""A BackupDestination's decisions, pure: what it is, and which Secret keys it needs."""

from __future__ import annotations

from typing import NamedTuple

from ...core.destination import DEFAULT_NAME, Destination, describe

__all__ = ["Needed", "State", "needed", "state"]


class Needed(NamedTuple):
    """One Secret key the destination makes the operator read; encryption: a 32-byte key."""

    secret: str
    key: str
    encryption: bool = False


def needed(spec: Destination) -> list[Needed]:
    """Every Secret key an S3 destination names (none for the volume), in a stable order."""
    s3 = spec.s3
    if s3 is None:
        return []
    creds = s3.credentials
    out = [
        Needed(creds.secret_name, creds.access_key_id_key),
        Needed(creds.secret_name, creds.secret_access_key_key),
    ]
    if s3.ca is not None:
        out.append(Needed(s3.ca.name, s3.ca.key))
    if s3.encryption is not None and s3.encryption.key is not None:
        out.append(Needed(s3.encryption.secret_name, s3.encryption.key, encryption=True))
    return out


class State(NamedTuple):
    """The Ready condition to show: kstatus state, reason, message."""

    state: str
    reason: str
    message: str


def state(name: str, spec: Destination, unreadable: str | None) -> State:
    """Ready when every Secret it names can be read and it is the default; a destination
    with another name is never used, and says so (Stalled: a person must rename it). A
    Secret that cannot be read is said first: it is what a person fixes first."""
    target = describe(spec)
    if unreadable is not None:
        return State(
            "waiting",
            "SecretNotReadable",
            f"{unreadable}: backups without spec.destination cannot go to {target}",
        )
    if name != DEFAULT_NAME:
        return State(
            "stalled",
            "NotTheDefault",
            f"only the BackupDestination named {DEFAULT_NAME} is used; name it "
            f"{DEFAULT_NAME} to send this namespace's backups to {target}",
        )
    return State(
        "ready",
        "Configured",
        f"backups of this namespace without spec.destination go to {target}",
    )
