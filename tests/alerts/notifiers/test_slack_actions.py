"""The Slack response buttons over Socket Mode: slack-sdk's real client against the sandbox.

The alert comes from the engine (real Elasticsearch node, the engine tests' wave), the
clicks from `SlackSandbox.click`, over a real WebSocket on loopback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from alerts.notifiers.slack_actions import SlackActionListener
from alerts.notifiers.slack_templates import RESPONSE_BLOCK_ID
from alerts.state import AlertStateStore
from tests.alerts import test_engine as engine_tests
from tests.alerts.test_engine import NOW, engine

prefix, acme_wave = engine_tests.prefix, engine_tests.acme_wave
CLICK_AT = NOW + timedelta(minutes=10)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """The listener works after it acknowledges (as Slack wants): wait for its effect."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


@pytest.fixture
def interactive(es_client, acme_wave, slack, caplog):
    """Acme's wave posted with buttons (slack.app_token set), and a listener connected."""
    caplog.set_level(logging.DEBUG)  # everything, slack-sdk's own debug lines included
    data = acme_wave.model_dump(by_alias=True)
    data["slack"] |= {"token": slack.token, "app_token": slack.app_token}
    config = type(acme_wave).model_validate(data)
    prefix = config.elasticsearch.index_prefix
    [started] = engine(config, es_client, slack).check(NOW)
    store = AlertStateStore(es_client, prefix)
    listener = SlackActionListener.from_config(config, store, clock=lambda: CLICK_AT)
    listener.start()
    assert slack.wait_connected()
    yield started, store, slack.messages[0], config
    listener.close()
    assert slack.app_token not in caplog.text  # never logged, at any level


def test_a_posted_alert_has_the_buttons_carrying_its_id(slack, interactive):
    started, _store, message, _config = interactive
    [block] = [b for b in message.blocks if b.get("block_id") == RESPONSE_BLOCK_ID]
    assert [e["text"]["text"] for e in block["elements"]] == [
        "Acknowledge", "Snooze 1 h", "Snooze 24 h", "Not a real issue",
    ]  # fmt: skip
    assert {e["value"] for e in block["elements"]} == {started.alert_id}


def test_acknowledge_is_stored_told_in_the_thread_and_shown_on_the_message(slack, interactive):
    started, store, message, _config = interactive
    ack = slack.click(message, "brandpulse_ack", user_id="U0ALICE", user_name="alice")
    assert ack["envelope_id"]
    wait_for(lambda: slack.replies(message.ts), "a thread reply")

    got = store.acknowledgement(started.alert_id)
    assert got is not None and got.response == "acknowledged"
    assert got.by == "alice (U0ALICE)" and got.at == CLICK_AT
    [reply] = slack.replies(message.ts)
    assert reply.text.startswith(":white_check_mark: Acknowledged by <@U0ALICE>")
    wait_for(lambda: slack.messages[0].payload.get("edited"), "the message updated")
    updated = slack.messages[0]
    assert all(b.get("block_id") != RESPONSE_BLOCK_ID for b in updated.blocks)
    assert "Acknowledged by <@U0ALICE>" in str(updated.blocks)
    assert "Negative spike: Acme" in updated.blocks[0]["text"]["text"]  # the rest is kept


def test_snooze_from_slack_holds_back_that_brand_and_rule(es_client, slack, interactive):
    _started, store, message, _config = interactive
    slack.click(message, "brandpulse_snooze_1h", user_id="U0BOB", user_name="bob")
    wait_for(lambda: slack.replies(message.ts), "a thread reply")
    snooze = store.snoozed("Acme", "negative_spike", CLICK_AT + timedelta(minutes=30))
    assert snooze is not None and snooze.until == CLICK_AT + timedelta(hours=1)
    assert snooze.by == "bob (U0BOB)"
    assert store.snoozed("Acme", "negative_spike", CLICK_AT + timedelta(hours=1)) is None
    assert store.snoozed("Acme", "high_reach", CLICK_AT) is None
    assert store.snoozed("Tiny", "negative_spike", CLICK_AT) is None
    assert "until 2026-11-20 13:13 UTC" in slack.replies(message.ts)[0].text


def test_not_a_real_issue_counts_in_precision(slack, interactive):
    _started, store, message, _config = interactive
    slack.click(message, "brandpulse_false_alarm", user_id="U0ALICE", user_name="alice")
    wait_for(lambda: slack.replies(message.ts), "a thread reply")
    [row] = [r for r in store.precision() if r.brand == "Acme"]
    assert (row.rule, row.alerts, row.false_alarms, row.precision) == ("negative_spike", 1, 1, 0.0)


def test_unknown_and_malformed_actions_are_ignored_with_a_log_line(slack, interactive, caplog):
    started, store, message, _config = interactive
    # another app's button, an alert id nobody raised, not a click at all: acknowledged
    # (Slack would redeliver otherwise), logged, and nothing recorded or posted
    slack.click(message, "someone_elses_button", value="x")
    slack.click(message, "brandpulse_ack", value="started-nosuchalert")
    slack.send_envelope({"type": "view_submission", "view": {}})
    slack.send_envelope({"type": "block_actions", "actions": [{"no": "action_id"}]})
    wait_for(lambda: caplog.text.count("ignored") >= 4, "four log lines")
    assert "ignored Slack action 'someone_elses_button'" in caplog.text
    assert "no alert 'started-nosuchalert' in the outbox" in caplog.text
    assert "ignored a Slack interaction of type 'view_submission'" in caplog.text
    assert store.acknowledgement(started.alert_id) is None
    assert slack.replies(message.ts) == []


def test_a_snooze_clicked_in_slack_holds_back_the_next_spike_alert_not_a_post(
    es_client, slack, interactive, tmp_path, caplog
):
    _started, _store, message, config = interactive
    slack.click(message, "brandpulse_snooze_1h", user_id="U0BOB", user_name="bob")
    wait_for(lambda: slack.replies(message.ts), "a thread reply")
    # a famous critic posts during the snooze, and the wave goes on
    famous = engine_tests.mention("Acme", CLICK_AT + timedelta(minutes=2), "negative", "famous",
                                  reach=5_000_000, author="famouscritic")  # fmt: skip
    more = engine_tests.wave("Acme", NOW.replace(minute=0), 120, "later")
    engine_tests.index(es_client, config, tmp_path, [famous, *more])
    before = len(slack.messages)
    sent = []
    for minutes in range(15, 75, 5):  # checks through the hour of the snooze
        sent += engine(config, es_client, slack).check(CLICK_AT + timedelta(minutes=minutes))
    assert [a.rule for a in sent] == ["high_reach"]  # the post pages; the wave's updates wait
    assert "not sent: Acme/negative_spike snoozed by bob (U0BOB) until" in caplog.text
    new = slack.messages[before:]
    assert [m.text for m in new if "famouscritic" in str(m.blocks)] and all(
        "Negative spike" not in m.text and "still" not in m.text.lower() for m in new
    )

