"""Share of voice from the hourly counts rollup equals share of voice from raw mentions.

The same mentions -- the hand-counted ones of test_share_of_voice (three brands, a post
naming two with a verdict each, reposts, English, Chinese and no language, three sources,
uncertain, unscored, a mention scored before per-brand sentiment) plus a few hundred
random ones over the three weeks -- are indexed through a writer that keeps the rollup
(`store.rollup.CountsRollup`), on a real node. `rollup_share_of_voice` must give the
very `ShareOfVoice` the raw aggregation gives, for a week and a day, in UTC and in
Asia/Shanghai, and still after late mentions, re-scores and a new repost; where it cannot
(a half-hour zone, duplicates asked for, a period not yet settled, documents written
before the report counts) `share_of_voice` reads raw and says why.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig, parse_config
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from reports.period import Period, iso
from reports.share_of_voice import (
    RollupUnavailable,
    SentimentCounts,
    ShareOfVoice,
    rollup_share_of_voice,
    share_of_voice,
)
from reports.summary import brand_insight
from store.rollup import REPORT_FIELDS, CountsRollup, ReportHour, counts_index_name, doc_id
from store.setup import alias_name, install_templates
from store.writer import BulkWriter
from tests.reports.test_share_of_voice import BRANDS, DAY, START, WEEK, _verdict
from tests.reports.test_share_of_voice import _mentions as hand_counted
from tests.store.conftest import _isolated

LANGUAGES = ("en", "zh", None)
SOURCES = ("reddit", "x", "weibo")
DAYS = [Period(START + DAY, START + 2 * DAY), Period(START + 6 * DAY, START + 7 * DAY)]


def _random(n: int, seed: int) -> list[Mention]:
    """`n` mentions from three weeks before the reported week to the day after it:
    one in four naming two brands with a verdict each, one in ten a repost, some unscored,
    some scored before per-brand sentiment."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        brands = rng.sample(BRANDS, 2) if rng.random() < 0.25 else [rng.choice(BRANDS)]
        when = START - 21 * DAY + timedelta(minutes=rng.randrange(29 * 24 * 60))
        kind = rng.random()
        sentiment, per_brand = None, []
        if kind > 0.1:
            buckets = [rng.choice(("negative", "neutral", "positive", "uncertain")) for _ in brands]
            sentiment = Sentiment(model="m", **_verdict(buckets[0]))
            if kind > 0.2:
                per_brand = [BrandSentiment(brand=b, source="clause", **_verdict(k))
                             for b, k in zip(brands, buckets, strict=True)]  # fmt: skip
        source = rng.choice(SOURCES)
        dup = Mention(source=source, source_id=f"r{i - 1}", source_name=source, created_at=when).id
        out.append(Mention(
            source=source, source_id=f"r{i}", source_name=source, text=f"random {i}",
            language=rng.choice(LANGUAGES), created_at=when, collected_at=when, brands=brands,
            sentiment=sentiment, brand_sentiments=per_brand,
            duplicate_of=dup if i and rng.random() < 0.1 else None,
        ))  # fmt: skip
    return out


def _write(es: Elasticsearch, cfg: ElasticsearchConfig, batch: list[Mention]) -> CountsRollup:
    rollup = CountsRollup(es, cfg.index_prefix)
    with BulkWriter(es, cfg, refresh=True, after_write=rollup.after_write) as writer:
        for i in range(0, len(batch), 200):  # several batches, as the daemon's
            assert writer.write(batch[i : i + 200]).ok
    assert rollup.pending() == 0
    return rollup


@pytest.fixture(scope="module")
def store(es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig) -> tuple[str, str]:
    install_templates(es_client, es_cfg_module)
    _write(es_client, es_cfg_module, hand_counted() + _random(600, seed=3))
    return alias_name(es_cfg_module.index_prefix), counts_index_name(es_cfg_module.index_prefix)


@pytest.fixture
def own_store(es_client: Elasticsearch, tmp_path: Path) -> Iterator[ElasticsearchConfig]:
    """A prefix of the test's own, for tests that change what is indexed."""
    with _isolated(es_client, tmp_path / "spool") as cfg:
        install_templates(es_client, cfg)
        yield cfg


def _same(rolled: ShareOfVoice, raw: ShareOfVoice) -> None:
    assert rolled == raw
    for a, b in zip(rolled.brands, raw.brands, strict=True):  # the splits' order too
        assert (list(a.by_source), list(a.by_language)) == (list(b.by_source), list(b.by_language))


