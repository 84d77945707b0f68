"""The crawl fork server: Scrapy, Twisted and the crawlers imported once, a fork per crawl.

A spawned crawl child (`python -m crawlers.run --child`) spends most of its CPU
importing Scrapy, Twisted and our crawlers before it sends a single request. With
`crawl.child_start: fork` (the default on Linux) `crawlers.runner.run_crawl` asks
this server instead: one process, started lazily by the first crawl of the process
that crawls (`--role all` or `crawler`; a process that never crawls never starts
it, and nothing is started at import or at a process's start-up), that imports all
of that once and forks one child per crawl. The child runs exactly the spawned
child's code (`crawlers.run.run_child`), so a crawl's results, cursor and log come
back through the same JSONL / pending-cursor / log-file protocol: `run_crawl`'s
callers see no difference.

Contracts (tests/crawlers/test_forkserver.py checks each):

- The server imports but never installs a reactor and never starts a thread (it
  checks both before it says it is ready, and refuses to serve otherwise): every
  child installs its own reactor (Scrapy's `TWISTED_REACTOR`) and owns its only
  thread. Nothing of a crawl is ever in the server -- no settings, cursor, reactor
  or log handler -- so no two crawls share any.
- The job (JSON, secrets included) reaches the child on its stdin, a pipe the
  runner writes and closes, exactly as with spawn: never a file, an argument or the
  environment. Requests to the server travel over a private socket pair (with the
  child's stdin, log file and a reply socket as passed descriptors), never a path
  another process could connect to.
- The child is in its own session and process group (its pid is the group id), so
  the runner stops it as it stops a spawned one (`os.killpg`: SIGTERM, then SIGKILL)
  on timeout or cancel; the server reaps it and reports its exit code (Popen's
  convention: negative for a signal) on the crawl's reply socket.
- The child has the parent-death signal (PR_SET_PDEATHSIG, SIGKILL) on the server,
  and the server exits when the daemon's end of the socket pair closes (the kernel
  closes it when the daemon dies, SIGKILL included): a killed daemon takes the
  server and every crawl with it. The server does not use the parent-death signal
  itself, because Linux sends it when the *thread* that started the process ends,
  and the first crawl may come from a short-lived thread.
- A child that crashes or is killed leaves the server serving; a server that died
  is started again by the next crawl; a server that cannot start (or a platform
  without fork) makes the runner spawn instead, with one warning line in the
  process's life.
- Each child re-seeds `random` (`random.seed()`, from the OS) so two crawls never
  draw the same numbers (CPython's own `os.register_at_fork` hook re-seeds the
  module-level generator too; the call states the contract without relying on
  it). PYTHONHASHSEED cannot be re-seeded: str/bytes hashing is
  fixed when an interpreter starts, so every child of one server shares the
  server's hash seed (set and dict-of-str iteration order alike between crawls;
  hash randomisation still differs between servers and daemon restarts).
- The child gets the environment of the process asking for the crawl at that time
  (as a spawned child would), not the server's.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
# How long the first crawl waits for the server to import everything and say so.
START_TIMEOUT = 120.0
# How long a crawl waits for the server to fork its child and send the pid.
FORK_TIMEOUT = 30.0
_MAX_MESSAGE = 1 << 20  # a request: settings and environment as JSON


class ForkServerError(RuntimeError):
    """The fork server could not start, or stopped answering."""


@dataclass(frozen=True)
class Ready:
    """What the server reports once it can fork: its pid, what its imports cost,
    and the two facts it checked (no reactor installed, one thread)."""

    pid: int
    import_seconds: float
    import_cpu_seconds: float
    modules: int
    reactor_installed: bool
    threads: int


class ForkedChild:
    """One forked crawl child, as `crawlers.runner` uses a `subprocess.Popen`: `pid`
    (also its process group), `stdin` (the job pipe) and `wait(timeout)`, which
    raises `subprocess.TimeoutExpired` and returns the exit code."""

    def __init__(self, pid: int, stdin: IO[bytes], reply: socket.socket, server: ForkServer):
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.returncode: int | None = None
        self._reply = reply
        self._server = server

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        self._reply.settimeout(timeout)
        try:
            data = self._reply.recv(4096)
        except TimeoutError:
            raise subprocess.TimeoutExpired(f"forked crawl child {self.pid}", timeout) from None
        except OSError:
            data = b""
        if data:
            self.returncode = int(json.loads(data)["exit"])
        else:
            # The server died before it could report: the child had the parent-death
            # signal on it (SIGKILL), and is made sure of here.
            self._server.broken = True
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            self.returncode = -signal.SIGKILL
        self._reply.close()
        return self.returncode

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._reply.close()


class ForkServer:
    """The daemon's side of one server process (`ForkServer.start()`)."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, ready: Ready):
        self.proc = proc
        self.ready = ready
        self.broken = False
        self._sock = sock
        self._lock = threading.Lock()
        self._owner = os.getpid()

    @classmethod
    def start(
        cls, *, env: dict[str, str] | None = None, timeout: float | None = None
    ) -> ForkServer:
        """Start a server (`python -m crawlers.forkserver`) and wait until it is ready;
        ForkServerError (saying why) if it cannot fork here, fails to import or to
        answer within `timeout` (default `START_TIMEOUT`)."""
        timeout = START_TIMEOUT if timeout is None else timeout
        if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
            raise ForkServerError(f"no fork on this platform ({sys.platform})")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "crawlers.forkserver", str(theirs.fileno())],
                cwd=REPO_ROOT, env=_child_env(env), pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            mine.close()
            raise ForkServerError(f"could not start the fork server: {exc}") from exc
        finally:
            theirs.close()
        try:
            mine.settimeout(timeout)
            try:
                data = mine.recv(_MAX_MESSAGE)
            except TimeoutError:
                raise ForkServerError(
                    f"the fork server was not ready within {timeout:.0f}s"
                ) from None
            message = json.loads(data) if data else {"error": f"it exited (code {proc.wait()})"}
            if "error" in message:
                raise ForkServerError(f"the fork server could not start: {message['error']}")
            mine.settimeout(None)
        except BaseException:
            mine.close()
            _end(proc)
            raise
        return cls(proc, mine, Ready(**message["ready"]))

    def alive(self) -> bool:
        return not self.broken and self._owner == os.getpid() and self.proc.poll() is None

    def fork(
        self, settings_json: str, log_fd: int, env: dict[str, str] | None = None
    ) -> ForkedChild:
        """Fork one crawl child with `settings_json` (Scrapy overrides), stdout and
        stderr on `log_fd` and the environment `env` (default: this process's, with
        the repository on PYTHONPATH). Write
        the job to the returned child's `stdin` and close it, as with a spawned one."""
        stdin_r, stdin_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            environ = _child_env(None) if env is None else env
            request = json.dumps({"settings": settings_json, "env": environ}).encode()
            try:
                with self._lock:
                    socket.send_fds(self._sock, [request], [stdin_r, log_fd, theirs.fileno()])
            except OSError as exc:
                self.broken = True
                raise ForkServerError(f"the fork server is gone: {exc}") from exc
            finally:
                os.close(stdin_r)
                theirs.close()
            mine.settimeout(FORK_TIMEOUT)
            try:
                data = mine.recv(4096)
            except (TimeoutError, OSError) as exc:
                self.broken = True
                raise ForkServerError(f"the fork server did not fork a child: {exc}") from exc
            if not data:
                self.broken = True
                raise ForkServerError("the fork server closed the request without forking")
            message = json.loads(data)
            if "error" in message:
                raise ForkServerError(f"the fork server could not fork: {message['error']}")
        except BaseException:
            mine.close()
            os.close(stdin_w)
            raise
        return ForkedChild(int(message["pid"]), os.fdopen(stdin_w, "wb"), mine, self)

    def close(self) -> None:
        """Stop the server (it exits when its socket closes); its children die with it."""
        with contextlib.suppress(OSError):
            self._sock.close()
        _end(self.proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    """The environment of the server and, by default, of a crawl child: the caller's,
    with the repository on PYTHONPATH and our Scrapy settings module (what
    `run_crawl` gives a spawned child)."""
    out = dict(os.environ if env is None else env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), out.get("PYTHONPATH")) if p)
    out["SCRAPY_SETTINGS_MODULE"] = "crawlers.settings"
    return out


