"""`alerts.counts_source`: the engine decides alike on the rollup and on raw mentions.

The same history (the engine tests' three quiet days of Acme and Tiny, then an Acme
wave) is indexed under two prefixes: one read raw, one whose writer keeps the hourly
counts index (`store.rollup`) and whose engine reads it (`RollupMentionReader`,
incremental: documents kept between checks, only recomputed and new hours read),
restarted mid-wave (nothing kept, state from Elasticsearch).
Checks run every ten minutes before and through the wave, with late mentions
indexed in between (created in hours the rollup had already counted); every check
must send the same alerts and leave the same per-brand state on both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from alerts.engine import AlertEngine
from alerts.model import Alert
from alerts.notifiers.slack import SlackNotifier
from alerts.state import AlertStateStore
from brandpulse.config import Config
from brandpulse.mention import Mention
from sandbox.slack import SlackSandbox
from store.reader import RollupMentionReader
from store.rollup import CountsRollup
from store.setup import setup_elasticsearch
from store.writer import BulkWriter
from tests.alerts.test_engine import NOW, WAVE_START, background, make_config, mention, wave

# Checks every ten minutes (each judges the two five-minute intervals since the last).
EVERY = timedelta(minutes=10)
# The rollup engine's daemon restarts before this check (mid-wave).
RESTART = WAVE_START + timedelta(minutes=40)
RULES = {
    "volume_spike": {"enabled": True},
    "positive_spike": {"enabled": True},
    # reads the same counts over the same history window as the spike rules: a window
    # of its own would make the incremental reader refetch every check (asserted below)
    "flatline": {"enabled": True},
}


def _drop(es: Elasticsearch, name: str) -> None:
    for existing in es.indices.get(index=f"{name}-*", allow_no_indices=True):
        es.indices.delete(index=existing)
    client = es.options(ignore_status=404)
    for template in ("mentions", "counts-hourly"):
        client.indices.delete_index_template(name=f"{name}-{template}")
    for part in ("settings", "mappings"):
        client.cluster.delete_component_template(name=f"{name}-mentions-{part}")


@pytest.fixture
def prefixes(es_client: Elasticsearch) -> Iterator[tuple[str, str]]:
    names = (f"t{uuid.uuid4().hex[:10]}", f"t{uuid.uuid4().hex[:10]}")
    yield names
    for name in names:
        _drop(es_client, name)


@pytest.fixture
def slacks() -> Iterator[tuple[SlackSandbox, SlackSandbox]]:
    with SlackSandbox() as one, SlackSandbox() as two:
        yield one, two


def _history() -> list[Mention]:
    start = NOW - timedelta(days=3)
    tiny = [mention("Tiny", start + timedelta(hours=h, minutes=h % 50), "neutral", f"t{h}")
            for h in range(0, 75)]  # fmt: skip
    return (
        background("Acme", start, WAVE_START + timedelta(hours=4))
        + wave("Acme", WAVE_START, 80, "w")
        + tiny
    )


def _late() -> list[Mention]:
    """Mentions crawled late: created during the wave and the hour before it."""
    return [
        mention("Acme", WAVE_START - timedelta(minutes=50) + timedelta(minutes=9 * i),
                "negative" if i % 2 else "positive", f"late{i}")
        for i in range(12)
    ]  # fmt: skip


class Store:
    """One prefix's mentions, written as the daemon does (batches), with or without the
    rollup, and its engine."""

    def __init__(self, es: Elasticsearch, config: Config, slack: SlackSandbox, tmp: Path) -> None:
        setup_elasticsearch(es, config.elasticsearch, now=NOW)
        self.now = NOW  # the simulated time: the rollup's rolled_at
        self.rollup = (
            CountsRollup(es, config.elasticsearch.index_prefix, clock=lambda: self.now)
            if config.alerts.counts_source == "rollup"
            else None
        )
        self.writer = BulkWriter(
            es, config.elasticsearch, spool_dir=tmp / "spool", refresh=True,
            after_write=self.rollup.after_write if self.rollup else None,
        )  # fmt: skip
        self.engine = AlertEngine(config, es, SlackNotifier.from_config(config.slack))
        self.state = AlertStateStore(es, config.elasticsearch.index_prefix)

    def write(self, mentions: list[Mention]) -> None:
        for i in range(0, len(mentions), 400):
            assert self.writer.write(mentions[i : i + 400]).ok

    def brand_states(self) -> list[tuple[object, ...]]:
        out = []
        for brand in ("Acme", "Tiny"):
            s = self.state.load_brand(brand)
            out.append((s.detector, s.high_reach, s.last_fed, s.open_wave, s.rules))
        return out


def _decision(a: Alert) -> tuple[object, ...]:
    return (
        a.alert_id, a.kind, a.brand, a.rule, a.subject, a.wave_id, a.interval_start,
        a.interval_end, a.observed, a.expected, a.total, a.negative_share, a.usual_share,
        a.score, a.signal, a.wave_started_at, tuple(p.id for p in a.top_posts),
    )  # fmt: skip


def test_rollup_and_raw_decide_alike_check_by_check(es_client, prefixes, slacks, tmp_path):
    # raw explicitly: rollup is the default, and this compares the two
    raw_cfg = make_config(prefixes[0], slacks[0], rules=RULES, counts_source="raw")
    roll_cfg = make_config(prefixes[1], slacks[1], rules=RULES, counts_source="rollup")
    raw = Store(es_client, raw_cfg, slacks[0], tmp_path / "raw")
    rolled = Store(es_client, roll_cfg, slacks[1], tmp_path / "rolled")
    assert isinstance(rolled.engine.reader, RollupMentionReader)
    assert not isinstance(raw.engine.reader, RollupMentionReader) and raw.rollup is None
    history = _history()
    # what has been crawled by the first check: up to a few minutes before it
    first = WAVE_START - timedelta(minutes=20)
    for store in (raw, rolled):
        store.now = first - timedelta(hours=2)  # the history was indexed as it came
        store.write([m for m in history if m.created_at < first])
    sent: list[tuple[object, ...]] = []
    at = first
    while at < WAVE_START + timedelta(minutes=110):
        for store in (raw, rolled):
            store.now = at
            store.write([m for m in history if at - EVERY <= m.created_at < at])
            if at == WAVE_START + timedelta(minutes=90):
                store.write(_late())
        if at == RESTART:
            # the rollup engine's daemon restarts: nothing kept in memory, state from ES
            before = rolled.engine.reader
            rolled.engine = AlertEngine(roll_cfg, es_client, SlackNotifier.from_config(roll_cfg.slack))
            assert rolled.engine.reader is not before
        raw_alerts = [_decision(a) for a in raw.engine.check(at + timedelta(minutes=3))]
        reader = rolled.engine.reader
        assert isinstance(reader, RollupMentionReader)
        read_before = reader.read_docs
        rolled_alerts = [_decision(a) for a in rolled.engine.check(at + timedelta(minutes=3))]
        assert rolled_alerts == raw_alerts, f"check at {at + timedelta(minutes=3)}"
        assert rolled.brand_states() == raw.brand_states(), f"check at {at + timedelta(minutes=3)}"
        sent += raw_alerts
        if at >= WAVE_START + 2 * EVERY and at != RESTART:
            # incremental: a check reads the recomputed and new hours, not the 3 days
            # (three spike rules x two brands x 72 hours: 432 documents a full check).
            # Not before: the history was all rolled up at one time, and until a newer
            # hour enters the window every document is within the look-back of the
            # newest seen.
            assert reader.read_docs - read_before < 40, at
        at += EVERY
    # the comparison saw decisions, not only silence: the wave started and went on
    kinds = {(d[1], d[3]) for d in sent}
    assert {("started", "negative_spike"), ("continuing", "negative_spike")} <= kinds
    assert rolled.rollup is not None and rolled.rollup.pending() == 0
    for store in (raw, rolled):
        store.writer.close()
