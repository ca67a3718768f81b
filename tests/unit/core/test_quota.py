"""A namespace's share of the shared volume: refused before pg_dump, saying why."""

from __future__ import annotations

from pathlib import Path

from runbook_operator.adapters.volumeusage import usage
from runbook_operator.core.quota import Quota, Usage, refusal


def test_no_quota_never_refuses() -> None:
    assert refusal("team-a", Usage(10_000, 10**12), Quota()) is None


def test_count_quota_refuses_the_backup_that_would_go_over() -> None:
    assert refusal("team-a", Usage(1, 10), Quota(artifacts=2)) is None
    why = refusal("team-a", Usage(2, 10), Quota(artifacts=2))
    assert why is not None
    assert "namespace team-a keeps 2 backups" in why and "quota is 2" in why
    assert "nothing was dumped" in why and "spec.destination.s3" in why


def test_bytes_quota_refuses_once_reached() -> None:
    assert refusal("team-a", Usage(1, 1023), Quota(bytes=1024)) is None
    why = refusal("team-a", Usage(1, 3 * 1024**3), Quota(bytes=2 * 1024**3))
    assert why is not None and "uses 3.0GiB" in why and "quota is 2.0GiB" in why


def test_usage_counts_complete_artifacts_of_the_namespace_only(tmp_path: Path) -> None:
    (tmp_path / "team-a" / "nightly").mkdir(parents=True)
    (tmp_path / "team-a" / "nightly" / "1.dump").write_bytes(b"x" * 10)
    (tmp_path / "team-a" / "nightly" / "2.dump").write_bytes(b"x" * 5)
    (tmp_path / "team-a" / "nightly" / "3.dump.partial").write_bytes(b"x" * 99)
    (tmp_path / "team-b" / "other").mkdir(parents=True)
    (tmp_path / "team-b" / "other" / "1.dump").write_bytes(b"x" * 7)
    assert usage(tmp_path, "team-a") == (2, 15)
    assert usage(tmp_path, "team-c") == (0, 0)
