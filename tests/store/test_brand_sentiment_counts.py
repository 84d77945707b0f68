"""Per-brand sentiment and the uncertain band in the index, and the counts read from it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from nlp.brands import queries_for
from nlp.enrich import enrich
from nlp.scorer import SentimentScorer
from store.queries import counts_per_interval, negative_counts, search_mentions
from store.setup import alias_name, install_templates, mappings
from store.writer import BulkWriter

START = datetime(2026, 10, 31, 20, tzinfo=UTC)  # two monthly indices
END = START + timedelta(hours=4)
HOUR = timedelta(hours=1)
BUCKETS = ("negative", "neutral", "positive", "uncertain")


def _probs(label: str) -> dict[str, float]:
    out = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
    out[label] = 0.8
    return out


def _sentiment(bucket: str) -> Sentiment:
    label = "negative" if bucket == "uncertain" else bucket
    return Sentiment(label=label, model="m", confidence=0.4 if bucket == "uncertain" else 0.8,
                     uncertain=bucket == "uncertain", **_probs(label))


def _brand(brand: str, bucket: str, source: str = "clause") -> BrandSentiment:
    fields = _sentiment(bucket).model_dump(exclude={"model"})
    return BrandSentiment(brand=brand, source=source, **fields)


# (hour, brands, post bucket or None for unscored, {brand: bucket} or None for a mention
# scored before per-brand sentiment existed)
ROWS: list[tuple[int, list[str], str | None, dict[str, str] | None]] = [
    (0, ["Acme", "Globex"], "negative", {"Acme": "positive", "Globex": "negative"}),
    (0, ["Acme"], "negative", {"Acme": "negative"}),
    (0, ["Acme"], "uncertain", {"Acme": "uncertain"}),
    (1, ["Globex", "Acme"], "positive", {"Globex": "uncertain", "Acme": "positive"}),
    (1, ["Acme"], "negative", None),  # legacy: the post label counts
    (1, ["Globex"], None, None),  # unscored
    (2, ["Acme", "Globex"], "neutral", {"Acme": "negative", "Globex": "neutral"}),
    (2, ["Globex"], "negative", {"Globex": "negative"}),
    (3, ["Acme", "Globex"], "negative", {"Acme": "negative", "Globex": "negative"}),
    (3, ["Globex"], "neutral", None),
]


def _mentions() -> list[Mention]:
    out = []
    for i, (hour, brands, post, per_brand) in enumerate(ROWS):
        sentiment = _sentiment(post) if post else None
        out.append(Mention(
            source="test", source_id=f"b{i}", source_name="t", text=f"post {i}", brands=brands,
            created_at=START + hour * HOUR + timedelta(minutes=10 + i), collected_at=END,
            sentiment=sentiment,
            brand_sentiments=[_brand(b, per_brand[b]) for b in brands] if per_brand else [],
        ))  # fmt: skip
    return out


def _hand_counts(mentions: list[Mention]) -> Counter[tuple[str, datetime, str]]:
    """(brand, hour, bucket) counted the way the issue defines it."""
    counts: Counter[tuple[str, datetime, str]] = Counter()
    for m in mentions:
        hour = m.created_at.replace(minute=0, second=0, microsecond=0)
        own = {b.brand: b.bucket for b in m.brand_sentiments}
        for brand in m.brands:
            if m.sentiment is None:
                bucket = "unscored"
            elif own:
                bucket = own[brand]
            else:
                bucket = m.sentiment.label  # before per-brand sentiment and confidences
            counts[(brand, hour, bucket)] += 1
    return counts


@pytest.fixture(scope="module")
def written(es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig) -> str:
    install_templates(es_client, es_cfg_module)
    with BulkWriter(es_client, es_cfg_module, refresh=True) as writer:
        report = writer.write(_mentions())
    assert report.ok and report.indexed == len(ROWS), report.summary()
    return alias_name(es_cfg_module.index_prefix)


def _got(rows) -> Counter[tuple[str, datetime, str]]:
    got: Counter[tuple[str, datetime, str]] = Counter()
    for r in rows:
        assert r.total == r.negative + r.neutral + r.positive + r.uncertain + r.unscored
        for bucket in (*BUCKETS, "unscored"):
            if getattr(r, bucket):
                got[(r.brand, r.start, bucket)] = getattr(r, bucket)
    return got


def test_counts_per_brand_equal_hand_counts(es_client: Elasticsearch, written: str) -> None:
    expected = _hand_counts(_mentions())
    assert _got(counts_per_interval(es_client, written, START, END, HOUR)) == expected
    for brand in ("Acme", "Globex"):
        rows = counts_per_interval(es_client, written, START, END, HOUR, brands=[brand])
        assert _got(rows) == {k: v for k, v in expected.items() if k[0] == brand}
    # The post that praises Acme and attacks Globex is negative for Globex only.
    first = START.replace(minute=0)
    assert expected[("Acme", first, "negative")] == 1  # not 2: row 0 is positive for Acme
    assert expected[("Acme", first, "uncertain")] == 1


def test_negative_counts_and_negative_search_per_brand(es_client: Elasticsearch,
                                                      written: str) -> None:
    mentions = _mentions()
    for brand in ("Acme", "Globex"):
        expected = {
            m.id for m in mentions if brand in m.brands and m.sentiment is not None and (
                any(b.brand == brand and b.bucket == "negative" for b in m.brand_sentiments)
                or (not m.brand_sentiments and m.sentiment.label == "negative"))
        }  # fmt: skip
        got = negative_counts(es_client, written, brand, START, END)
        assert got.negative == len(expected)
        assert got.total == sum(brand in m.brands for m in mentions)
        page = search_mentions(es_client, written, brand, START, END, sentiment="negative")
        assert {m.id for m in page.mentions} == expected
        assert page.total == len(expected)
    # uncertain results are never negative: neither Acme's row 2 nor Globex's row 3
    assert negative_counts(es_client, written, "Acme", START, END).negative == 4
    assert negative_counts(es_client, written, "Globex", START, END).negative == 3


def test_nested_field_answers_exact_per_brand_questions(es_client: Elasticsearch,
                                                        written: str) -> None:
    # Acme negative with a confidence of at least 0.5, judged on its own clauses
    query = {"nested": {"path": "brand_sentiments", "query": {"bool": {"filter": [
        {"term": {"brand_sentiments.brand": "Acme"}},
        {"term": {"brand_sentiments.label": "negative"}},
        {"term": {"brand_sentiments.uncertain": False}},
        {"range": {"brand_sentiments.confidence": {"gte": 0.5}}},
    ]}}}}  # fmt: skip
    hits = es_client.search(index=written, query=query, size=50)["hits"]["hits"]
    assert sorted(h["_source"]["source_id"] for h in hits) == ["b1", "b6", "b8"]
    # flat, the same question is one term
    flat = es_client.count(index=written, query={"term": {"brand_sentiment_keys": "Acme|negative"}})
    assert flat["count"] == 3
    # documents come back as the Mention written
    by_id = {m.id: m for m in _mentions()}
    for h in hits:
        assert Mention.from_document(h["_source"]) == by_id[h["_id"]]


def test_existing_monthly_indices_get_the_new_fields(es_client: Elasticsearch,
                                                     es_cfg: ElasticsearchConfig) -> None:
    # An index made under the first layout (no confidence, no per-brand sentiment).
    old = mappings()
    for field in ("sentiment_bucket", "brand_sentiments", "brand_sentiment_keys"):
        del old["properties"][field]
    for field in ("confidence", "uncertain"):
        del old["properties"]["sentiment"]["properties"][field]
    index = f"{alias_name(es_cfg.index_prefix)}-2026.10"
    es_client.indices.create(index=index, mappings=old)
    install_templates(es_client, es_cfg)
    props = es_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert props["brand_sentiments"]["type"] == "nested"
    assert props["sentiment"]["properties"]["confidence"]["type"] == "float"
    assert props["brand_sentiment_keys"]["type"] == "keyword"
    install_templates(es_client, es_cfg)  # idempotent
    (m,) = [m for m in _mentions() if m.source_id == "b0"]
    with BulkWriter(es_client, es_cfg, refresh=True) as writer:
        report = writer.write([m])
    assert report.ok, report.summary()
    got = es_client.get(index=index, id=m.id)["_source"]
    assert got == m.to_document()


@pytest.fixture(scope="module")
def real_scorer() -> SentimentScorer:
    return SentimentScorer.from_pretrained("default", batch_size=16)


def test_counts_from_the_real_model_equal_hand_counts(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig, real_scorer: SentimentScorer
) -> None:
    texts = [
        ("I love my new Acme phone but Globex is a terrible, useless carrier", ["Acme", "Globex"]),
        ("Globex的手机质量太差，用了两天就坏了。Acme的手机非常好用，很满意！", ["Globex", "Acme"]),
        ("Acme lost my parcel and support hung up on me. Never again.", ["Acme"]),
        ("Globex support was quick and friendly, great experience", ["Globex"]),
        ("Acme and Globex both announced prices today", ["Acme", "Globex"]),
        ("换了Acme之后好多了，体验很棒，Globex的客服太差了", ["Acme", "Globex"]),
    ]
    mentions = [
        Mention(source="test", source_id=f"r{i}", source_name="t", text=text, brands=brands,
                created_at=START + timedelta(minutes=5 * i))
        for i, (text, brands) in enumerate(texts)
    ]
    enrich(mentions, real_scorer, brands=queries_for(["Acme", "Globex"], {}))
    install_templates(es_client, es_cfg)
    with BulkWriter(es_client, es_cfg, refresh=True) as writer:
        assert writer.write(mentions).ok
    alias = alias_name(es_cfg.index_prefix)
    expected = _hand_counts(mentions)
    assert _got(counts_per_interval(es_client, alias, START, END, HOUR)) == expected
    globex = negative_counts(es_client, alias, "Globex", START, END)
    # the clear cases: Globex attacked in posts 0, 1 and 5, Acme in post 2
    assert globex.negative >= 3
    negative_ids = {m.id for m in search_mentions(es_client, alias, "Globex", START, END,
                                                  sentiment="negative").mentions}
    assert {mentions[0].id, mentions[1].id, mentions[5].id} <= negative_ids
    acme_negative = {m.id for m in search_mentions(es_client, alias, "Acme", START, END,
                                                   sentiment="negative").mentions}
    assert mentions[2].id in acme_negative
    assert not {mentions[0].id, mentions[1].id} & acme_negative
