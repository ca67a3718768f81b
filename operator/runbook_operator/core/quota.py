"""A namespace's share of the shared backup volume: bytes and artifacts, decided purely.

The volume is one ReadWriteOnce disk for every namespace, so one team's backups could
fill it for all. The operator's settings cap what one namespace keeps there; a backup
that would go over is refused before pg_dump starts, saying what is used and what to
do. What a namespace uses is counted by adapters.volumeusage.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Quota", "Usage", "refusal"]


@dataclass(frozen=True)
class Usage:
    artifacts: int
    bytes: int


@dataclass(frozen=True)
class Quota:
    bytes: int = 0
    """0: no limit."""
    artifacts: int = 0
    """0: no limit."""


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{size}B"


def refusal(namespace: str, used: Usage, quota: Quota) -> str | None:
    """Why one more backup of `namespace` may not go to the volume; None when it may."""
    advice = (
        "lower the schedule's keep, delete old DatabaseBackups, or send this one to S3 "
        "(spec.destination.s3)"
    )
    if quota.artifacts and used.artifacts + 1 > quota.artifacts:
        return (
            f"namespace {namespace} keeps {used.artifacts} backups on the shared volume, its "
            f"quota is {quota.artifacts}: nothing was dumped; {advice}"
        )
    if quota.bytes and used.bytes >= quota.bytes:
        return (
            f"namespace {namespace} uses {_human(used.bytes)} of the shared volume, its quota "
            f"is {_human(quota.bytes)}: nothing was dumped; {advice}"
        )
    return None
