"""Extensions: the per-source summary and the cursor writer.

`SourceStats`: what a source yielded, dropped and what failed. At close the
summary goes into Scrapy's stats (`brandpulse/summary`), into one log line, and
into the crawl job's `stats_file` (JSON) for `crawlers.runner`.

`CursorWriter`: the source's new cursor, written at close (see its docstring).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawlers.cursors import CursorStore, atomic_write_json
from crawlers.job import CrawlJob
from crawlers.spiders.base import STATS_PREFIX

logger = logging.getLogger(__name__)


class SourceStats:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.started = time.monotonic()
        self.path = CrawlJob.from_crawler(crawler).stats_file

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SourceStats:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.started = time.monotonic()

    def item_scraped(self, item: Any, spider: Any) -> None:
        self.crawler.stats.inc_value(f"{STATS_PREFIX}/yielded")

    def spider_closed(self, spider: Any, reason: str) -> None:
        stats = self.crawler.stats
        base = spider.summary() if hasattr(spider, "summary") else {"source": spider.name}
        dropped = dict(base.get("dropped") or {})
        for key, value in stats.get_stats().items():
            prefix = f"{STATS_PREFIX}/dropped/"
            if key.startswith(prefix):
                dropped[key[len(prefix) :]] = value
        summary = {
            **base,
            "yielded": stats.get_value(f"{STATS_PREFIX}/yielded", 0),
            "dropped": dropped,
            "pages": stats.get_value(f"{STATS_PREFIX}/pages", 0),
            "posts_seen": stats.get_value(f"{STATS_PREFIX}/posts_seen", 0),
            "marked_duplicate": stats.get_value(f"{STATS_PREFIX}/marked_duplicate", 0),
            "requests": stats.get_value("downloader/request_count", 0),
            # One number for metrics (the daemon's crawl_errors); `failed` has it by kind.
            "errors": sum((base.get("failed") or {}).values()),
            "finish_reason": reason,
            "elapsed_seconds": round(time.monotonic() - self.started, 3),
        }
        stats.set_value(f"{STATS_PREFIX}/summary", summary)
        logger.info(
            "source %r: yielded %d, dropped %s, failed %s, %d pages, finished: %s",
            summary.get("source"),
            summary["yielded"],
            summary["dropped"] or "{}",
            summary.get("failed") or "{}",
            summary["pages"],
            reason,
        )
        if self.path is not None:
            atomic_write_json(self.path, summary)


class CursorWriter:
    """Writes the cursor the spider reached (`spider.cursor_data()`) when it closes.

    The cursor may only advance past mentions something keeps:

    - the job's `cursor_pending` set (the runner): written there as *pending*;
      the parent process commits it once it has the mentions.
    - otherwise, with the job's `commit_cursor`: committed only when the mentions
      went to the job's `output` without a write error. Without
      an output nothing keeps them, so the cursor stays (one WARNING line says
      so): committing would skip those posts for good.

    A write error on the output leaves the cursor where it was in every case.
    Switched off by `BRANDPULSE_CURSOR_ENABLED` (a dry run: nothing is written).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CursorWriter:
        if not crawler.settings.getbool("BRANDPULSE_CURSOR_ENABLED", True):
            raise NotConfigured("BRANDPULSE_CURSOR_ENABLED is off")
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        cursor_data = getattr(spider, "cursor_data", None)
        data = cursor_data() if cursor_data is not None else None
        if data is None:
            return
        job = CrawlJob.from_crawler(self.crawler)
        stats = self.crawler.stats
        store: CursorStore = spider.cursor_store
        source = data["source"]
        output = job.output
        errors = stats.get_value(f"{STATS_PREFIX}/output/errors", 0)
        if errors:
            logger.warning(
                "cursor of source %r not advanced: %d mention(s) could not be written to %s",
                source, errors, output,
            )  # fmt: skip
            return
        if job.cursor_pending is not None:
            store.save_pending(source, data, job.cursor_pending)
            return
        if not job.commit_cursor:
            store.save_pending(source, data)
            return
        if output is None:
            logger.warning(
                "cursor of source %r not advanced: this crawl's mentions were not written "
                "anywhere (the crawl job has no output)",
                source,
            )
            return
        store.commit(source, store.save_pending(source, data))
