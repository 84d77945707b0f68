"""Share of voice and sentiment trend of a brand against its competitors, by aggregations.

`share_of_voice(client, index, brands, period)` answers with **one** search request
(`size: 0`): a `filters` aggregation with one bucket per brand and per brand-and-
sentiment, once for the period and once for the previous period of equal length, with
`terms` on source and language and a `date_histogram` (the trend) under the period's
buckets. No mention is pulled into Python: the cost is that of the aggregation, whatever
the number of mentions (bench/reports_speed.py).

Definitions (docs/reports.md):

* **mentions** of a brand: mentions in the period whose `brands` names it; a post that
  names two brands of the set counts once for each.
* **share of voice**: a brand's mentions / the sum of the mentions of every brand in the
  set (the brand and its competitors), so the shares of a set add up to 1.
* **sentiment** of a mention for a brand: the brand's own sentiment
  (`store.queries.brand_sentiment_filter`, the very filter alerts count with): a post
  that praises Acme and attacks Globex is positive for Acme and negative for Globex.
  Results under `nlp.uncertain_below` count as `uncertain`, never as
  negative/neutral/positive; mentions with no sentiment yet are `unscored`.
* **net sentiment**: (positive - negative) / (positive + neutral + negative), over the
  confident results only, in [-1, 1]; None when there is none.
* **near-duplicates**: with `exclude_duplicates` (the default for reports) mentions the
  crawlers marked `duplicate_of` (a repost or a near-copy of an earlier post,
  crawlers.pipelines.DuplicatePipeline) are left out of every figure, so a post copied
  fifty times counts once: the earliest copy represents its cluster.

**From the hourly counts rollup** (`store.rollup`, with `alerts.counts_source: rollup`,
the default: `reports.summary.brand_insight` passes the counts index): the rollup keeps,
per (brand, UTC hour), the brand's sentiment-bucket counts without near-duplicates, split
by source and language, counted exactly as the aggregation above counts them. When the
period and every trend step are whole UTC hours, duplicates are excluded and the period
is complete (it ends before `settled`: now less `alerts.query_delay`), the figures are
summed from those few hundred documents instead (`rollup_share_of_voice`), identical to
the raw aggregation's; otherwise (a zone with a 30/45-minute offset, `--include-
duplicates`, a period still being filled, no counts index or documents written before
the report counts existed) the raw aggregation answers, and one log line says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from elasticsearch import Elasticsearch, NotFoundError

from brandpulse.config import Config
from brandpulse.mention import SENTIMENT_BUCKETS, SentimentBucket
from brandpulse.timeutil import local_midnight, require_utc, shift_local_days, zone
from reports.period import Period, iso
from store.queries import NOT_DUPLICATE, UNKNOWN_LANGUAGE, brand_sentiment_filter

log = logging.getLogger(__name__)

# terms on source/language: a handful of each; more than this are summed into "other"
_MAX_SPLIT = 50
_UNKNOWN_LANGUAGE = UNKNOWN_LANGUAGE


def competitive_set(config: Config, brand: str) -> tuple[str, ...]:
    """The brand, then every configured competitor (`own: false`), in config order.

    Competitors are the brands marked `own: false`; every own brand is compared with all
    of them (the config has no per-brand competitor list).
    """
    config.brand(brand)  # KeyError for an unknown brand
    return (brand, *(b.name for b in config.brands if not b.own and b.name != brand))


@dataclass(frozen=True)
class SentimentCounts:
    """Mentions of one brand (in a period, a source, a language or a trend step), split
    by the brand's own sentiment. ``mentions`` = the four buckets + ``unscored``."""

    mentions: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    uncertain: int = 0

    @property
    def unscored(self) -> int:
        return self.mentions - self.negative - self.neutral - self.positive - self.uncertain

    @property
    def confident(self) -> int:
        """Mentions with a confident label: the denominator of shares and net sentiment."""
        return self.negative + self.neutral + self.positive

    def count(self, bucket: SentimentBucket) -> int:
        return int(getattr(self, bucket))

    def share(self, bucket: SentimentBucket) -> float | None:
        """negative/neutral/positive: of the confident results; uncertain: of the scored ones."""
        if bucket == "uncertain":
            scored = self.confident + self.uncertain
            return self.uncertain / scored if scored else None
        return self.count(bucket) / self.confident if self.confident else None

    @property
    def net_sentiment(self) -> float | None:
        """(positive - negative) / (positive + neutral + negative); None without a confident result."""
        return (self.positive - self.negative) / self.confident if self.confident else None


