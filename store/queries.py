"""Read side: what alerts, the demo and reports ask Elasticsearch.

Every function takes the index (normally the alias ``brandpulse-mentions``), a
brand exactly as stored on mentions (``BrandConfig.name``) and a half-open time
window ``[start, end)`` on ``created_at`` in UTC, and returns plain dataclasses
or :class:`~brandpulse.mention.Mention` objects, never raw responses.

Sentiment counts per brand use each brand's own sentiment (`brand_sentiments`, counted
through the flat `brand_sentiment_keys` "brand|bucket"), so a post that praises Acme and
attacks Globex is negative for Globex only; mentions scored before per-brand sentiment
existed count by their post label. Results whose calibrated confidence is under
`nlp.uncertain_below` are counted as `uncertain`, never as negative/neutral/positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from elasticsearch import Elasticsearch

from brandpulse.mention import (
    SENTIMENT_BUCKETS,
    SENTIMENT_LABELS,
    Mention,
    SentimentBucket,
    SentimentLabel,
)
from brandpulse.timeutil import require_utc

SortOrder = Literal["reach", "time", "negative"]

# terms on brands: a brand list is short, but "all brands" must not truncate
_MAX_BRANDS = 1000
# terms on configured sources: a config has a handful, never this many
_MAX_SOURCES = 1000


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _window(start: datetime, end: datetime) -> dict[str, Any]:
    s, e = require_utc(start, "start"), require_utc(end, "end")
    if e <= s:
        raise ValueError(f"empty time window: end {e.isoformat()} <= start {s.isoformat()}")
    return {
        "range": {
            "created_at": {"gte": _iso(s), "lt": _iso(e), "format": "strict_date_optional_time"}
        }
    }


# Mentions the crawlers marked as a repost or near-copy of an earlier post
# (crawlers.pipelines.DuplicatePipeline): reports leave them out by default, and the
# hourly rollup's report counts (store.rollup) are counted under this very filter.
NOT_DUPLICATE: dict[str, Any] = {"bool": {"must_not": [{"exists": {"field": "duplicate_of"}}]}}
# What reports call a mention without a detected language.
UNKNOWN_LANGUAGE = "unknown"

# Mentions scored before per-brand sentiment existed (or not scored yet).
_NO_BRAND_KEYS: dict[str, Any] = {
    "bool": {"must_not": [{"exists": {"field": "brand_sentiment_keys"}}]}
}


def brand_sentiment_filter(brand: str, bucket: SentimentBucket) -> dict[str, Any]:
    """Mentions counted as `bucket` for `brand`: by the brand's own sentiment, or, for a
    mention scored before per-brand sentiment existed, by its post label."""
    should: list[dict[str, Any]] = [{"term": {"brand_sentiment_keys": f"{brand}|{bucket}"}}]
    if bucket != "uncertain":  # such old mentions have no confidence, so none is uncertain
        legacy = {"term": {"sentiment.label": bucket}}
        should.append({"bool": {"filter": [legacy, _NO_BRAND_KEYS]}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _interval(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds <= 0 or interval.total_seconds() != seconds:
        raise ValueError(f"interval must be a positive whole number of seconds, got {interval}")
    return f"{seconds}s"


@dataclass(frozen=True)
class IntervalCounts:
    """Mentions of one brand in one interval, split by the brand's sentiment.

    negative/neutral/positive count confident results only; `uncertain` those under
    `nlp.uncertain_below`, whatever their label.
    """

    brand: str
    start: datetime
    total: int
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unscored: int = 0  # no sentiment yet (scoring lags or failed)
    uncertain: int = 0

    def count(self, label: SentimentBucket) -> int:
        return int(getattr(self, label))


@dataclass(frozen=True)
class WindowCounts:
    brand: str
    start: datetime
    end: datetime
    negative: int
    total: int

    @property
    def negative_share(self) -> float:
        return self.negative / self.total if self.total else 0.0


@dataclass(frozen=True)
class MentionPage:
    mentions: list[Mention]
    total: int  # matching mentions in the whole window, not just this page
    # pass back as `search_after` for the next page; None when this was the last
    next_after: list[Any] | None = field(default=None)


def sentiment_aggs(keys_terms: dict[str, Any]) -> dict[str, Any]:
    """The sub-aggregations one interval bucket needs to become an `IntervalCounts`
    (`interval_counts_of`): the brands' "brand|bucket" keys (`keys_terms`, the terms
    aggregation on `brand_sentiment_keys`), the post label of mentions scored before
    per-brand sentiment existed, and how many are scored. Shared by the raw counts and
    the hourly rollup (store.rollup), so both count alike."""
    return {
        "keys": {"terms": keys_terms},
        # mentions scored before per-brand sentiment: their post label
        "legacy": {
            "filter": _NO_BRAND_KEYS,
            "aggs": {"label": {"terms": {"field": "sentiment.label", "size": 3}}},
        },
        "scored": {"value_count": {"field": "sentiment.label"}},
    }


def interval_counts_of(brand: str, start: datetime, bucket: dict[str, Any]) -> IntervalCounts:
    """`brand`'s counts from one bucket aggregated with `sentiment_aggs` (its keys name
    other brands too; only `brand`'s count)."""
    counts = {lb["key"]: int(lb["doc_count"]) for lb in bucket["legacy"]["label"]["buckets"]}
    for kb in bucket["keys"]["buckets"]:
        key_brand, _, label = str(kb["key"]).rpartition("|")
        if key_brand == brand:
            counts[label] = counts.get(label, 0) + int(kb["doc_count"])
    total = int(bucket["doc_count"])
    return IntervalCounts(
        brand=brand,
        start=start,
        total=total,
        negative=counts.get("negative", 0),
        neutral=counts.get("neutral", 0),
        positive=counts.get("positive", 0),
        unscored=total - int(bucket["scored"]["value"]),
        uncertain=counts.get("uncertain", 0),
    )


