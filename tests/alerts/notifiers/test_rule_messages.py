"""The alerts of every rule of `alerts.rules` through the Slack templates and the sandbox.

Each rule's alert must say, in the channel, what the rule watched (all mentions,
praise, a competitor, share of voice, silence) with its own figures, and never
borrow the negative spike's wording. Real HTTP against the local Slack sandbox,
which rejects what Slack rejects.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import Alert, wave_id_for
from alerts.notifiers.slack import SlackNotifier
from alerts.notifiers.slack_templates import build_message, headline
from sandbox.slack import SlackSandbox

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # the window start make_alert uses


def bot(slack: SlackSandbox) -> SlackNotifier:
    return SlackNotifier(token=slack.token, channel=slack.channel, base_url=slack.base_url)


@pytest.fixture
def rule_alert(make_alert):
    """`make_alert` for another rule: its own wave id, no negative share."""

    def build(rule: str, kind: str = "started", subject: str | None = None, **over: object) -> Alert:
        fields: dict[str, object] = {
            "rule": rule,
            "subject": subject,
            "wave_id": wave_id_for("Acme", T0, rule, subject),
            "negative_share": None,
            "usual_share": None,
        }
        fields.update(over)
        return make_alert(kind, **fields)

    return build


def test_a_volume_spike_counts_all_mentions_and_threads_its_follow_ups(slack, rule_alert):
    notifier = bot(slack)
    first = notifier.send(rule_alert("volume_spike", observed=240, expected=60.0))
    later = T0 + timedelta(hours=1)
    notifier.send(
        rule_alert("volume_spike", "ended", posts=0, interval_start=later,
                   interval_end=later + timedelta(hours=1), observed=70),
        reply_to=first,
    )
    root, reply = slack.messages
    assert reply.thread_ts == root.ts
    assert root.text == (
        "Volume spike for Acme: 240 mentions 2026-11-27 14:00–15:00 UTC, usually 60"
    )
    text = slack.render()
    assert "Volume spike: Acme" in text
    assert "Mentions: 240 (usual 60)" in text and "Top posts" in text
    assert "negative" not in root.blocks[1]["text"]["text"]  # no negative wording
    assert "Volume spike over for Acme" in reply.text
    assert "mentions are back at their usual level" in json.dumps(reply.blocks)


def test_a_positive_wave_is_an_opportunity(slack, rule_alert, make_post):
    post = make_post(1, title="Acme saved my wedding", text="Best support ever.")
    bot(slack).send(rule_alert("positive_spike", observed=55, expected=9.0, top_posts=(post,)))
    [message] = slack.messages
    assert message.text.startswith("Positive wave for Acme: 55 positive mentions")
    text = slack.render()
    assert "Positive wave (opportunity): Acme" in text
    assert "An opportunity" in text and "Top positive posts" in text
    assert "Acme saved my wedding" in text


def test_a_competitors_negative_wave_names_the_competitor_for_our_brand(slack, rule_alert):
    alert = rule_alert("competitor_negative_spike", subject="Globex <!channel>",
                       observed=80, expected=6.0)
    bot(slack).send(alert)
    [message] = slack.messages
    assert message.text.startswith(
        "Negative wave for competitor Globex &lt;!channel&gt; (an opportunity for Acme): "
        "80 negative mentions of Globex"
    )
    # Escaped wherever Slack parses mrkdwn (a plain_text header is never parsed).
    mrkdwn = [b["text"]["text"] for b in message.blocks if b.get("text", {}).get("type") == "mrkdwn"]
    mrkdwn += [f["text"] for b in message.blocks for f in b.get("fields", [])]
    assert mrkdwn and not any("<!channel>" in t for t in mrkdwn)
    header = message.blocks[0]["text"]["text"]
    assert header.startswith(":dart: Competitor under fire (opportunity): Globex")
    assert "(for Acme)" in header
    assert "may be open to *Acme*" in json.dumps(message.blocks)


def test_a_share_of_voice_shift_reports_shares_of_the_day(rule_alert, make_alert):
    # 180 of 400 mentions of Acme and its competitors; usually 30% (120 of 400).
    day = T0.replace(hour=0)
    alert = rule_alert("sov_shift", posts=0, observed=180, expected=120.0, total=400,
                       interval_start=day, interval_end=day + timedelta(days=1))
    assert headline(alert) == (
        "Share of voice of Acme up on 2026-11-27 (UTC): 45% of 400 mentions with its "
        "competitors, usually 30%"
    )
    message = build_message(alert)
    assert "Share of voice shift up: Acme" in message["blocks"][0]["text"]["text"]
    fields = json.dumps(message["blocks"][2])
    assert "45% (usual 30%)" in fields and "180 of 400" in fields
    down = rule_alert("sov_shift", posts=0, observed=60, expected=120.0, total=400,
                      interval_start=day, interval_end=day + timedelta(days=1))
    assert " down on " in headline(down)


def test_silence_and_its_end_are_told_for_the_brand_and_for_a_source(slack, rule_alert):
    notifier = bot(slack)
    silent = rule_alert("flatline", posts=0, observed=0, expected=42.0, score=None,
                        interval_end=T0 + timedelta(hours=2, minutes=30), wave_started_at=T0)
    first = notifier.send(silent)
    back = rule_alert("flatline", "ended", posts=0, observed=3, expected=0.0, score=None,
                      interval_end=T0 + timedelta(hours=3), wave_started_at=T0)
    notifier.send(back, reply_to=first)
    source = rule_alert("flatline", subject="reddit", posts=0, observed=0, expected=12.0,
                        score=None, interval_end=T0 + timedelta(hours=1), wave_started_at=T0)
    notifier.send(source)
    root, reply, other = slack.messages
    assert root.text == (
        "No mentions of Acme since 2026-11-27 14:00 UTC (2h 30m); usually 42 in that time"
    )
    assert reply.thread_ts == root.ts
    assert reply.text == "Mentions of Acme are back after 3h 00m of silence"
    assert other.text.startswith("No mentions of Acme from source 'reddit' since")
    text = slack.render()
    assert "Mentions stopped: Acme" in text
    assert "Mentions stopped from reddit: Acme" in text
    assert "Source: reddit" in text
    assert "crawls succeed but find nothing" in text


def test_alerts_of_other_rules_round_trip_and_old_ones_read_as_their_rule(rule_alert, make_alert):
    alert = rule_alert("competitor_negative_spike", subject="Globex")
    again = Alert.from_dict(json.loads(json.dumps(alert.to_dict())))
    assert (again.rule, again.subject, again.alert_id) == (
        "competitor_negative_spike", "Globex", alert.alert_id
    )
    stored = make_alert().to_dict()
    del stored["rule"], stored["subject"]  # written before there were other rules
    assert Alert.from_dict(stored).rule == "negative_spike"
    # A negative spike's wave keeps the id it always had; another rule's differs.
    assert wave_id_for("Acme", T0) == wave_id_for("Acme", T0, "negative_spike")
    assert wave_id_for("Acme", T0, "volume_spike") != wave_id_for("Acme", T0)
    assert wave_id_for("Acme", T0, "flatline", "reddit") != wave_id_for("Acme", T0, "flatline")


def test_an_ended_wave_says_it_is_over_once_and_in_its_rules_terms_on_every_channel(rule_alert):
    from alerts.notifiers.digest import alert_digest
    from alerts.notifiers.email_templates import text_body

    ended = rule_alert("positive_spike", "ended", posts=0, observed=12)
    section = build_message(ended)["blocks"][1]["text"]["text"]
    assert section.count("The wave is over") == 1
    assert "negative volume" not in section
    assert "positive mentions are back at their usual level" in section
    for text in (" ".join(alert_digest(ended).summary), text_body(ended)):
        assert text.count("The wave is over") == 1
        assert "negative volume" not in text


def test_every_channel_renders_the_one_list_of_summary_lines(make_alert):
    # Slack, e-mail and the HTTP channels' digest show the same summary lines, built once
    # (alerts.notifiers.summary); Slack only adds its bold.
    from alerts.notifiers.digest import alert_digest
    from alerts.notifiers.email_templates import text_body
    from alerts.notifiers.summary import summary_lines

    for kind in ("continuing", "ended"):
        alert = make_alert(kind, interval_end=T0 + timedelta(hours=3))
        lines = summary_lines(alert)
        assert any(line.startswith("Negative share 42% (usually 12%)") for line in lines)
        assert any(("still going on (3h 00m so far)" if kind == "continuing" else
                    "The wave is over after 3h 00m") in line for line in lines)  # fmt: skip
        slack = build_message(alert)["blocks"][1]["text"]["text"].replace("*", "")
        for text in (slack, "\n".join(alert_digest(alert).summary), text_body(alert)):
            for line in lines:
                assert text.count(line) == 1, (kind, line)
