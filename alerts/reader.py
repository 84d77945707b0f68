"""What the alert rules read: a brand's counts per interval, its posts by reach, and its
newest posts.

Rules see mentions only through `MentionReader`, so they run the same against
Elasticsearch (`store.reader.ElasticsearchMentionReader`, what the engine uses) and
against mentions held in memory (what the rule tests use): a rule's behaviour can be
tested without a search engine, and a backtest can replay it over any history.

Counts are `store.queries.IntervalCounts`: per brand and interval, the brand's own
sentiment buckets (confident results only; `uncertain` and `unscored` apart); per
source, `store.queries.SourceCounts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from brandpulse.mention import Mention, SentimentLabel
from store.queries import IntervalCounts, SourceCounts


class MentionReader(Protocol):
    """Read access to indexed mentions, in the terms the rules think in.

    Windows are half-open `[start, end)` on `created_at`, aware UTC. A brand with no
    mention at all (or a store with no index yet) reads as empty, never as an error.
    """

    def counts(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> Sequence[IntervalCounts]:
        """Per interval of `step` (aligned to the epoch), the brand's mentions by its
        sentiment; intervals without a mention may be left out."""
        ...

    def counts_by_source(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> Sequence[SourceCounts]:
        """Per interval of `step` (aligned to the epoch) and per configured source
        (`source_name`), how many mentions of the brand, whatever their sentiment; only
        the (interval, source) pairs with a mention."""
        ...

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
        """The brand's mentions of `sentiment` (its own, as counted; None: all its
        mentions, whatever their sentiment, scored or not), highest author reach
        first (a missing reach last; ties newest first, then by id): the first `limit`, or all of them when None, and only those
        whose author reaches at least `min_reach` people when that is above 0."""
        ...

    def newest(
        self,
        brand: str,
        start: datetime,
        end: datetime,
        *,
        sentiment: SentimentLabel,
        limit: int,
    ) -> list[Mention]:
        """The brand's mentions of `sentiment` (its own, as counted), newest first (ties
        by id): the first `limit`. What a wave's themes are read from, bounded so that a
        wave of any size costs one bounded read (`alerts.themes`)."""
        ...


@dataclass(frozen=True)
class Counts:
    """One interval of a rule's grid. `total` is scored mentions only: unscored and
    uncertain ones would dilute the negative share. `mentions` is every mention of the
    brand, scored or not (what a volume rule counts)."""

    at: datetime
    negative: int
    total: int
    positive: int = 0
    mentions: int = 0


def count_grid(
    reader: MentionReader, brand: str, start: datetime, end: datetime, step: timedelta
) -> list[Counts]:
    """Every interval of `[start, end)`, zeros where the reader had nothing: the spike
    detector needs the quiet intervals too."""
    found = {r.start: r for r in reader.counts(brand, start, end, step)}
    grid: list[Counts] = []
    at = start
    while at < end:
        r = found.get(at)
        if r is None:
            grid.append(Counts(at, 0, 0))
        else:
            scored = r.negative + r.neutral + r.positive
            grid.append(Counts(at, r.negative, scored, r.positive, r.total))
        at += step
    return grid
