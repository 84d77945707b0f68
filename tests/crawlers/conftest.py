"""Test harness for the crawlers: a local API server and a one-call crawl runner.

`api_server` is a threaded HTTP server on 127.0.0.1 (free port) that answers each
route with scripted replies: fixture files under `tests/crawlers/fixtures/<source>/`
in each API's exact format, or any status/headers/body/delay a test wants
(500, 429 + Retry-After, slow replies, garbage, HTML instead of JSON...)::

    api_server.add("/search.json", Reply.fixture("reddit", "search_page1.json"),
                   when={"after": None})               # param absent
    api_server.add("/search.json", Reply(status=500))  # any other call
    result = crawl({"type": "reddit", "name": "r"})
    assert api_server.hits("/search.json")[0].query["q"] == ["acme"]

Replies given to one `add` are served in order; the last one repeats. Routes are
tried in the order added; the first whose `when` matches answers. `crawl(...)`
runs a real Scrapy crawl in a child process through `crawlers.runner.run_crawl`
with the source's `base_url` pointed at the server and test-speed settings.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# Settings that make a crawl fast and deterministic against the local server.
TEST_SETTINGS: dict[str, Any] = {
    "AUTOTHROTTLE_START_DELAY": 0.0,
    "AUTOTHROTTLE_MAX_DELAY": 0.2,
    "DOWNLOAD_DELAY": 0,
    "RETRY_TIMES": 1,
    "DOWNLOAD_TIMEOUT": 3,
    "LOG_LEVEL": "INFO",
}

DEFAULT_BRANDS: list[dict[str, Any]] = [
    {"name": "Acme", "query": '"acme" OR "acme cloud"'},
    {"name": "Globex", "aliases": ["globex corp"], "own": False},
]


def load_fixture(source: str, name: str) -> bytes:
    path = FIXTURES / source / name
    if not path.exists():
        raise FileNotFoundError(f"no fixture {path}")
    return path.read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (timeouts)
    content_type: str | None = "application/json; charset=utf-8"

    @classmethod
    def fixture(cls, source: str, name: str, **kwargs: Any) -> Reply:
        content_type = kwargs.pop("content_type", None)
        if content_type is None:
            content_type = _guess_type(name)
        return cls(body=load_fixture(source, name), content_type=content_type, **kwargs)

    @classmethod
    def json(cls, data: Any, **kwargs: Any) -> Reply:
        return cls(body=json.dumps(data).encode("utf-8"), **kwargs)

    @classmethod
    def html(
        cls, text: str = "<html><body><h1>Service unavailable</h1></body></html>", **kwargs: Any
    ) -> Reply:
        return cls(body=text.encode("utf-8"), content_type="text/html; charset=utf-8", **kwargs)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


def _guess_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json; charset=utf-8"
    if name.endswith((".xml", ".rss", ".atom")):
        return "application/xml; charset=utf-8"
    if name.endswith((".html", ".htm")):
        return "text/html; charset=utf-8"
    return "application/octet-stream"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # arrival, for pacing tests

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


When = Mapping[str, str | None] | Callable[[RecordedRequest], bool] | None


@dataclass
class _Route:
    method: str
    path: str
    replies: list[Reply]
    when: When
    served: int = 0

    def matches(self, request: RecordedRequest) -> bool:
        if request.method != self.method or request.path != self.path:
            return False
        if self.when is None:
            return True
        if callable(self.when):
            return bool(self.when(request))
        return all(request.param(name) == expected for name, expected in self.when.items())

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class ApiServer:
    def __init__(self) -> None:
        self.routes: list[_Route] = []
        self.requests: list[RecordedRequest] = []
        self.unmatched: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = server._dispatch(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    if reply.content_type:
                        self.send_header("Content-Type", reply.content_type)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"127.0.0.1:{self.port}"  # for crawl.allowed_private_endpoints
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, path: str, *replies: Reply, when: When = None, method: str = "GET") -> None:
        if not replies:
            raise ValueError(f"route {path} needs at least one Reply")
        with self._lock:
            self.routes.append(_Route(method, path, list(replies), when))

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.requests.clear()
            self.unmatched.clear()

    def hits(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _dispatch(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            for route in self.routes:
                if route.matches(request):
                    return route.next_reply()
            self.unmatched.append(request)
        return Reply(
            status=404, body={"error": f"no test route for {request.method} {request.path}"}
        )


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    server = ApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


CrawlFn = Callable[..., Any]


@pytest.fixture
def crawl(api_server: ApiServer, tmp_path: Path) -> CrawlFn:
    """crawl(source_dict, *, brands=None, settings=None, timeout=30, state_dir=None)
    -> crawlers.runner.CrawlResult, with the cursor committed unless commit=False."""
    from brandpulse.config import parse_config
    from crawlers.job import CrawlJob
    from crawlers.runner import run_crawl

    def run(
        source: dict[str, Any],
        *,
        brands: list[dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
        timeout: float = 30.0,
        state_dir: Path | None = None,
        commit: bool = True,
    ) -> Any:
        source = {
            "name": f"test-{source['type']}",
            "base_url": api_server.base_url,
            "lookback": "3650d",  # fixtures hold fixed past timestamps
            "requests_per_minute": 60000,
            **source,
        }
        config = parse_config(
            {
                "brands": brands or DEFAULT_BRANDS,
                "sources": [source],
                "daemon": {"state_dir": str(tmp_path / "state")},
                # The egress policy refuses loopback addresses: exactly this
                # server's port is allowed, every other local port stays refused.
                "crawl": {"allowed_private_endpoints": [api_server.endpoint]},
            },
            env={},
        )
        result = run_crawl(
            CrawlJob.from_config(config, source["name"], state_dir=state_dir or tmp_path / "state"),
            timeout=timeout,
            settings={**TEST_SETTINGS, **(settings or {})},
        )
        if commit:
            result.commit_cursor()
        return result

    return run
