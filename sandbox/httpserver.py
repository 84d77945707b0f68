"""The HTTP plumbing the local stand-ins share (`sandbox.slack`, `sandbox.bots`).

- `ThreadedServer`: a sandbox's request handler served on loopback in a daemon
  thread, started with the sandbox and stopped with it. Port 0 binds a free port
  and `port` says which, so tests never pick a port that someone else may take
  before it is bound.
- `SandboxHandler`: the base of their handlers: silent (a sandbox keeps its own
  request log, which tests assert on; stderr lines would only clutter the demo),
  with the reply helpers every answer goes through.
- `serve_until_stopped`: the command line's loop (`python -m sandbox.slack`,
  `python -m sandbox.bots`): start, print the banner, serve until Ctrl-C or SIGTERM.

What each service answers, and what it records, stays in its own module.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

__all__ = ["SandboxHandler", "ThreadedServer", "serve_until_stopped"]


class SandboxHandler(BaseHTTPRequestHandler):
    """A request handler of a sandbox; `owner` is the sandbox it answers for."""

    owner: Any  # bound per server by ThreadedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the sandbox's own request log (`requests`) is what tests read

    def reply(
        self,
        status: int,
        body: bytes | str,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """One complete answer: status, Content-Type and -Length, extra headers, body."""
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def reply_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self.reply(status, json.dumps(data), "application/json; charset=utf-8", headers)


class ThreadedServer:
    """`handler` served on `host:port` in a daemon thread until `stop()`.

    The handler class gets `owner` bound in a subclass made here, so two sandboxes
    of one kind (tests run several) never share it. Raises OSError when the port
    cannot be bound.
    """

    def __init__(
        self, host: str, port: int, handler: type[SandboxHandler], owner: Any, *, name: str
    ) -> None:
        bound = type(handler.__name__, (handler,), {"owner": owner})
        self._server = ThreadingHTTPServer((host, port), bound)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            # A short poll keeps stop(), and so every test's teardown, quick.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=name,
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Sandbox(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


def serve_until_stopped(sandbox: _Sandbox, where: str, banner: Callable[[], str]) -> int:
    """Start `sandbox`, print `banner()` (it may name the port bound), serve until
    Ctrl-C or SIGTERM, stop. 1 when it cannot listen (`where`: host:port asked for).

    SIGTERM (a supervisor, `kill`) stops it like Ctrl-C does. Ctrl-C alone is not
    enough: a process started in the background by a non-interactive shell inherits
    SIGINT as ignored, and then Python never raises KeyboardInterrupt. The handler
    is set before the banner: whoever read the banner may send SIGTERM at once.
    """
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signo, _frame: stopped.set())
    try:
        sandbox.start()
    except OSError as exc:
        print(f"cannot listen on {where}: {exc}", file=sys.stderr)
        return 1
    print(banner(), flush=True)
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0