def counts_per_interval(
    client: Elasticsearch,
    index: str,
    start: datetime,
    end: datetime,
    interval: timedelta,
    brands: Sequence[str] | None = None,
) -> list[IntervalCounts]:
    """Per brand, per interval, how many mentions of each sentiment bucket (the brand's
    own sentiment; see the module docstring).

    Intervals with no mention are present with zeros (the spike detector needs
    the quiet hours too), from the interval holding ``start`` to the one
    holding ``end`` (exclusive), aligned to the epoch.
    """
    window = _window(start, end)
    filters: list[dict[str, Any]] = [window]
    if brands is not None:
        if not brands:
            return []
        filters.append({"terms": {"brands": list(brands)}})
    last = require_utc(end, "end") - timedelta(milliseconds=1)
    # A mention's keys name all its brands; each brand's bucket keeps its own below.
    keys_terms: dict[str, Any] = {"field": "brand_sentiment_keys"}
    if brands:
        wanted = [f"{b}|{bucket}" for b in brands for bucket in SENTIMENT_BUCKETS]
        keys_terms |= {"size": len(wanted), "include": wanted}
    else:
        keys_terms["size"] = _MAX_BRANDS * len(SENTIMENT_BUCKETS)
    resp = client.search(
        index=index,
        size=0,
        query={"bool": {"filter": filters}},
        aggs={
            "brand": {
                "terms": {
                    "field": "brands",
                    "size": len(brands) if brands else _MAX_BRANDS,
                    # a mention can name several brands; only report the asked ones
                    **({"include": list(brands)} if brands else {}),
                },
                "aggs": {
                    "t": {
                        "date_histogram": {
                            "field": "created_at",
                            "fixed_interval": _interval(interval),
                            "min_doc_count": 0,
                            "extended_bounds": {"min": _iso(start), "max": _iso(last)},
                        },
                        "aggs": sentiment_aggs(keys_terms),
                    }
                },
            }
        },
    )
    out: list[IntervalCounts] = []
    for b in resp["aggregations"]["brand"]["buckets"]:
        brand = str(b["key"])
        for t in b["t"]["buckets"]:
            start_at = datetime.fromtimestamp(t["key"] / 1000, tz=UTC)
            out.append(interval_counts_of(brand, start_at, t))
    out.sort(key=lambda c: (c.brand, c.start))
    return out


@dataclass(frozen=True)
class SourceCounts:
    """Mentions of one brand in one interval from one configured source (`source_name`)."""

    brand: str
    source: str
    start: datetime
    total: int


