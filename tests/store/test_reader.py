"""store.reader.ElasticsearchMentionReader, and the in-memory stand-in the rule tests use.

The rule tests (tests/alerts/test_rules.py) trust `MemoryMentionReader` to answer as
Elasticsearch does; this checks that on a real node, over the same mentions: counts by
each brand's own sentiment (per-brand results, post labels of older mentions, uncertain
and unscored ones), posts by reach and newest posts, including paging past one page.
and unscored ones), counts per source, and posts by reach (of one sentiment or any),
including paging past one page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from alerts.reader import count_grid
from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import BrandSentiment, Mention
from store.reader import ElasticsearchMentionReader
from store.setup import alias_name, install_templates
from store.synthetic import BRANDS, mentions
from store.writer import BulkWriter
from tests.alerts.memory_reader import MemoryMentionReader

START = datetime(2026, 10, 31, 18, tzinfo=UTC)  # spans a month boundary
END = datetime(2026, 11, 1, 6, tzinfo=UTC)
STEP = timedelta(minutes=30)


def _per_brand(m: Mention, i: int) -> Mention:
    """Name a second brand and score both: one negative, one positive or uncertain."""
    other = BRANDS[(BRANDS.index(m.brands[0]) + 1) % len(BRANDS)]
    verdicts = [
        BrandSentiment(
            brand=m.brands[0],
            label="negative",
            negative=0.8,
            neutral=0.1,
            positive=0.1,
            source="clause",
        ),
        BrandSentiment(
            brand=other,
            label="positive",
            negative=0.1,
            neutral=0.1,
            positive=0.8,
            source="clause",
            uncertain=i % 3 == 0,
        ),
    ]
    return m.model_copy(
        update={"brands": [m.brands[0], other], "brand_sentiments": verdicts, "source_id": f"pb{i}"}
    )


@pytest.fixture(scope="module")
def readers(
    es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig
) -> tuple[ElasticsearchMentionReader, MemoryMentionReader]:
    install_templates(es_client, es_cfg_module)
    batch = list(mentions(1_500, START, END, seed=11))
    batch += [_per_brand(m, i) for i, m in enumerate(batch[:300])]
    batch += [  # scoring lags behind crawling; some authors' reach is unknown
        m.model_copy(update={"sentiment": None, "source_id": f"u{i}"})
        for i, m in enumerate(batch[300:330])
    ]
    batch += [
        m.model_copy(update={"author_reach": None, "source_id": f"r{i}"})
        for i, m in enumerate(batch[330:360])
    ]
    with BulkWriter(es_client, es_cfg_module, refresh=True) as writer:
        report = writer.write(batch)
    assert report.ok, report.summary()
    es = ElasticsearchMentionReader(es_client, alias_name(es_cfg_module.index_prefix))
    return es, MemoryMentionReader(batch)


@pytest.mark.parametrize("brand", BRANDS)
def test_counts_agree(readers, brand):
    es, memory = readers
    nonzero = [c for c in es.counts(brand, START, END, STEP) if c.total]
    assert nonzero, "the synthetic batch names every brand"
    assert nonzero == memory.counts(brand, START, END, STEP)
    assert count_grid(es, brand, START, END, STEP) == count_grid(memory, brand, START, END, STEP)


def test_counts_by_source_agree(readers):
    es, memory = readers
    for brand in BRANDS:
        found = es.counts_by_source(brand, START, END, STEP)
        assert found and found == memory.counts_by_source(brand, START, END, STEP)
    # Every mention of a brand is in exactly one source's count.
    per_source = sum(r.total for r in es.counts_by_source(BRANDS[0], START, END, STEP))
    assert per_source == sum(r.total for r in es.counts(BRANDS[0], START, END, STEP))


@pytest.mark.parametrize("sentiment", ["negative", "neutral", "positive", None])
def test_posts_by_reach_agree_including_past_one_page(readers, sentiment):
    es, memory = readers
    for brand in BRANDS:
        everything = memory.by_reach(brand, START, END, sentiment=sentiment)
        assert [m.id for m in es.by_reach(brand, START, END, sentiment=sentiment)] == [
            m.id for m in everything
        ]
        top = es.by_reach(brand, START, END, sentiment=sentiment, limit=5)
        assert [m.id for m in top] == [m.id for m in everything[:5]]
        bar = 50
        above = es.by_reach(brand, START, END, sentiment=sentiment, min_reach=bar)
        assert [m.id for m in above] == [
            m.id for m in memory.by_reach(brand, START, END, sentiment=sentiment, min_reach=bar)
        ]
        assert all((m.author_reach or 0) >= bar for m in above)
    # Paging is exercised: some brand has more than one page (100) of a sentiment.
    sizes = [len(memory.by_reach(b, START, END, sentiment=sentiment)) for b in BRANDS]
    assert max(sizes) > 100


@pytest.mark.parametrize("sentiment", ["negative", "positive"])
def test_newest_posts_agree_including_past_one_page(readers, es_client, sentiment):
    es, memory = readers
    paged = ElasticsearchMentionReader(es_client, es.index, newest_page=40)
    for brand in BRANDS:
        everything = memory.newest(brand, START, END, sentiment=sentiment, limit=10_000)
        assert len(everything) > 40  # more than one page of the paged reader
        for reader in (es, paged):
            got = reader.newest(brand, START, END, sentiment=sentiment, limit=10_000)
            assert [m.id for m in got] == [m.id for m in everything]
            bounded = reader.newest(brand, START, END, sentiment=sentiment, limit=95)
            assert [m.id for m in bounded] == [m.id for m in everything[:95]]
        times = [m.created_at for m in everything]
        assert times == sorted(times, reverse=True)
        # By the brand's own sentiment: a post negative for one brand is not for the other.
        assert all(
            b.bucket == sentiment
            for m in everything
            for b in m.brand_sentiments
            if b.brand == brand
        )


def test_a_missing_index_reads_as_empty(es_client):
    reader = ElasticsearchMentionReader(es_client, "no-such-mentions-index")
    assert reader.counts("Acme", START, END, STEP) == []
    assert reader.by_reach("Acme", START, END, sentiment="negative") == []
    assert reader.newest("Acme", START, END, sentiment="negative", limit=10) == []
    assert reader.counts_by_source("Acme", START, END, STEP) == []
