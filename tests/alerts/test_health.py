"""The health tracker on an injected clock: one notice per episode and one on recovery,
none below the thresholds, none repeated (and none lost) across a restart from the
state file; delivery through the real Slack notifier to the local Slack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerts.health import STATE_FILE, HealthNotice, HealthTracker, notice_text
from alerts.notifiers import LogNotifier, SlackNotifier
from brandpulse.config import HealthConfig
from sandbox.slack import SlackSandbox

T0 = datetime(2026, 11, 30, 9, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def tracker(tmp_path, clock, **settings) -> HealthTracker:
    return HealthTracker(HealthConfig(**settings), tmp_path, clock=clock)


def test_a_failing_source_gives_one_notice_and_one_on_recovery(tmp_path, clock):
    t = tracker(tmp_path, clock)
    assert t.crawl_failed("reddit-acme", "HTTP 503 from www.reddit.com") == []
    clock.advance(minutes=5)
    assert t.crawl_failed("reddit-acme", "HTTP 503 from www.reddit.com") == []
    clock.advance(minutes=5)
    [down] = t.crawl_failed("reddit-acme", "HTTP 503 from www.reddit.com")
    assert notice_text(down) == ("Source 'reddit-acme' has failed 3 crawls in a row since "
                                 "09:10 UTC (last error: HTTP 503 from www.reddit.com)")  # fmt: skip
    for _ in range(20):  # a long outage: no flood
        clock.advance(minutes=5)
        assert t.crawl_failed("reddit-acme", "HTTP 503") == []
        assert t.tick() == []
    clock.now = T0 + timedelta(minutes=47)
    [back] = t.crawl_succeeded("reddit-acme")
    assert notice_text(back) == "Source 'reddit-acme' is crawling again (down 47 min)"
    assert t.crawl_succeeded("reddit-acme") == []
    assert [n.kind for n in t.pending()] == ["source_down", "source_back"]


def test_below_the_threshold_nothing_is_said(tmp_path, clock):
    t = tracker(tmp_path, clock)
    t.crawl_failed("hn", "timeout")
    t.crawl_failed("hn", "timeout")
    assert t.crawl_succeeded("hn") == []  # two failures then a success: no episode
    t.crawl_failed("hn", "timeout")
    assert t.pending() == []
    assert t.es_failed("Elasticsearch at http://es:9200 refused the connection", 3) == []
    clock.advance(minutes=4)
    assert t.tick() == []
    assert t.es_ok(0) == []  # a blip under elasticsearch_after pages nobody
    assert t.pending() == []


def test_a_source_failing_for_source_silence_is_down_before_n_failures(tmp_path, clock):
    t = tracker(tmp_path, clock, source_failures=10, source_silence="30m")
    t.crawl_failed("rss-news", "DNS lookup failed")
    clock.advance(minutes=29)
    assert t.tick() == []
    clock.advance(minutes=1)
    [down] = t.tick()
    assert down.kind == "source_down" and down.failures == 1 and down.since == T0
    assert t.tick() == []


def test_elasticsearch_down_after_k_minutes_and_back_once(tmp_path, clock):
    t = tracker(tmp_path, clock)
    clock.now = T0 + timedelta(minutes=2)  # 09:12
    reason = "Elasticsearch at https://***@es.example:9200 refused the connection"
    assert t.es_failed(reason, spooled=10) == []
    clock.advance(minutes=5)
    [down] = t.es_failed(reason, spooled=1204)
    assert notice_text(down) == (
        "Elasticsearch unreachable since 09:12 UTC; mentions are being spooled (1,204 so far): "
        + reason
    )
    for _ in range(30):
        clock.advance(minutes=1)
        assert t.es_failed(reason, spooled=1300) == [] and t.tick() == []
    clock.now = T0 + timedelta(minutes=20)
    [back] = t.es_ok(pending=0)
    assert notice_text(back) == "Elasticsearch is back after 18 min; 1,300 spooled mentions replayed"
    assert t.es_ok(0) == []


def test_a_restart_neither_repeats_nor_loses_a_notice(tmp_path, clock):
    t = tracker(tmp_path, clock, source_failures=2)
    t.crawl_failed("hn", "HTTP 500")
    [down] = t.crawl_failed("hn", "HTTP 500")
    t.es_failed("Elasticsearch at http://127.0.0.1:9 refused the connection", 1)
    clock.advance(minutes=6)
    [es_down] = t.tick()

    # restart: the state file says both episodes were reported, both notices wait
    again = tracker(tmp_path, clock, source_failures=2)
    assert [n.notice_id for n in again.pending()] == [down.notice_id, es_down.notice_id]
    assert again.crawl_failed("hn", "HTTP 500") == []
    assert again.es_failed("still down", 5) == [] and again.tick() == []

    with SlackSandbox() as slack:
        notifier = SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url)
        assert again.deliver(notifier).delivered == [down, es_down]
        assert again.deliver(notifier).delivered == []
        third = tracker(tmp_path, clock, source_failures=2)  # restart after delivery
        assert third.pending() == [] and third.deliver(notifier).delivered == []
        [back] = third.crawl_succeeded("hn")
        assert third.deliver(notifier).delivered == [back]
        texts = [m.text for m in slack.messages]
    assert texts == [notice_text(down), notice_text(es_down), notice_text(back)]  # nothing to escape


def test_failed_delivery_waits_and_is_retried_oldest_first(tmp_path, clock):
    t = tracker(tmp_path, clock, source_failures=1)
    [a] = t.crawl_failed("a", "boom")
    [b] = t.crawl_failed("b", "boom")
    with SlackSandbox() as slack:
        notifier = SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url)
        slack.fail_next(1, status=400)  # not posted: an error Slack answered
        first = t.deliver(notifier)
        assert first.delivered == [] and first.error and "HTTP 400" in first.error
        assert t.deliver(notifier).delivered == []  # not before its retry time
        clock.advance(minutes=1)
        assert t.deliver(notifier).delivered == [a, b]
        assert [m.text for m in slack.messages] == [notice_text(a), notice_text(b)]
    [item_a, item_b] = t.outbox()
    assert item_a.attempts == 1 and item_a.delivered_at is not None and item_b.attempts == 0


def test_webhook_and_log_notifiers_deliver_notices(tmp_path, clock, caplog):
    t = tracker(tmp_path, clock, source_failures=1)
    [n] = t.crawl_failed("forum", "<!channel> HTTP 500 from http://user:pw@forum.example/x?key=abc")
    assert "pw" not in notice_text(n) and "abc" not in notice_text(n)
    with SlackSandbox() as slack:
        assert t.deliver(SlackNotifier(webhook_url=slack.webhook_url)).delivered == [n]
        [msg] = slack.messages
    assert msg.via == "webhook"
    body = json.dumps(msg.payload)
    assert "<!channel>" not in body and "pw@" not in body and "key=abc" not in body
    assert n.notice_id in body
    caplog.set_level("WARNING", logger="brandpulse.alerts")
    LogNotifier().send_notice(n)
    assert notice_text(n) in caplog.text


def test_notice_round_trip_and_unreadable_state(tmp_path, clock):
    n = HealthNotice("elasticsearch_back", "elasticsearch", since=T0, at=T0 + timedelta(hours=2),
                     spooled=3, pending=1)  # fmt: skip
    assert HealthNotice.from_dict(n.to_dict()) == n
    assert notice_text(n) == "Elasticsearch is back after 2 h 00 min; 3 spooled mentions, 1 still replaying"
    (tmp_path / STATE_FILE).write_text("{not json", encoding="utf-8")
    t = tracker(tmp_path, clock)
    assert t.pending() == []
    assert (tmp_path / (STATE_FILE + ".unreadable")).exists()


def test_the_spool_is_counted_only_when_a_notice_needs_it(tmp_path, clock):
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return 42

    t = tracker(tmp_path, clock)
    assert t.es_failed("refused", count) == [] and t.tick(count) == []
    assert calls == []  # below the threshold: the spool is not read
    clock.advance(minutes=5)
    [down] = t.tick(count)
    assert down.spooled == 42 and len(calls) == 1
    assert t.es_failed("refused", count) == [] and len(calls) == 1


def test_configured_secrets_never_reach_a_notice_or_the_state_file(tmp_path, clock):
    from brandpulse.config import parse_config
    from brandpulse.secrets import secret_values

    config = parse_config(
        {"brands": [{"name": "Acme"}],
         "sources": [{"name": "se", "type": "stackexchange", "key": "se-key-1234567"}],
         "slack": {"token": "xoxb-secret-token-99", "channel": "#c"}},
        env={},
    )  # fmt: skip
    secrets = secret_values(config)
    assert {"se-key-1234567", "xoxb-secret-token-99"} <= secrets
    t = HealthTracker(HealthConfig(source_failures=1), tmp_path, clock=clock, secrets=secrets)
    [n] = t.crawl_failed("se", "bad request: key se-key-1234567 rejected (token xoxb-secret-token-99)")
    state = (tmp_path / STATE_FILE).read_text(encoding="utf-8")
    for secret in ("se-key-1234567", "xoxb-secret-token-99"):
        assert secret not in notice_text(n) and secret not in state


def test_a_send_with_an_unknown_outcome_is_looked_for_before_it_is_repeated(tmp_path, clock):
    t = tracker(tmp_path, clock, source_failures=1)
    [a] = t.crawl_failed("a", "boom")
    with SlackSandbox() as slack:
        notifier = SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url)
        slack.fail_next(1, 502, after_posting=True)  # Slack took it, the answer was a 502
        assert t.deliver(notifier).delivered == []
        assert [i.maybe_posted for i in t.outbox()] == [True]
        clock.advance(minutes=1)
        assert t.deliver(notifier).delivered == [a]
        assert [m.text for m in slack.messages] == [notice_text(a)]  # found, not re-posted


def test_a_daemon_that_died_during_a_send_does_not_repeat_or_lose_the_notice(tmp_path, clock):
    def crash_during_send(posted: bool) -> HealthNotice:
        # what a process killed inside send_notice leaves: the file says "sending"
        t = tracker(tmp_path, clock, source_failures=1)
        [n] = t.crawl_failed(f"src-{posted}", "boom")
        if posted:
            notifier.send_notice(n)
        state = json.loads((tmp_path / STATE_FILE).read_text(encoding="utf-8"))
        for item in state["outbox"]:
            if item["notice"]["notice_id"] == n.notice_id:
                item["sending"] = True
        (tmp_path / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        return n

    with SlackSandbox() as slack:
        notifier = SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url)
        sent = crash_during_send(posted=True)
        assert tracker(tmp_path, clock, source_failures=1).deliver(notifier).delivered == [sent]
        assert len(slack.messages) == 1  # it had arrived: found, not posted again
        lost = crash_during_send(posted=False)
        assert tracker(tmp_path, clock, source_failures=1).deliver(notifier).delivered == [lost]
        assert [m.text for m in slack.messages] == [notice_text(sent), notice_text(lost)]


def test_the_sources_reported_down_are_known_until_they_crawl_again(tmp_path, clock):
    # What the alert engine asks, so the flatline rule leaves their silence to the notices.
    t = tracker(tmp_path, clock)
    t.crawl_failed("hn", "HTTP 503")
    assert t.sources_down() == set()  # below the threshold: not reported, not known
    t.crawl_failed("hn", "HTTP 503")
    t.crawl_failed("hn", "HTTP 503")
    assert t.sources_down() == {"hn"}
    assert tracker(tmp_path, clock).sources_down() == {"hn"}  # from the state file
    t.crawl_succeeded("hn")
    assert t.sources_down() == set()
