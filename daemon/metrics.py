"""Prometheus metrics of the daemon, in a registry of its own (tests can build several)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.collected = Counter(
            "brandpulse_mentions_collected", "Mentions received from crawls", ["source"], registry=r
        )
        self.scored = Counter(
            "brandpulse_mentions_scored", "Mentions scored by the sentiment model", ["source"], registry=r
        )
        self.indexed = Counter(
            "brandpulse_mentions_indexed", "Mentions written to Elasticsearch", ["source"], registry=r
        )
        self.spooled = Counter(
            "brandpulse_mentions_spooled",
            "Mentions parked in the local spool because Elasticsearch was unavailable",
            ["source"],
            registry=r,
        )
        self.crawl_runs = Counter(
            "brandpulse_crawl_runs", "Crawl runs by outcome", ["source", "outcome"], registry=r
        )
        self.crawl_errors = Counter(
            "brandpulse_crawl_errors", "Request/parse failures inside crawls", ["source"], registry=r
        )
        self.alert_checks = Counter("brandpulse_alert_checks", "Alert checks run", registry=r)
        self.alerts_sent = Counter(
            "brandpulse_alerts_sent", "Alerts delivered", ["brand", "kind"], registry=r
        )
        self.scoring_rate = Gauge(
            "brandpulse_scoring_texts_per_second", "Texts per second of the last scoring batch", registry=r
        )
        self.spool_size = Gauge(
            "brandpulse_spool_mentions", "Mentions waiting in the spool", registry=r
        )
        self.crawl_seconds = Histogram(
            "brandpulse_crawl_seconds",
            "Duration of crawl runs",
            ["source"],
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
