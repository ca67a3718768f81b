"""The API group and version of every kind: the lowest layer, imported by all."""

from __future__ import annotations

__all__ = ["GROUP", "VERSION"]

GROUP = "ops.mailscore.com"
VERSION = "v1alpha1"
