"""Spike detectors kept between checks (`alerts.kept`), against a real Elasticsearch node.

The engine tests' mentions (tests/alerts/test_engine.py: quiet days of Acme and Tiny, an
Acme wave at 11:00), checked by the real engine and the real detector. What is proved:

* an engine that keeps its detectors decides, check by check, what one `SpikeDetector`
  streamed interval by interval over the same counts decides (how bench/spike_nab.py
  measures the detector), and rebuilds nothing after its first check;
* across UTC midnight (the history's start moves, `alerts.kept.anchor`) the kept
  detector's verdicts and state are, check by check, those of a rebuilt one;
* late mentions in an interval a kept detector already fed, a restart, another alerter's
  check and a settings change each make the next check rebuild, and that check decides
  what the rebuild path (`keep_detectors=False`, the engine's dry run) decides on the
  same stored state.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from alerts.detector import Point, SpikeDetector
from alerts.engine import AlertEngine
from alerts.kept import DetectorCache, anchor
from alerts.model import Alert
from alerts.notifiers.slack import SlackNotifier
from alerts.reader import count_grid
from alerts.rules import Check, NegativeSpikeRule, SpikeRule
from alerts.state import AlertStateStore
from store.reader import ElasticsearchMentionReader
from store.setup import alias_name
from tests.alerts import test_engine as engine_tests
from tests.alerts.test_engine import NOW, WAVE_START, background, index, make_config, mention, wave

prefix, slack = engine_tests.prefix, engine_tests.slack
STEP = timedelta(minutes=5)
DELAY = timedelta(minutes=2)


def _engine(config, es_client, **kwargs) -> AlertEngine:
    kwargs.setdefault("keep_detectors", True)
    return AlertEngine(config, es_client, SlackNotifier.from_config(config.slack), **kwargs)


def _decision(a: Alert) -> tuple[object, ...]:
    return (a.alert_id, a.kind, a.rule, a.interval_end, a.observed, round(a.expected, 9),
            a.score and round(a.score, 9))  # fmt: skip


def _seed(es_client, config, tmp_path, until: datetime) -> None:
    start = NOW - timedelta(days=4)
    tiny = [mention("Tiny", start + timedelta(hours=h, minutes=h % 50), "negative", f"t{h}")
            for h in range(0, 4 * 24 + 8, 3)]  # fmt: skip
    index(es_client, config, tmp_path,
          background("Acme", start, until) + wave("Acme", WAVE_START, 80, "w") + tiny)  # fmt: skip


def test_kept_detectors_decide_as_one_detector_streamed_over_the_counts(
    es_client, prefix, slack, tmp_path
):
    """Checks every 15 minutes from 05:00 to 17:00 through the wave: the engine's
    negative-spike alerts at each check are exactly the events (minus the winding-down
    updates the rule does not send) of one detector warmed on the first check's history
    and then fed every interval once, in order."""
    config = make_config(prefix, slack, counts_source="raw")
    first, last = WAVE_START - timedelta(hours=6), WAVE_START + timedelta(hours=6)
    _seed(es_client, config, tmp_path, last + timedelta(hours=1))
    live = _engine(config, es_client)
    assert live.detectors is not None
    every = timedelta(minutes=15)
    checks = []
    at = first
    while at <= last:
        sent = live.check(at + DELAY)
        checks.append((at, sorted(_decision(a)[1:] for a in sent if a.rule == "negative_spike"
                                  and a.brand == "Acme")))  # fmt: skip
        at += every
    # one rebuild per (rule, brand) series, on the first check; the rest fed on
    assert dict(live.detectors.rebuilds) == {"first check": 2}
    assert live.detectors.reused == 2 * (len(checks) - 1)

    settings = config.spike_settings("Acme")
    reader = ElasticsearchMentionReader(es_client, alias_name(prefix))
    lo = anchor(first, config.alerts.history, STEP)  # the same all day: nothing rebuilt
    grid = count_grid(reader, "Acme", lo, last, STEP)
    rule = NegativeSpikeRule("Acme", settings)
    points = [rule._point(c) for c in grid]
    streamed = SpikeDetector("Acme", settings)
    streamed.warm(p for p in points if p.at < first - STEP)  # the first check's history
    expected = []
    fed = first - STEP  # the first check judges only the interval ending at `first`
    for at, _ in checks:
        events = []
        for p in points:
            if fed <= p.at < at:
                event = streamed.observe(Point(p.at, p.count, p.total))
                if event is not None and not SpikeRule.winding_down(event, settings):
                    events.append(event)
        fed = at
        expected.append((at, sorted(
            (e.kind.removeprefix("spike_"), "negative_spike", e.at + STEP, e.observed,
             round(float(e.expected), 9), getattr(e, "score", None) and round(e.score, 9))
            for e in events)))  # fmt: skip
    assert checks == expected
    kinds = [k[0] for _, decided in checks for k in decided]
    assert kinds[:1] == ["started"] and "ended" in kinds  # decisions, not only silence


def test_late_mentions_in_a_fed_interval_make_the_next_check_rebuild(
    es_client, prefix, slack, tmp_path, caplog
):
    """Acme is quiet before its wave. After a check at 10:32 has fed the intervals up to
    the one from 10:25, 60 negative mentions created at 10:10-10:15 arrive late: the next check
    rebuilds (`counts`) and pages at once, as the rebuild path does. A detector fed on
    with the counts it had seen would miss them: its window holds the old 10:10 count
    (this test fails with the counts comparison of `alerts.kept` taken out)."""
    config = make_config(prefix, slack, counts_source="raw")
    _seed(es_client, config, tmp_path, WAVE_START)
    live = _engine(config, es_client)
    for minutes in range(-60, -25, 5):
        assert live.check(WAVE_START + timedelta(minutes=minutes) + DELAY) == []
    late = [mention("Acme", WAVE_START - timedelta(minutes=50) + timedelta(seconds=5 * i),
                    "negative", f"late{i}") for i in range(60)]  # fmt: skip
    index(es_client, config, tmp_path, late)
    assert live.detectors is not None
    before = dict(live.detectors.rebuilds)
    now = WAVE_START - timedelta(minutes=25) + DELAY
    rebuilt = [_decision(a) for a in live.dry_run(now)]  # the rebuild path, same state
    with caplog.at_level(logging.DEBUG, logger="alerts.kept"):
        sent = [_decision(a) for a in live.check(now)]
    # the debug line names the first interval whose count changed
    assert "counts of the interval from 2026-11-20 10:10:00+00:00 changed" in caplog.text
    assert sent == rebuilt
    assert [d[1:3] for d in sent] == [("started", "negative_spike")]
    assert live.detectors.rebuilds["counts"] == before.get("counts", 0) + 1


def test_a_restart_or_another_alerter_rebuilds_once_and_agrees(es_client, prefix, slack, tmp_path):
    """An engine started mid-wave (the same state in Elasticsearch, nothing kept)
    rebuilds on its first check and decides what the rebuild path decides, then feeds on;
    when another alerter judged meanwhile (the stored state moved on), the next check
    of the first one rebuilds (`state`) and agrees with the rebuild path too."""
    config = make_config(prefix, slack, counts_source="raw")
    _seed(es_client, config, tmp_path, WAVE_START + timedelta(hours=3))
    one = _engine(config, es_client)
    for minutes in range(-30, 25, 5):
        one.check(WAVE_START + timedelta(minutes=minutes) + DELAY)
    two = _engine(config, es_client)
    assert two.detectors is not None and one.detectors is not None
    states = AlertStateStore(es_client, prefix)
    now = WAVE_START + timedelta(minutes=25) + DELAY
    rebuilt = [_decision(a) for a in _engine(config, es_client, keep_detectors=False).dry_run(now)]
    assert [_decision(a) for a in two.check(now)] == rebuilt
    for minutes in range(30, 70, 5):
        two.check(WAVE_START + timedelta(minutes=minutes) + DELAY)
    assert dict(two.detectors.rebuilds) == {"first check": 2}
    assert two.detectors.reused == 2 * 8
    assert states.load_brand("Acme").last_fed == WAVE_START + timedelta(minutes=60)
    # the first alerter comes back: what it kept is behind the stored state
    now = WAVE_START + timedelta(minutes=70) + DELAY
    rebuilt = [_decision(a) for a in one.dry_run(now)]
    assert [_decision(a) for a in one.check(now)] == rebuilt
    assert one.detectors.rebuilds["state"] == 2


def test_changed_settings_rebuild(es_client, prefix, slack, tmp_path):
    """The same series judged with other settings (a brand's `spike` section changed)
    is rebuilt, not fed on from a detector built for the old ones."""
    config = make_config(prefix, slack, counts_source="raw")
    _seed(es_client, config, tmp_path, WAVE_START)
    reader = ElasticsearchMentionReader(es_client, alias_name(prefix))
    cache = DetectorCache()
    settings = config.spike_settings("Acme")
    state = None
    for minutes, s in ((-30, settings), (-25, settings), (-20, settings.model_copy(update={"min_count": 12}))):
        check = Check("Acme", WAVE_START + timedelta(minutes=minutes) + DELAY, reader,
                      config.alerts, detectors=cache)  # fmt: skip
        state = NegativeSpikeRule("Acme", s).evaluate(check, state).state
    assert dict(cache.rebuilds) == {"first check": 1, "settings": 1}
    assert cache.reused == 1


def test_the_day_turning_rebuilds_and_agrees_with_a_rebuild(es_client, prefix, slack, tmp_path):
    """Checks every 10 minutes from 23:00 to 01:00: the history (`alerts.history` 3d)
    starts at 11-17 00:00 until midnight, then at 11-18 00:00 (`alerts.kept.anchor`).
    At every check the kept detector's verdicts (observed, expected, score, the line,
    the false-alert rate) and returned state are exactly those of a detector rebuilt
    from the stored state at that check; the first check after midnight rebuilds
    (`anchor`), every other one feeds on. Fails with the history's start sliding with
    the check (a rebuild's history then starts 10 minutes later at every check, the
    kept detector's does not)."""
    config = make_config(prefix, slack, counts_source="raw")
    midnight = datetime(2026, 11, 21, tzinfo=UTC)
    _seed(es_client, config, tmp_path, midnight + timedelta(hours=2))
    reader = ElasticsearchMentionReader(es_client, alias_name(prefix))
    rule = NegativeSpikeRule("Acme", config.spike_settings("Acme"))
    cache = DetectorCache()
    kept_state = rebuilt_state = None
    starts, checks = set(), 0
    at = midnight - timedelta(hours=1)
    while at <= midnight + timedelta(hours=1):
        kept = rule.evaluate(Check("Acme", at + DELAY, reader, config.alerts, detectors=cache,
                                   explain=True), kept_state)  # fmt: skip
        rebuilt_check = Check("Acme", at + DELAY, reader, config.alerts, explain=True)
        rebuilt = rule.evaluate(rebuilt_check, rebuilt_state)
        assert kept.judged and kept.judged == rebuilt.judged, at
        assert kept.state == rebuilt.state, at
        kept_state, rebuilt_state = kept.state, rebuilt.state
        starts.add(rule._span(rebuilt_check)[0])
        checks += 1
        at += timedelta(minutes=10)
    assert starts == {datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC)}
    assert dict(cache.rebuilds) == {"first check": 1, "anchor": 1}
    assert cache.reused == checks - 2
