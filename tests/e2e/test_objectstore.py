"""The object store adapter against the real S3 server (no cluster needed).

Multipart uploads of several parts, plain and encrypted, read back byte for byte;
an aborted upload leaves neither an object nor parts; unfinished uploads a dead
writer left are swept for the family only; and the store reads nothing but its key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from runbook_operator.adapters import objectstore, sealing
from runbook_operator.adapters.objectstore import NotThisBackups, S3Config, S3Store
from runbook_operator.core import destination as dest
from support.s3 import S3Process, running_s3
from support.s3 import s3_server as s3_server  # noqa: PLC0414  (the fixture)

pytestmark = pytest.mark.timeout(180)

KEY = os.urandom(32)


def store_for(s3: S3Process, family: str, uid: str, **options: object) -> S3Store:
    config = S3Config(s3.url, s3.bucket, "us-east-1", True, s3.access_key, s3.secret_key)
    key = dest.object_key("p", "team-a", family, uid)
    return S3Store(
        config,
        key,
        dest.family_prefix("p", "team-a", family),
        keyring=lambda _: KEY,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("encrypted", [False, True])
def test_multipart_round_trip(s3_server: S3Process, encrypted: bool) -> None:
    data = os.urandom(3 * objectstore.PART + 12345)  # four parts, the last one short
    seal = ("backup-key/k1", KEY) if encrypted else None
    writer = store_for(s3_server, "nightly", "u1", seal_with=seal)
    upload = writer.begin("team-a", "nightly", "t")
    for i in range(0, len(data), 65536):  # pg_dump's pipe hands out small pieces
        upload.write(data[i : i + 65536])
    stored = upload.commit()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert s3_server.objects() == [writer.key] and s3_server.uploads() == []
    raw = s3_server.raw(writer.key)
    assert raw.startswith(sealing.MAGIC) == encrypted and (raw == data) != encrypted

    reader = store_for(s3_server, "nightly", "u1", opened_with="backup-key/k1" if seal else None)
    assert reader.checksum(stored.location).sha256 == stored.sha256
    assert b"".join(reader.read(stored.location)) == data
    assert reader.delete(stored.location) is True and reader.delete(stored.location) is False
    assert s3_server.objects() == []


def test_abort_leaves_nothing_and_sweeps_only_the_family(s3_server: S3Process) -> None:
    upload = store_for(s3_server, "nightly", "u1").begin("team-a", "nightly", "t")
    upload.write(os.urandom(objectstore.PART + 1))
    upload.abort()
    assert s3_server.objects() == [] and s3_server.uploads() == []

    # Writers that died mid-upload (no abort): one of this family, one of another.
    store_for(s3_server, "nightly", "dead").begin("team-a", "nightly", "t").write(b"x")
    store_for(s3_server, "weekly", "other").begin("team-a", "weekly", "t").write(b"x")
    assert len(s3_server.uploads()) == 2
    own = store_for(s3_server, "nightly", "u2")  # a deletion: only its own key
    assert own.discard_partials("team-a", "nightly") == 0
    sweeping = store_for(s3_server, "nightly", "u2", sweep=True)  # the next run's upload
    assert sweeping.discard_partials("team-a", "nightly") == 1
    assert s3_server.uploads() == [dest.object_key("p", "team-a", "weekly", "other")]


def test_the_store_touches_only_its_own_key(s3_server: S3Process) -> None:
    theirs = store_for(s3_server, "nightly", "theirs")
    upload = theirs.begin("team-a", "nightly", "t")
    upload.write(b"their data")
    location = upload.commit().location
    ours = store_for(s3_server, "nightly", "ours")
    with pytest.raises(NotThisBackups):
        list(ours.read(location))
    with pytest.raises(NotThisBackups):
        ours.delete(location)
    assert s3_server.objects() == [theirs.key]


def test_a_vanished_server_is_a_reason(s3_server: S3Process) -> None:
    upload = store_for(s3_server, "nightly", "u1").begin("team-a", "nightly", "t")
    upload.write(b"x" * 100)
    s3_server.kill()
    with pytest.raises(objectstore.ObjectStoreUnreachable, match=s3_server.url):
        upload.commit()
    upload.abort()  # best effort: does not raise


def test_https_with_a_private_ca(tmp_path: Path) -> None:
    with running_s3(tmp_path / "s3", tls=True) as s3:
        assert s3.url.startswith("https://") and s3.pki is not None
        ca = s3.pki.ca_cert.read_bytes()
        config = S3Config(s3.url, s3.bucket, "us-east-1", True, s3.access_key, s3.secret_key, ca)
        store = S3Store(config, "p/team-a/tls/u1.dump", "p/team-a/tls/")
        upload = store.begin("team-a", "tls", "t")
        upload.write(b"over TLS")
        location = upload.commit().location
        assert b"".join(store.read(location)) == b"over TLS"

        untrusted = S3Store(replace(config, ca_pem=None), "p/team-a/tls/u2.dump", "p/team-a/tls/")
        with pytest.raises(objectstore.ObjectStoreUnreachable, match="certificate"):
            untrusted.begin("team-a", "tls", "t")
