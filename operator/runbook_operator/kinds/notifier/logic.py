"""A Notifier's decisions: what it posts to, in words, and what it needs (pure)."""

from __future__ import annotations

from ...core.fields import SecretKeyRef
from .api import NotifierSpec

__all__ = ["target"]


def target(spec: NotifierSpec) -> tuple[str, SecretKeyRef | None]:
    """What it posts to, in words, and the Secret key it needs (if any)."""
    if spec.slack is not None:
        return "Slack incoming webhook", spec.slack.webhook_url
    if spec.webhook is not None:
        return "JSON webhook", spec.webhook.url_from
    page = spec.statuspage
    assert page is not None
    return f"Statuspage page {page.page_id}", page.api_key
