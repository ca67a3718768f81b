"""The base of every custom resource's model, and how CRD validation is written on it.

The pydantic models are the one source of the API: the operator parses objects with
them and `crdgen` renders the CRDs from them. So validation the API server can do is
written next to the field, as OpenAPI keywords and CEL rules (`x-kubernetes-validations`),
each with a message a person understands; `crdgen` carries them into the CRD untouched.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ..apigroup import GROUP, VERSION

__all__ = ["GROUP", "VERSION", "ApiModel", "cel", "immutable"]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored.

    Unknown fields are ignored rather than rejected so that an operator one
    version behind still reads objects written by a newer schema.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no unset nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, **extra: str) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry."""
    return {"rule": rule, "message": message, **extra}


def immutable(what: str) -> dict[str, Any]:
    """A transition rule: the value may be set once, never changed."""
    return cel("self == oldSelf", f"{what} cannot be changed once set; create a new object instead")