@dataclass(frozen=True)
class TrendPoint:
    start: datetime  # the step's start (UTC); steps are hours or days
    counts: SentimentCounts


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None:
        return None
    return now - before


@dataclass(frozen=True)
class BrandFigures:
    """One brand's figures in the period and in the previous period of equal length."""

    brand: str
    counts: SentimentCounts
    previous: SentimentCounts
    share_of_voice: float | None  # None when no brand of the set has a mention
    previous_share_of_voice: float | None
    by_source: Mapping[str, SentimentCounts] = field(default_factory=dict)
    by_language: Mapping[str, SentimentCounts] = field(default_factory=dict)
    trend: tuple[TrendPoint, ...] = ()

    @property
    def mentions_change(self) -> float | None:
        """Relative change of mentions (0.25 = +25 %); None when the previous period had none."""
        if not self.previous.mentions:
            return None
        return self.counts.mentions / self.previous.mentions - 1.0

    @property
    def share_of_voice_change(self) -> float | None:
        """Change in share of voice, in share points (0.05 = +5 points)."""
        return _change(self.share_of_voice, self.previous_share_of_voice)

    @property
    def net_sentiment_change(self) -> float | None:
        return _change(self.counts.net_sentiment, self.previous.net_sentiment)


@dataclass(frozen=True)
class ShareOfVoice:
    """The figures of a set of brands (the first is the one reported on) over a period."""

    period: Period
    exclude_duplicates: bool
    trend_interval: Literal["hour", "day"]
    brands: tuple[BrandFigures, ...]

    @property
    def focus(self) -> BrandFigures:
        return self.brands[0]

    def brand(self, name: str) -> BrandFigures:
        for figures in self.brands:
            if figures.brand == name:
                return figures
        raise KeyError(name)

    @property
    def total_mentions(self) -> int:
        """The sum of the set's brand mentions (a two-brand post counts twice)."""
        return sum(b.counts.mentions for b in self.brands)


def _key(brand: str, bucket: str) -> str:
    return f"{brand}|{bucket}"


def _bucket_filters(brands: Sequence[str]) -> dict[str, Any]:
    """`brand|all` and `brand|<bucket>` for each brand: the filters of the `filters` agg."""
    out: dict[str, Any] = {}
    for brand in brands:
        mentions = {"term": {"brands": brand}}
        out[_key(brand, "all")] = mentions
        for bucket in SENTIMENT_BUCKETS:
            out[_key(brand, bucket)] = {
                "bool": {"filter": [mentions, brand_sentiment_filter(brand, bucket)]}
            }
    return out


def _range(period: Period) -> dict[str, Any]:
    return {"range": {"created_at": {"gte": iso(period.start), "lt": iso(period.end),
                                     "format": "strict_date_optional_time"}}}


