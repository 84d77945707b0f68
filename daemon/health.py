"""HTTP endpoint of the daemon: /healthz (JSON) and /metrics (Prometheus text)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class HealthServer(ThreadingHTTPServer):
    """Serves `health()` at /healthz (200 when healthy, 503 otherwise) and metrics at /metrics.

    `port` 0 binds a port the system picks; `port` and `url` say the one bound (from
    the socket, so there is no window between choosing a port and taking it).
    """

    daemon_threads = True

    def __init__(
        self,
        host: str,
        port: int,
        health: Callable[[], dict[str, Any]],
        registry: CollectorRegistry,
    ) -> None:
        self.health = health
        self.registry = registry
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port really listened on (the system's pick when 0 was asked)."""
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"

    def start(self) -> HealthServer:
        self._thread = threading.Thread(target=self.serve_forever, name="health-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would flood the event log

    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/healthz", "/health"):
            try:
                report = self.server.health()
            except Exception as exc:  # a failing probe is itself a health answer
                report = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            status = 200 if report.get("status") == "ok" else 503
            body = json.dumps(report, default=str, indent=2).encode()
            self._send(status, body, "application/json")
        elif self.path.split("?")[0] == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b'{"error": "not found"}', "application/json")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
