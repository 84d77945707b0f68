"""A real local ``redis-server`` for the tests and for trying the shared state out.

Mirrors ``esnode`` (the local Elasticsearch node): the tests start one per session
(``tests/conftest.py``'s ``redis_node``), ``make redis`` runs one in the foreground.
Redis is Debian's ``redis-server`` 7 (``apt-get install redis-server``; ``.ci/run``
installs it when missing); nothing is downloaded at run time.

The node binds 127.0.0.1 only, keeps nothing on disk (``--save '' --appendonly
no``: test state is thrown away with the process) and works in a temporary folder.
Redis cannot be asked for a free port (``--port 0`` turns TCP off), so a free port
is picked (``esnode.free_port``, the one such helper) and the start retried on another
one if someone takes it in between. The server is ready when the one answering on the
port says it is our process (``INFO server``'s ``process_id``), as ``esnode`` checks
its node's pid: a PONG alone may come from another session's Redis that took the port
while ours is still failing to bind it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from esnode import free_port

DEFAULT_PORT = 6379
LOG_FILE = "redis.log"


class RedisNodeError(RuntimeError):
    """The local redis-server could not be found, started or stopped."""


def find_server() -> str:
    """The ``redis-server`` executable, or an error that says how to install it."""
    path = shutil.which("redis-server")
    if path is None:
        raise RedisNodeError(
            "redis-server is not on PATH; install Debian's package: apt-get install redis-server "
            "(`.ci/run` does so when it runs as root)"
        )
    return path


def _server_pid(port: int) -> int | None:
    """The ``process_id`` of the Redis answering on ``port`` (raw RESP ``INFO server``,
    no client library needed), or None when none answers (yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    found = re.search(rb"^process_id:(\d+)\r?$", reply, re.MULTILINE)
    return int(found.group(1)) if found else None


def _exit_with_parent() -> None:
    # In the child between fork and exec: SIGTERM when the parent dies (Linux only;
    # elsewhere the server simply outlives a killed parent).
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class LocalRedis:
    """One ``redis-server`` on 127.0.0.1, without persistence.

    ``with LocalRedis() as node: node.url`` (``redis://127.0.0.1:PORT/0``).
    ``port=None`` picks a free port (retrying on a lost race); a given port is used
    as is. ``work_dir`` (default: a new temporary folder, removed at stop) holds the
    log. Like ``esnode``'s ``watch_parent``, the server is told to exit when the
    process that started it dies (Linux's parent-death signal), so a killed test
    run leaves no server behind.
    """

    def __init__(
        self,
        port: int | None = None,
        work_dir: Path | str | None = None,
        boot_timeout: float = 30.0,
        attempts: int = 5,
    ) -> None:
        self._fixed_port = port
        self.port = port or 0
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="redisnode-"))
        self.boot_timeout = boot_timeout
        self.attempts = attempts if port is None else 1
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, server: str, port: int) -> list[str]:
        return [
            server,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.work_dir),
            "--logfile", str(self.work_dir / LOG_FILE),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip

    def log_tail(self, lines: int = 20) -> str:
        path = self.work_dir / LOG_FILE
        if not path.is_file():
            return f"(no log at {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> LocalRedis:
        server = find_server()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        last = ""
        for _ in range(self.attempts):
            port = self._fixed_port or free_port()
            self._proc = subprocess.Popen(
                self.command(server, port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_exit_with_parent,
            )
            self.port, self.pid = port, self._proc.pid
            if self._wait_ready():
                return self
            last = self._failure()
            self._kill()
        raise RedisNodeError(
            f"redis-server did not start on 127.0.0.1 after {self.attempts} attempt(s): {last}"
        )

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False  # e.g. the port was taken after we picked it
            if _server_pid(self.port) == self._proc.pid:
                return True  # another pid: someone else's Redis; ours will exit on its bind
            time.sleep(0.05)
        return False

    def _failure(self) -> str:
        assert self._proc is not None
        code = self._proc.poll()
        err = b""
        if code is not None and self._proc.stderr is not None:
            err = self._proc.stderr.read() or b""
        what = f"exit code {code}" if code is not None else f"our server not answering within {self.boot_timeout:.0f}s"
        return f"{what}; {err.decode(errors='replace').strip()} log tail:\n{self.log_tail()}"

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (nothing to save: persistence is off), SIGKILL if it hangs."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc, self.pid = None, None
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.work_dir)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["DEFAULT_PORT", "LocalRedis", "RedisNodeError", "find_server"]
