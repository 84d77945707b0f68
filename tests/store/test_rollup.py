"""store.rollup (the hourly counts index) and store.reader.RollupMentionReader, on a real node.

The rollup reader must answer `counts` and `counts_by_source` exactly as the raw
reader does over the same mentions: per-brand sentiment, post labels of older
mentions, uncertain and unscored ones, several sources, a month boundary; and keep
doing so after late mentions (created in hours rolled up long ago) and re-scores
(same ids, another verdict), which only recompute their hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from store.reader import ElasticsearchMentionReader, RollupMentionReader
from store.rollup import HOUR, CountsRollup, HourCounts, counts_index_name, doc_id, floor_hour
from store.setup import alias_name, install_templates
from store.synthetic import BRANDS, mentions
from store.writer import BulkWriter

START = datetime(2026, 10, 31, 18, tzinfo=UTC)  # spans a month boundary
END = datetime(2026, 11, 1, 6, tzinfo=UTC)
LATE_HOUR = datetime(2026, 10, 31, 20, tzinfo=UTC)
RESCORED_HOURS = {datetime(2026, 11, 1, 1, tzinfo=UTC), datetime(2026, 11, 1, 2, tzinfo=UTC)}


class Clock:
    """The rollup's clock: `rolled_at`."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 7, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _per_brand(m: Mention, i: int) -> Mention:
    """A second brand, each with its own verdict: negative, and positive or uncertain."""
    other = BRANDS[(BRANDS.index(m.brands[0]) + 1) % len(BRANDS)]
    verdicts = [
        BrandSentiment(brand=m.brands[0], label="negative", negative=0.8, neutral=0.1,
                       positive=0.1, source="clause"),
        BrandSentiment(brand=other, label="positive", negative=0.1, neutral=0.1, positive=0.8,
                       source="clause", uncertain=i % 3 == 0),
    ]  # fmt: skip
    return m.model_copy(
        update={"brands": [m.brands[0], other], "brand_sentiments": verdicts, "source_id": f"pb{i}"}
    )


def _seed() -> list[Mention]:
    batch = list(mentions(1_200, START, END, seed=13))
    batch += [_per_brand(m, i) for i, m in enumerate(batch[:250])]
    batch += [  # scoring lags behind crawling
        m.model_copy(update={"sentiment": None, "source_id": f"u{i}"})
        for i, m in enumerate(batch[250:290])
    ]
    return batch


@pytest.fixture(scope="module")
def store(es_client: Elasticsearch, es_cfg_module: ElasticsearchConfig):
    """The seeded history written in batches through a writer that keeps the rollup,
    then late mentions, then a re-score of some older ones."""
    install_templates(es_client, es_cfg_module)
    clock = Clock()
    rollup = CountsRollup(es_client, es_cfg_module.index_prefix, clock=clock)
    batch = _seed()
    with BulkWriter(es_client, es_cfg_module, after_write=rollup.after_write) as writer:
        for i in range(0, len(batch), 300):  # several indexing batches, as the daemon's
            assert writer.write(batch[i : i + 300]).ok
        before_late = {
            h.hour: h.rolled_at for h in _docs(es_client, es_cfg_module.index_prefix, "Acme")
        }
        late = [
            m.model_copy(update={"source_id": f"late{i}", "created_at": LATE_HOUR + timedelta(minutes=7 * i)})
            for i, m in enumerate(batch[:8])
        ]
        assert writer.write(late).ok
        rescored = [
            m.model_copy(update={"sentiment": Sentiment(label="negative", negative=0.9, neutral=0.05,
                                                         positive=0.05, model="rescore")})
            for m in batch[250:290] if floor_hour(m.created_at) in RESCORED_HOURS
        ]  # fmt: skip  # unscored ones, now scored
        rescored += [
            m.model_copy(update={"brand_sentiments": [
                v.model_copy(update={"label": "neutral", "uncertain": False}) for v in m.brand_sentiments
            ]})
            for m in batch[1_200:1_450] if floor_hour(m.created_at) in RESCORED_HOURS
        ]  # fmt: skip  # per-brand verdicts changed
        assert len(rescored) > 20
        assert writer.write(rescored).ok
    raw = ElasticsearchMentionReader(es_client, alias_name(es_cfg_module.index_prefix))
    rolled = RollupMentionReader(es_client, raw.index, prefix=es_cfg_module.index_prefix)
    hours = {floor_hour(m.created_at) for m in late + rescored}
    return raw, rolled, rollup, before_late, hours


