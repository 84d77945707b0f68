"""End-to-end benchmark: local sources -> indexed documents -> Slack, with the demo's schedule.

    python bench/pipeline_e2e.py [--per-hour 40] [--burst 40]

Starts a local Elasticsearch node, the local Slack and the local Reddit / Hacker
News / Mastodon servers with three days of posts, then runs the daemon exactly as
`make demo` does (crawls every 10 s, 1-minute alert intervals, 5 s query delay).

Figures printed, each beside its baseline from the same run:
- throughput: mentions per second from the sources to indexed, scored documents
  (first crawl cycle), against the crawl alone (the same spiders writing JSON lines,
  no scoring or indexing) — the cost of enriching and indexing;
- latency: seconds from the first post of a negative burst appearing at a source to
  the alert in Slack, against the bound the schedule sets (the next crawl, the rest
  of the 1-minute interval, the query delay and the next check: ~85 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from brandpulse.config import load_config  # noqa: E402
from crawlers.job import CrawlJob  # noqa: E402
from crawlers.runner import run_crawl  # noqa: E402
from daemon.demo import demo_config  # noqa: E402
from daemon.logs import configure_logging  # noqa: E402
from daemon.service import Daemon  # noqa: E402
from esnode import LocalNode  # noqa: E402
from sandbox.corpus import build_corpus, publish_burst  # noqa: E402
from sandbox.slack import SlackSandbox  # noqa: E402
from sandbox.sources import SourcesServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-hour", type=float, default=40.0, help="posts per hour of history")
    parser.add_argument("--burst", type=int, default=40, help="negative posts in the burst")
    args = parser.parse_args()
    configure_logging("text", "WARNING")

    work = Path(tempfile.mkdtemp(prefix="brandpulse-bench-e2e-"))
    corpus = build_corpus(datetime.now(UTC), per_hour=args.per_hour, burst_size=args.burst)
    expected = sum(1 for p in corpus.history if p.tone != "noise")
    with LocalNode(port=0, data_dir=work / "es", heap="512m") as node, \
            SlackSandbox() as slack, SourcesServer() as sources:  # fmt: skip
        sources.publish(corpus.history)
        data = demo_config(node.url, sources.base_urls(), slack.base_url, work, index_prefix="bench")
        data["sources"] = [{**s, "max_pages": 200} for s in data["sources"]]
        config_path = work / "config.yaml"
        config_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        config = load_config(config_path)

        # Baseline: the crawl alone, the same spiders, one after the other.
        t0 = time.perf_counter()
        crawled = 0
        for source in config.sources:
            result = run_crawl(CrawlJob.from_config(config, source.name, state_dir=work / "baseline-state"))
            crawled += len(result.mentions)
        crawl_only = time.perf_counter() - t0

        daemon = Daemon(config)
        t_model = time.perf_counter()
        daemon.setup()  # templates + model load: start-up cost, reported apart
        _ = daemon.pipeline.scorer
        startup = time.perf_counter() - t_model
        t1 = time.perf_counter()
        daemon.start()
        alias = "bench-mentions"
        try:
            while True:
                daemon.client.indices.refresh(index=alias)
                n = daemon.client.count(index=alias)["count"]
                if n >= expected:
                    break
                if time.perf_counter() - t1 > 900:
                    print(f"only {n}/{expected} indexed after 900 s", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            pipeline_time = time.perf_counter() - t1

            arrived = threading.Event()
            slack.on_message = lambda _m: arrived.set()
            burst_start = datetime.now(UTC) + timedelta(seconds=1)
            sources.publish(publish_burst(corpus.burst, burst_start + timedelta(seconds=30),
                                          timedelta(seconds=30)))  # fmt: skip
            while datetime.now(UTC) < burst_start:
                time.sleep(0.05)
            t2 = time.perf_counter()
            if not arrived.wait(600):
                print("no alert within 600 s", file=sys.stderr)
                return 1
            latency = time.perf_counter() - t2
        finally:
            daemon.stop()

    # What the schedule allows at most: the next crawl (10 s), the rest of the 1-minute
    # interval the burst starts in (< 60 s), the query delay (5 s), the next check (10 s).
    bound = 10 + 60 + 5 + 10
    print(f"history: {expected} mentions over 3 days from 3 local sources")
    print(f"{'path':<44}{'seconds':>9}{'mentions/s':>12}")
    print(f"{'crawl only (baseline, sequential)':<44}{crawl_only:>9.1f}{crawled / crawl_only:>12.1f}")
    print(f"{'daemon: crawl + language + sentiment + index':<44}{pipeline_time:>9.1f}"
          f"{expected / pipeline_time:>12.1f}")  # fmt: skip
    print(f"daemon start-up (templates, model load): {startup:.1f} s")
    print(f"burst -> Slack: {latency:.1f} s (the schedule allows up to ~{bound} s plus processing)")
    print(f"e2e_mentions_per_s={expected / pipeline_time:.1f} crawl_only_per_s={crawled / crawl_only:.1f} "
          f"burst_to_slack_s={latency:.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
