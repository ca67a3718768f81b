"""Ownership by ownerReference uid, not by label."""

from __future__ import annotations

from runbook_operator.core.owners import owned_by, owner_uids


def test_owner_uids() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b", "controller": True}]}}
    assert owner_uids(obj) == frozenset({"a", "b"})


def test_no_owners() -> None:
    assert owner_uids({}) == frozenset()
    assert owner_uids({"metadata": {"ownerReferences": None}}) == frozenset()


def test_malformed_references_are_ignored() -> None:
    obj = {"metadata": {"ownerReferences": ["x", {"name": "n"}, {"uid": ""}, {"uid": "c"}]}}
    assert owner_uids(obj) == frozenset({"c"})


def test_owned_by() -> None:
    label = {"ops.mailscore.com/schedule": "nightly"}
    assert not owned_by({"metadata": {"labels": label}}, "u1")  # the label alone
    owned = {"metadata": {"labels": label, "ownerReferences": [{"uid": "u1"}]}}
    assert owned_by(owned, "u1") and not owned_by(owned, "u2")


def test_an_empty_uid_owns_nothing() -> None:
    assert not owned_by({"metadata": {"ownerReferences": [{"uid": ""}]}}, "")
    assert not owned_by({"metadata": {"ownerReferences": [{"uid": "a"}]}}, None)
