"""A real S3-compatible server on loopback: Versity's S3 gateway (Apache-2.0), posix backend.

Backups to object storage are proven against it: the operator uploads with boto3,
the test lists objects and unfinished multipart uploads and reads objects raw.

    from support.s3 import s3_server as s3_server  # noqa: PLC0414  (the fixture)

    def test_upload(s3_server):
        s3_server.client().list_objects_v2(Bucket=s3_server.bucket)
        s3_server.kill()      # "the store vanished mid-upload"
        s3_server.start()     # back on the same port, with the same data

It is built from the Go module proxy by tests/testbed/build.sh (cached with the
control plane), listens on 127.0.0.1 on a free port, keeps its buckets in its own
work directory (metadata in a sidecar directory, so no xattr support is needed), and
is stopped by pid when the fixture ends.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes import client

from testbed import pki, testbed

from .servers import ServerProcess, running

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Process", "running_s3", "s3_server", "versitygw_binary"]


def versitygw_binary() -> Path:
    """The gateway from the test bed's bin dir (build.sh builds it when missing)."""
    return testbed.find_bin_dir() / "versitygw"


class S3Process(ServerProcess):
    name = "versitygw"

    def __init__(self, workdir: Path, binary: Path, *, tls: bool = False) -> None:
        super().__init__(workdir)
        self.binary = binary
        self.pki = pki.generate(workdir / "pki") if tls else None
        """A CA of its own and a serving certificate for 127.0.0.1, when serving TLS."""
        self.access_key = f"runbook{secrets.token_hex(6)}"
        self.secret_key = f"leakcheck-{secrets.token_hex(16)}"
        self.bucket = "backups"
        self.data = workdir / "data"
        self.sidecar = workdir / "meta"

    @property
    def url(self) -> str:
        return f"{'https' if self.pki else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        if self.running:
            return
        self.data.mkdir(parents=True, exist_ok=True)
        self.sidecar.mkdir(parents=True, exist_ok=True)
        tls = []
        if self.pki is not None:
            tls = ["--cert", str(self.pki.apiserver_cert), "--key", str(self.pki.apiserver_key)]
        self._spawn(
            [
                str(self.binary),
                "--port",
                f"127.0.0.1:{self.port}",
                "--access",
                self.access_key,
                "--secret",
                self.secret_key,
                *tls,
                "posix",
                "--sidecar",
                str(self.sidecar),
                str(self.data),
            ]
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise TimeoutError(f"versitygw not ready after {timeout}s; see {self.log_path}")
            time.sleep(0.1)
        with contextlib.suppress(ClientError):  # already there after a restart
            self.client().create_bucket(Bucket=self.bucket)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"versitygw exited early; see {self.log_path}:\n{self.log_tail()}")
        try:
            self.client().list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: the server vanishes without finishing anything in flight."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)
        self.process = None

    def client(self) -> S3Client:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            verify=str(self.pki.ca_cert) if self.pki else True,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=30,
            ),
        )

    def objects(self, prefix: str = "") -> list[str]:
        answer: Any = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(str(o["Key"]) for o in answer.get("Contents", []))

    def uploads(self, prefix: str = "") -> list[str]:
        """Keys of the unfinished multipart uploads."""
        answer: Any = self.client().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return sorted(str(u["Key"]) for u in answer.get("Uploads", []))

    def raw(self, key: str) -> bytes:
        answer: Any = self.client().get_object(Bucket=self.bucket, Key=key)
        return bytes(answer["Body"].read())


def running_s3(
    workdir: Path | None = None, *, tls: bool = False
) -> contextlib.AbstractContextManager[S3Process]:
    binary = versitygw_binary()
    return running(
        lambda root: S3Process(root, binary, tls=tls), binary, "versitygw (build.sh)", workdir
    )


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Process]:
    """A fresh S3 server with an empty bucket `backups`, for one test."""
    with running_s3(tmp_path / "s3") as server:
        yield server


# --- the objects tests make for S3 backups ------------------------------------

PREFIX = "mail-score"
"""The key prefix every test destination writes under."""


def s3_secrets(api: Any, namespace: str, s3: S3Process) -> None:
    core = client.CoreV1Api(api)
    creds = {"accessKeyId": s3.access_key, "secretAccessKey": s3.secret_key}
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s3"), string_data=creds)
    )
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="backup-key"), string_data={"key-2025": key}
        ),
    )


def s3_destination(s3: S3Process, *, encrypted: bool = False) -> dict[str, Any]:
    destination: dict[str, Any] = {
        "endpoint": s3.url,
        "bucket": s3.bucket,
        "prefix": PREFIX,
        "credentials": {"secretName": "s3"},
    }
    if encrypted:
        destination["encryption"] = {"secretName": "backup-key", "key": "key-2025"}
    return {"s3": destination}


def key_of(obj: dict[str, Any], family: str | None = None) -> str:
    meta = obj["metadata"]
    return f"{PREFIX}/{meta['namespace']}/{family or meta['name']}/{meta['uid']}.dump"
