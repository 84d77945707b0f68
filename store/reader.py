"""The alert rules' `MentionReader` over Elasticsearch (`store.queries`).

The one place the alert engine reads mentions from a real index; the rules know only
the protocol (alerts/reader.py). A missing index reads as empty: before the first
mention is indexed every interval is quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch, NotFoundError

from brandpulse.mention import Mention, SentimentLabel
from store.queries import (
    IntervalCounts,
    SourceCounts,
    counts_per_interval,
    counts_per_source,
    search_mentions,
)
from store.rollup import (
    MINUTE,
    HourCounts,
    as_interval_counts,
    ceil_hour,
    counts_index_name,
    floor_hour,
    sum_minutes,
)

# Posts are fetched by reach in pages of this size when all above a bar are wanted.
_PAGE = 100
# The newest posts (a wave's themes read up to a few thousand) come in larger pages.
_NEWEST_PAGE = 1000


class ElasticsearchMentionReader:
    """`alerts.reader.MentionReader` over the mentions index (normally the alias)."""

    def __init__(self, es: Elasticsearch, index: str, *, newest_page: int = _NEWEST_PAGE) -> None:
        self.es = es
        self.index = index
        self.newest_page = newest_page  # page size of `newest` (smaller in tests, to page)

    def counts(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> list[IntervalCounts]:
        try:
            return counts_per_interval(self.es, self.index, start, end, step, brands=[brand])
        except NotFoundError:
            return []

    def counts_by_source(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> list[SourceCounts]:
        try:
            return counts_per_source(self.es, self.index, brand, start, end, step)
        except NotFoundError:
            return []

    def by_reach(
        self,
        brand: str,
        start: datetime,
        end: datetime,
        *,
        sentiment: SentimentLabel | None,
        limit: int | None = None,
        min_reach: int = 0,
    ) -> list[Mention]:
        found: list[Mention] = []
        after = None
        while True:
            size = _PAGE if limit is None else min(_PAGE, limit - len(found))
            try:
                page = search_mentions(
                    self.es,
                    self.index,
                    brand,
                    start,
                    end,
                    sentiment=sentiment,
                    sort="reach",
                    page_size=size,
                    search_after=after,
                )
            except NotFoundError:
                return found
            reached = [m for m in page.mentions if (m.author_reach or 0) >= min_reach]
            found.extend(reached)
            # Sorted by reach, descending: past the first one below the bar, none qualify.
            if len(reached) < len(page.mentions) or page.next_after is None:
                return found
            if limit is not None and len(found) >= limit:
                return found
            after = page.next_after

    def newest(
        self,
        brand: str,
        start: datetime,
        end: datetime,
        *,
        sentiment: SentimentLabel,
        limit: int,
    ) -> list[Mention]:
        found: list[Mention] = []
        after = None
        while len(found) < limit:
            try:
                page = search_mentions(
                    self.es,
                    self.index,
                    brand,
                    start,
                    end,
                    sentiment=sentiment,
                    sort="time",
                    page_size=min(self.newest_page, limit - len(found)),
                    search_after=after,
                )
            except NotFoundError:
                return found
            found.extend(page.mentions)
            if page.next_after is None:
                return found
            after = page.next_after
        return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Rollup documents fetched per request (a brand's hours, oldest first).
_HOURS_PAGE = 2000
# How far before the newest `rolled_at` seen an incremental read looks again: a
# recompute that started earlier (its rolled_at) may become visible later, and writers
# on other hosts stamp rolled_at with their own clocks (store.rollup: within about this
# much of each other).
LOOK_BACK = timedelta(hours=1)
# Values an incremental reader shares between the documents it keeps
# (`HourCounts.from_source`); past this many the table starts again (what is kept stays
# shared; only values read later are shared anew), so an unusual run of distinct
# counts cannot grow it without bound.
SHARED_MAX = 100_000


@dataclass
class _Kept:
    """One brand's rollup documents kept between checks (`RollupMentionReader`)."""

    lo: datetime  # the kept documents cover [lo, hi)
    hi: datetime
    docs: dict[datetime, HourCounts]
    seen: datetime | None  # the newest rolled_at among them


