"""Which namespaces the operator serves: exact names and globs."""

from __future__ import annotations

from runbook_operator.settings import Settings


def test_everything_is_served_without_namespaces() -> None:
    assert Settings().serves("kube-system")


def test_globs_and_exact_names() -> None:
    settings = Settings(namespaces=("team-*", "mail-score"))
    assert settings.serves("team-a") and settings.serves("mail-score")
    assert not settings.serves("mail-score-staging") and not settings.serves("kube-system")


def test_only_exact_names_are_served_without_cluster_wide_watches() -> None:
    assert Settings(namespaces=("mail-score", "mail-score-staging")).exact_namespaces == (
        "mail-score",
        "mail-score-staging",
    )
    assert Settings().exact_namespaces is None  # all namespaces
    for pattern in ("team-*", "team-?", "team-[ab]"):
        assert Settings(namespaces=("mail-score", pattern)).exact_namespaces is None
