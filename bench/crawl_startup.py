"""A crawl's fixed cost: CPU-seconds per small crawl, spawned child vs forked child.

    python bench/crawl_startup.py [--crawls 10] [--rounds 2] [--pages 2] [--per-page 20]

Serves a small Hacker News search (one query, `pages` x `per-page` posts, the
Algolia format of bench/crawl_speed.py) on 127.0.0.1 and runs `crawls` crawls of it
through `crawlers.runner.run_crawl` with `crawl.child_start: spawn` and then with
`fork`, each mode in a fresh process of its own, `rounds` times alternately (the
same run, so the load of the machine is shared). Per mode it prints:

- child CPU-s per crawl: user + system CPU of the crawl children (and, for fork,
  of the fork server while it serves), from `resource.getrusage(RUSAGE_CHILDREN)`
  of the measuring process after everything it started was reaped (the fork
  server reaps its children and is reaped when stopped), minus the server's own
  start-up;
- the fork server's one-off start-up CPU (its /proc utime + stime when it says it
  is ready: interpreter, Scrapy, Twisted, the crawlers), paid once per process
  that crawls;
- the measuring process's own CPU per crawl (the runner: the hand-off, reading
  the JSONL) and wall time per crawl.

Every crawl must return the same mentions with no error, or the run stops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from crawl_speed import build_pages, serve  # noqa: E402


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_mode(args: argparse.Namespace) -> None:
    """Child: `args.crawls` crawls with `args.mode`, one JSON line of figures."""
    from brandpulse.config import parse_config
    from crawlers import forkserver
    from crawlers.job import CrawlJob
    from crawlers.runner import run_crawl

    config = parse_config({
        "brands": [{"name": "Bench", "query": "bencha"}],
        "sources": [{"type": "hackernews", "name": "bench", "base_url": args.base_url,
                     "max_pages": args.pages, "lookback": "3650d", "requests_per_minute": 1_000_000}],
        "crawl": {"allow_private_addresses": True, "child_start": args.mode},
    }, env={})  # fmt: skip
    server_start = 0.0
    if args.mode == "fork":
        # Started here, outside the timed crawls, so its one-off cost is its own figure.
        server = forkserver.shared_server()
        assert server is not None, "the fork server did not start"
        server_start = _proc_cpu(server.ready.pid)
    self0, children0 = (
        _cpu(resource.getrusage(resource.RUSAGE_SELF)),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    counts = set()
    started = time.perf_counter()
    for _ in range(args.crawls):
        with tempfile.TemporaryDirectory() as state:
            result = run_crawl(CrawlJob.from_config(config, "bench", state_dir=state), timeout=120,
                               settings={"LOG_LEVEL": "INFO"})  # fmt: skip
        if result.error:
            raise SystemExit(f"crawl failed: {result.error}")
        counts.add(len(result.mentions))
    wall = time.perf_counter() - started
    self_cpu = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - self0
    forkserver.stop_shared_server()  # reaped: its CPU and its children's is counted now
    children = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(children0)
    print(json.dumps({
        "mode": args.mode, "crawls": args.crawls, "mentions": sorted(counts),
        "child_cpu_per_crawl": (children - server_start) / args.crawls,
        "server_start_cpu": server_start, "parent_cpu_per_crawl": self_cpu / args.crawls,
        "wall_per_crawl": wall / args.crawls,
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crawls", type=int, default=10, help="crawls per mode and round")
    parser.add_argument("--rounds", type=int, default=2, help="spawn then fork, this many times")
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--mode", choices=("spawn", "fork"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        one_mode(args)
        return
    httpd = serve(build_pages(["bencha"], args.pages, args.per_page))
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(f"{args.crawls} crawls per mode and round, each 1 query x {args.pages} pages x "
          f"{args.per_page} posts, {args.rounds} round(s)")  # fmt: skip
    print(f"{'round':>5} {'mode':<6} {'mentions':>8} {'child CPU-s/crawl':>18} {'parent CPU-s/crawl':>19} "
          f"{'wall s/crawl':>13} {'server start CPU-s':>19}")  # fmt: skip
    figures: dict[str, list[dict]] = {"spawn": [], "fork": []}
    for n in range(1, args.rounds + 1):
        for mode in ("spawn", "fork"):
            cmd = [sys.executable, __file__, "--mode", mode, "--base-url", base_url, "--crawls",
                   str(args.crawls), "--pages", str(args.pages), "--per-page", str(args.per_page)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                raise SystemExit(f"{mode}: failed\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            figures[mode].append(r)
            start = f"{r['server_start_cpu']:.2f}" if mode == "fork" else "-"
            print(f"{n:>5} {mode:<6} {','.join(map(str, r['mentions'])):>8} {r['child_cpu_per_crawl']:>18.3f} "
                  f"{r['parent_cpu_per_crawl']:>19.3f} {r['wall_per_crawl']:>13.2f} {start:>19}")  # fmt: skip
    httpd.shutdown()
    spawn = sum(r["child_cpu_per_crawl"] for r in figures["spawn"]) / args.rounds
    fork = sum(r["child_cpu_per_crawl"] for r in figures["fork"]) / args.rounds
    start = sum(r["server_start_cpu"] for r in figures["fork"]) / args.rounds
    print(f"mean child CPU-s per crawl: spawn {spawn:.3f}, fork {fork:.3f} ({spawn / fork:.1f}x less); "
          f"fork server start-up {start:.2f} CPU-s once (paid back after "
          f"{start / max(spawn - fork, 1e-9):.1f} crawls)")  # fmt: skip


if __name__ == "__main__":
    main()
