"""An in-memory `alerts.reader.MentionReader`: rules tested without Elasticsearch.

A test stand-in (product code never imports it). It answers the questions the
rules ask with the same meaning as `store.reader.ElasticsearchMentionReader` over
`store.queries`: a mention counts for a brand by that brand's own sentiment bucket,
or by the post label when it was scored before per-brand sentiment existed (no
`brand_sentiments` at all); mentions without a post sentiment count in `total` and `unscored` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from brandpulse.mention import Mention, SentimentLabel
from store.queries import IntervalCounts, SourceCounts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _bucket(mention: Mention, brand: str) -> str | None:
    """What the brand's counts count `mention` as; None when it is not scored for it."""
    if mention.brand_sentiments:
        own = [b.bucket for b in mention.brand_sentiments if b.brand == brand]
        return own[0] if own else None
    # Scored before per-brand sentiment: the post label (such results carry no
    # confidence, so none of them is uncertain).
    return mention.sentiment.label if mention.sentiment is not None else None


class MemoryMentionReader:
    def __init__(self, mentions: Iterable[Mention] = ()) -> None:
        self.mentions: list[Mention] = []
        self.add(mentions)

    def add(self, mentions: Iterable[Mention]) -> None:
        self.mentions.extend(mentions)

    def _of(self, brand: str, start: datetime, end: datetime) -> list[Mention]:
        return [m for m in self.mentions if brand in m.brands and start <= m.created_at < end]

    def counts(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> list[IntervalCounts]:
        rows: dict[datetime, dict[str, int]] = {}
        for m in self._of(brand, start, end):
            at = m.created_at - ((m.created_at - _EPOCH) % step)
            row = rows.setdefault(at, {"total": 0})
            row["total"] += 1
            if m.sentiment is None:
                row["unscored"] = row.get("unscored", 0) + 1
            bucket = _bucket(m, brand)
            if bucket is not None:
                row[bucket] = row.get(bucket, 0) + 1
        return [IntervalCounts(brand, at, **row) for at, row in sorted(rows.items())]

    def counts_by_source(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> list[SourceCounts]:
        rows: dict[tuple[str, datetime], int] = {}
        for m in self._of(brand, start, end):
            at = m.created_at - ((m.created_at - _EPOCH) % step)
            rows[m.source_name, at] = rows.get((m.source_name, at), 0) + 1
        return [SourceCounts(brand, s, at, n) for (s, at), n in sorted(rows.items())]

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
        found = [
            m
            for m in self._of(brand, start, end)
            if (sentiment is None or _bucket(m, brand) == sentiment) and (m.author_reach or 0) >= min_reach
        ]
        # store.queries' order: reach descending (a missing one last), newest first, id.
        found.sort(key=lambda m: m.id)
        found.sort(key=lambda m: m.created_at, reverse=True)
        found.sort(key=lambda m: (m.author_reach is None, -(m.author_reach or 0)))
        return found if limit is None else found[:limit]

    def newest(
        self,
        brand: str,
        start: datetime,
        end: datetime,
        *,
        sentiment: SentimentLabel,
        limit: int,
    ) -> list[Mention]:
        found = [m for m in self._of(brand, start, end) if _bucket(m, brand) == sentiment]
        # store.queries' "time" order: newest first, then id.
        found.sort(key=lambda m: m.id)
        found.sort(key=lambda m: m.created_at, reverse=True)
        return found[:limit]
