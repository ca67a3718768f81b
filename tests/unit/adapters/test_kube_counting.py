"""The operator counts every request its own client sends (runbook_api_requests_total)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from runbook_operator.adapters import metrics
from runbook_operator.adapters.kube import api_client


class _Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"kind": "NamespaceList", "apiVersion": "v1", "items": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def counted(verb: str) -> float:
    return float(metrics.API_REQUESTS.labels(verb=verb)._value.get())


def test_each_request_is_counted_by_verb(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    try:
        before = counted("GET")
        api = client.CoreV1Api(api_client(str(kubeconfig)))
        api.list_namespace()
        api.list_namespace()
        assert counted("GET") - before == 2
    finally:
        server.shutdown()
        server.server_close()