def _docs(es: Elasticsearch, prefix: str, brand: str) -> list[HourCounts]:
    es.indices.refresh(index=counts_index_name(prefix))
    resp = es.search(index=counts_index_name(prefix), query={"term": {"brand": brand}}, size=1000)
    return [HourCounts.from_source(h["_source"]) for h in resp["hits"]["hits"]]


@pytest.mark.parametrize("brand", BRANDS)
@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        (START, END, timedelta(minutes=5)),  # the spike rules' default interval
        (START, END, timedelta(hours=1)),
        (START + timedelta(minutes=25), END - timedelta(minutes=35), timedelta(minutes=5)),
        (START - timedelta(hours=18), END + timedelta(hours=18), timedelta(days=1)),  # share of voice
        (START + timedelta(minutes=20), END, timedelta(minutes=7)),  # any whole-minute step
    ],
)
def test_rollup_counts_equal_the_raw_counts(store, brand, start, end, step):
    raw, rolled, *_ = store
    expected = raw.counts(brand, start, end, step)
    assert any(c.total for c in expected)
    assert rolled.counts(brand, start, end, step) == expected


@pytest.mark.parametrize("brand", BRANDS)
def test_rollup_counts_by_source_equal_the_raw_ones(store, brand):
    raw, rolled, *_ = store
    for step in (timedelta(minutes=5), timedelta(hours=1)):
        expected = raw.counts_by_source(brand, START, END, step)
        assert expected and rolled.counts_by_source(brand, START, END, step) == expected


def test_late_and_rescored_mentions_recompute_only_their_hours(store, es_client, es_cfg_module):
    raw, _, rollup, before_late, touched = store
    after = {h.hour: h.rolled_at for h in _docs(es_client, es_cfg_module.index_prefix, "Acme")}
    assert after.keys() == before_late.keys()
    assert after[LATE_HOUR] > before_late[LATE_HOUR]
    # hours no late or re-scored mention fell in were not recomputed again
    untouched = [h for h in after if h not in touched]
    assert untouched and all(after[h] == before_late[h] for h in untouched)
    assert rollup.pending() == 0
    # the late hour counts the late mentions: hour totals equal the raw count
    [hour] = raw.counts("Acme", LATE_HOUR, LATE_HOUR + timedelta(hours=1), timedelta(hours=1))
    doc = next(d for d in _docs(es_client, es_cfg_module.index_prefix, "Acme") if d.hour == LATE_HOUR)
    assert sum(c[0] for c in doc.minutes.values()) == hour.total


def test_a_recompute_again_is_idempotent(store, es_client, es_cfg_module):
    _, _, rollup, *_ = store
    prefix = es_cfg_module.index_prefix
    before = {(d.brand, d.hour): d for b in BRANDS for d in _docs(es_client, prefix, b)}
    # The same recompute again, later: the same counts, a newer rolled_at.
    rollup.recompute([LATE_HOUR])
    rollup.recompute([LATE_HOUR])
    again = {(d.brand, d.hour): d for b in BRANDS for d in _docs(es_client, prefix, b)}
    assert again.keys() == before.keys()
    for key, d in again.items():
        assert (d.minutes, d.sources) == (before[key].minutes, before[key].sources)
        assert d.rolled_at >= before[key].rolled_at
    assert es_client.exists(index=counts_index_name(prefix), id=doc_id("Acme", LATE_HOUR))
    assert rollup.pending() == 0


SKEW_HOUR = datetime(2026, 3, 1, 13, tzinfo=UTC)


def _acme(n: int, seed: int, id_prefix: str) -> list[Mention]:
    return list(mentions(n, SKEW_HOUR, SKEW_HOUR + timedelta(minutes=50), seed=seed,
                         brands=("Acme",), id_prefix=id_prefix))  # fmt: skip


def _acme_total(es: Elasticsearch, prefix: str) -> int:
    src = es.get(index=counts_index_name(prefix), id=doc_id("Acme", SKEW_HOUR))["_source"]
    return int(src["total"])


def test_a_recompute_whose_clock_is_behind_but_ran_later_lands(es_client, es_cfg):
    """Two writers (scorer workers on two hosts), the second's clock an hour behind:
    its recompute runs after more mentions were acknowledged, so it must land (a clock
    version dropped it as older and the hour kept missing those mentions)."""
    install_templates(es_client, es_cfg)
    prefix = es_cfg.index_prefix
    ahead = CountsRollup(es_client, prefix, clock=lambda: datetime(2026, 3, 1, 15, tzinfo=UTC))
    behind = CountsRollup(es_client, prefix, clock=lambda: datetime(2026, 3, 1, 14, tzinfo=UTC))
    with BulkWriter(es_client, es_cfg, after_write=ahead.after_write) as writer:
        assert writer.write(_acme(3, 1, "a")).ok
    assert _acme_total(es_client, prefix) == 3
    with BulkWriter(es_client, es_cfg, after_write=behind.after_write) as writer:
        assert writer.write(_acme(4, 2, "b")).ok
    assert (ahead.pending(), behind.pending()) == (0, 0)
    assert _acme_total(es_client, prefix) == 7
    [doc] = _docs(es_client, prefix, "Acme")
    assert doc.rolled_at == datetime(2026, 3, 1, 14, tzinfo=UTC)  # the clock that ran later


