"""`make demo`: the whole pipeline, for real, on this machine.

What runs: a local Elasticsearch node (jars from Maven Central), local servers
answering exactly like Reddit, Hacker News and Mastodon with three days of
realistic mentions of the sample brand "Acme", a local Slack that prints what it
receives, and the daemon itself (APScheduler jobs crawling with the real Scrapy
spiders, scoring with the real default model, indexing, detecting). After the
first crawls a burst of negative posts appears at the sources; the demo ends when
the alert about it reaches Slack; then it writes the brand's report of the week
(HTML, PDF and chart images, as `scheduler.py report --out DIR --slack` does), posts
its summary and charts to the local Slack, and says how to look at the mentions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from brandpulse.config import load_config
from daemon.logs import configure_logging
from daemon.service import Daemon
from sandbox.corpus import BRAND, build_corpus, publish_burst
from sandbox.slack import (
    DEFAULT_CHANNEL_NAME,
    DEFAULT_TOKEN,
    SlackMessage,
    SlackSandbox,
    render_message,
)
from sandbox.sources import SourcesServer

REPO = Path(__file__).resolve().parent.parent
BRAND_QUERY = '("acme" OR 阿克米) NOT ("acme thread" OR "road runner")'


def demo_config(
    es_url: str,
    sources: dict[str, str],
    slack_base_url: str,
    workdir: Path,
    *,
    index_prefix: str = "brandpulse",
) -> dict[str, Any]:
    """The demo's config.yaml: the shipped example's shape, pointed at local servers.

    The schedule is compressed (crawls every 10 s, 1-minute intervals) so the demo
    takes minutes instead of hours; everything else is the product's defaults.
    """
    every = {"every": "10s", "jitter": "0s"}
    return {
        "brands": [{"name": BRAND, "query": BRAND_QUERY, "own": True}],
        "sources": [
            {"name": "reddit", "type": "reddit", "base_url": sources["reddit"],
             "schedule": every, "lookback": "4d", "max_pages": 20},
            {"name": "hackernews", "type": "hackernews", "base_url": sources["hackernews"],
             "schedule": every, "lookback": "4d", "max_pages": 20},
            {"name": "mastodon", "type": "mastodon", "instance_url": sources["mastodon"],
             "base_url": sources["mastodon"], "tags": ["acme"], "schedule": every,
             "lookback": "4d", "max_pages": 20},
        ],
        "nlp": {"model": "default"},
        "elasticsearch": {
            "hosts": [es_url],
            "index_prefix": index_prefix,
            "spool_dir": str(workdir / "spool"),
        },
        "slack": {
            "token": DEFAULT_TOKEN,
            "channel": f"#{DEFAULT_CHANNEL_NAME}",
            "base_url": slack_base_url,
            "kibana_url": "http://127.0.0.1:5601",
        },
        "alerts": {
            "check_every": "10s",
            "query_delay": "5s",
            "history": "4d",
            "spike": {"interval": "1m", "window": "5m", "warmup": "1d", "min_count": 10},
        },
        "kibana": {"url": "http://127.0.0.1:5601"},
        # The sources are local servers: the crawlers' egress policy refuses
        # loopback addresses unless the configuration allows them.
        "crawl": {"allow_private_addresses": True},
        "daemon": {
            "state_dir": str(workdir / "state"),
            "http_port": 0,
            "log_format": "text",
            "shutdown_timeout": "30s",
        },
    }


def is_spike_message(message: SlackMessage) -> bool:
    """The wave's first message (a high-reach alert about one post may come before it)."""
    return not message.is_reply and message.text.startswith(
        ("Negative spike", "Negative sentiment dip")
    )


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(workdir: Path = Path("var/demo"), burst_after: float = 20.0, keep: bool = False) -> int:
    from esnode import LocalNode

    workdir = workdir.resolve()
    for sub in ("state", "spool", "es"):
        # A fresh run every time: old cursors would make the crawlers skip the history,
        # and mentions of an earlier run (other times, other ids) would blur the counts.
        target = workdir / sub
        if target.exists():
            shutil.rmtree(target)
    workdir.mkdir(parents=True, exist_ok=True)
    configure_logging("text", os.environ.get("BRANDPULSE_DEMO_LOG", "WARNING"))
    logging.getLogger("brandpulse").setLevel(os.environ.get("BRANDPULSE_DEMO_LOG", "WARNING"))

    _say("BrandPulse demo: crawl -> score -> index -> detect -> notify, all on this machine.\n")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        _say("1/6 starting a local Elasticsearch node (first run downloads the jars)...")
        node = LocalNode(port=0, data_dir=workdir / "es", heap="512m")
        node.start()
        if not keep:
            stack.callback(node.stop)
        _say(f"    Elasticsearch {node.url} ready")

        received: list[SlackMessage] = []
        arrived = threading.Event()

        def on_message(message: SlackMessage) -> None:
            received.append(message)
            _say("\n" + "=" * 88)
            _say("Slack message received by the local Slack (#brand-alerts):")
            _say(render_message(message, DEFAULT_CHANNEL_NAME))
            _say("=" * 88 + "\n")
            if is_spike_message(message):
                arrived.set()

        slack = stack.enter_context(SlackSandbox(on_message=on_message))
        _say(f"2/6 local Slack listening at {slack.base_url}")

        now = datetime.now(UTC)
        corpus = build_corpus(now)
        server = stack.enter_context(SourcesServer())
        server.publish(corpus.history)
        tones = Counter(p.tone for p in corpus.history)
        _say(
            f"3/6 local Reddit, Hacker News and Mastodon at {server.url} with "
            f"{len(corpus.history)} posts from the last 3 days "
            f"({tones['positive']} positive, {tones['neutral']} neutral, "
            f"{tones['negative']} negative, {tones['noise']} about some other 'acme')"
        )

        config_path = workdir / "config.yaml"
        data = demo_config(node.url, server.base_urls(), slack.base_url, workdir)
        config_path.write_text(
            "# Written by `python scheduler.py demo`; points at the demo's local servers.\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        config = load_config(config_path)
        _say(f"4/6 starting the daemon with {config_path.relative_to(REPO) if config_path.is_relative_to(REPO) else config_path}"
             " (loading the sentiment model)...")  # fmt: skip
        daemon = Daemon(config)
        daemon.start()
        stack.callback(daemon.stop)

        if not _wait(lambda: all(s.last_success for s in daemon.state.sources.values()), 240):
            _say("the first crawls did not finish in 4 minutes; see the log lines above")
            return 1
        first = {n: s.last_mentions for n, s in daemon.state.sources.items()}
        _say(f"    first crawl: {first} mentions collected, scored and indexed")
        _say(f"5/6 waiting {burst_after:.0f}s, then a wave of negative posts about Acme Cloud appears...")
        time.sleep(burst_after)
        burst_at = datetime.now(UTC)
        # The posts are created over the next minute, as a real wave would be.
        server.publish(publish_burst(corpus.burst, burst_at + timedelta(seconds=60), timedelta(seconds=60)))
        t_burst = time.monotonic()
        _say(f"    {len(corpus.burst)} negative posts being published from {burst_at:%H:%M:%S} UTC")
        _say("6/6 the daemon crawls, scores, indexes and checks for spikes every 10 s...")
        if not arrived.wait(360):
            _say("no spike alert reached Slack within 6 minutes: something is wrong (see log above)")
            return 1
        latency = time.monotonic() - t_burst
        # The wave's loudest critic (2.4M followers) posts mid-wave: give the daemon until
        # the wave has been published and crawled once more to send its high-reach alert.
        _wait(lambda: any(m.text.startswith("High-reach") for m in received),
              max(5.0, 90.0 - (time.monotonic() - t_burst)))
        _summary(daemon, node.url, latency, time.monotonic() - started, keep, received)
        _report(daemon, config, workdir / "reports")
    return 0


def _report(daemon: Daemon, config: Any, out_dir: Path) -> None:
    """The demo brand's report of the last 7 days, written and posted to the local Slack.

    The same calls as `scheduler.py report --period week --out DIR --slack`; the demo's
    history is three days, so the week's change against the one before has nothing to
    compare with and says so.
    """
    from reports.period import Period
    from reports.publish import output_dir, publish_report
    from reports.slack_message import slack_poster
    from store.setup import alias_name

    _say("\nThe weekly report of the demo brand (HTML, PDF and charts; summary to Slack):")
    index = alias_name(config.elasticsearch.index_prefix)
    # the chart PNGs are inside the HTML too; as files, to look at
    publish_report(daemon.client, config, index, BRAND,
                   Period.ending("week", datetime.now(UTC)), output_dir(out_dir),
                   post=slack_poster(config.slack), chart_files=True,
                   announce=lambda path: _say(
                       f"  {path.relative_to(REPO) if path.is_relative_to(REPO) else path}"))


def _wait(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def _summary(
    daemon: Daemon, es_url: str, latency: float, total: float, keep: bool, received: list[Any]
) -> None:
    client = daemon.client
    client.indices.refresh(index="brandpulse-mentions")
    counts = client.search(
        index="brandpulse-mentions",
        size=0,
        aggs={"s": {"terms": {"field": "sentiment.label"}}, "src": {"terms": {"field": "source"}}},
    )["aggregations"]
    by_label = {b["key"]: b["doc_count"] for b in counts["s"]["buckets"]}
    by_source = {b["key"]: b["doc_count"] for b in counts["src"]["buckets"]}
    _say(f"Spike alert delivered {latency:.0f}s after the wave began; demo took {total:.0f}s in all.")
    _say(f"Slack messages: {len(received)}.  Mentions indexed by source: {by_source}")
    _say(f"By sentiment: {by_label}\n")
    _say("Look at the mentions:")
    if keep:
        _say(f"  curl -s '{es_url}/brandpulse-mentions/_search?q=sentiment.label:negative&size=3&pretty'")
        _say("  python -m esnode stop --data var/demo/es     # when you are done")
    else:
        _say("  (re-run with `python scheduler.py demo --keep` to keep Elasticsearch running and query it)")
    _say("  python scheduler.py check-alerts --config var/demo/config.yaml --dry-run")
    _say("Kibana: import kibana/brandpulse.ndjson (data view, saved searches, dashboard) with")
    _say("  python scheduler.py setup --kibana --config config.yaml    (see docs/kibana.md)")
    sys.stdout.flush()