def build_request(
    brands: Sequence[str], period: Period, *, exclude_duplicates: bool = True,
    time_zone: str = "UTC",
) -> dict[str, Any]:
    """The search body `share_of_voice` sends (exposed for the benchmark and the docs)."""
    step = period.trend_interval
    last = iso(period.end - timedelta(milliseconds=1))  # extended_bounds.max is inclusive
    histogram = {
        "date_histogram": {
            "field": "created_at",
            "calendar_interval": f"1{step[0]}",
            "time_zone": time_zone,
            "min_doc_count": 0,
            # every step of the period is present, quiet ones as zeros
            "extended_bounds": {"min": iso(period.start), "max": last},
        }
    }
    filters: list[dict[str, Any]] = [
        {"range": {"created_at": {"gte": iso(period.previous.start), "lt": iso(period.end),
                                  "format": "strict_date_optional_time"}}},
        {"terms": {"brands": list(brands)}},
    ]
    if exclude_duplicates:
        filters.append(NOT_DUPLICATE)
    keyed = {"filters": {"filters": _bucket_filters(brands)}}
    return {
        "size": 0,
        "track_total_hits": False,
        "query": {"bool": {"filter": filters}},
        "aggs": {
            "current": {
                "filter": _range(period),
                "aggs": {
                    "k": {
                        **keyed,
                        "aggs": {
                            "source": {"terms": {"field": "source", "size": _MAX_SPLIT}},
                            "language": {"terms": {"field": "language", "size": _MAX_SPLIT,
                                                   "missing": _UNKNOWN_LANGUAGE}},
                            "trend": histogram,
                        },
                    }
                },
            },
            "previous": {"filter": _range(period.previous), "aggs": {"k": keyed}},
        },
    }


def _counts(flat: Mapping[str, int], brand: str) -> SentimentCounts:
    return SentimentCounts(
        mentions=flat.get(_key(brand, "all"), 0),
        **{b: flat.get(_key(brand, b), 0) for b in SENTIMENT_BUCKETS},
    )


def _split(buckets: Mapping[str, Any], brand: str, agg: str) -> dict[str, SentimentCounts]:
    per_value: dict[str, dict[str, int]] = {}
    for bucket in ("all", *SENTIMENT_BUCKETS):
        for b in buckets[_key(brand, bucket)][agg]["buckets"]:
            per_value.setdefault(str(b["key"]), {})[_key(brand, bucket)] = int(b["doc_count"])
    out = {value: _counts(flat, brand) for value, flat in per_value.items()}
    return dict(sorted(out.items(), key=lambda kv: (-kv[1].mentions, kv[0])))


def _trend(buckets: Mapping[str, Any], brand: str) -> tuple[TrendPoint, ...]:
    per_step: dict[int, dict[str, int]] = {}
    for bucket in ("all", *SENTIMENT_BUCKETS):
        for b in buckets[_key(brand, bucket)]["trend"]["buckets"]:
            per_step.setdefault(int(b["key"]), {})[_key(brand, bucket)] = int(b["doc_count"])
    return tuple(
        TrendPoint(datetime.fromtimestamp(ms / 1000, tz=UTC), _counts(flat, brand))
        for ms, flat in sorted(per_step.items())
    )


def _sov(counts: Mapping[str, SentimentCounts], brand: str) -> float | None:
    total = sum(c.mentions for c in counts.values())
    return counts[brand].mentions / total if total else None


