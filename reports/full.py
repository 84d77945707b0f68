"""The full report of one brand over a period: what the HTML, PDF and Slack forms show.

`build_report` gathers, besides the `BrandInsight` of `scheduler.py report` (share of
voice, trend, complaint themes), the posts a reader wants to open (top negative and top
positive by author reach), the notable authors (largest reach among those who named the
brand) and the alerts the engine raised in the period. Renderers (`reports.render`,
`reports.slack_message`) only format a `FullReport`: every figure is computed here or in
the modules it calls, once.

Alerts are read from the alert engine's outbox in the state index (`alerts.state`): every
alert the engine decided to send, whatever its delivery status. The engine prunes
delivered entries older than `alerts.history` (at least two days), so a period reaching
further back than that shows only what is left, and `alerts_note` says so; without a
state index (alerts never ran) the report says alerts are not available, not "none".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from brandpulse.config import Config
from brandpulse.mention import Mention, SentimentLabel
from reports.labels import Language
from reports.period import Period, iso
from reports.share_of_voice import NOT_DUPLICATE
from reports.summary import BrandInsight, brand_insight
from store.queries import brand_sentiment_filter, search_mentions

TOP_POSTS = 5
TOP_AUTHORS = 10
# Reposts are dropped from the top posts after fetching; a page this large leaves
# TOP_POSTS originals unless most of the brand's largest-reach posts are copies.
_POST_PAGE = 25


@dataclass(frozen=True)
class Author:
    """One author among those who named the brand in the period."""

    name: str
    source: str  # the source of most of their mentions
    reach: int  # the largest author_reach seen on their mentions
    mentions: int
    negative: int  # confident negative for the brand


@dataclass(frozen=True)
class AlertLine:
    """One alert of the period, as a report lists it."""

    kind: str
    brand: str
    created_at: datetime
    interval_start: datetime
    interval_end: datetime
    observed: int
    expected: float
    signal: str
    status: str  # outbox status: pending, sending, delivered
    top_author: str | None = None


@dataclass(frozen=True)
class FullReport:
    insight: BrandInsight
    negative_posts: tuple[Mention, ...]
    positive_posts: tuple[Mention, ...]
    authors: tuple[Author, ...]
    alerts: tuple[AlertLine, ...] | None  # None: alerts could not be read (alerts_note says why)
    alerts_note: str | None
    time_zone: str
    language: Language
    generated_at: datetime

    @property
    def brand(self) -> str:
        return self.insight.brand

    @property
    def period(self) -> Period:
        return self.insight.share_of_voice.period


def top_posts(
    client: Elasticsearch, index: str, brand: str, period: Period, label: SentimentLabel, *,
    exclude_duplicates: bool = True, limit: int = TOP_POSTS,
) -> tuple[Mention, ...]:
    """The brand's `label` mentions (its own sentiment, confident) of largest author reach."""
    page = search_mentions(client, index, brand, period.start, period.end, sentiment=label,
                           sort="reach", page_size=_POST_PAGE)
    found = [m for m in page.mentions if not (exclude_duplicates and m.duplicate_of)]
    return tuple(found[:limit])


def notable_authors(
    client: Elasticsearch, index: str, brand: str, period: Period, *,
    exclude_duplicates: bool = True, limit: int = TOP_AUTHORS,
) -> tuple[Author, ...]:
    """Authors who named the brand in the period, largest reach first (one request:
    `terms` on author ordered by their largest `author_reach`). Authors without a known
    reach are left out. Names are per source: the same name on two sources is one row."""
    filters: list[dict[str, Any]] = [
        {"range": {"created_at": {"gte": iso(period.start), "lt": iso(period.end)}}},
        {"term": {"brands": brand}},
        {"exists": {"field": "author_reach"}},
    ]
    if exclude_duplicates:
        filters.append(NOT_DUPLICATE)
    resp = client.search(index=index, size=0, query={"bool": {"filter": filters}}, aggs={
        "authors": {
            "terms": {"field": "author", "size": limit, "order": {"reach": "desc"}},
            "aggs": {
                "reach": {"max": {"field": "author_reach"}},
                "negative": {"filter": brand_sentiment_filter(brand, "negative")},
                "source": {"terms": {"field": "source", "size": 1}},
            },
        }
    })
    out = []
    for b in resp["aggregations"]["authors"]["buckets"]:
        sources = b["source"]["buckets"]
        out.append(Author(name=str(b["key"]), source=str(sources[0]["key"]) if sources else "",
                          reach=int(b["reach"]["value"] or 0), mentions=int(b["doc_count"]),
                          negative=int(b["negative"]["doc_count"])))
    return tuple(out)


def period_alerts(
    client: Elasticsearch, config: Config, brand: str, period: Period, now: datetime,
) -> tuple[tuple[AlertLine, ...] | None, str | None]:
    """The alerts the engine created for `brand` in the period, and a note on what is
    missing (no state index; pruned entries), or None."""
    from alerts.state import AlertStateStore

    store = AlertStateStore(client, config.elasticsearch.index_prefix)
    try:
        entries = store.created_between(period.start, period.end, brand)
    except NotFoundError:
        return None, "no alert state index: alerts have not run against this Elasticsearch"
    lines = tuple(
        AlertLine(kind=e.alert.kind, brand=e.alert.brand, created_at=e.created_at,
                  interval_start=e.alert.interval_start, interval_end=e.alert.interval_end,
                  observed=e.alert.observed, expected=e.alert.expected, signal=e.alert.signal,
                  status=e.status,
                  top_author=e.alert.top_posts[0].author if e.alert.top_posts else None)
        for e in entries
    )
    from alerts.engine import PRUNE_MIN_AGE

    keep = max(config.alerts.history, PRUNE_MIN_AGE)
    note = None
    if period.start < now - keep:
        note = (f"delivered alerts older than {keep.days} days are pruned by the engine "
                f"(alerts.history): the list may miss the period's earlier alerts")
    return lines, note


def build_report(
    client: Elasticsearch, config: Config, index: str, brand: str, period: Period, *,
    language: Language = "en", time_zone: str = "UTC", exclude_duplicates: bool = True,
    themes: bool = True, now: datetime | None = None,
) -> FullReport:
    """Everything the report of `brand` over `period` shows (see the module docstring)."""
    now = now or datetime.now(UTC)
    insight = brand_insight(client, config, index, brand, period,
                            exclude_duplicates=exclude_duplicates, themes=themes,
                            time_zone=time_zone, now=now)
    alerts, note = period_alerts(client, config, brand, period, now)
    return FullReport(
        insight=insight,
        negative_posts=top_posts(client, index, brand, period, "negative",
                                 exclude_duplicates=exclude_duplicates),
        positive_posts=top_posts(client, index, brand, period, "positive",
                                 exclude_duplicates=exclude_duplicates),
        authors=notable_authors(client, index, brand, period,
                                exclude_duplicates=exclude_duplicates),
        alerts=alerts, alerts_note=note, time_zone=time_zone, language=language,
        generated_at=now,
    )
