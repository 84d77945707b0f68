"""Responses to alerts: snooze, maintenance windows, false alarms and precision.

Real Elasticsearch node and Slack sandbox, the engine tests' mentions (Acme: a wave of
80 negatives in 11:00-12:00 plus three negative posts with a reach of 60,000-90,000).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from alerts.replay import explain
from alerts.state import AlertStateStore
from daemon.cli import main as cli_main
from store.reader import ElasticsearchMentionReader
from store.setup import alias_name
from tests.alerts import test_engine as engine_tests
from tests.alerts.test_engine import NOW, WAVE_START, engine

acme_wave, prefix, slack = engine_tests.acme_wave, engine_tests.prefix, engine_tests.slack


def with_alerts(config, **alerts):
    """The fixture's config with other `alerts` settings (same index prefix, same sandbox)."""
    data = config.model_dump(by_alias=True)
    data["alerts"].update(alerts)
    data["slack"]["token"] = config.slack.token.get_secret_value()
    return type(config).model_validate(data)


@pytest.fixture
def loud(acme_wave):
    """Acme's wave plus its high-reach posts alerting on their own (min_reach 50,000)."""
    return with_alerts(acme_wave, high_reach={"min_reach": 50_000})


def test_a_snooze_holds_back_that_brand_and_rule_only(es_client, slack, loud):
    store = AlertStateStore(es_client, loud.elasticsearch.index_prefix)
    store.install()
    store.snooze("Acme", "negative_spike", until=NOW + timedelta(hours=1), at=NOW - timedelta(hours=1), by="alice")

    sent = engine(loud, es_client, slack).check(NOW)
    assert sent and {a.rule for a in sent} == {"high_reach"}  # the wave waits, the posts not
    assert all("Negative spike" not in m.text for m in slack.messages)

    # The snooze does not replay the wave afterwards: it was judged, only not sent.
    assert [a.kind for a in engine(loud, es_client, slack).check(NOW + timedelta(hours=2))] != [
        "started"
    ]
    # and explain says what held it back at the time the wave started
    reader = ElasticsearchMentionReader(es_client, alias_name(loud.elasticsearch.index_prefix))
    for minutes in range(0, 60, 5):
        result = explain(loud, reader, "Acme", NOW - timedelta(minutes=minutes), state=store)
        if result.fired:
            break
    assert result.fired and result.held_back and "snoozed by alice" in result.held_back
    assert "blocked by snooze" in "\n".join(result.lines())


def test_updates_of_a_wave_that_started_during_a_snooze_share_one_thread(es_client, slack, acme_wave):
    # Acme's wave pages at about 11:12; the snooze lets go at 12:00 while the wave goes on.
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    store.install()
    store.snooze("Acme", "negative_spike", until=WAVE_START + timedelta(hours=1), at=WAVE_START)
    live = engine(acme_wave, es_client, slack)
    sent, at = [], WAVE_START + timedelta(minutes=3)
    while at < NOW + timedelta(minutes=95):  # the daemon's checks, every 5 minutes
        sent += live.check(at)
        at += timedelta(minutes=5)

    kinds = [a.kind for a in sent]
    assert kinds[0] == "continuing" and kinds[-1] == "ended" and "started" not in kinds
    # The first update after the snooze starts the wave's thread; the later ones reply in
    # it, not each on its own in the channel.
    first, *replies = slack.messages
    assert len(slack.messages) == len(sent) >= 2
    assert not first.is_reply and "Acme" in first.text
    assert all(m.thread_ts == first.ts for m in replies)


def test_a_maintenance_window_in_local_time(es_client, slack, acme_wave):
    # NOW is 12:03 UTC = 13:03 in Paris.
    window = {"brands": ["Acme"], "from": "2026-11-20T12:30", "to": "2026-11-20T13:30",
              "timezone": "Europe/Paris"}  # fmt: skip
    quiet = with_alerts(acme_wave, maintenance=[window])
    assert engine(quiet, es_client, slack).check(NOW) == [] and slack.messages == []

    earlier = with_alerts(acme_wave, maintenance=[window | {"to": "2026-11-20T13:00"}])
    sent = engine(earlier, es_client, slack).check(NOW + timedelta(minutes=1))
    assert sent == []  # the wave was judged during the window: not paged late


def test_a_maintenance_window_of_another_brand_does_not_hold_back(es_client, slack, acme_wave):
    window = {"brands": ["Tiny"], "from": "2026-11-20T00:00", "to": "2026-11-21T00:00"}
    sent = engine(with_alerts(acme_wave, maintenance=[window]), es_client, slack).check(NOW)
    assert [(a.kind, a.brand) for a in sent] == [("started", "Acme")]


def test_false_alarms_and_the_precision_report(es_client, es_node, slack, loud, tmp_path, capsys):
    sent = engine(loud, es_client, slack).check(NOW)
    store = AlertStateStore(es_client, loud.elasticsearch.index_prefix)
    posts = [a for a in sent if a.rule == "high_reach"]
    assert len(posts) >= 2
    store.acknowledge(posts[0].alert_id, at=NOW, by="U1 (alice)", response="false_alarm")
    ack = store.acknowledgement(posts[0].alert_id)
    assert ack is not None and ack.response == "false_alarm" and ack.brand == "Acme"

    rows = {(r.brand, r.rule): r for r in store.precision()}
    assert rows["Acme", "high_reach"].alerts == len(posts)
    assert rows["Acme", "high_reach"].false_alarms == 1
    assert rows["Acme", "negative_spike"].false_alarms == 0
    assert store.precision(NOW + timedelta(days=1)) == []

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "brands": [{"name": "Acme"}, {"name": "Tiny"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": loud.elasticsearch.index_prefix},
    }))  # fmt: skip
    assert cli_main(["alerts", "precision", "--since", "2026-11-20", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    n = len(posts)
    assert f"high_reach      1/{n} false, precision {1 - 1 / n:.0%}" in out

    assert cli_main(["alerts", "snooze", "Tiny", "--for", "2h", "--by", "bob", "--config", str(path)]) == 0
    assert "Tiny/all rules snoozed until" in capsys.readouterr().out
    # from the real now on (a snooze starts when it is set), for every rule of Tiny only
    assert store.snoozed("Tiny", "high_reach", NOW) is None
    assert store.snoozed("Tiny", "high_reach", datetime.now(UTC)) is not None
    assert store.snoozed("Acme", "high_reach", datetime.now(UTC)) is None


def test_the_one_response_function(es_client, slack, acme_wave):
    [started] = engine(acme_wave, es_client, slack).check(NOW)
    store = AlertStateStore(es_client, acme_wave.elasticsearch.index_prefix)
    first = store.acknowledge(started.alert_id, at=NOW, by="alice")
    assert store.acknowledge(started.alert_id, at=NOW + timedelta(minutes=1), by="bob") == first
    until = NOW + timedelta(hours=1)
    snoozed = store.acknowledge(started.alert_id, at=NOW, by="bob", response="snoozed", until=until)
    assert snoozed.response == "snoozed" and store.acknowledgement(started.alert_id) == snoozed
    assert store.snoozed("Acme", "negative_spike", NOW) is not None
    assert store.snoozed("Acme", "high_reach", NOW) is None
    assert store.snoozed("Acme", "negative_spike", until) is None
    with pytest.raises(ValueError, match="needs `until`"):
        store.acknowledge(started.alert_id, at=NOW, response="snoozed")


