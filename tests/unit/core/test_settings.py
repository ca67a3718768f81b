"""Which namespaces the operator serves: exact names and globs."""

from __future__ import annotations

from runbook_operator.settings import Settings


def test_everything_is_served_without_namespaces() -> None:
    assert Settings().serves("kube-system")


def test_globs_and_exact_names() -> None:
    settings = Settings(namespaces=("team-*", "mail-score"))
    assert settings.serves("team-a") and settings.serves("mail-score")
    assert not settings.serves("mail-score-staging") and not settings.serves("kube-system")
