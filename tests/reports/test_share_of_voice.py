"""Share of voice, sentiment and trend from the real node equal hand-counted figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig, parse_config
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from reports.period import Period
from reports.share_of_voice import SentimentCounts, competitive_set, share_of_voice
from store.setup import alias_name, install_templates
from store.writer import BulkWriter

START = datetime(2026, 11, 9, tzinfo=UTC)  # a Monday; the previous week is in the same month
WEEK = Period(START, START + timedelta(days=7))
DAY = timedelta(days=1)
BRANDS = ("Acme", "Globex", "Initech")


def _verdict(bucket: str) -> dict:
    label = "negative" if bucket == "uncertain" else bucket
    probs = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
    probs[label] = 0.8
    return {"label": label, "confidence": 0.4 if bucket == "uncertain" else 0.8,
            "uncertain": bucket == "uncertain", **probs}


# (id, when, brands, {brand: bucket} (None: unscored; "legacy:<label>": scored before
# per-brand sentiment), source, language, duplicate_of)
ROWS = [
    # the reported week
    ("c0", START + timedelta(hours=3), ["Acme"], {"Acme": "negative"}, "reddit", "en", None),
    ("c1", START + timedelta(hours=5), ["Acme", "Globex"],
     {"Acme": "positive", "Globex": "negative"}, "reddit", "en", None),
    ("c2", START + DAY, ["Acme"], {"Acme": "uncertain"}, "x", "en", None),
    ("c3", START + DAY + timedelta(hours=9), ["Acme"], {"Acme": "positive"}, "weibo", "zh", None),
    ("c4", START + 2 * DAY, ["Globex"], {"Globex": "neutral"}, "x", "en", None),
    ("c5", START + 2 * DAY, ["Acme"], {"Acme": "negative"}, "x", "en", "c0"),  # a repost
    ("c6", START + 3 * DAY, ["Acme"], {"Acme": "positive"}, "reddit", None, None),
    ("c7", START + 3 * DAY, ["Initech"], {"Initech": "positive"}, "reddit", "en", None),
    ("c8", START + 7 * DAY - timedelta(minutes=1), ["Acme", "Initech"],
     {"Acme": "neutral", "Initech": "negative"}, "weibo", "zh", None),
    ("c9", START + 6 * DAY, ["Acme"], None, "reddit", "en", None),
    ("c10", START + 7 * DAY, ["Acme"], {"Acme": "negative"}, "reddit", "en", None),  # = end
    ("c11", START + 4 * DAY, ["Globex"], "legacy:positive", "x", "en", None),
    # the week before
    ("p0", START - 7 * DAY, ["Acme"], {"Acme": "negative"}, "reddit", "en", None),
    ("p1", START - 3 * DAY, ["Acme"], {"Acme": "positive"}, "reddit", "en", None),
    ("p2", START - 3 * DAY, ["Globex"], {"Globex": "negative"}, "x", "en", None),
    ("p3", START - DAY, ["Globex", "Acme"], {"Globex": "positive", "Acme": "negative"},
     "reddit", "en", None),
    ("p4", START - 2 * DAY, ["Acme"], {"Acme": "negative"}, "x", "en", "p0"),  # a repost
    ("p5", START - 8 * DAY, ["Acme"], {"Acme": "negative"}, "x", "en", None),  # too early
]


def _mentions() -> list[Mention]:
    out = []
    for sid, when, brands, per_brand, source, language, dup in ROWS:
        sentiment = brand_sentiments = None
        if isinstance(per_brand, dict):
            post = next(iter(per_brand.values()))
            sentiment = Sentiment(model="m", **_verdict(post))
            brand_sentiments = [BrandSentiment(brand=b, source="clause", **_verdict(per_brand[b]))
                                for b in brands]
        elif isinstance(per_brand, str):
            sentiment = Sentiment(model="m", **_verdict(per_brand.split(":")[1]))
        out.append(Mention(
            source=source, source_id=sid, source_name=source, text=f"post {sid}",
            language=language, created_at=when, collected_at=when, brands=brands,
            sentiment=sentiment, brand_sentiments=brand_sentiments or [],
            duplicate_of=Mention(source=source, source_id=dup, source_name=source,
                                 created_at=when).id if dup else None,
        ))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def index(es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig) -> str:
    install_templates(es_client, es_cfg_module)
    with BulkWriter(es_client, es_cfg_module, refresh=True) as writer:
        report = writer.write(_mentions())
    assert report.ok and report.indexed == len(ROWS), report.summary()
    return alias_name(es_cfg_module.index_prefix)


def test_week_figures_equal_hand_counts(es_client: Elasticsearch, index: str) -> None:
    sov = share_of_voice(es_client, index, BRANDS, WEEK)
    assert sov.trend_interval == "day" and sov.exclude_duplicates
    acme, globex, initech = sov.brands
    # Acme: c0 c1 c2 c3 c6 c8 c9 (c5 is a repost, c10 is at the end, exclusive)
    assert acme.counts == SentimentCounts(mentions=7, negative=1, neutral=1, positive=3,
                                          uncertain=1)
    assert acme.counts.unscored == 1  # c9
    # c1 attacks Globex and praises Acme; c11 was scored before per-brand sentiment
    assert globex.counts == SentimentCounts(mentions=3, negative=1, neutral=1, positive=1)
    assert initech.counts == SentimentCounts(mentions=2, negative=1, positive=1)
    assert sov.total_mentions == 12
    assert acme.share_of_voice == pytest.approx(7 / 12)
    assert globex.share_of_voice == pytest.approx(3 / 12)
    assert initech.share_of_voice == pytest.approx(2 / 12)
    assert acme.counts.net_sentiment == pytest.approx((3 - 1) / 5)
    assert acme.counts.share("negative") == pytest.approx(1 / 5)
    assert acme.counts.share("uncertain") == pytest.approx(1 / 6)
    # the week before: p0 p1 p3 for Acme (p4 a repost, p5 earlier), p2 p3 for Globex
    assert acme.previous == SentimentCounts(mentions=3, negative=2, positive=1)
    assert globex.previous == SentimentCounts(mentions=2, negative=1, positive=1)
    assert acme.previous_share_of_voice == pytest.approx(3 / 5)
    assert acme.share_of_voice_change == pytest.approx(7 / 12 - 3 / 5)
    assert acme.mentions_change == pytest.approx(7 / 3 - 1)
    assert acme.net_sentiment_change == pytest.approx(0.4 - (1 - 2) / 3)
    assert initech.mentions_change is None  # nothing the week before
    # split by source and by language (no language: "unknown")
    assert acme.by_source == {
        "reddit": SentimentCounts(mentions=4, negative=1, positive=2),  # c0 c1 c6 c9
        "weibo": SentimentCounts(mentions=2, neutral=1, positive=1),  # c3 c8
        "x": SentimentCounts(mentions=1, uncertain=1),  # c2
    }
    assert acme.by_language == {
        "en": SentimentCounts(mentions=4, negative=1, positive=1, uncertain=1),
        "zh": SentimentCounts(mentions=2, neutral=1, positive=1),
        "unknown": SentimentCounts(mentions=1, positive=1),
    }
    # one point per day, quiet days as zeros
    assert [p.start for p in acme.trend] == [START + i * DAY for i in range(7)]
    assert [p.counts.mentions for p in acme.trend] == [2, 2, 0, 1, 0, 0, 2]
    assert acme.trend[0].counts == SentimentCounts(mentions=2, negative=1, positive=1)
    assert acme.trend[6].counts == SentimentCounts(mentions=2, neutral=1)  # c8 and c9


def test_duplicates_count_when_asked(es_client: Elasticsearch, index: str) -> None:
    sov = share_of_voice(es_client, index, BRANDS, WEEK, exclude_duplicates=False)
    acme = sov.focus
    assert acme.counts == SentimentCounts(mentions=8, negative=2, neutral=1, positive=3,
                                          uncertain=1)
    assert acme.previous == SentimentCounts(mentions=4, negative=3, positive=1)
    assert acme.share_of_voice == pytest.approx(8 / 13)
    assert [p.counts.mentions for p in acme.trend] == [2, 2, 1, 1, 0, 0, 2]


def test_short_periods_trend_by_hour(es_client: Elasticsearch, index: str) -> None:
    day = Period(START, START + DAY)
    sov = share_of_voice(es_client, index, ["Globex", "Acme"], day)
    assert sov.trend_interval == "hour"
    globex, acme = sov.brands
    assert len(acme.trend) == 24
    assert {p.start.hour: p.counts.mentions for p in acme.trend if p.counts.mentions} == {3: 1, 5: 1}
    assert globex.counts == SentimentCounts(mentions=1, negative=1)
    assert globex.share_of_voice == pytest.approx(1 / 3)
    # the day before: p3 only
    assert globex.previous == SentimentCounts(mentions=1, positive=1)
    assert acme.previous == SentimentCounts(mentions=1, negative=1)


def test_one_request_per_report(es_client: Elasticsearch, index: str) -> None:
    calls = []
    traced = es_client.options()
    original = traced.search

    def search(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    traced.search = search  # count the requests of the real client
    share_of_voice(traced, index, BRANDS, WEEK)
    assert len(calls) == 1 and calls[0]["size"] == 0


def test_competitors_are_the_brands_not_our_own() -> None:
    config = parse_config({"brands": [
        {"name": "Acme"}, {"name": "Globex", "own": False}, {"name": "Hooli"},
        {"name": "Initech", "own": False},
    ]})  # fmt: skip
    assert competitive_set(config, "Acme") == ("Acme", "Globex", "Initech")
    assert competitive_set(config, "Hooli") == ("Hooli", "Globex", "Initech")
    with pytest.raises(KeyError):
        competitive_set(config, "Nope")


def test_trend_days_in_a_named_time_zone(es_client: Elasticsearch, index: str) -> None:
    # Shanghai is UTC+8: the week from Monday 00:00 UTC touches 8 Shanghai days
    sov = share_of_voice(es_client, index, BRANDS, WEEK, time_zone="Asia/Shanghai")
    acme = sov.focus
    assert [p.start for p in acme.trend] == [START - timedelta(hours=8) + i * DAY for i in range(8)]
    assert sum(p.counts.mentions for p in acme.trend) == acme.counts.mentions == 7
    # c3 (Tuesday 09:00 UTC) is on Tuesday 17:00 in Shanghai; c8 (Sunday 23:59 UTC) on Monday
    assert [p.counts.mentions for p in acme.trend] == [2, 2, 0, 1, 0, 0, 1, 1]