def counts_per_source(
    client: Elasticsearch,
    index: str,
    brand: str,
    start: datetime,
    end: datetime,
    interval: timedelta,
) -> list[SourceCounts]:
    """Per interval (aligned to the epoch) and per configured source (`source_name`), how
    many mentions of `brand` there are in ``[start, end)``: one aggregation, nothing
    fetched. Only (interval, source) pairs with a mention are returned; a source with
    none in the window is absent."""
    window = _window(start, end)
    resp = client.search(
        index=index,
        size=0,
        query={"bool": {"filter": [window, {"term": {"brands": brand}}]}},
        aggs={
            "t": {
                "date_histogram": {
                    "field": "created_at",
                    "fixed_interval": _interval(interval),
                    "min_doc_count": 1,
                },
                "aggs": {"source": {"terms": {"field": "source_name", "size": _MAX_SOURCES}}},
            }
        },
    )
    out: list[SourceCounts] = []
    for t in resp["aggregations"]["t"]["buckets"]:
        at = datetime.fromtimestamp(t["key"] / 1000, tz=UTC)
        for b in t["source"]["buckets"]:
            out.append(SourceCounts(brand, str(b["key"]), at, int(b["doc_count"])))
    out.sort(key=lambda c: (c.source, c.start))
    return out


def negative_counts(
    client: Elasticsearch, index: str, brand: str, start: datetime, end: datetime
) -> WindowCounts:
    """Mentions negative for `brand` (its own sentiment, confident) and all its mentions
    in ``[start, end)``."""
    resp = client.search(
        index=index,
        size=0,
        track_total_hits=True,
        query={"bool": {"filter": [_window(start, end), {"term": {"brands": brand}}]}},
        aggs={"negative": {"filter": brand_sentiment_filter(brand, "negative")}},
    )
    return WindowCounts(
        brand=brand,
        start=require_utc(start, "start"),
        end=require_utc(end, "end"),
        negative=int(resp["aggregations"]["negative"]["doc_count"]),
        total=int(resp["hits"]["total"]["value"]),
    )


_SORTS: dict[SortOrder, list[dict[str, Any]]] = {
    "reach": [
        {"author_reach": {"order": "desc", "missing": "_last"}},
        {"created_at": {"order": "desc"}},
    ],
    "time": [{"created_at": {"order": "desc"}}],
    "negative": [
        {"sentiment.negative": {"order": "desc", "missing": "_last"}},
        {"created_at": {"order": "desc"}},
    ],
}


def search_mentions(
    client: Elasticsearch,
    index: str,
    brand: str,
    start: datetime,
    end: datetime,
    *,
    sentiment: SentimentLabel | None = None,
    sort: SortOrder = "time",
    page_size: int = 50,
    search_after: list[Any] | None = None,
) -> MentionPage:
    """One page of a brand's mentions, sorted; follow ``next_after`` for more.

    ``sentiment`` selects the mentions counted as that label for the brand (its own
    sentiment, confident ones only), as the counts above do.

    ``search_after`` (not from/size) so paging deep into a busy brand stays cheap
    and stable while new mentions arrive; the mention ``id`` ends every sort so
    ties never repeat or skip a mention across pages.
    """
    if sentiment is not None and sentiment not in SENTIMENT_LABELS:
        raise ValueError(f"sentiment must be one of {SENTIMENT_LABELS}, got {sentiment!r}")
    if sort not in _SORTS:
        raise ValueError(f"sort must be one of {sorted(_SORTS)}, got {sort!r}")
    if not 1 <= page_size <= 10_000:
        raise ValueError(f"page_size must be within 1..10000, got {page_size}")
    filters: list[dict[str, Any]] = [_window(start, end), {"term": {"brands": brand}}]
    if sentiment is not None:
        filters.append(brand_sentiment_filter(brand, sentiment))
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filters}},
        "sort": [*_SORTS[sort], {"id": {"order": "asc"}}],
        "size": page_size,
        "track_total_hits": True,
    }
    if search_after is not None:
        body["search_after"] = search_after
    resp = client.search(index=index, **body)
    hits = resp["hits"]["hits"]
    mentions = [Mention.from_document(h["_source"]) for h in hits]
    next_after = hits[-1]["sort"] if len(hits) == page_size else None
    return MentionPage(
        mentions=mentions, total=int(resp["hits"]["total"]["value"]), next_after=next_after
    )
