"""`alerts explain` and `alerts backtest` against a real Elasticsearch node.

The mentions are the engine tests' (tests/alerts/test_engine.py): three quiet days of
Acme and Tiny, then 80 negative Acme mentions in 11:00-12:00 and 6 negative Tiny ones
(a big ratio, but under min_count=10). The replay reads them back through
Elasticsearch and the real detector.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import yaml

from alerts.engine import AlertEngine
from alerts.model import Alert
from alerts.notifiers.slack import SlackNotifier
from alerts.replay import backtest, explain, with_overrides
from daemon.cli import main as cli_main
from store.reader import ElasticsearchMentionReader
from store.setup import alias_name
from tests.alerts import test_engine as engine_tests
from tests.alerts.test_engine import NOW, WAVE_START, background, index, make_config

# The engine tests' fixtures: their mentions, index prefix and Slack sandbox.
acme_wave, prefix, slack = engine_tests.acme_wave, engine_tests.prefix, engine_tests.slack


def reader_of(es_client, config) -> ElasticsearchMentionReader:
    return ElasticsearchMentionReader(es_client, alias_name(config.elasticsearch.index_prefix))


def test_backtest_lists_the_wave_and_explain_says_when_and_why(es_client, acme_wave):
    reader = reader_of(es_client, acme_wave)
    found = backtest(acme_wave, reader, "Acme", NOW - timedelta(hours=4), NOW + timedelta(hours=2))

    kinds = [f.alert.kind for f in found]
    assert kinds[0] == "started" and kinds[-1] == "ended" and kinds.count("started") == 1
    first = found[0]
    assert WAVE_START < first.check_at <= NOW
    assert first.alert.observed >= 10 and first.alert.expected < 10

    # The check that sent it fired; the one an interval earlier was blocked, and says by what.
    fired = explain(acme_wave, reader, "Acme", first.check_at)
    assert fired.fired and "FIRED" in "\n".join(fired.lines())
    before = explain(acme_wave, reader, "Acme", first.check_at - timedelta(minutes=5))
    assert not before.fired
    assert before.verdict.blocked in {"min_count", "line", "ratio", "confirmations"}
    text = "\n".join(before.lines())
    assert f"blocked by {before.verdict.blocked}" in text
    assert f"observed:  {before.verdict.observed} " in text and "expected:" in text
    # Later checks follow the open wave instead of paging again.
    assert explain(acme_wave, reader, "Acme", NOW).verdict.blocked == "in wave"

    # Nothing before the wave, and Tiny's 6 negatives stay under min_count.
    assert backtest(acme_wave, reader, "Acme", NOW - timedelta(hours=4), WAVE_START) == []
    assert backtest(acme_wave, reader, "Tiny", NOW - timedelta(hours=4), NOW) == []
    tiny = explain(acme_wave, reader, "Tiny", NOW)
    assert tiny.verdict.blocked == "min_count" and tiny.verdict.observed == 6
    assert "fewer than min_count=10" in "\n".join(tiny.lines())


def test_a_changed_setting_changes_the_outcome(es_client, acme_wave):
    reader = reader_of(es_client, acme_wave)
    period = (NOW - timedelta(hours=3), NOW + timedelta(hours=1))
    settings = with_overrides(acme_wave.spike_settings("Tiny"), {"min_count": "5"})
    [started, *_rest] = backtest(acme_wave, reader, "Tiny", *period, settings)
    assert started.alert.kind == "started" and started.alert.brand == "Tiny"

    strict = with_overrides(acme_wave.spike_settings("Acme"), {"min_count": "200"})
    assert backtest(acme_wave, reader, "Acme", *period, strict) == []
    with pytest.raises(ValueError, match="unknown spike setting"):
        with_overrides(settings, {"min_cuont": "5"})
    with pytest.raises(ValueError, match="min_ratio"):
        with_overrides(settings, {"min_ratio": "0.5"})


def test_explain_names_the_warm_up(es_client, prefix, slack, tmp_path):
    # One day of history cannot warm up a detector that needs two.
    config = make_config(prefix, slack, history="1d")
    index(es_client, config, tmp_path, background("Acme", NOW - timedelta(days=3), NOW))
    result = explain(config, reader_of(es_client, config), "Acme", NOW)
    assert result.verdict.blocked == "warm-up" and result.verdict.observed is None
    assert "warm-up: not enough history yet to judge (48 h needed)" in "\n".join(result.lines())


def test_the_commands(es_client, es_node, acme_wave, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    spike = {k: v.total_seconds() if isinstance(v, timedelta) else v
             for k, v in acme_wave.alerts.spike.model_dump(exclude_defaults=True).items()}  # fmt: skip
    path.write_text(yaml.safe_dump({
        "brands": [{"name": "Acme"}, {"name": "Tiny"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": acme_wave.elasticsearch.index_prefix},
        "alerts": {"history": "3d", "query_delay": "2m", "spike": spike},
    }))  # fmt: skip
    args = ["--config", str(path)]
    assert cli_main(["alerts", "explain", "Tiny", "--at", NOW.isoformat(), *args]) == 0
    assert "blocked by min_count" in capsys.readouterr().out

    period = ["--from", "2026-11-20T09:00", "--to", "2026-11-20T13:00"]
    assert cli_main(["alerts", "backtest", "Tiny", *period, *args]) == 0
    assert "0 alert(s) would have been sent" in capsys.readouterr().out
    assert cli_main(["alerts", "backtest", "Tiny", *period, "--set", "min_count=5", *args]) == 0
    out = capsys.readouterr().out
    assert "with min_count=5" in out and re.search(r"UTC  started +Tiny: \d+ negative in 1 h", out)
    assert "(1 new wave(s)); nothing was sent" in out

    # The spelling: the same replay, every brand and enabled rule at once.
    assert cli_main(["check-alerts", "--explain", "--at", NOW.isoformat(), *args]) == 0
    out = capsys.readouterr().out
    for brand in ("Acme", "Tiny"):
        assert f"{brand}, negative_spike, check at 2026-11-20 12:03 UTC" in out
        assert f"{brand}, high_reach, check at" in out
    assert "blocked by a wave was already open" in out  # Acme's wave
    assert "blocked by min_count: 6 mentions" in out  # Tiny's six
    assert "volume_spike" not in out  # not enabled
    assert cli_main(["backtest", "--brand", "Tiny", *period, "--set", "spike.min_count=5", *args]) == 0
    assert re.search(r"UTC  started +Tiny: \d+ negative in 1 h", capsys.readouterr().out)

    with pytest.raises(SystemExit, match="unknown spike setting"):
        cli_main(["alerts", "backtest", "Tiny", *period, "--set", "nope=1", *args])
    with pytest.raises(SystemExit, match="no brand 'Nobody'"):
        cli_main(["alerts", "explain", "Nobody", *args])


def test_the_backtest_lists_the_alerts_the_live_engine_sent(es_client, slack, acme_wave):
    """The engine, checked every 5 minutes through the wave by an injected clock, posts
    to the Slack sandbox; the backtest of the same period on the same mentions lists
    the same alerts (rule, kind, id, observed and expected counts), each from a check
    within one check interval of the live one. The replay runs the engine's own
    evaluation at each check (alerts.rules.evaluate_rules), history window included,
    so a difference here means the two paths have drifted apart."""
    config = make_config(
        acme_wave.elasticsearch.index_prefix, slack, check_every="5m",
        high_reach={"min_reach": 60_000},
        rules={"volume_spike": {"enabled": True}},
    )  # fmt: skip
    start, end = WAVE_START - timedelta(minutes=37), NOW + timedelta(minutes=95)
    clock = [start]
    live = AlertEngine(config, es_client, SlackNotifier.from_config(config.slack),
                       clock=lambda: clock[0])  # fmt: skip
    sent: list[tuple[datetime, Alert]] = []
    while clock[0] < end:
        sent += [(clock[0], alert) for alert in live.check()]
        clock[0] += config.alerts.check_every
    assert len(slack.messages) == len(sent)
    rules = {a.rule for _, a in sent}
    assert {"negative_spike", "volume_spike", "high_reach"} <= rules, rules
    assert [a.kind for _, a in sent if a.rule == "negative_spike"] == ["started", "continuing", "ended"]

    reader = reader_of(es_client, config)
    replayed = [b for brand in ("Acme", "Tiny") for b in backtest(config, reader, brand, start, end)]

    def key(alert: Alert) -> tuple:
        return (alert.brand, alert.rule, alert.subject, alert.kind, alert.alert_id,
                alert.observed, round(alert.expected, 6), alert.interval_end)  # fmt: skip

    assert sorted(key(b.alert) for b in replayed) == sorted(key(a) for _, a in sent)
    when = {a.alert_id: at for at, a in sent}
    for b in replayed:
        assert abs(b.check_at - when[b.alert.alert_id]) <= config.alerts.check_every, b.line()
