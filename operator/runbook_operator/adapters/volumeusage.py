"""What one namespace keeps on the backup volume: its complete artifacts, and their bytes."""

from __future__ import annotations

from pathlib import Path

from .storage import SUFFIX, StorageError

__all__ = ["QuotaExceeded", "usage"]


class QuotaExceeded(StorageError):
    reason = "QuotaExceeded"


def usage(root: Path, namespace: str) -> tuple[int, int]:
    """(artifacts, bytes) under `<root>/<namespace>`; partial files are not counted."""
    folder = root / namespace
    count = size = 0
    if not folder.is_dir():
        return 0, 0
    for path in folder.glob(f"*/*{SUFFIX}"):
        try:
            size += path.stat().st_size
        except FileNotFoundError:
            continue  # deleted meanwhile
        count += 1
    return count, size
