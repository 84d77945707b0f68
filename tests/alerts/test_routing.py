"""Routing: which channels get an alert, fan-out with exactly-once delivery per channel,
threads per channel, and escalation of unacknowledged alerts.

The engine reads mentions through the in-memory reader and keeps its state and outbox in
the session's real Elasticsearch node; the two channels are real: Slack (the local Slack
sandbox, through slack-sdk) and e-mail (a local aiosmtpd server with STARTTLS and AUTH).
Time is injected, never waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.engine import SEND_LEASE, AlertEngine
from alerts.model import Alert, wave_id_for
from alerts.notifiers import EmailNotifier, notifiers_from_config
from alerts.routing import Router
from alerts.rules import RULES
from alerts.state import AlertStateStore, UnknownAlert
from brandpulse.alert_settings import RULE_NAMES
from brandpulse.config import Config
from daemon.cli import main as cli_main
from sandbox.slack import SlackSandbox
from tests.alerts.memory_reader import MemoryMentionReader
from tests.alerts.notifiers.smtp_server import SmtpServer
from tests.alerts.test_engine import NOW, WAVE_START, background, mention, prefix, wave

__all__ = ["prefix"]  # the fixture, shared with test_engine


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "certs") as server:
        yield server


@pytest.fixture(scope="module")
def reader() -> MemoryMentionReader:
    """Quiet days of Acme and Tiny; an Acme wave 11:00-13:00; calm again after."""
    start = NOW - timedelta(days=3)
    second_hour = WAVE_START + timedelta(hours=1)
    return MemoryMentionReader(
        background("Acme", start, WAVE_START)
        + wave("Acme", WAVE_START, 80, "w")
        + wave("Acme", second_hour, 90, "x")
        + background("Acme", second_hour + timedelta(hours=1), NOW + timedelta(hours=4))
        + background("Tiny", start, NOW + timedelta(hours=4), negatives_per_hour=1)
    )


def make_config(prefix: str, slack: SlackSandbox, smtp: SmtpServer, routes: list[dict[str, Any]] | None) -> Config:
    alerts: dict[str, Any] = {
        "history": "3d",
        "query_delay": "2m",
        "spike": {
            "interval": 300, "window": 3600, "min_count": 10, "min_ratio": 2.0,
            "threshold": 3.0, "end_threshold": 1.5, "end_after": 1800,
            "warmup": 2 * 86400, "cooldown": 3600, "continuing_every": 3600,
        },
    }  # fmt: skip
    if routes is not None:
        alerts["routes"] = routes
    return Config.model_validate(
        {
            "brands": [{"name": "Acme"}, {"name": "Tiny"}],
            "elasticsearch": {"index_prefix": prefix},
            "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
            "email": smtp.email_config(),
            "alerts": alerts,
        }
    )


def make_engine(config: Config, es, reader, **kwargs: Any) -> AlertEngine:
    return AlertEngine(config, es, None, channels=notifiers_from_config(config), reader=reader, **kwargs)


def mails(smtp: SmtpServer) -> list[Any]:
    return [m.message for m in smtp.messages]


# -- which channels -------------------------------------------------------------


def _alert(kind: str = "started", brand: str = "Acme", observed: int = 84, expected: float = 12.0) -> Alert:
    return Alert(kind=kind, brand=brand, wave_id=wave_id_for(brand, WAVE_START),  # type: ignore[arg-type]
                 interval_start=WAVE_START, interval_end=WAVE_START + timedelta(hours=1),
                 observed=observed, expected=expected)  # fmt: skip


def test_severity_is_derived_from_the_alert_and_documented_levels():
    assert _alert(observed=60, expected=12.0).severity == "high"  # 5x usual
    assert _alert(observed=59, expected=12.0).severity == "medium"
    assert _alert(observed=20, expected=0.0).severity == "high"  # from nothing
    assert _alert("continuing", observed=30, expected=12.0).severity == "medium"
    assert _alert("ended").severity == "low"
    assert _alert("high_reach", observed=1, expected=0.0).severity == "high"
    assert [_alert(k).rule for k in ("started", "ended", "high_reach")] == [
        "negative_spike", "negative_spike", "high_reach"]  # fmt: skip
    assert tuple(RULES) == RULE_NAMES  # the configuration knows every rule by name


def _of(rule: str, kind: str = "started", observed: int = 84, expected: float = 12.0,
        total: int | None = None, subject: str | None = None) -> Alert:
    return Alert(kind=kind, brand="Acme", wave_id=wave_id_for("Acme", WAVE_START, rule, subject),  # type: ignore[arg-type]
                 interval_start=WAVE_START, interval_end=WAVE_START + timedelta(hours=1),
                 observed=observed, expected=expected, total=total, rule=rule, subject=subject)  # fmt: skip


def test_each_rule_declares_its_own_severity():
    # Every registered rule says how urgent its alerts are (not the base class's default).
    from alerts.rules import AlertRule

    assert all(cls.severity.__func__ is not AlertRule.severity.__func__ for cls in RULES.values())
    # the volume spike reads like the negative one: 5x its expected count is high
    assert _of("volume_spike", observed=60).severity == "high"
    assert _of("volume_spike", observed=59).severity == "medium"
    # opportunities are never high
    assert _of("positive_spike", observed=60).severity == "medium"
    assert _of("positive_spike", observed=59).severity == "low"
    assert _of("competitor_negative_spike", observed=90, subject="Initech").severity == "medium"
    assert _of("competitor_negative_spike", observed=30, subject="Initech").severity == "low"
    # a silence, by how many mentions it should have held
    assert _of("flatline", observed=0, expected=25.0).severity == "high"
    assert _of("flatline", observed=0, expected=10.0, subject="reddit").severity == "medium"
    assert _of("flatline", observed=0, expected=6.0).severity == "low"
    # a share of voice, by how far it moved (either way): 40% usual
    assert _of("sov_shift", observed=60, expected=40.0, total=100).severity == "high"  # +20 pts
    assert _of("sov_shift", observed=33, expected=40.0, total=100).severity == "medium"  # -7 pts
    assert _of("sov_shift", observed=43, expected=40.0, total=100).severity == "low"  # +3 pts
    for rule in RULES:
        if rule != "high_reach":
            assert _of(rule, "ended", expected=25.0).severity == "low", rule


def test_a_competitor_wave_is_routed_by_the_competitor_and_by_the_own_brand():
    from brandpulse.config import RouteConfig

    about_initech = _of("competitor_negative_spike", subject="Initech")
    assert about_initech.brands == ("Acme", "Initech")
    router = Router((RouteConfig(channels=["email"], brands=["Initech"]),
                     RouteConfig(channels=["slack"], brands=["Acme"]),
                     RouteConfig(channels=["log"], brands=["Tiny"])), default="log")  # fmt: skip
    assert router.channels_for(about_initech) == ["email", "slack"]
    assert router.channels_for(_of("negative_spike")) == ["slack"]
    # a flatline's subject is a source, not a brand: only its brand matches
    silent = _of("flatline", observed=0, subject="Initech")
    assert silent.brands == ("Acme",) and router.channels_for(silent) == ["slack"]


def test_routes_select_by_brand_rule_and_severity(slack, smtp):
    config = make_config("unused", slack, smtp, [
        {"channels": ["email"], "brands": ["Tiny"]},
        {"channels": ["slack"], "severities": ["high", "medium"]},
        {"channels": ["email", "slack"], "rules": ["high_reach"]},
        {"channels": ["slack"], "severities": ["low"], "brands": ["Acme"],
         "escalate_after": "30m", "escalate_to": ["email"]},
    ])  # fmt: skip
    router = Router(tuple(config.alerts.routes), default="slack")
    assert router.channels_for(_alert()) == ["slack"]  # high
    assert router.channels_for(_alert(brand="Tiny")) == ["email", "slack"]
    assert router.channels_for(_alert("high_reach")) == ["slack", "email"]
    assert router.channels_for(_alert("ended")) == ["slack"]  # low, Acme: the last route
    # nothing matches a low Tiny alert but the Tiny route; a low alert of another
    # brand would match none and goes to the default channel rather than nowhere
    assert router.channels_for(_alert("ended", brand="Tiny")) == ["email"]
    only = Router(tuple(config.alerts.routes[:1]), default="slack")
    assert only.channels_for(_alert()) == ["slack"]
    # escalation only for what opens something (a wave's start, a post), never twice
    assert router.escalations_for(_alert("ended")) == []
    assert Router((), default="slack").channels_for(_alert()) is None  # no routes: as before


# -- fan-out through the engine ---------------------------------------------------


def test_no_routes_means_the_first_configured_channel_only(es_client, prefix, slack, smtp, reader):
    config = make_config(prefix, slack, smtp, routes=None)
    eng = make_engine(config, es_client, reader)
    assert list(eng.channels) == ["slack", "email"] and eng.notifier is eng.channels["slack"]
    assert [a.kind for a in eng.check(NOW)] == ["started"]
    assert len(slack.messages) == 1 and smtp.messages == []
    [entry] = AlertStateStore(es_client, prefix).entries()
    assert entry.channel is None and entry.doc_id == f"alert:{entry.alert_id}"  # the old layout


def test_every_routed_channel_gets_the_alert_once_and_threads_its_own_replies(
    es_client, prefix, slack, smtp, reader
):
    config = make_config(prefix, slack, smtp, [{"channels": ["slack", "email"]}])
    eng = make_engine(config, es_client, reader)
    [started] = eng.check(NOW)  # one alert, though it went to two channels
    assert len(slack.messages) == 1 and len(smtp.messages) == 1
    store = AlertStateStore(es_client, prefix)
    entries = store.entries()
    assert [(e.channel, e.status) for e in entries] == [("email", "delivered"), ("slack", "delivered")]
    assert {e.doc_id for e in entries} == {f"alert:{started.alert_id}@email", f"alert:{started.alert_id}@slack"}

    assert eng.check(NOW + timedelta(minutes=5)) == []  # nothing twice
    [continuing] = eng.check(NOW + timedelta(hours=1))
    assert continuing.kind == "continuing"
    root, reply = slack.messages
    assert reply.thread_ts == root.ts  # Slack: under Slack's first message
    first, follow_up = mails(smtp)
    assert follow_up["In-Reply-To"] == follow_up["References"] == first["Message-ID"]  # e-mail: under its own
    assert follow_up["Subject"] == "Re: " + first["Subject"]
    by_channel = {e.channel: e.delivery for e in store.entries() if e.alert_id == continuing.alert_id}
    assert by_channel["slack"].thread_ts == root.ts  # type: ignore[union-attr]
    assert by_channel["email"].thread_ts == first["Message-ID"]  # type: ignore[union-attr]
    # the brand's open wave names the default channel's thread (Slack's)
    wave_state = store.load_brand("Acme").open_wave
    assert wave_state is not None and wave_state.thread_ts == root.ts


def test_a_wave_begun_before_routes_keeps_its_slack_thread_after(es_client, prefix, slack, smtp, reader):
    before = make_engine(make_config(prefix, slack, smtp, routes=None), es_client, reader)
    [started] = before.check(NOW)
    routed = make_engine(make_config(prefix, slack, smtp, [{"channels": ["slack", "email"]}]), es_client, reader)
    [continuing] = routed.check(NOW + timedelta(hours=1))
    root, reply = slack.messages
    assert reply.thread_ts == root.ts  # under the first message, from the old layout
    [mail] = mails(smtp)  # e-mail never had the first one: a message of its own
    assert "In-Reply-To" not in mail and not mail["Subject"].startswith("Re: ")
    assert continuing.wave_id == started.wave_id


def test_one_failing_channel_holds_up_nothing_and_a_restart_sends_only_what_is_missing(
    es_client, prefix, slack, smtp, reader
):
    config = make_config(prefix, slack, smtp, [{"channels": ["slack", "email"]}])
    smtp.data_reply = "451 4.3.0 Mail server temporarily rejected message"
    first = make_engine(config, es_client, reader, owner="daemon-1")
    [started] = first.check(NOW)  # Slack has it
    store = AlertStateStore(es_client, prefix)
    state = {e.channel: e for e in store.entries()}
    assert state["slack"].status == "delivered"
    assert state["email"].status == "pending" and "451" in (state["email"].last_error or "")
    assert not state["email"].maybe_posted  # a 4xx reply is a definite "no"

    smtp.data_reply = None
    del first  # restart: only Elasticsearch remembers
    again = make_engine(config, es_client, reader, owner="daemon-2")
    assert [a.alert_id for a in again.check(NOW + timedelta(minutes=1))] == [started.alert_id]
    assert len(slack.messages) == 1 and len(smtp.messages) == 1
    assert again.check(NOW + timedelta(minutes=2)) == []


def test_a_crash_between_one_channels_send_and_its_record_repeats_nothing_elsewhere(
    es_client, prefix, slack, smtp, reader
):
    config = make_config(prefix, slack, smtp, [{"channels": ["slack", "email"]}])
    smtp.data_reply = "451 4.3.0 Try again later"
    eng = make_engine(config, es_client, reader)
    [started] = eng.check(NOW)
    smtp.data_reply = None
    store = AlertStateStore(es_client, prefix)
    email_entry = store.get_entry(started.alert_id, "email")
    assert email_entry is not None and email_entry.status == "pending"
    # A daemon claims the e-mail entry, mails it, and dies before recording it.
    store.claim(email_entry, "doomed-daemon", NOW, NOW + SEND_LEASE)
    EmailNotifier.from_config(config.email).send(started)

    assert eng.retry_outbox(NOW + SEND_LEASE / 2) == []  # its lease still holds
    eng.retry_outbox(NOW + SEND_LEASE + timedelta(seconds=1))
    # SMTP cannot be read back: mailed again (at-least-once), under the same Message-ID
    # so a mail client shows one message; Slack, recorded, is not touched.
    assert len(slack.messages) == 1
    assert [m["Message-ID"] for m in mails(smtp)] == [f"<{started.alert_id}@brandpulse.example>"] * 2
    done = store.get_entry(started.alert_id, "email")
    assert done is not None and done.status == "delivered" and done.attempts == 3

    # The same on Slack's side: Slack took the follow-up but answered 502. Slack is
    # read back (the alert id is in the message metadata): not posted twice; the
    # e-mail of that round went out once.
    slack.fail_next(1, status=502, after_posting=True)
    later = NOW + timedelta(hours=1)
    assert eng.check(later) != []  # e-mail delivered it
    assert len(slack.messages) == 2 and len(smtp.messages) == 3
    eng.check(later + timedelta(minutes=1))
    assert len(slack.messages) == 2 and len(smtp.messages) == 3
    assert all(e.status == "delivered" for e in store.entries())


# -- escalation ---------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


ESCALATING = [{"channels": ["slack"], "escalate_after": "30m", "escalate_to": ["email"]}]


def test_an_unacknowledged_alert_is_escalated_once(es_client, prefix, slack, smtp, reader):
    config = make_config(prefix, slack, smtp, ESCALATING)
    clock = Clock(NOW)
    eng = make_engine(config, es_client, reader, clock=clock)
    [started] = eng.check()
    assert len(slack.messages) == 1 and smtp.messages == []

    clock.now = NOW + timedelta(minutes=29)
    assert eng.retry_outbox() == [] and smtp.messages == []  # not yet due
    clock.now = NOW + timedelta(minutes=31)
    [escalated] = eng.retry_outbox()
    assert escalated.alert_id == f"{started.alert_id}-escalated"
    [got] = mails(smtp)
    assert got["Subject"].startswith("[ESCALATED] [BrandPulse] Negative spike: Acme")
    text = got.get_body(("plain",)).get_content()
    assert "not acknowledged within 30 min" in text
    assert f"scheduler.py alerts ack {started.alert_id}" in text
    clock.now = NOW + timedelta(hours=2)
    eng.retry_outbox()
    assert len(smtp.messages) == 1 and len(slack.messages) == 1  # once


def test_an_acknowledged_alert_is_not_escalated(es_client, es_node, prefix, slack, smtp, reader, tmp_path, capsys):
    config = make_config(prefix, slack, smtp, ESCALATING)
    clock = Clock(NOW)
    eng = make_engine(config, es_client, reader, clock=clock)
    [started] = eng.check()

    # acknowledged from the command line, as a person would
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "brands": [{"name": "Acme"}, {"name": "Tiny"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": prefix},
    }))  # fmt: skip
    assert cli_main(["alerts", "ack", started.alert_id, "--by", "alice", "--config", str(path)]) == 0
    assert f"alert {started.alert_id} acknowledged" in capsys.readouterr().out
    assert cli_main(["alerts", "ack", "started-nosuchalert", "--config", str(path)]) == 2

    store = AlertStateStore(es_client, prefix)
    ack = store.acknowledgement(started.alert_id)
    assert ack is not None and ack.by == "alice"
    # acknowledging again (or through the escalation's id) keeps the first one
    assert store.acknowledge(f"{started.alert_id}-escalated", at=NOW, by="bob") == ack
    with pytest.raises(UnknownAlert):
        store.acknowledge("started-nosuchalert", at=NOW)

    clock.now = NOW + timedelta(minutes=31)
    assert eng.retry_outbox() == []
    assert smtp.messages == [] and len(slack.messages) == 1
    [cancelled] = [e for e in store.entries() if e.escalates == started.alert_id]
    assert cancelled.status == "cancelled" and "alice" in (cancelled.last_error or "")


def test_high_reach_alerts_follow_their_own_route(es_client, prefix, slack, smtp):
    config = make_config(prefix, slack, smtp, [
        {"channels": ["slack"], "rules": ["negative_spike"]},
        {"channels": ["email"], "rules": ["high_reach"]},
    ])  # fmt: skip
    config = config.model_copy(
        update={"alerts": config.alerts.model_copy(
            update={"high_reach": config.alerts.high_reach.model_copy(update={"min_reach": 50_000})})}
    )  # fmt: skip
    post = mention("Acme", NOW - timedelta(hours=1), "negative", "big", reach=80_000, author="bigcritic")
    eng = make_engine(config, es_client, MemoryMentionReader([post]))
    [alert] = eng.check(NOW)
    assert alert.kind == "high_reach" and slack.messages == []
    [got] = mails(smtp)
    assert got["Subject"].startswith("[BrandPulse] High-reach negative post: Acme (high_reach, ")