# --- the per-process server the runner uses ----------------------------------------

_lock = threading.Lock()
_server: ForkServer | None = None
_unavailable: str | None = None


def shared_server() -> ForkServer | None:
    """This process's fork server, started on the first call (and again if it died);
    None when it cannot start, after one warning line: the caller spawns instead."""
    global _server, _unavailable
    with _lock:
        if _unavailable is not None:
            return None
        if _server is not None and _server.alive():
            return _server
        if _server is not None and _server._owner == os.getpid():
            _server.close()
        _server = None
        try:
            _server = ForkServer.start()
        except ForkServerError as exc:
            _unavailable = str(exc)
            logger.warning("crawl children are spawned, not forked: %s", exc)
            return None
        return _server


def stop_shared_server() -> None:
    """Stop this process's server (if any); the next crawl starts a new one."""
    global _server, _unavailable
    with _lock:
        if _server is not None and _server._owner == os.getpid():
            _server.close()
        _server = None
        _unavailable = None


# --- the server process ---------------------------------------------------------------


def preload() -> None:
    """Import what a crawl imports -- Scrapy's crawler and default components, our
    settings' components and every spider -- without creating any of them, and
    without installing a reactor."""
    import importlib
    import pkgutil

    import scrapy.crawler  # noqa: F401
    from scrapy.settings import Settings
    from scrapy.utils.misc import load_object

    import crawlers.run  # what the child runs
    import crawlers.spiders

    settings = Settings()
    settings.setmodule("crawlers.settings", priority="project")
    paths: set[str] = set()
    for name in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "ITEM_PIPELINES", "EXTENSIONS"):
        paths.update(k for k, v in settings.getwithbase(name).items() if v is not None)  # path: order
    paths.update(v for v in settings.getwithbase("DOWNLOAD_HANDLERS").values() if v)  # scheme: path
    for name in ("SCHEDULER", "DUPEFILTER_CLASS", "STATS_CLASS", "DOWNLOADER", "LOG_FORMATTER",
                 "SPIDER_LOADER_CLASS", "REQUEST_FINGERPRINTER_CLASS", "SCHEDULER_PRIORITY_QUEUE",
                 "SCHEDULER_MEMORY_QUEUE", "SCHEDULER_START_MEMORY_QUEUE", "ROBOTSTXT_PARSER",
                 "TWISTED_DNS_RESOLVER", "ITEM_PROCESSOR"):  # fmt: skip
        if isinstance(settings.get(name), str):
            paths.add(settings.get(name))
    for path in sorted(paths):
        with contextlib.suppress(ImportError, NameError, AttributeError, ValueError):
            load_object(path)  # a component that cannot load fails in its crawl, as with spawn
    # The reactor's module, not the reactor: importing it installs nothing.
    importlib.import_module(settings.get("TWISTED_REACTOR").rpartition(".")[0])
    for module in pkgutil.iter_modules(crawlers.spiders.__path__, "crawlers.spiders."):
        importlib.import_module(module.name)


