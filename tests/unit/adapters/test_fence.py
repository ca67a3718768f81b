"""The fence in the API client, and the probes a follower answers: no cluster needed."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_operator.adapters import probes
from runbook_operator.adapters.kube import Fenced, api_client


class _Api(http.server.BaseHTTPRequestHandler):
    """Answers {} to every request, and counts them."""

    seen: list[str] = []

    def _answer(self) -> None:
        self.seen.append(self.command)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_a_fenced_client_refuses_every_write_before_sending_it(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": base}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    fenced = [True]
    api = api_client(str(path), fence=lambda: fenced[0], user_agent="runbook-operator/me")
    assert api.user_agent == "runbook-operator/me"
    try:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            with pytest.raises(Fenced, match=f"{method} {base}/apis/x refused"):
                api.rest_client.request(method, f"{base}/apis/x?dryRun=All", body={})
        assert _Api.seen == []  # nothing reached the server
        api.rest_client.request("GET", f"{base}/apis/x")  # reads are never fenced
        fenced[0] = False  # leading again: writes go out
        api.rest_client.request("PATCH", f"{base}/apis/x", body={})
        assert _Api.seen == ["GET", "PATCH"]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_follower_is_ready_and_says_it_does_not_lead() -> None:
    port = free_port()
    alive = [True]
    role = {"leader": False, "identity": "pod-b_1"}
    server = probes.serve("127.0.0.1", port, alive=lambda: alive[0], role=lambda: role)
    try:
        assert get(port, "/readyz") == (200, role)
        assert get(port, "/healthz") == (200, {"alive": True})
        alive[0] = False
        assert get(port, "/healthz") == (503, {"alive": False})
        assert get(port, "/nowhere")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