@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Shanghai"])
@pytest.mark.parametrize("period", [WEEK, *DAYS], ids=["week", "day1", "day6"])
def test_the_rollup_gives_the_raw_figures(es_client, store, period, time_zone):
    index, counts = store
    raw = share_of_voice(es_client, index, BRANDS, period, time_zone=time_zone)
    rolled = rollup_share_of_voice(es_client, counts, BRANDS, period, time_zone=time_zone)
    assert raw.focus.counts.mentions and raw.focus.previous.mentions
    if period == WEEK:
        assert raw.focus.counts.unscored and raw.focus.counts.uncertain
        assert len(raw.focus.by_language) == 3 and len(raw.focus.by_source) == 3
    _same(rolled, raw)


def test_the_rollup_leaves_reposts_out(es_client, own_store):
    """The hand-counted mentions alone: c5, Acme's repost of c0, is the only Acme mention
    of its hour; the hour's minute counts (what alerts read) have it, the report counts
    do not, and the week's figures are the hand counts (test_share_of_voice)."""
    _write(es_client, own_store, hand_counted())
    counts = counts_index_name(own_store.index_prefix)
    hour = START + 2 * DAY
    src = es_client.get(index=counts, id=doc_id("Acme", hour))["_source"]
    assert src["total"] == 1
    assert ReportHour.from_source(src).counts == (0, 0, 0, 0, 0)
    acme = rollup_share_of_voice(es_client, counts, BRANDS, WEEK).focus
    assert acme.counts == SentimentCounts(mentions=7, negative=1, neutral=1, positive=3,
                                          uncertain=1)
    assert acme.previous == SentimentCounts(mentions=3, negative=2, positive=1)
    assert [p.counts.mentions for p in acme.trend] == [2, 2, 0, 1, 0, 0, 2]
    assert acme.by_source["x"] == SentimentCounts(mentions=1, uncertain=1)  # c2, not c5


def test_the_report_reads_the_rollup_when_the_config_says_so(es_client, store, es_cfg_module):
    index, counts = store
    searched: list[str] = []
    traced = es_client.options()
    original = traced.search

    def search(**kwargs):
        searched.append(kwargs["index"])
        return original(**kwargs)

    traced.search = search  # which index the real client is asked
    brands = [{"name": "Acme"}, {"name": "Globex", "own": False}, {"name": "Initech", "own": False}]
    for source, expected in (("rollup", [counts]), ("raw", [index])):
        config = parse_config({"brands": brands, "alerts": {"counts_source": source},
                               "elasticsearch": {"index_prefix": es_cfg_module.index_prefix}})  # fmt: skip
        searched.clear()
        insight = brand_insight(traced, config, index, "Acme", WEEK, themes=False,
                                time_zone="Asia/Shanghai", now=WEEK.end + timedelta(hours=1))  # fmt: skip
        assert searched == expected
        _same(insight.share_of_voice,
              share_of_voice(es_client, index, BRANDS, WEEK, time_zone="Asia/Shanghai"))


@pytest.mark.parametrize("period", [WEEK, DAYS[0]], ids=["week", "day"])
def test_a_half_hour_zone_reads_raw_and_says_why(es_client, store, period, caplog):
    index, counts = store
    with pytest.raises(RollupUnavailable, match="Asia/Kolkata"):
        rollup_share_of_voice(es_client, counts, BRANDS, period, time_zone="Asia/Kolkata")
    with caplog.at_level(logging.INFO, logger="reports.share_of_voice"):
        sov = share_of_voice(es_client, index, BRANDS, period, time_zone="Asia/Kolkata",
                             counts_index=counts)  # fmt: skip
    assert sov == share_of_voice(es_client, index, BRANDS, period, time_zone="Asia/Kolkata")
    [record] = caplog.records
    assert record.levelno == logging.INFO and "Asia/Kolkata" in record.getMessage()
    assert "raw mentions" in record.getMessage()