def test_a_recompute_overtaken_between_its_aggregation_and_its_write_redoes_it(es_client, es_cfg):
    """X reads the hour's document and aggregates; meanwhile a batch is written and Y
    (clock behind X's) recomputes the hour and lands; then X writes: its document
    changed since X read it, so X's write conflicts and X recomputes the hour again,
    which counts the batch too. Clocks decide nothing: X's newer clock must not make
    its older aggregation win."""
    install_templates(es_client, es_cfg)
    prefix = es_cfg.index_prefix
    y = CountsRollup(es_client, prefix, clock=lambda: datetime(2026, 3, 1, 14, tzinfo=UTC))
    rounds: list[list[datetime]] = []

    def interleave(hours: list[datetime]) -> None:
        rounds.append(hours)
        if len(rounds) == 1:  # between X's first aggregation and its write
            with BulkWriter(es_client, es_cfg, after_write=y.after_write) as writer:
                assert writer.write(_acme(4, 2, "b")).ok
            assert y.pending() == 0 and _acme_total(es_client, prefix) == 7

    x = CountsRollup(es_client, prefix, clock=lambda: datetime(2026, 3, 1, 15, tzinfo=UTC),
                     before_write=interleave)  # fmt: skip
    with BulkWriter(es_client, es_cfg) as writer:  # written, not yet recomputed
        assert writer.write(_acme(3, 1, "a")).ok
    y.recompute([SKEW_HOUR])  # the document exists: X's write is conditional on its seq_no
    assert _acme_total(es_client, prefix) == 3
    assert x.recompute([SKEW_HOUR]) == 1
    assert _acme_total(es_client, prefix) == 7
    assert rounds == [[SKEW_HOUR], [SKEW_HOUR]]  # conflicted once, redone once
    assert x.pending() == 0
    raw = ElasticsearchMentionReader(es_client, alias_name(prefix))
    rolled = RollupMentionReader(es_client, raw.index, prefix=prefix, incremental=False)
    span = (SKEW_HOUR - HOUR, SKEW_HOUR + 2 * HOUR, timedelta(minutes=5))
    assert rolled.counts("Acme", *span) == raw.counts("Acme", *span)


def test_an_hour_still_conflicting_after_the_rounds_stays_pending(es_client, es_cfg, caplog):
    """Another writer that writes the hour's document before every write of X: X gives
    up after `_ROUNDS` rounds with one WARNING, keeps the hour pending, and recomputes
    it with its next batch."""
    from store.rollup import _ROUNDS

    install_templates(es_client, es_cfg)
    prefix = es_cfg.index_prefix
    y = CountsRollup(es_client, prefix)
    busy = [True]

    def overtake(hours: list[datetime]) -> None:
        if busy[0]:
            y.recompute(hours)

    x = CountsRollup(es_client, prefix, before_write=overtake)
    with BulkWriter(es_client, es_cfg) as writer:
        assert writer.write(_acme(3, 1, "a")).ok
    y.recompute([SKEW_HOUR])
    seq_no = es_client.get(index=counts_index_name(prefix), id=doc_id("Acme", SKEW_HOUR))["_seq_no"]
    with caplog.at_level("WARNING", logger="store.rollup"):
        x.after_write([SKEW_HOUR])
    assert x.pending() == 1
    warned = [r for r in caplog.records if r.name == "store.rollup"]
    assert len(warned) == 1 and f"after {_ROUNDS} rounds" in warned[0].getMessage()
    after = es_client.get(index=counts_index_name(prefix), id=doc_id("Acme", SKEW_HOUR))["_seq_no"]
    assert after == seq_no + _ROUNDS  # Y's writes only: every one of X's conflicted
    busy[0] = False
    with BulkWriter(es_client, es_cfg, after_write=x.after_write) as writer:
        assert writer.write(_acme(4, 2, "b")).ok
    assert x.pending() == 0
    assert _acme_total(es_client, prefix) == 7