def _floor(at: datetime, step: timedelta) -> datetime:
    return at - ((at - _EPOCH) % step)


class RollupMentionReader(ElasticsearchMentionReader):
    """`ElasticsearchMentionReader` whose counts come from the hourly counts index
    (`store.rollup`, ``<prefix>-counts-hourly``) where they can.

    For a step of whole minutes (every spike rule's interval divides an hour; the
    share-of-voice rule counts days), the whole hours of the window except the last
    one come from the rollup; the rest -- the partial hours at either end and always
    the hour holding the newest interval, which is what a check judges and what the
    crawl is still filling -- from the raw mentions, and the two are summed per
    interval. The result is what `ElasticsearchMentionReader` returns on the same
    mentions (the full grid, zeros included; nothing for a brand without a mention),
    as long as the rollup is up to date (`store.rollup.CountsRollup`). A sub-minute
    step, or a deployment without a counts index yet, reads raw. Posts
    (`by_reach`, `newest`) are always read raw.
    """

    def __init__(
        self,
        es: Elasticsearch,
        index: str,
        counts_index: str | None = None,
        *,
        prefix: str | None = None,
        newest_page: int = 1000,
        incremental: bool = True,
    ) -> None:
        super().__init__(es, index, newest_page=newest_page)
        if counts_index is None:
            counts_index = counts_index_name(prefix or index.removesuffix("-mentions"))
        self.counts_index = counts_index
        self.incremental = incremental
        self._kept: dict[str, _Kept] = {}
        # equal values of the kept documents, stored once (`HourCounts.from_source`)
        self._shared: dict[object, object] = {}
        self.read_docs = 0  # rollup documents read so far (what incremental saves)

    def _split(
        self, start: datetime, end: datetime, step: timedelta
    ) -> tuple[datetime, datetime] | None:
        """The whole hours ``[lo, hi)`` the rollup serves, or None (all raw)."""
        if step % MINUTE or step <= timedelta(0):
            return None
        lo, hi = ceil_hour(start), floor_hour(end - _MS)
        return (lo, hi) if lo < hi else None

    def _raw_parts(self, start: datetime, end: datetime, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        return [(a, b) for a, b in ((start, lo), (hi, end)) if a < b]

    def hours(self, brand: str, lo: datetime, hi: datetime) -> list[HourCounts]:
        """The rollup documents of `brand` for the hours in ``[lo, hi)``, oldest first.
        Raises `NotFoundError` without a counts index.

        Incremental (`incremental`): the documents read are kept per brand; a later call
        over a window the kept ones cover reads only the documents recomputed since
        (`rolled_at` at or after the newest one seen, less `LOOK_BACK`: a recompute
        started earlier may land later) and the hours new to the window, so a check
        reads a few documents per brand instead of weeks of them. A recompute never
        deletes a document (a brand gone from an hour gets zeros), so nothing kept can
        go stale unseen; retention (`store.retention`) deletes only hours that ended by
        its cutoff, which a window within `alerts.history` <= `keep` never reaches."""
        if not self.incremental:
            return self._fetch(brand, lo, hi, None)
        kept = self._kept.get(brand)
        if kept is None or lo < kept.lo:
            kept = _Kept(lo, hi, {}, None)
            found = self._fetch(brand, lo, hi, None)
        else:
            since = kept.seen - LOOK_BACK if kept.seen is not None else None
            found = self._fetch(brand, lo, hi, since, new_from=kept.hi)
        for doc in found:
            kept.docs[doc.hour] = doc
            if kept.seen is None or doc.rolled_at > kept.seen:
                kept.seen = doc.rolled_at
        kept.docs = {h: d for h, d in kept.docs.items() if h >= lo}
        kept.lo, kept.hi = lo, max(hi, kept.hi)
        self._kept[brand] = kept
        self.read_docs += len(found)
        return [kept.docs[h] for h in sorted(kept.docs) if lo <= h < hi]

    def _fetch(
        self, brand: str, lo: datetime, hi: datetime, since: datetime | None,
        new_from: datetime | None = None,
    ) -> list[HourCounts]:
        """`brand`'s documents in ``[lo, hi)``; with `since`, only those rolled at or
        after it, and those from `new_from` on."""
        window: dict[str, object] = {"range": {"hour": {"gte": lo.isoformat(), "lt": hi.isoformat()}}}
        filters: list[dict[str, object]] = [{"term": {"brand": brand}}, window]
        if since is not None:
            changed: list[dict[str, object]] = [{"range": {"rolled_at": {"gte": since.isoformat()}}}]
            if new_from is not None and new_from < hi:
                changed.append({"range": {"hour": {"gte": new_from.isoformat()}}})
            filters.append({"bool": {"should": changed, "minimum_should_match": 1}})
        out: list[HourCounts] = []
        after: list[object] | None = None
        if len(self._shared) > SHARED_MAX:
            self._shared = {}
        shared = self._shared if self.incremental else None  # nothing kept: nothing to share
        while True:
            body: dict[str, object] = {
                "query": {"bool": {"filter": filters}},
                "sort": [{"hour": "asc"}],
                "size": _HOURS_PAGE,
                "_source": {"excludes": ["report*"]},  # the reports' counts (store.rollup)
            }
            if after is not None:
                body["search_after"] = after
            hits = self.es.search(index=self.counts_index, **body)["hits"]["hits"]
            out += [HourCounts.from_source(h["_source"], shared) for h in hits]
            if len(hits) < _HOURS_PAGE:
                return out
            after = hits[-1]["sort"]

    def _rollup_hours(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> tuple[datetime, datetime, list[HourCounts]] | None:
        """The whole hours ``[lo, hi)`` of the window the rollup serves and `brand`'s
        documents for them; None when the window is read raw whole (a sub-minute step,
        no whole hour to serve, or no counts index yet), which `counts` and
        `counts_by_source` both answer the same way: by the raw reader."""
        span = self._split(start, end, step)
        if span is None:
            return None
        lo, hi = span
        try:
            return lo, hi, self.hours(brand, lo, hi)
        except NotFoundError:
            return None

    def counts(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> list[IntervalCounts]:
        served = self._rollup_hours(brand, start, end, step)
        if served is None:
            return super().counts(brand, start, end, step)
        lo, hi, docs = served
        sums = sum_minutes(brand, docs, lo, hi, step)
        for a, b in self._raw_parts(start, end, lo, hi):
            for c in super().counts(brand, a, b, step):
                acc = sums.setdefault(c.start, [0] * 6)
                for i, n in enumerate((c.total, c.negative, c.neutral, c.positive, c.unscored, c.uncertain)):
                    acc[i] += n
        if not any(acc[0] for acc in sums.values()):
            return []  # as the raw aggregation: a brand without a mention has no buckets
        out: list[IntervalCounts] = []
        at, last = _floor(start, step), _floor(end - _MS, step)
        while at <= last:
            out.append(as_interval_counts(brand, at, sums.get(at, [0] * 6)))
            at += step
        return out

    def counts_by_source(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> list[SourceCounts]:
        served = self._rollup_hours(brand, start, end, step)
        if served is None:
            return super().counts_by_source(brand, start, end, step)
        lo, hi, docs = served
        sums: dict[tuple[str, datetime], int] = {}
        for doc in docs:
            for (m, source), n in doc.sources.items():
                at = _floor(doc.hour + m * MINUTE, step)
                sums[(source, at)] = sums.get((source, at), 0) + n
        for a, b in self._raw_parts(start, end, lo, hi):
            for c in super().counts_by_source(brand, a, b, step):
                sums[(c.source, c.start)] = sums.get((c.source, c.start), 0) + c.total
        return [SourceCounts(brand, s, at, n) for (s, at), n in sorted(sums.items()) if n]