def test_what_the_rollup_cannot_answer_reads_raw(es_client, store, caplog):
    index, counts = store
    cases = {
        "near-duplicates": dict(exclude_duplicates=False),
        "may not have its last hours": dict(settled=WEEK.end - timedelta(minutes=1)),
    }
    for why, kwargs in cases.items():
        with pytest.raises(RollupUnavailable, match=why):
            rollup_share_of_voice(es_client, counts, BRANDS, WEEK, **kwargs)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="reports.share_of_voice"):
            sov = share_of_voice(es_client, index, BRANDS, WEEK, counts_index=counts, **kwargs)
        raw_kwargs = {k: v for k, v in kwargs.items() if k != "settled"}
        assert sov == share_of_voice(es_client, index, BRANDS, WEEK, **raw_kwargs)
        assert [why in r.getMessage() for r in caplog.records] == [True]
    odd = Period(START + timedelta(minutes=30), START + DAY)
    with pytest.raises(RollupUnavailable, match="not whole UTC hours"):
        rollup_share_of_voice(es_client, counts, BRANDS, odd)
    # settled exactly at the end: the rollup answers
    rolled = rollup_share_of_voice(es_client, counts, BRANDS, WEEK, settled=WEEK.end)
    _same(rolled, share_of_voice(es_client, index, BRANDS, WEEK))


def test_late_mentions_and_rescores_change_both_alike(es_client, own_store):
    index = alias_name(own_store.index_prefix)
    counts = counts_index_name(own_store.index_prefix)
    batch = hand_counted() + _random(300, seed=11)
    rollup = _write(es_client, own_store, batch)

    def both(period: Period, time_zone: str) -> ShareOfVoice:
        raw = share_of_voice(es_client, index, BRANDS, period, time_zone=time_zone)
        _same(rollup_share_of_voice(es_client, counts, BRANDS, period, time_zone=time_zone), raw)
        return raw

    before = {(p, z): both(p, z) for p in (WEEK, DAYS[0]) for z in ("UTC", "Asia/Shanghai")}
    by_id = {m.source_id: m for m in batch}
    late = [  # created in hours rolled up long ago
        by_id["c0"].model_copy(update={"source_id": "late0", "language": None}),
        by_id["c3"].model_copy(update={"source_id": "late1", "source": "mastodon",
                                       "created_at": START + DAY + timedelta(minutes=5)}),
    ]  # fmt: skip
    rescored = [
        # c1: Acme positive -> negative, Globex negative -> uncertain
        by_id["c1"].model_copy(update={"brand_sentiments": [
            BrandSentiment(brand="Acme", source="clause", **_verdict("negative")),
            BrandSentiment(brand="Globex", source="clause", **_verdict("uncertain")),
        ]}),
        # c9: unscored, now scored; c2 becomes a repost
        by_id["c9"].model_copy(update={
            "sentiment": Sentiment(model="m", **_verdict("positive")),
            "brand_sentiments": [BrandSentiment(brand="Acme", source="clause", **_verdict("positive"))],
        }),
        by_id["c2"].model_copy(update={"duplicate_of": by_id["c0"].id}),
    ]  # fmt: skip
    with BulkWriter(es_client, own_store, refresh=True, after_write=rollup.after_write) as writer:
        assert writer.write(late).ok and writer.write(rescored).ok
    assert rollup.pending() == 0
    for (period, time_zone), old in before.items():
        new = both(period, time_zone)
        assert new != old
    acme = both(WEEK, "UTC").focus
    # the week was (hand counts) 7 mentions: negative 1, neutral 1, positive 3, uncertain 1;
    # +late0 (negative), +late1 (positive), c1 positive -> negative, c9 now positive, c2 a repost
    old = before[(WEEK, "UTC")].focus.counts
    assert acme.counts.mentions - old.mentions == 1
    assert (acme.counts.negative - old.negative, acme.counts.positive - old.positive) == (2, 1)
    assert acme.counts.uncertain == old.uncertain - 1


def test_documents_written_before_the_report_counts_read_raw_until_rebuilt(
    es_client, own_store, caplog
):
    index = alias_name(own_store.index_prefix)
    counts = counts_index_name(own_store.index_prefix)
    rollup = _write(es_client, own_store, hand_counted())
    # one document as rollup version 1 wrote it: no rollup_version, no report counts
    old_id = doc_id("Globex", START + 4 * DAY)
    src = es_client.get(index=counts, id=old_id)["_source"]
    del src["rollup_version"], src["report_counts"], src["report_splits"]
    es_client.index(index=counts, id=old_id, document=src, refresh=True)
    with pytest.raises(RollupUnavailable, match="rebuild-counts"):
        rollup_share_of_voice(es_client, counts, BRANDS, WEEK)
    with caplog.at_level(logging.INFO, logger="reports.share_of_voice"):
        sov = share_of_voice(es_client, index, BRANDS, WEEK, counts_index=counts)
    raw = share_of_voice(es_client, index, BRANDS, WEEK)
    assert sov == raw and raw.brand("Globex").counts.positive == 1  # c11, the old hour's
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "1 (brand, hour) document(s)" in record.getMessage()
    assert "rebuild-counts" in record.getMessage()
    # outside the old document's span the rollup still answers
    _same(rollup_share_of_voice(es_client, counts, BRANDS, DAYS[0]),
          share_of_voice(es_client, index, BRANDS, DAYS[0]))
    rollup.rebuild()  # what `python scheduler.py rebuild-counts` runs
    _same(rollup_share_of_voice(es_client, counts, BRANDS, WEEK), raw)


