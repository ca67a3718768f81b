"""Kopf's settings for the namespaces served: no cluster-wide scanning for exact names."""

from __future__ import annotations

import kopf
import pytest

from runbook_operator.core.runtime import _configure
from runbook_operator.settings import Settings

# _configure still sets Kopf's `batching` settings, which newer Kopf renamed and partly
# dropped: a matter for another change, not this test's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Batching settings:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Time-based event batching:DeprecationWarning"),
]


def scanning_disabled(*namespaces: str) -> bool:
    kopf_settings = kopf.OperatorSettings()
    _configure(kopf_settings, Settings(namespaces=namespaces))
    return kopf_settings.scanning.disabled


def test_exact_namespaces_need_no_namespace_list_or_crd_watch() -> None:
    assert scanning_disabled("mail-score", "mail-score-staging")


def test_all_namespaces_or_a_pattern_keep_kopf_watching_the_crds() -> None:
    assert not scanning_disabled()
    assert not scanning_disabled("mail-score", "team-*")
