"""A spec the API server accepted but the operator cannot use: words, not a traceback.

`parse()` returns the model, or raises `InvalidSpec` whose message names each field
and the reason in plain words (never pydantic's "For further information visit" line).
The runtime turns it into a Stalled condition with reason InvalidSpec and one Warning
event; it is not retried until the spec changes. Finalizers never need the spec.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["InvalidSpec", "describe", "parse"]

M = TypeVar("M", bound=BaseModel)


class InvalidSpec(Exception):
    """The spec cannot be used; the message says which field and why."""


def _location(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def describe(error: ValidationError) -> str:
    """`spec.targets[0].replicas: Input should be less than or equal to 1000; ...`"""
    parts = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{_location(tuple(item['loc']))}: {message}")
    return "; ".join(parts)


def parse(model: type[M], raw: Any) -> M:
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise InvalidSpec(describe(exc)) from None
