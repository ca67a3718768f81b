"""CacheFlush: the runbook's P2 `redis-cli flushdb` ("USE WITH CAUTION") as an object.

A CacheFlush empties one Redis database, or only the keys matching `keyPattern`, once.
It is guarded: it runs only while the MaintenanceWindow it names is Active, or with
`confirm` set to the Redis address and database typed out (`redis:6379/0`). Before it
flushes, it records the memory in use and the key count; after, the same again. A
re-applied or resumed CacheFlush never flushes a second time.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from ...core.conditions import StatusBase
from ...core.fields import ObjectName
from ...core.model import ApiModel, cel
from ...core.redis import RedisCredentials, RedisRef
from ...core.resource import Column, Resource

__all__ = [
    "CACHE_FLUSH",
    "CacheFlushSpec",
    "CacheFlushStatus",
    "FlushPhase",
    "Measure",
    "RedisCredentials",
    "RedisRef",
]


class CacheFlushSpec(ApiModel):
    """Flush one Redis database (or the keys matching a pattern), once, behind a guard."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.maintenanceWindow) || has(self.confirm)",
                    "name the maintenanceWindow that must be Active, or set confirm to the "
                    "Redis address and database (host:port/db)",
                ),
                cel(
                    "self == oldSelf",
                    "a CacheFlush cannot be changed once created; create a new one instead",
                ),
            ]
        }
    }

    redis: RedisRef
    """The Redis server and database."""
    key_pattern: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")] | None = (
        None
    )
    """Only the keys matching this glob (`SCAN MATCH`, then `UNLINK`), e.g. `session:*`.
    Default: the whole database (`FLUSHDB ASYNC`)."""
    maintenance_window: ObjectName | None = None
    """A MaintenanceWindow in this namespace: the flush runs once it is Active (and waits,
    Blocked, until then)."""
    confirm: Annotated[str, Field(max_length=300)] | None = None
    """The Redis address and database typed out, e.g. `redis:6379/0`, to flush without a
    window."""
    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why: the incident, for the record."""


class FlushPhase(StrEnum):
    BLOCKED = "Blocked"
    """Waiting for the named MaintenanceWindow to be Active."""
    FLUSHING = "Flushing"
    """The flush is recorded and under way."""
    COMPLETED = "Completed"
    """Flushed; before and after are recorded."""
    FAILED = "Failed"
    """Redis could not be reached or refused the command; the reason says which."""
    REFUSED = "Refused"
    """Nothing was flushed: `confirm` does not name this Redis database."""
    SKIPPED = "Skipped"
    """Not run: the same run (spec.runId, or the spec of an object Git manages) ran
    already under this name; created again, most likely by Git."""


class Measure(ApiModel):
    """What the database held at one moment."""

    keys: int
    """Keys in the database (DBSIZE), or matching keyPattern."""
    used_memory: int
    """Bytes of memory the server uses (INFO memory used_memory)."""
    used_memory_human: str | None = None
    """The same, as Redis says it (e.g. 1.02M)."""
    at: datetime
    """When it was measured."""


class CacheFlushStatus(StatusBase):
    TERMINAL: ClassVar[frozenset[str]] = frozenset(
        {FlushPhase.COMPLETED, FlushPhase.FAILED, FlushPhase.REFUSED, FlushPhase.SKIPPED}
    )

    phase: FlushPhase | None = None
    """Blocked, Flushing, Completed, Failed or Refused."""
    command: str | None = None
    """`FLUSHDB ASYNC`, `FLUSHDB`, or `SCAN MATCH <pattern> + UNLINK`."""
    authorized_by: str | None = None
    """What allowed it: MaintenanceWindow/<name>, or confirm."""
    marker: str | None = None
    """The key set just before FLUSHDB: while it exists, the flush has not happened, so a
    resumed flush knows whether to send it (FLUSHDB removes it)."""
    before: Measure | None = None
    """Recorded before anything was flushed."""
    after: Measure | None = None
    """Measured once the flush is done."""
    removed: int | None = None
    """Keys removed by a keyPattern flush."""
    started_at: datetime | None = None
    """When the flush was recorded."""
    completed_at: datetime | None = None
    """When it ended (Completed, Failed or Refused)."""
    address: str | None = None
    """host:port/db, for `kubectl get`."""


CACHE_FLUSH = Resource(
    kind="CacheFlush",
    plural="cacheflushes",
    short_names=("cflush",),
    spec=CacheFlushSpec,
    status=CacheFlushStatus,
    one_shot=True,
    description=(
        "Flush a Redis database (or the keys matching a pattern) like `redis-cli flushdb`, "
        "once, only inside an Active MaintenanceWindow or with the address typed out, with "
        "the memory and key count recorded before and after."
    ),
    columns=(
        Column("Redis", ".status.address"),
        Column("Phase", ".status.phase"),
        Column("Keys-Before", ".status.before.keys", type="integer"),
        Column("Keys-After", ".status.after.keys", type="integer"),
        Column("Ready", ".status.conditions[?(@.type=='Ready')].status"),
        Column("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
        Column("Message", ".status.conditions[?(@.type=='Ready')].message", priority=1),
    ),
)
