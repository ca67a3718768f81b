"""Streaming authenticated encryption of artifacts: AES-256-GCM in fixed-size chunks.

A dump is encrypted while it streams, so nothing is buffered beyond one chunk:

    header  = MAGIC | len(key id) (1 byte) | key id | salt (8 random bytes)
    chunk i = AES-256-GCM(key, nonce = salt | i (4 bytes, big-endian),
                          aad = header | i (8 bytes) | final (1 byte)) of 1 MiB of the dump

Every chunk but the last holds exactly CHUNK bytes of plaintext; the last is marked
final in its AAD, so a truncated, reordered or spliced artifact fails to decrypt
instead of restoring less than was dumped. The key id travels in the header (and in
the backup's status), so a rotated key still opens older artifacts.

InvalidArtifact (a StorageError) names what is wrong, never the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .storage import StorageError

__all__ = ["CHUNK", "MAGIC", "InvalidArtifact", "Sealer", "key_id_of", "unseal"]

MAGIC = b"RBKAEAD1"
CHUNK = 1024 * 1024
TAG = 16
SALT = 8


class InvalidArtifact(StorageError):
    reason = "DecryptionFailed"


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _nonce(salt: bytes, index: int) -> bytes:
    if index >= 2**32:
        raise InvalidArtifact("the artifact has more chunks than one key may seal")
    return salt + index.to_bytes(4, "big")


class Sealer:
    """Encrypts a stream: `seal()` each piece, then `finish()` once."""

    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) != 32:
            raise ValueError("an AES-256 key has 32 bytes")
        encoded = key_id.encode()
        if not 0 < len(encoded) < 256:
            raise ValueError("a key id has 1 to 255 bytes")
        self.aead = AESGCM(key)
        self.salt = os.urandom(SALT)
        self.header = MAGIC + bytes([len(encoded)]) + encoded + self.salt
        self.index = 0
        self.pending = bytearray()
        self.started = False

    def _chunk(self, data: bytes, final: bool) -> bytes:
        out = self.aead.encrypt(
            _nonce(self.salt, self.index), data, _aad(self.header, self.index, final)
        )
        self.index += 1
        return out

    def seal(self, data: bytes) -> bytes:
        """Ciphertext for what can be sealed so far (the header first)."""
        out = bytearray()
        if not self.started:
            out += self.header
            self.started = True
        self.pending += data
        while len(self.pending) > CHUNK:  # keep at least one byte back for the final chunk
            out += self._chunk(bytes(self.pending[:CHUNK]), final=False)
            del self.pending[:CHUNK]
        return bytes(out)

    def finish(self) -> bytes:
        out = self.seal(b"")
        out += self._chunk(bytes(self.pending), final=True)
        self.pending.clear()
        return out


def _read_exactly(stream: Iterator[bytes], buffer: bytearray, size: int) -> bool:
    while len(buffer) < size:
        piece = next(stream, None)
        if piece is None:
            return False
        buffer += piece
    return True


def key_id_of(head: bytes) -> str | None:
    """The key id in a sealed artifact's first bytes; None when it is not sealed."""
    if not head.startswith(MAGIC) or len(head) <= len(MAGIC):
        return None
    size = head[len(MAGIC)]
    return head[len(MAGIC) + 1 : len(MAGIC) + 1 + size].decode(errors="replace")


def unseal(chunks: Iterable[bytes], key: bytes, key_id: str) -> Iterator[bytes]:
    """The plaintext of a sealed artifact, chunk by chunk; InvalidArtifact when it was
    not sealed with `key_id`, was altered or is incomplete."""
    stream = iter(chunks)
    buffer = bytearray()
    if not _read_exactly(stream, buffer, len(MAGIC) + 1) or not buffer.startswith(MAGIC):
        raise InvalidArtifact("the artifact is not encrypted, but the backup recorded a key id")
    header_size = len(MAGIC) + 1 + buffer[len(MAGIC)] + SALT
    if not _read_exactly(stream, buffer, header_size):
        raise InvalidArtifact("the artifact ends inside its header")
    header = bytes(buffer[:header_size])
    found = key_id_of(header)
    if found != key_id:
        raise InvalidArtifact(f"the artifact was encrypted with key {found}, not {key_id}")
    del buffer[:header_size]
    salt = header[-SALT:]
    aead = AESGCM(key)
    index = 0
    sealed = CHUNK + TAG
    while True:
        more = _read_exactly(stream, buffer, sealed + 1)
        final = not more
        piece = bytes(buffer) if final else bytes(buffer[:sealed])
        try:
            yield aead.decrypt(_nonce(salt, index), piece, _aad(header, index, final))
        except InvalidTag:
            raise InvalidArtifact(
                f"chunk {index} of the artifact does not decrypt with key {key_id}: the key is "
                "wrong, or the artifact was altered or cut short"
            ) from None
        if final:
            return
        del buffer[:sealed]
        index += 1
