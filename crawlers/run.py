"""Crawl one source from the command line.

    python -m crawlers.run --config config.yaml --source NAME [--out FILE] [-s NAME=VALUE ...]

Writes the mentions as JSON lines to FILE (or stdout), the per-source summary to
stderr, and commits the source's cursor once the mentions are written. `-s`
overrides a Scrapy setting (e.g. `-s LOG_LEVEL=DEBUG` with `--log` to see the
crawl's own log). `--child` is the internal entry point used by `crawlers.runner`
in the child process: it reads its `CrawlJob` as JSON from stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _die_with_parent(parent: int | None) -> None:
    """Be killed when the process that started this crawl dies (Linux's parent-death
    signal), and exit at once if it is gone already. The parent is the daemon for a
    spawned child, the fork server for a forked one (which exits with the daemon,
    `crawlers.forkserver`).

    The child runs in its own session (so the parent can stop its whole group), so
    a parent killed with SIGKILL would otherwise leave it crawling: the source would
    then be crawled twice at once when another worker takes the job over, and the
    orphan's results would go nowhere."""
    import contextlib
    import ctypes
    import os
    import signal

    if parent is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        raise SystemExit(1)


def _child(args: argparse.Namespace) -> int:
    _die_with_parent(args.parent_pid)
    return run_child(args.settings_json)


def run_child(settings_json: str | None) -> int:
    """The crawl child's body: read the `CrawlJob` from stdin (to EOF), run it in a
    new `CrawlerProcess` with `settings_json`'s overrides, return the exit code.

    Shared by the spawned child (`--child`) and the forked one (`crawlers.forkserver`),
    so both crawl, write and fail alike."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from crawlers.job import SETTING, CrawlJob

    job = CrawlJob.from_wire(sys.stdin.buffer.read())
    settings = Settings()
    settings.setmodule("crawlers.settings", priority="project")
    overrides: dict[str, Any] = json.loads(settings_json or "{}")
    settings.setdict(overrides, priority="cmdline")
    settings.set(SETTING, job, priority="cmdline")
    process = CrawlerProcess(settings)
    failures: list[str] = []

    def record(failure: Any) -> None:
        # Scrapy only logs a crawl that fails to start (a broken component, a bad
        # setting); the exit code is how the parent learns about it.
        failures.append(failure.getErrorMessage())
        print(
            f"crawl failed: {failure.type.__name__}: {failure.getErrorMessage()}", file=sys.stderr
        )

    process.crawl(job.source.type).addErrback(record)
    process.start()
    return 1 if failures else 0


def _setting(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crawlers.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--config", default=None, help="config file (default: $BRANDPULSE_CONFIG or config.yaml)"
    )
    parser.add_argument("--source", help="name of the source in the config")
    parser.add_argument("--out", default=None, help="JSONL output file (default: stdout)")
    parser.add_argument("--state-dir", default=None, help="default: daemon.state_dir of the config")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--no-commit", action="store_true", help="do not advance the cursor")
    parser.add_argument(
        "-s", dest="settings", action="append", type=_setting, default=[], metavar="NAME=VALUE",
        help="override a Scrapy setting (repeatable), e.g. LOG_LEVEL=DEBUG",
    )  # fmt: skip
    parser.add_argument("--log", action="store_true", help="print the crawl's log to stderr")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--settings-json", help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    if not args.source:
        parser.error("--source is required")

    import os

    from brandpulse.config import ConfigError, load_config
    from crawlers.job import CrawlJob
    from crawlers.runner import run_crawl

    try:
        config = load_config(args.config or os.environ.get("BRANDPULSE_CONFIG", "config.yaml"))
        job = CrawlJob.from_config(config, args.source, state_dir=args.state_dir)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_crawl(job, timeout=args.timeout, settings=dict(args.settings) or None)
    if args.log:
        print(result.log, file=sys.stderr)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for mention in result.mentions:
            out.write(mention.model_dump_json() + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(json.dumps(result.stats, indent=1, default=str), file=sys.stderr)
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    if not args.no_commit:
        result.commit_cursor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
