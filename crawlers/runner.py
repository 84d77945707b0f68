"""Run one source's crawl programmatically, the way the daemon does.

    job = CrawlJob.from_config(config, "reddit-main")   # the in-memory Config
    result = run_crawl(job, timeout=300)
    index(result.mentions)          # or spool them
    result.commit_cursor()          # only now does the source's cursor advance

Scrapy runs in a child process (`python -m crawlers.run --child ...`): Twisted's
reactor cannot be restarted inside one process, and a spider that crashes or
hangs must not take the daemon with it. The job (`crawlers.job.CrawlJob`) is the
child's only input: JSON on its stdin (secrets included, so never a file or an
argument), so the child never reads a config file. Mentions come back through a JSONL file
flushed per line; the child leaves its new cursor *pending*, and the parent
commits it only when told the mentions are safe, so a crash of either process
means a re-fetch (an overwrite, by the deterministic id), never a gap.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import ValidationError

from brandpulse.mention import Mention
from crawlers.cursors import CursorStore
from crawlers.faults import fault_line
from crawlers.job import SETTING, CrawlJob

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
# The child gets CLOSESPIDER_TIMEOUT = timeout; this is how much longer the parent
# waits (engine shutdown, pipelines closing) before it stops the child by force.
SHUTDOWN_GRACE = 15.0
_LOG_TAIL = 200_000  # the log is INFO level: a few KB per crawl


@dataclass
class CrawlResult:
    mentions: list[Mention]
    stats: dict[str, Any]
    error: str | None
    source: str = ""
    log: str = field(default="", repr=False)
    _store: CursorStore | None = field(default=None, repr=False)
    _pending: Path | None = field(default=None, repr=False)

    @property
    def read_nothing(self) -> bool:
        """True when the crawl did not read a single page of the source: every
        request failed (or none could be made), the source was skipped, or the
        crawl itself failed. Zero mentions from pages that were read is not this."""
        return bool(self.error or self.stats.get("skipped") or not self.stats.get("pages"))

    def fault_summary(self) -> str | None:
        """`kind xN (first: detail); ...` of the source's faults, None without any."""
        failed = self.stats.get("failed") or {}
        examples = self.stats.get("fault_examples") or {}
        if not failed:
            return None
        return fault_line({kind: (n, examples.get(kind, "")) for kind, n in failed.items()})

    def problem(self) -> str | None:
        """Why the crawl read nothing, in one line (None when it read something)."""
        if not self.read_nothing:
            return None
        if self.error:
            return self.error
        if self.stats.get("skipped"):
            return f"source {self.source!r} skipped: {self.stats['skipped']}"
        requests = self.stats.get("requests", 0)
        faults = self.fault_summary() or "no fault recorded"
        return f"no page of source {self.source!r} could be read ({requests} request(s)): {faults}"

    def commit_cursor(self) -> bool:
        """Advance the source's cursor to what this crawl reached. Call it after the
        mentions are indexed or spooled. False when there is nothing to commit (the
        child died before writing a cursor, or it was committed already)."""
        if self._store is None or self._pending is None:
            return False
        done = self._store.commit(self.source, self._pending)
        self._pending = None
        return done

    def discard_cursor(self) -> None:
        """Forget the pending cursor (the mentions could not be kept)."""
        if self._pending is not None:
            self._pending.unlink(missing_ok=True)
            self._pending = None


