from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import Mention
from store.queries import counts_per_interval, negative_counts, search_mentions
from store.setup import alias_name, install_templates
from store.synthetic import mentions
from store.writer import BulkWriter

# spans a month boundary, so the queries read two monthly indices through the alias
START = datetime(2026, 10, 31, 18, tzinfo=UTC)
END = datetime(2026, 11, 1, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def written(
    es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig
) -> tuple[str, list[Mention]]:
    es_cfg = es_cfg_module
    install_templates(es_client, es_cfg)
    batch = list(mentions(3_000, START, END, seed=3))
    # a few unscored ones: scoring lags behind crawling
    batch += [
        m.model_copy(update={"sentiment": None, "source_id": f"u{i}"})
        for i, m in enumerate(batch[:25])
    ]
    with BulkWriter(es_client, es_cfg, refresh=True) as writer:
        report = writer.write(batch)
    assert report.ok, report.summary()
    return alias_name(es_cfg.index_prefix), batch


def _hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def test_histogram_returns_the_counts_written(es_client: Elasticsearch, written):
    alias, batch = written
    expected: Counter[tuple[str, datetime, str]] = Counter()
    for m in batch:
        for b in m.brands:
            expected[
                (b, _hour(m.created_at), m.sentiment.label if m.sentiment else "unscored")
            ] += 1
    rows = counts_per_interval(es_client, alias, START, END, HOUR)
    brands = sorted({b for m in batch for b in m.brands})
    # every brand gets every hour, zeros included
    assert len(rows) == len(brands) * 12
    got: Counter[tuple[str, datetime, str]] = Counter()
    for r in rows:
        assert r.total == r.negative + r.neutral + r.positive + r.unscored
        for label in ("negative", "neutral", "positive", "unscored"):
            if getattr(r, label):
                got[(r.brand, r.start, label)] = getattr(r, label)
    assert got == expected
    assert sum(r.unscored for r in rows) == 25


def test_histogram_for_chosen_brands_and_empty_hours(es_client: Elasticsearch, written):
    alias, batch = written
    later = END + timedelta(hours=3)
    rows = counts_per_interval(es_client, alias, START, later, HOUR, brands=["Acme", "Nobody"])
    assert {r.brand for r in rows} == {"Acme"}  # no mention of "Nobody": no rows
    assert [r.start for r in rows] == [START + i * HOUR for i in range(15)]
    assert [r.total for r in rows[-3:]] == [0, 0, 0]
    assert sum(r.total for r in rows) == sum("Acme" in m.brands for m in batch)


def test_negative_counts_over_a_window(es_client: Elasticsearch, written):
    alias, batch = written
    start, end = START + 2 * HOUR, START + 5 * HOUR
    inside = [m for m in batch if "Globex" in m.brands and start <= m.created_at < end]
    got = negative_counts(es_client, alias, "Globex", start, end)
    assert got.total == len(inside) > 0
    assert got.negative == sum(1 for m in inside if m.sentiment and m.sentiment.label == "negative")
    assert 0 < got.negative_share < 1


def test_search_pages_through_every_match_once_in_order(es_client: Elasticsearch, written):
    alias, batch = written
    expected = [
        m
        for m in batch
        if "小米" in m.brands and m.sentiment is not None and m.sentiment.label == "negative"
    ]
    seen: list[Mention] = []
    after = None
    while True:
        page = search_mentions(
            es_client, alias, "小米", START, END,
            sentiment="negative", sort="reach", page_size=37, search_after=after,
        )  # fmt: skip
        assert page.total == len(expected)
        seen += page.mentions
        if page.next_after is None:
            break
        after = page.next_after
    assert sorted(m.id for m in seen) == sorted(m.id for m in expected)
    reach = [m.author_reach or 0 for m in seen]
    assert reach == sorted(reach, reverse=True)
    # documents come back as the same Mention that was written
    by_id = {m.id: m for m in expected}
    assert all(m == by_id[m.id] for m in seen)


def test_search_by_time_is_newest_first(es_client: Elasticsearch, written):
    alias, _ = written
    page = search_mentions(es_client, alias, "Acme", START, END, sort="time", page_size=50)
    times = [m.created_at for m in page.mentions]
    assert len(times) == 50
    assert times == sorted(times, reverse=True)


def test_naive_datetimes_are_refused(es_client: Elasticsearch):
    with pytest.raises(ValueError, match="timezone-aware"):
        negative_counts(es_client, "whatever", "Acme", datetime(2026, 1, 1), END)