def share_of_voice(
    client: Elasticsearch,
    index: str,
    brands: Sequence[str],
    period: Period,
    *,
    exclude_duplicates: bool = True,
    time_zone: str = "UTC",
    counts_index: str | None = None,
    settled: datetime | None = None,
) -> ShareOfVoice:
    """The figures of ``brands`` (the reported brand first, then its competitors; see
    `competitive_set`) over ``period`` and the period before it, in one request.

    ``time_zone`` aligns the trend's days (an IANA name); the period itself is exact.
    With ``counts_index`` (the hourly counts rollup, `store.rollup`) the figures come
    from it when it can answer (`rollup_share_of_voice`; ``settled`` as there), else
    from the raw aggregation, with one log line saying why: the same figures either way.
    """
    brands = list(dict.fromkeys(brands))
    if not brands:
        raise ValueError("share_of_voice needs at least one brand")
    if counts_index is not None:
        try:
            return rollup_share_of_voice(client, counts_index, brands, period,
                                         exclude_duplicates=exclude_duplicates,
                                         time_zone=time_zone, settled=settled)
        except RollupUnavailable as exc:
            log.log(exc.level, "share of voice of %s from raw mentions, not the counts rollup: %s",
                    brands[0], exc)  # fmt: skip
    body = build_request(brands, period, exclude_duplicates=exclude_duplicates,
                         time_zone=time_zone)
    aggs = client.search(index=index, **body)["aggregations"]
    current = aggs["current"]["k"]["buckets"]
    flat_now = {k: int(v["doc_count"]) for k, v in current.items()}
    flat_before = {k: int(v["doc_count"]) for k, v in aggs["previous"]["k"]["buckets"].items()}
    return _assemble(
        period, exclude_duplicates,
        {b: _counts(flat_now, b) for b in brands},
        {b: _counts(flat_before, b) for b in brands},
        lambda b: (_split(current, b, "source"), _split(current, b, "language"), _trend(current, b)),
    )  # fmt: skip


def _assemble(
    period: Period,
    exclude_duplicates: bool,
    now: Mapping[str, SentimentCounts],
    before: Mapping[str, SentimentCounts],
    splits: Callable[[str], tuple[dict[str, SentimentCounts], dict[str, SentimentCounts],
                                  tuple[TrendPoint, ...]]],
) -> ShareOfVoice:
    """The `ShareOfVoice` of the brands of `now` (in order), whichever way their counts
    were made: `splits(brand)` gives its (by source, by language, trend)."""
    figures = []
    for b in now:
        by_source, by_language, trend = splits(b)
        figures.append(BrandFigures(
            brand=b, counts=now[b], previous=before[b],
            share_of_voice=_sov(now, b), previous_share_of_voice=_sov(before, b),
            by_source=by_source, by_language=by_language, trend=trend,
        ))  # fmt: skip
    return ShareOfVoice(period=period, exclude_duplicates=exclude_duplicates,
                        trend_interval=period.trend_interval, brands=tuple(figures))


# ------------------------------------------------------------- from the counts rollup


class RollupUnavailable(Exception):
    """Why the counts rollup cannot answer a report; `share_of_voice` reads raw instead.
    `level`: INFO for what is expected (a half-hour zone, a period still being filled),
    WARNING for what an operator should fix (``python scheduler.py rebuild-counts``)."""

    def __init__(self, reason: str, level: int = logging.INFO) -> None:
        super().__init__(reason)
        self.level = level


_HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _whole_hour(at: datetime) -> bool:
    return (at - _EPOCH) % _HOUR == timedelta(0)


def trend_steps(period: Period, time_zone: str) -> tuple[list[datetime], dict[datetime, datetime]]:
    """The trend's steps as the raw `date_histogram` makes them (calendar hours or days
    in `time_zone`, from the one holding the period's start to the one holding its
    end, in UTC), and for each UTC hour of the period the step it falls in.

    Raises `RollupUnavailable` when a step does not start on a whole UTC hour (a zone
    with a 30- or 45-minute offset, such as Asia/Kolkata): hourly documents cannot be
    split across such steps."""
    tz = zone(time_zone)
    hours = [period.start + i * _HOUR for i in range(int(period.length / _HOUR))]
    if period.trend_interval == "hour":
        odd = next((h for h in hours if h.astimezone(tz).utcoffset() % _HOUR), None)
        if odd is not None:
            offset = odd.astimezone(tz).strftime("%z")
            raise RollupUnavailable(f"time zone {time_zone} is UTC{offset[:3]}:{offset[3:]} "
                                    f"at {iso(odd)}: its hours are not whole UTC hours")  # fmt: skip
        return hours, {h: h for h in hours}
    step_of = {h: local_midnight(h, time_zone) for h in hours}
    steps = [step_of[hours[0]]]
    while steps[-1] < step_of[hours[-1]]:
        steps.append(shift_local_days(steps[-1], 1, time_zone))
    odd = next((s for s in steps if not _whole_hour(s)), None)
    if odd is not None:
        raise RollupUnavailable(f"days in time zone {time_zone} start at {iso(odd)}, not on a "
                                f"whole UTC hour")  # fmt: skip
    return steps, step_of