def test_a_document_written_with_a_clock_version_is_recomputed(es_client, es_cfg):
    """After the upgrade, documents written before (external version = the writer's
    clock in ms, far above any seq_no-era version) are overwritten as any other."""
    install_templates(es_client, es_cfg)
    prefix = es_cfg.index_prefix
    with BulkWriter(es_client, es_cfg) as writer:
        assert writer.write(_acme(3, 1, "a")).ok
    CountsRollup(es_client, prefix).recompute([SKEW_HOUR])
    index, id_ = counts_index_name(prefix), doc_id("Acme", SKEW_HOUR)
    src = es_client.get(index=index, id=id_)["_source"]
    es_client.index(index=index, id=id_, document={**src, "total": 0}, version=1_796_000_000_000,
                    version_type="external_gte", refresh=True)  # fmt: skip
    with BulkWriter(es_client, es_cfg, after_write=CountsRollup(es_client, prefix).after_write) as writer:
        assert writer.write(_acme(4, 2, "b")).ok
    assert _acme_total(es_client, prefix) == 7


def test_a_brand_gone_from_an_hour_gets_zeros(es_client, es_cfg):
    install_templates(es_client, es_cfg)
    rollup = CountsRollup(es_client, es_cfg.index_prefix)
    hour = datetime(2026, 3, 1, 13, tzinfo=UTC)
    [m] = list(mentions(1, hour, hour + timedelta(minutes=10), brands=("Acme",)))
    with BulkWriter(es_client, es_cfg, after_write=rollup.after_write) as writer:
        assert writer.write([m]).ok
        assert [d.brand for d in _docs(es_client, es_cfg.index_prefix, "Acme")] == ["Acme"]
        # the same mention (same id) re-crawled naming another brand
        assert writer.write([m.model_copy(update={"brands": ["Globex"]})]).ok
    [gone] = _docs(es_client, es_cfg.index_prefix, "Acme")  # zeros, not deleted
    assert (gone.hour, gone.minutes, gone.sources) == (hour, {}, {})
    assert [d.hour for d in _docs(es_client, es_cfg.index_prefix, "Globex")] == [hour]


def test_rebuild_recreates_the_index_from_the_mentions(es_client, es_cfg):
    install_templates(es_client, es_cfg)
    batch = list(mentions(200, START, END, seed=5))
    with BulkWriter(es_client, es_cfg) as writer:  # written without the rollup
        assert writer.write(batch).ok
    raw = ElasticsearchMentionReader(es_client, alias_name(es_cfg.index_prefix))
    rolled = RollupMentionReader(es_client, raw.index, prefix=es_cfg.index_prefix)
    step = timedelta(minutes=5)
    # no counts index yet: the rollup reader reads raw
    assert rolled.counts("Acme", START, END, step) == raw.counts("Acme", START, END, step)
    n = CountsRollup(es_client, es_cfg.index_prefix).rebuild()
    assert n == len({(b, floor_hour(m.created_at)) for m in batch for b in m.brands})
    assert rolled.counts("Acme", START, END, step) == raw.counts("Acme", START, END, step)


def test_a_missing_mentions_index_reads_as_empty(es_client, es_cfg):
    install_templates(es_client, es_cfg)
    rollup = CountsRollup(es_client, es_cfg.index_prefix)
    assert rollup.rebuild() == 0
    rolled = RollupMentionReader(es_client, "no-such-mentions-index", prefix=es_cfg.index_prefix)
    assert rolled.counts("Acme", START, END, timedelta(minutes=5)) == []
    assert rolled.counts_by_source("Acme", START, END, timedelta(hours=1)) == []


def test_an_incremental_reader_rereads_only_recomputed_hours(es_client, es_cfg):
    install_templates(es_client, es_cfg)
    sim = [datetime(2026, 11, 1, 8, tzinfo=UTC)]
    rollup = CountsRollup(es_client, es_cfg.index_prefix, clock=lambda: sim[0])
    raw = ElasticsearchMentionReader(es_client, alias_name(es_cfg.index_prefix))
    kept = RollupMentionReader(es_client, raw.index, prefix=es_cfg.index_prefix)
    batch = list(mentions(300, START, END, seed=9, brands=("Acme",)))
    step = timedelta(minutes=5)

    def agree() -> int:
        before = kept.read_docs
        assert kept.counts("Acme", START, END, step) == raw.counts("Acme", START, END, step)
        return kept.read_docs - before

    with BulkWriter(es_client, es_cfg, after_write=rollup.after_write) as writer:
        assert writer.write(batch).ok
        assert agree() == 11  # the whole hours but the last of 18:00-06:00
        sim[0] += timedelta(hours=2)
        late = [m.model_copy(update={"source_id": f"late{i}", "created_at": LATE_HOUR + timedelta(minutes=i)})
                for i, m in enumerate(batch[:5])]  # fmt: skip
        # a mention of 21:00 re-crawled naming another brand: Acme's hour changes
        moved = next(m for m in batch if floor_hour(m.created_at) == LATE_HOUR + timedelta(hours=1))
        assert writer.write([*late, moved.model_copy(update={"brands": ["Globex"]})]).ok
        # the documents first seen are within the look-back of the newest: all again
        assert agree() == 11
        # then only the two recomputed hours (those within LOOK_BACK of the newest)
        assert agree() == 2
        assert agree() == 2
    # a new reader (a restarted daemon) reads the whole window once, and agrees
    kept = RollupMentionReader(es_client, raw.index, prefix=es_cfg.index_prefix)
    assert agree() == 11


