"""The alert rules' `MentionReader` over Elasticsearch (`store.queries`).

The one place the alert engine reads mentions from a real index; the rules know only
the protocol (alerts/reader.py). A missing index reads as empty: before the first
mention is indexed every interval is quiet.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from elasticsearch import Elasticsearch, NotFoundError

from brandpulse.mention import Mention, SentimentLabel
from store.queries import (
    IntervalCounts,
    SourceCounts,
    counts_per_interval,
    counts_per_source,
    search_mentions,
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
