"""Shared bits of the Mastodon/RSS/YouTube/Bluesky/X/HTML-forum spider tests."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.settings import Settings

from brandpulse.config import parse_config
from brandpulse.mention import Mention
from crawlers.job import SETTING, CrawlJob

# Acme with its Chinese name, and a competitor: the fixtures mention both.
BRANDS: list[dict[str, Any]] = [
    {"name": "Acme", "query": '"acme" OR "阿克米"'},
    {"name": "Globex", "aliases": ["globex corp"], "own": False},
]

# The fixtures' recent posts are from November 2026 and their "old" posts from 2019:
# a lookback reaching back to 2026-11-01 keeps the first and drops the second on a
# first crawl, whenever the tests run.
LOOKBACK = f"{(datetime.now(UTC) - datetime(2026, 11, 1, tzinfo=UTC)).days + 1}d"


def by_id(mentions: list[Mention]) -> dict[str, Mention]:
    ids = [m.source_id for m in mentions]
    assert len(ids) == len(set(ids)), f"duplicated mentions: {sorted(ids)}"
    return {m.source_id: m for m in mentions}


def faults(result: Any) -> dict[str, int]:
    return dict(result.stats.get("failed") or {})


def log_lines(log: str, needle: str) -> list[str]:
    return [line for line in log.splitlines() if needle in line]


def configure(
    spider_cls: type,
    source: dict[str, Any],
    state_dir: Path,
    brands: list[dict[str, Any]] | None = None,
) -> Any:
    """A spider set up from a config as a crawl would, without running a crawl.

    Credential checks happen at this point, so skip decisions can be tested in
    milliseconds instead of a crawl subprocess each; one end-to-end skip crawl
    (test_x.py) covers the rest of that path.
    """
    config = parse_config(
        {"brands": brands or BRANDS, "sources": [{"name": "s", **source}]}, env={}
    )
    job = CrawlJob.from_config(config, "s", state_dir=state_dir)
    crawler = Crawler(spider_cls, Settings({SETTING: job}))
    return spider_cls.from_crawler(crawler)


def warnings_of(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
