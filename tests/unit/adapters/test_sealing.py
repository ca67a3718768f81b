"""Streaming AES-256-GCM: what goes in comes out, and nothing altered or cut short opens."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from runbook_operator.adapters import sealing
from runbook_operator.adapters.sealing import CHUNK, InvalidArtifact, Sealer, unseal

KEY = bytes(range(32))


def sealed(data: bytes, pieces: int = 7, key_id: str = "backup-key/k1") -> bytes:
    sealer = Sealer(KEY, key_id)
    out = bytearray()
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        out += sealer.seal(data[i : i + step])
    out += sealer.finish()
    return bytes(out)


def chunks(data: bytes, size: int = 300_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_round_trip_at_every_chunk_boundary(size: int) -> None:
    data = os.urandom(size)
    box = sealed(data)
    assert box.startswith(sealing.MAGIC) and sealing.key_id_of(box) == "backup-key/k1"
    assert b"".join(unseal(chunks(box), KEY, "backup-key/k1")) == data
    assert b"".join(unseal(chunks(box, 1), KEY, "backup-key/k1")) == data  # tiny reads


def test_ciphertext_hides_the_plaintext_and_differs_every_time() -> None:
    data = b"PGDMP" + b"billing.plans " * 10_000
    first, second = sealed(data), sealed(data)
    assert b"PGDMP" not in first and b"billing" not in first
    assert first != second  # a fresh salt each time: no nonce is ever reused


def test_wrong_key_truncation_tampering_and_splicing_are_refused() -> None:
    data = os.urandom(2 * CHUNK + 100)
    box = sealed(data)
    with pytest.raises(InvalidArtifact, match="does not decrypt"):
        list(unseal([box], bytes(32), "backup-key/k1"))
    with pytest.raises(InvalidArtifact, match="encrypted with key backup-key/k1, not other/k2"):
        list(unseal([box], KEY, "other/k2"))
    cut = box[: len(box) - 200]  # the final chunk cut short
    with pytest.raises(InvalidArtifact):
        list(unseal([cut], KEY, "backup-key/k1"))
    header = len(box) - (2 * (CHUNK + 16) + 100 + 16)
    dropped_last = box[: header + 2 * (CHUNK + 16)]  # whole chunks only: not marked final
    with pytest.raises(InvalidArtifact):
        list(unseal([dropped_last], KEY, "backup-key/k1"))
    flipped = bytearray(box)
    flipped[header + 10] ^= 1
    with pytest.raises(InvalidArtifact):
        list(unseal([bytes(flipped)], KEY, "backup-key/k1"))
    with pytest.raises(InvalidArtifact, match="not encrypted"):
        list(unseal([b"PGDMP plain dump"], KEY, "backup-key/k1"))


def test_keys_and_key_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short", "k")
    with pytest.raises(ValueError, match="key id"):
        Sealer(KEY, "")