def fork_safety_problem() -> str | None:
    """Why this process must not fork crawl children (None when it may): a
    reactor installed (every child would share it) or a thread running (a fork
    copies only the forking thread, and whatever lock another held stays held)."""
    if "twisted.internet.reactor" in sys.modules:
        return ("a module installed the Twisted reactor at import time "
                "(`from twisted.internet import reactor` at module level)")  # fmt: skip
    threads = _threads()
    if threads != 1:
        return f"{threads} threads are running after the imports"
    return None


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        sock.send(json.dumps(message).encode())


def serve(sock: socket.socket) -> int:
    """Import, check, say ready, then fork a child per request until `sock` closes."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        preload()
    except BaseException as exc:  # reported to the runner, which spawns instead
        _send(sock, {"error": f"importing the crawlers failed: {type(exc).__name__}: {exc}"})
        return 1
    problem = fork_safety_problem()
    if problem is not None:
        _send(sock, {"error": problem})
        return 1
    # What is imported now lives as long as every child: out of the collector's
    # reach, a child's collections neither walk it nor write to (and so copy) its pages.
    gc.collect()
    gc.freeze()
    _send(sock, {"ready": {
        "pid": os.getpid(), "import_seconds": round(time.perf_counter() - wall, 3),
        "import_cpu_seconds": round(time.process_time() - cpu, 3), "modules": len(sys.modules),
        "reactor_installed": "twisted.internet.reactor" in sys.modules, "threads": _threads(),
    }})  # fmt: skip
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select through wake_w
    children: dict[int, socket.socket] = {}
    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
        _reap(children)
        if sock not in readable:
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 3)
        except OSError:
            break
        if not data:
            break  # the daemon closed its end or died: the children die with this process
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        _fork_child(json.loads(data), fds, sock, (wake_r, wake_w), children)
    return 0


def _reap(children: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reply = children.pop(pid, None)
        if reply is not None:
            _send(reply, {"exit": os.waitstatus_to_exitcode(status)})
            reply.close()


def _fork_child(
    request: dict[str, Any], fds: list[int], sock: socket.socket, wake: tuple[int, int],
    children: dict[int, socket.socket],
) -> None:  # fmt: skip
    stdin_fd, log_fd, reply_fd = fds
    reply = socket.socket(fileno=reply_fd)
    server = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as exc:
        _send(reply, {"error": f"fork failed: {exc}"})
        for fd in (stdin_fd, log_fd):
            os.close(fd)
        reply.close()
        return
    if pid == 0:
        code = 1
        try:
            # The server's descriptors, the other crawls' reply sockets included
            # (a copy held here would hide the server's death from their runners).
            others = [other.detach() for other in children.values()]
            for fd in (sock.detach(), reply.detach(), *wake, *others):
                os.close(fd)
            code = _child(server, stdin_fd, log_fd, request)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # the child must never return into the server
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(stdin_fd)
    os.close(log_fd)
    _send(reply, {"pid": pid})
    children[pid] = reply


def _child(server: int, stdin_fd: int, log_fd: int, request: dict[str, Any]) -> int:
    """In the forked child: become a crawl child like a spawned one, then crawl."""
    from crawlers.run import run_child

    become_crawl_child(server, stdin_fd, log_fd, request["env"])
    return run_child(request["settings"])


def become_crawl_child(server: int, stdin_fd: int, log_fd: int, env: dict[str, str]) -> None:
    """What a freshly forked child does before it crawls: its own session and process
    group (the runner's killpg reaches it and nothing else), the parent-death signal
    on `server` (exit at once if the server is gone already), the job pipe as stdin
    and the crawl log as stdout and stderr, the caller's environment, the server's
    signal plumbing undone, and `random` re-seeded from the OS (otherwise every child
    would draw the numbers the server's state holds; CPython's fork hook does it as
    well). PYTHONHASHSEED cannot be re-seeded after start-up: children share the
    server's (module doc)."""
    import random

    from crawlers.run import _die_with_parent

    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _die_with_parent(server)
    os.dup2(stdin_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(stdin_fd)
    os.close(log_fd)
    os.environ.clear()
    os.environ.update(env)
    random.seed()


_THREAD_POOL_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print(
            "usage: python -m crawlers.forkserver FD (started by crawlers.runner)", file=sys.stderr
        )
        return 2
    # Numpy (crawlers.pipelines' simhash) loads OpenBLAS, which starts a thread pool
    # sized to the machine at load unless told otherwise; a crawl uses no BLAS, and
    # a server with threads must not fork. Each child gets its caller's environment.
    for name in _THREAD_POOL_VARIABLES:
        os.environ[name] = "1"
    return serve(socket.socket(fileno=int(args[0])))


if __name__ == "__main__":
    sys.exit(main())