def test_documents_of_rollup_version_2_read_raw_until_rebuilt(es_client, own_store, caplog):
    """Version 2 kept the report counts as one JSON string per hour (`report`), which the
    node cannot sum: a span holding such a document reads raw, naming it, until
    `rebuild` rewrites it with numbers (version 3); the string still reads back as the
    same counts (`ReportHour`)."""
    index = alias_name(own_store.index_prefix)
    counts = counts_index_name(own_store.index_prefix)
    rollup = _write(es_client, own_store, hand_counted())
    v2_id = doc_id("Acme", START + DAY)
    src = es_client.get(index=counts, id=v2_id)["_source"]
    now = ReportHour.from_source(src)
    assert now.version == 3 and now.counts[0] > 0 and now.sources and now.languages

    def named(values: dict[str, tuple[int, ...]], field: str) -> list[dict[str, object]]:
        return [{field: k, **dict(zip(REPORT_FIELDS, v, strict=True))} for k, v in values.items()]

    del src["report_counts"], src["report_splits"]
    src["rollup_version"] = 2
    src["report"] = json.dumps({"all": dict(zip(REPORT_FIELDS, now.counts, strict=True)),
                                "sources": named(now.sources, "source"),
                                "languages": named(now.languages, "language")})  # fmt: skip
    es_client.index(index=counts, id=v2_id, document=src, refresh=True)
    was = ReportHour.from_source(es_client.get(index=counts, id=v2_id)["_source"])
    assert (was.version, was.counts, was.sources, was.languages) == (
        2, now.counts, now.sources, now.languages)
    with pytest.raises(RollupUnavailable, match="rebuild-counts"):
        rollup_share_of_voice(es_client, counts, BRANDS, WEEK)
    with caplog.at_level(logging.INFO, logger="reports.share_of_voice"):
        sov = share_of_voice(es_client, index, BRANDS, WEEK, counts_index=counts)
    raw = share_of_voice(es_client, index, BRANDS, WEEK)
    assert sov == raw
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert f"1 (brand, hour) document(s) of {counts} from {iso(START + DAY)} on" in record.getMessage()
    rollup.rebuild()
    assert ReportHour.from_source(es_client.get(index=counts, id=v2_id)["_source"]).version == 3
    _same(rollup_share_of_voice(es_client, counts, BRANDS, WEEK), raw)


def test_no_counts_index_reads_raw(es_client, own_store, caplog):
    index = alias_name(own_store.index_prefix)
    with BulkWriter(es_client, own_store, refresh=True) as writer:  # counts_source: raw
        assert writer.write(hand_counted()).ok
    counts = counts_index_name(own_store.index_prefix)
    with caplog.at_level(logging.INFO, logger="reports.share_of_voice"):
        sov = share_of_voice(es_client, index, BRANDS, WEEK, counts_index=counts)
    assert sov == share_of_voice(es_client, index, BRANDS, WEEK)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and f"no counts index {counts}" in record.getMessage()


def test_trend_steps_across_a_dst_change_equal_the_raw_histogram(es_client, store):
    """Europe/Berlin leaves summer time on 2026-10-25: a 25-hour local day, hours and
    days still on whole UTC hours."""
    index, counts = store
    change = datetime(2026, 10, 24, 22, tzinfo=UTC)  # Sunday 00:00 in Berlin (UTC+2)
    for period in (Period(change, change + timedelta(hours=25)),
                   Period(change - 3 * DAY, change + 4 * DAY + timedelta(hours=1))):
        raw = share_of_voice(es_client, index, BRANDS, period, time_zone="Europe/Berlin")
        _same(rollup_share_of_voice(es_client, counts, BRANDS, period, time_zone="Europe/Berlin"), raw)
