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


MW_SHOP = ("MaintenanceWindow", "shop", "weekly")
MW_BANK = ("MaintenanceWindow", "bank", "nightly")


def test_a_cluster_scoped_object_wakes_its_watchers_in_every_namespace() -> None:
    interest = Interest()
    interest.watch(MW_SHOP, [("MaintenancePolicy", "*"), ("Namespace", "shop")])
    interest.watch(MW_BANK, [("MaintenancePolicy", "*"), ("Namespace", "bank")])
    interest.watch(ES, [("Deployment", "web")])
    assert interest.owners(None, "MaintenancePolicy", "production-minimums") == {MW_SHOP, MW_BANK}
    interest.drop(MW_BANK)
    assert interest.owners(None, "MaintenancePolicy", "production-minimums") == {MW_SHOP}
    assert interest.owners(None, "Deployment", "web") == {ES}  # by kind and name, anywhere


def test_a_namespace_is_its_own_namespace() -> None:
    interest = Interest()
    interest.watch(MW_SHOP, [("Namespace", "shop")])
    interest.watch(MW_BANK, [("Namespace", "bank")])
    assert interest.owners(None, "Namespace", "shop") == {MW_SHOP}
    assert interest.owners(None, "Namespace", "other") == set()
