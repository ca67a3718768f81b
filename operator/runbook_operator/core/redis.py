"""A Redis database as the API names it: where it is and where its password is.

The same models serve every kind that talks to Redis (a CacheFlush, a HealthReport), so
neither imports the other. Pure: reading the password (the Secret) is core.cache's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .fields import ObjectName
from .model import ApiModel

__all__ = ["HOST_PATTERN", "RedisCredentials", "RedisRef"]

HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"


class RedisCredentials(ApiModel):
    """A Secret in this namespace with the password (and an ACL user name, if any)."""

    secret_name: ObjectName
    """Name of the Secret (read with `get` only; its values never appear anywhere)."""
    password_key: Annotated[str, Field(min_length=1, max_length=253)] = "password"
    """Key of the password in the Secret."""
    username_key: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """Key of the ACL user name in the Secret. Default: no user name (the `default` user)."""


class RedisRef(ApiModel):
    """A Redis database and how to reach it."""

    host: Annotated[str, Field(min_length=1, max_length=253, pattern=HOST_PATTERN)]
    """Host name or IP address, e.g. the Service `redis`."""
    port: Annotated[int, Field(ge=1, le=65535)] = 6379
    """TCP port."""
    db: Annotated[int, Field(ge=0, le=9999)] = 0
    """The database number (SELECT)."""
    credentials: RedisCredentials | None = None
    """Where the password is, when the server asks for one."""

    @property
    def address(self) -> str:
        """`redis:6379/0`: what a CacheFlush's `confirm` must say."""
        return f"{self.host}:{self.port}/{self.db}"
