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


def test_watching_something_that_changed_during_the_pass_is_said_so_it_looks_again() -> None:
    interest = Interest()
    interest.changed("ns", "Deployment", "web")
    interest.changed("ns", "Deployment", "api")
    assert interest.watch(ES, [("Deployment", "web")]) is True
    assert interest.watch(ES, [("Deployment", "web")]) is False
    assert interest.watch(ES, [("Deployment", "web"), ("Deployment", "api")]) is True
    assert interest.watch(ES, [("Deployment", "api")]) is False  # only less
    assert interest.watch(ES, []) is False
    assert interest.owners("ns", "Deployment", "api") == set()


def test_watching_something_unchanged_since_the_pass_began_is_no_reason_to_look_again() -> None:
    interest = Interest()
    interest.changed("ns", "Deployment", "web")  # before the pass: it read that
    since = interest.seq
    interest.changed("ns", "Deployment", "other")  # not watched
    interest.changed("elsewhere", "Deployment", "api")  # another namespace's
    assert interest.watch(ES, [("Deployment", "web"), ("Deployment", "api")], since) is False
    assert interest.owners("ns", "Deployment", "web") == {ES}  # watched all the same


def test_a_change_after_the_pass_began_of_what_it_starts_watching_is_news() -> None:
    for kind, name, namespace in (
        ("Deployment", "web", "ns"),
        ("DatabaseBackup", "*", "ns"),  # any of a kind
        ("MaintenancePolicy", "*", None),  # cluster-scoped
        ("Namespace", "ns", None),  # its own namespace
    ):
        interest = Interest()
        since = interest.seq
        changed = "nightly" if name == "*" else name
        interest.changed(namespace, kind, changed)
        assert interest.watch(ES, [(kind, name)], since) is True, kind


def test_changes_older_than_every_running_pass_are_let_go_once_many() -> None:
    interest = Interest()
    for i in range(11_000):
        interest.changed("ns", "Deployment", f"d{i}")
    last = interest.seq
    interest.prune(last - 1)  # the last change is newer than the oldest running pass
    assert interest.watch(ES, [("Deployment", "d10999")], last - 1) is True
    assert interest.watch(ES, [("Deployment", "d0"), ("Deployment", "d10998")], 0) is False
    assert len(interest._changes) == 2  # d10999 and its kind's "*"


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


def test_changes_a_long_pass_holds_are_gone_through_again_only_once_doubled() -> None:
    interest = Interest()
    for i in range(11_000):
        interest.changed("ns", "Deployment", f"d{i}")
    interest.prune(0)  # a pass began before all of them: nothing can go
    assert len(interest._changes) == 11_001
    kept = interest._changes
    interest.changed("ns", "Deployment", "one-more")
    interest.prune(interest.seq)  # not gone through again: far from twice as many
    assert interest._changes is kept
    for i in range(11_001):
        interest.changed("ns", "Deployment", f"e{i}")
    interest.prune(interest.seq)  # more than twice as many: all older than any pass go
    assert interest._changes == {}