def test_a_kept_reader_stores_equal_values_once_and_counts_the_same(store, es_client, es_cfg_module):
    """What an incremental reader keeps shares equal values between documents
    (`HourCounts.from_source` with its table): the same documents as read without the
    table, each distinct minute-count, (minute, source) key and source name one object,
    and the counts those documents give are the raw reader's."""
    raw, *_ = store
    prefix = es_cfg_module.index_prefix
    es_client.indices.refresh(index=counts_index_name(prefix))
    hits = es_client.search(index=counts_index_name(prefix), size=1000)["hits"]["hits"]
    shared: dict[object, object] = {}
    alone = [HourCounts.from_source(h["_source"]) for h in hits]
    together = [HourCounts.from_source(h["_source"], shared) for h in hits]
    assert together == alone and len(alone) > 20
    kept = RollupMentionReader(es_client, raw.index, prefix=prefix)
    step = timedelta(minutes=5)
    for brand in BRANDS:
        assert kept.counts(brand, START, END, step) == raw.counts(brand, START, END, step)
        assert kept.counts_by_source(brand, START, END, step) == raw.counts_by_source(brand, START, END, step)
    for docs in (together, [d for k in kept._kept.values() for d in k.docs.values()]):
        counts = [c for d in docs for c in d.minutes.values()]
        keys = [k for d in docs for k in d.sources]
        names = [k[1] for k in keys]
        for values in (counts, keys, names, [d.rolled_at for d in docs]):
            assert len({id(v) for v in values}) == len(set(values)) < len(values)


def test_a_counts_index_from_before_the_report_counts_gets_them(es_client, es_cfg):
    """An index created by rollup version 1 (strict mapping without `rollup_version` and
    `report`) holding a version-1 document: the first recompute adds the fields (else
    strict mapping refuses the documents), new documents are version 2, the old one
    reads as version 1 until `rebuild` (``rebuild-counts``) rewrites it."""
    from store.rollup import _REPORT_MAPPINGS, ROLLUP_VERSION, ReportHour, mappings

    prefix, index = es_cfg.index_prefix, counts_index_name(es_cfg.index_prefix)
    old = mappings()
    for name in _REPORT_MAPPINGS:
        del old["properties"][name]
    es_client.indices.create(index=index, mappings=old)
    install_templates(es_client, es_cfg)  # the template is new; the index keeps its mapping
    hour = datetime(2026, 3, 1, 13, tzinfo=UTC)
    first, second = (list(mentions(5, h, h + timedelta(minutes=50), seed=2, brands=("Acme",),
                                   id_prefix=f"h{h.hour}"))
                     for h in (hour, hour + HOUR))  # fmt: skip
    with BulkWriter(es_client, es_cfg) as writer:  # before the rollup kept report counts
        assert writer.write(first).ok
    es_client.index(index=index, id=doc_id("Acme", hour), refresh=True, document={
        "brand": "Acme", "hour": "2026-03-01T13:00:00Z", "rolled_at": "2026-03-01T14:00:00Z",
        "total": 5, "negative": 0, "neutral": 0, "positive": 0, "unscored": 5, "uncertain": 0,
        "minutes": [], "sources": [],
    })  # fmt: skip
    rollup = CountsRollup(es_client, prefix)
    with BulkWriter(es_client, es_cfg, after_write=rollup.after_write) as writer:
        assert writer.write(second).ok
    assert rollup.pending() == 0

    def read(at: datetime) -> ReportHour:
        return ReportHour.from_source(es_client.get(index=index, id=doc_id("Acme", at))["_source"])

    assert (read(hour).version, read(hour + HOUR).version) == (1, ROLLUP_VERSION)
    assert read(hour + HOUR).counts[0] == 5
    assert rollup.rebuild() == 2
    assert (read(hour).version, read(hour).counts[0]) == (ROLLUP_VERSION, 5)
