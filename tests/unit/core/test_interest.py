"""Which operations a change wakes, and when an operation starts watching something new."""

from __future__ import annotations

from runbook_operator.core.interest import Interest

ES = ("EmergencyScale", "ns", "surge")


def test_a_change_wakes_the_operations_watching_it() -> None:
    interest = Interest()
    interest.watch(ES, [("Deployment", "web")])
    assert interest.owners("ns", "Deployment", "web") == {ES}
    assert interest.owners("ns", "Deployment", "api") == set()
    assert interest.owners("other", "Deployment", "web") == set()


def test_watching_something_new_is_said_so_the_operation_looks_again() -> None:
    interest = Interest()
    assert interest.watch(ES, [("Deployment", "web")]) is True
    assert interest.watch(ES, [("Deployment", "web")]) is False
    assert interest.watch(ES, [("Deployment", "web"), ("Deployment", "api")]) is True
    assert interest.watch(ES, [("Deployment", "api")]) is False  # only less
    assert interest.watch(ES, []) is False
    assert interest.owners("ns", "Deployment", "api") == set()


def test_any_object_of_a_kind() -> None:
    interest = Interest()
    interest.watch(ES, [("DatabaseBackup", "*")])
    assert interest.owners("ns", "DatabaseBackup", "nightly") == {ES}
    interest.drop(ES)
    assert interest.owners("ns", "DatabaseBackup", "nightly") == set()
