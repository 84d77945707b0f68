"""The stages after a crawl, chained: enrich (language + sentiment) -> index.

The daemon, the `crawl` subcommand, the demo and the end-to-end benchmark all
push crawl results through `Pipeline.ingest`, so there is one path from a
source's posts to indexed documents. Ordering matters for "nothing collected is
lost": mentions are handed to the bulk writer (which puts them in its durable
spool before sending) before the source's cursor is committed, and a scoring
failure indexes the mentions unscored rather than dropping them — housekeeping
scores them later (`score_missing`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from brandpulse.mention import Mention
from daemon.logs import log_event
from daemon.metrics import Metrics
from store.writer import BulkWriter, WriteReport

if TYPE_CHECKING:
    from brandpulse.query import BrandQuery
    from nlp.scorer import SentimentScorer

logger = logging.getLogger("brandpulse.pipeline")


@dataclass
class IngestReport:
    received: int
    scored: int
    write: WriteReport
    scoring_error: str | None = None


class Pipeline:
    def __init__(self, scorer: SentimentScorer, writer: BulkWriter, metrics: Metrics,
                 brands: Mapping[str, BrandQuery] | None = None) -> None:
        self.scorer = scorer
        self.brands = brands  # the configured queries, to give each brand its sentiment
        self.writer = writer
        self.metrics = metrics
        # One scoring batch at a time: crawls finish on several threads, and torch
        # already uses every core for one batch.
        self._score_lock = threading.Lock()
        self._write_lock = threading.Lock()

    def enrich(self, mentions: list[Mention]) -> tuple[list[Mention], str | None]:
        """Language + sentiment; on failure the mentions come back unscored with the reason."""
        from nlp.enrich import enrich

        if not mentions:
            return mentions, None
        started = time.perf_counter()
        try:
            with self._score_lock:
                enriched = enrich(mentions, self.scorer, brands=self.brands)
        except Exception as exc:  # keep the mentions; they are scored again later
            reason = f"{type(exc).__name__}: {exc}"
            log_event(logger, "scoring.failed", logging.ERROR, n=len(mentions), error=reason)
            return mentions, reason
        elapsed = max(time.perf_counter() - started, 1e-9)
        self.metrics.scoring_rate.set(len(mentions) / elapsed)
        return enriched, None

    def ingest(self, source: str, mentions: list[Mention]) -> IngestReport:
        self.metrics.collected.labels(source).inc(len(mentions))
        enriched, error = self.enrich(mentions)
        scored = sum(1 for m in enriched if m.sentiment is not None)
        self.metrics.scored.labels(source).inc(scored)
        with self._write_lock:
            report = self.writer.write(enriched)
        self.metrics.indexed.labels(source).inc(report.indexed - report.replayed)
        self.metrics.spooled.labels(source).inc(report.spooled)
        self.metrics.spool_size.set(self.writer.pending())
        log_event(
            logger,
            "mentions.ingested",
            source=source,
            received=len(mentions),
            scored=scored,
            indexed=report.indexed,
            spooled=report.spooled,
            rejected=len(report.failures),
        )
        return IngestReport(len(mentions), scored, report, error)

    def replay_spool(self) -> WriteReport:
        with self._write_lock:
            report = self.writer.replay()
        self.metrics.spool_size.set(self.writer.pending())
        if report.indexed or report.spooled:
            log_event(
                logger,
                "spool.replayed",
                indexed=report.indexed,
                waiting=report.spooled,
                reason=report.unavailable,
            )
        return report
