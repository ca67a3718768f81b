"""The filesystem artifact store: whole or nothing, layout, checksums, safe deletion."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, cast

import pytest

from runbook_operator.adapters.storage import (
    ArtifactMissing,
    DestinationFull,
    DestinationUnwritable,
    FileStore,
    StorageError,
)


def test_layout_and_checksum(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    upload = store.begin("team-a", "nightly", "20250101T020000Z")
    upload.write(b"hello ")
    upload.write(b"world")
    stored = upload.commit()
    path = tmp_path / "team-a" / "nightly" / "20250101T020000Z.dump"
    assert stored.location == path.as_uri()
    assert path.read_bytes() == b"hello world"
    assert stored.size == 11 and stored.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert store.checksum(stored.location) == stored
    assert b"".join(store.read(stored.location)) == b"hello world"


def test_nothing_visible_until_commit(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    upload = store.begin("ns", "b", "t")
    upload.write(b"partial")
    folder = tmp_path / "ns" / "b"
    assert [p.name for p in folder.iterdir()] == ["t.dump.partial"]
    upload.abort()
    assert list(folder.iterdir()) == []


def test_discard_partials_after_a_crash(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.begin("ns", "b", "t1").write(b"x")  # never committed nor aborted: a crash
    done = store.begin("ns", "b", "t0")
    done.write(b"y")
    done.commit()
    assert store.discard_partials("ns", "b") == 1
    assert [p.name for p in (tmp_path / "ns" / "b").iterdir()] == ["t0.dump"]
    assert store.discard_partials("ns", "absent") == 0


def test_commit_replaces_an_earlier_attempt(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    for content in (b"first", b"second"):
        upload = store.begin("ns", "b", "t")
        upload.write(content)
        stored = upload.commit()
    assert b"".join(store.read(stored.location)) == b"second"


def test_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    upload = store.begin("ns", "b", "t")
    stored = upload.commit()
    assert store.delete(stored.location) is True
    assert not (tmp_path / "ns").exists() and tmp_path.exists()
    assert store.delete(stored.location) is False


def test_only_our_artifacts_can_be_deleted(tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    store = FileStore(tmp_path / "backups")
    for location in (
        outside.as_uri(),
        (tmp_path / "backups" / ".." / "precious.txt").as_uri(),
        "file:///etc/passwd",
        "s3://bucket/ns/b/t.dump",
    ):
        with pytest.raises(ArtifactMissing):
            store.delete(location)
    assert outside.read_text() == "keep me"


def test_reading_a_missing_artifact(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(ArtifactMissing):
        store.checksum((tmp_path / "ns" / "b" / "t.dump").as_uri())


def test_unwritable_destination(tmp_path: Path) -> None:
    (tmp_path / "ns").write_text("a file where a folder should be")
    with pytest.raises(DestinationUnwritable, match="cannot write"):
        FileStore(tmp_path).begin("ns", "b", "t")


def test_full_destination() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    store = FileStore(Path("/tmp"))
    upload = store.begin("runbook-unit-test", f"full-{os.getpid()}", "t")
    cast(Any, upload).file = open("/dev/full", "wb")  # noqa: SIM115 (a device that is always full)
    try:
        with pytest.raises(DestinationFull, match="no space left"):
            for _ in range(64):
                upload.write(b"x" * 1024 * 1024)
            upload.commit()
    finally:
        upload.abort()
        store.discard_partials("runbook-unit-test", f"full-{os.getpid()}")
        (Path("/tmp") / "runbook-unit-test" / f"full-{os.getpid()}").rmdir()
        (Path("/tmp") / "runbook-unit-test").rmdir()


def test_errors_have_reasons() -> None:
    assert DestinationFull.reason == "DestinationFull"
    assert DestinationUnwritable.reason == "DestinationUnwritable"
    assert issubclass(ArtifactMissing, StorageError)


def test_each_replica_writes_its_own_partial_and_commits_only_its_own(tmp_path: Path) -> None:
    """A deposed leader still writing and the new leader never share a half-written file."""
    store = FileStore(tmp_path)
    old = store.begin("ns", "b", "t", owner="pod-a_1")
    old.write(b"half of the old one")
    new = store.begin("ns", "b", "t", owner="pod-b_2")
    new.write(b"the whole new one")
    folder = tmp_path / "ns" / "b"
    assert sorted(p.name for p in folder.iterdir()) == [
        "t.dump.pod-a_1.partial",
        "t.dump.pod-b_2.partial",
    ]
    stored = new.commit()
    assert (folder / "t.dump").read_bytes() == b"the whole new one"
    assert stored.size == len(b"the whole new one")
    # Clean-up keeps the partial of an owner still entitled to write, removes the rest.
    assert store.discard_partials("ns", "b", keep=frozenset({"pod-a_1"})) == 0
    assert store.discard_partials("ns", "b") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["t.dump"]