def run_crawl(
    job: CrawlJob,
    *,
    timeout: float = 600.0,
    settings: dict[str, Any] | None = None,
    cancel: threading.Event | None = None,
) -> CrawlResult:
    """Crawl `job.source` in a child process; never raises for a failing crawl.

    Setting `cancel` (the daemon does on SIGTERM) stops the child gracefully; the
    mentions it had already written come back, with an error and no cursor.

    `settings` are Scrapy setting overrides (highest priority), e.g. for tests.
    The job's output locations are the runner's own (a temporary directory and a
    pending cursor file in the state dir); whatever the job says there is replaced.
    """
    source_name = job.source_name
    store = CursorStore(job.state_dir)
    store.state_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"brandpulse-crawl-{source_name}-"))
    out = workdir / "mentions.jsonl"
    stats_file = workdir / "stats.json"
    log_file = workdir / "crawl.log"
    # A new crawl of the source supersedes cursors earlier crawls left uncommitted
    # (their parent never confirmed the mentions): they are removed, so those
    # results can no longer commit and the posts are simply fetched again.
    for stale in store.state_dir.glob(f".{source_name}.cursor.pending.*.json"):
        stale.unlink(missing_ok=True)
    # Unique per run, in the state dir (same filesystem, so commit is a rename).
    pending = store.state_dir / f".{source_name}.cursor.pending.{uuid.uuid4().hex[:12]}.json"
    job = job.model_copy(
        update={
            "state_dir": store.state_dir, "output": out, "stats_file": stats_file,
            "cursor_pending": pending, "commit_cursor": False,
        }
    )  # fmt: skip

    overrides = {"CLOSESPIDER_TIMEOUT": timeout, **(settings or {})}
    overrides.pop(SETTING, None)  # the job goes over stdin, never as a setting string
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["SCRAPY_SETTINGS_MODULE"] = "crawlers.settings"
    error: str | None = None
    try:
        with log_file.open("wb") as log:
            proc = _start_child(job.crawl.child_start, json.dumps(overrides), env, log)
            _send_job(proc, job)
            code, error = _wait(proc, timeout + SHUTDOWN_GRACE, cancel, source_name)
        log_text = log_file.read_text(encoding="utf-8", errors="replace")
        _relay_warnings(log_text, source_name)
        if error is None and code != 0:
            error = f"crawl of {source_name!r} failed (exit code {code}): {_last_error(log_text)}"
        mentions, bad_lines = _read_mentions(out)
        stats: dict[str, Any] = {}
        if stats_file.exists():
            try:
                stats = json.loads(stats_file.read_text(encoding="utf-8"))
            except ValueError:
                stats = {}
        if bad_lines:
            stats["unreadable_output_lines"] = bad_lines
        has_cursor = pending.exists() and error is None
        if not has_cursor:
            pending.unlink(missing_ok=True)
        return CrawlResult(
            mentions, stats, error, source_name, log_text[-_LOG_TAIL:],
            store if has_cursor else None, pending if has_cursor else None,
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Child(Protocol):
    """What the runner uses of a crawl child: a spawned `subprocess.Popen` or a
    forked `crawlers.forkserver.ForkedChild`. `pid` is also its process group."""

    pid: int
    stdin: IO[bytes] | None

    def wait(self, timeout: float | None = None) -> int: ...


def _start_child(how: str, settings_json: str, env: dict[str, str], log: IO[bytes]) -> _Child:
    """The crawl's child process, its stdout and stderr on `log`, waiting for its job
    on stdin: forked by this process's fork server (`how == "fork"`, see
    `crawlers.forkserver`), or spawned as `python -m crawlers.run --child` when
    asked to, or when the server cannot fork (it warns once)."""
    if how == "fork":
        from crawlers.forkserver import ForkServerError, shared_server

        server = shared_server()
        if server is not None:
            try:
                child = server.fork(settings_json, log.fileno(), env)
                logger.debug(
                    "crawl child %d forked by the fork server %d", child.pid, server.ready.pid
                )
                return child
            except ForkServerError as exc:
                logger.warning("crawl child spawned instead of forked: %s", exc)
    cmd = [
        sys.executable, "-m", "crawlers.run", "--child", "--settings-json", settings_json,
        "--parent-pid", str(os.getpid()),  # dies with this process (crawlers.run)
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def _send_job(proc: _Child, job: CrawlJob) -> None:
    """Write the job to the child's stdin and close it (EOF ends the child's read).

    A child that died before reading (a broken interpreter, an import error) is
    reported by its exit code and log, not by this write."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(job.to_wire())
        proc.stdin.close()
    except (BrokenPipeError, ValueError):
        pass


def _wait(
    proc: _Child, limit: float, cancel: threading.Event | None, source: str
) -> tuple[int, str | None]:
    deadline = time.monotonic() + limit
    while True:
        try:
            return proc.wait(timeout=0.2 if cancel is not None else limit), None
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            return _stop(proc), f"crawl of {source!r} cancelled (shutting down)"
        if time.monotonic() >= deadline:
            return _stop(proc), f"crawl of {source!r} did not end within {limit:.0f}s; stopped"


def _stop(proc: _Child) -> int:
    # SIGTERM first: Scrapy then closes the spider cleanly (pipelines flush).
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


# Scrapy's LOG_FORMAT: "2026-11-30 08:00:00 [logger.name] WARNING: message".
_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)? \[(?P<name>[^\]]+)\] "
    r"(?P<level>WARNING|ERROR|CRITICAL): (?P<message>.*)$"
)
_RELAY_LIMIT = 50


def _relay_warnings(log_text: str, source: str) -> None:
    """The child's WARNING and ERROR lines, logged again in this process at their level.

    The child's log is only kept in `CrawlResult.log`; its warnings (a source's
    faults, a refused request, a cursor that did not advance) must reach the
    daemon's own log. Only the first line of each record (no tracebacks), at most
    `_RELAY_LIMIT` of them.
    """
    relayed = 0
    for line in log_text.splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        if relayed == _RELAY_LIMIT:
            logger.warning("crawl of %r: further warnings are in its log only", source)
            return
        level = getattr(logging, match["level"])
        logger.log(level, "crawl of %r: [%s] %s", source, match["name"], match["message"])
        relayed += 1


def _last_error(log_text: str) -> str:
    lines = [line for line in log_text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line.strip()[:500]
    return lines[-1].strip()[:500] if lines else "no output"


def _read_mentions(path: Path) -> tuple[list[Mention], int]:
    mentions: list[Mention] = []
    bad = 0
    if not path.exists():
        return mentions, bad
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                mentions.append(Mention.model_validate_json(line))
            except ValidationError:
                bad += 1  # e.g. a line torn by a killed child
    return mentions, bad