def rollup_share_of_voice(
    client: Elasticsearch,
    counts_index: str,
    brands: Sequence[str],
    period: Period,
    *,
    exclude_duplicates: bool = True,
    time_zone: str = "UTC",
    settled: datetime | None = None,
) -> ShareOfVoice:
    """`share_of_voice` summed from the (brand, hour) documents of the counts index
    (`store.rollup.report_sums`: one request, the node sums the documents' report
    counts) instead of an aggregation over raw mentions: the same `ShareOfVoice` for
    the same mentions.

    Raises `RollupUnavailable` (naming why) when it cannot answer exactly: duplicates
    asked for (the rollup counts without them), the period not starting or ending on a
    whole UTC hour or a trend step not doing so (`trend_steps`), the period ending after
    `settled` (the time up to which the rollup is taken to be complete: the report
    builder passes now less `alerts.query_delay`; None: the caller vouches for it), no
    counts index, or a document of the span written before the report counts were
    numbers (rollup version 1 or 2: ``python scheduler.py rebuild-counts`` rewrites them).
    """
    brands = list(dict.fromkeys(brands))
    if not brands:
        raise ValueError("share_of_voice needs at least one brand")
    from store.rollup import ROLLUP_VERSION, report_sums

    if not exclude_duplicates:
        raise RollupUnavailable("the rollup counts without near-duplicates and they were asked for")
    if not (_whole_hour(period.start) and _whole_hour(period.end)):
        raise RollupUnavailable(f"the period {iso(period.start)} - {iso(period.end)} is not "
                                f"whole UTC hours")  # fmt: skip
    if settled is not None and period.end > require_utc(settled, "settled"):
        raise RollupUnavailable(f"the period ends at {iso(period.end)}, after {iso(settled)}: "
                                f"the rollup may not have its last hours yet")  # fmt: skip
    steps, _ = trend_steps(period, time_zone)
    try:
        sums = report_sums(client, counts_index, brands, period.previous.start, period.start,
                           period.end, trend_interval=period.trend_interval,
                           time_zone=time_zone, top=_MAX_SPLIT)  # fmt: skip
    except NotFoundError:
        raise RollupUnavailable(f"no counts index {counts_index} (python scheduler.py "
                                f"rebuild-counts builds it)", logging.WARNING) from None
    if sums.old:
        first = iso(sums.first_old) if sums.first_old else "?"
        raise RollupUnavailable(
            f"{sums.old} (brand, hour) document(s) of {counts_index} from {first} on have no "
            f"report counts (written before rollup version {ROLLUP_VERSION}): run python "
            f"scheduler.py rebuild-counts to rewrite them",
            logging.WARNING,
        )

    def counts(acc: Sequence[int] | None) -> SentimentCounts:
        return SentimentCounts(*acc) if acc else SentimentCounts()

    def split(values: Mapping[str, Sequence[int]]) -> dict[str, SentimentCounts]:
        rows = sorted(((v, counts(acc)) for v, acc in values.items() if acc[0]),
                      key=lambda kv: (-kv[1].mentions, kv[0]))  # fmt: skip
        return dict(rows[:_MAX_SPLIT])  # as the raw `terms` of size _MAX_SPLIT

    return _assemble(
        period, True,
        {b: counts(sums.now.get(b)) for b in brands},
        {b: counts(sums.before.get(b)) for b in brands},
        lambda b: (split(sums.sources.get(b, {})), split(sums.languages.get(b, {})),
                   tuple(TrendPoint(at, counts(sums.trend.get(b, {}).get(at))) for at in steps)),
    )  # fmt: skip
