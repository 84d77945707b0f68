"""A source that hangs: the stand-in for a slow site in the daemon's crawl tests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HeldServer(ThreadingHTTPServer):
    """Answers nothing until released (a slow source), then 503; counts the requests.

    `entered` is set by the first request to arrive, so a test knows a crawl is inside
    the source before it kills or releases anything."""

    daemon_threads = True

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                server.entered.set()
                server.release.wait(300)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
