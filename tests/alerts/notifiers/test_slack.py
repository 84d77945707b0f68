"""SlackNotifier through slack-sdk against the local Slack sandbox (real HTTP, no mocks).

The sandbox rejects what Slack rejects (over-long blocks, too many blocks, unknown
channels and tokens), so "the message arrived" also means "Slack would have taken it".
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from alerts.model import Alert, AlertTheme, alert_id_for, wave_id_for
from alerts.notifiers import NOTIFIERS, LogNotifier, notifier_from_config
from alerts.notifiers.base import CannotTell, kibana_discover_url, rison
from alerts.notifiers.slack import SlackDeliveryError, SlackNotifier
from alerts.notifiers.slack_templates import escape, escaped_clip
from alerts.notifiers.slack_text import mrkdwn_to_text
from brandpulse.config import Config, SlackConfig
from sandbox.slack import SlackSandbox

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # the window start make_alert uses


def bot(slack: SlackSandbox, **kwargs: object) -> SlackNotifier:
    return SlackNotifier(
        token=slack.token, channel=slack.channel, base_url=slack.base_url, **kwargs
    )  # type: ignore[arg-type]


def mrkdwn_texts(blocks: list[dict]) -> list[str]:
    """Every string Slack parses as mrkdwn (where `<...>` and `&` have meaning)."""
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return out


def post_section(blocks: list[dict], url: str) -> dict:
    return next(
        b for b in blocks if b["type"] == "section" and url in b.get("text", {}).get("text", "")
    )


# ---------------------------------------------------------------------------
# The message
# ---------------------------------------------------------------------------


def test_started_alert_arrives_with_brand_counts_posts_and_kibana_button(slack, make_alert):
    alert = make_alert()
    delivery = bot(slack).send(alert)

    [message] = slack.messages
    assert delivery.ts == message.ts and delivery.channel == slack.channel
    assert delivery.thread_ts is None and message.thread_ts is None
    assert delivery.alert_id == alert.alert_id

    blocks = message.blocks
    assert blocks[0]["type"] == "header"
    assert "Acme" in blocks[0]["text"]["text"]
    summary = blocks[1]["text"]["text"]
    assert "*84* negative mentions" in summary and "usual *12*" in summary
    assert "Negative share *42%* (usually 12%)" in summary

    # Each top post: a linked title, an excerpt, then author, reach and source.
    for i, post in enumerate(alert.top_posts):
        section = post_section(blocks, post.url)
        assert f"|{post.title}>" in section["text"]["text"]
        assert "nobody answers" in section["text"]["text"]
        meta = blocks[blocks.index(section) + 1]["elements"][0]["text"]
        assert f"*user{i}*" in meta and f"reach {1000 * (i + 1):,}" in meta and "reddit" in meta

    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == alert.discover_url
    assert message.text.startswith("Negative spike for Acme: 84 negative mentions")


def test_message_renders_readably(slack, make_alert):
    bot(slack).send(make_alert())
    text = slack.render()
    assert "🚨 Negative spike: Acme" in text
    assert "Negative mentions: 84 (usual 12)" in text
    assert "Acme support ignored me (0) (https://www.reddit.com/r/acme/comments/p0)" in text
    assert "[ Open in Kibana ] → http://kibana.local:5601/app/discover#/" in text


HOSTILE = "Boss <!channel> & <!here> look: <@U123> <http://evil.example|acme.com> @here @everyone"


def test_hostile_post_text_cannot_ping_mention_or_disguise_links(slack, make_alert, make_post):
    post = make_post(
        0,
        title=HOSTILE,
        text=HOSTILE,
        author="<@U999> & <!subteam^S1>",
        url="https://example.com/a?x=1&y=<b>|c",
    )
    bot(slack).send(make_alert(top_posts=(post,)))
    [message] = slack.messages

    texts = [*mrkdwn_texts(message.blocks), message.text]
    joined = "\n".join(texts)
    for dangerous in (
        "<!channel>",
        "<!here>",
        "<@U123>",
        "<@U999>",
        "<http://evil.example",
        "<!subteam",
    ):
        assert dangerous not in joined
    # Every '&' Slack sees starts an entity; a bare one could forge one.
    assert not re.search(r"&(?!amp;|lt;|gt;)", joined)
    # The only links are ours: the post's URL, with '|' and '<' made harmless.
    targets = re.findall(r"<([^>|]*)\|", joined)
    assert targets == ["https://example.com/a?x=1&amp;y=%3Cb%3E%7Cc"]
    # Bare broadcasts are broken up too.
    assert "@here" not in joined and "@everyone" not in joined
    # And a reader still sees what the author wrote.
    assert (
        "Boss <!channel> & <!here> look: <@U123> <http://evil.example|acme.com>" in slack.render()
    )


def test_non_http_post_url_is_not_linked(slack, make_alert, make_post):
    post = make_post(0, url="javascript:alert(1)")
    bot(slack).send(make_alert(top_posts=(post,)))
    assert "javascript:" not in json.dumps(slack.messages[0].blocks)


def test_escape_and_clip_never_split_an_entity():
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
    clipped = escaped_clip("&" * 100, 12, max_len=12)
    assert len(clipped) <= 12 and clipped.endswith("…")
    assert re.fullmatch(r"(&amp;)*…", clipped)
    # the limit counts what a reader sees: an entity is one character
    seen = escaped_clip("&" * 100, 12)
    assert re.fullmatch(r"(&amp;){11}…", seen)


def test_huge_post_is_truncated_with_an_ellipsis(slack, make_alert, make_post):
    post = make_post(0, title="x" * 5000, text="word " * 4000)  # 20k characters
    bot(slack).send(make_alert(top_posts=(post,)))
    [message] = slack.messages  # the sandbox would have rejected a block over the limit
    section = post_section(message.blocks, post.url)
    text = section["text"]["text"]
    assert len(text) <= 3000
    assert "x" * 149 + "…" in text  # title cut
    assert text.endswith("…")  # excerpt cut
    assert len(json.dumps(message.payload)) < 40_000


def test_many_posts_stay_within_fifty_blocks(slack, make_alert):
    alert = make_alert(posts=40)
    bot(slack).send(alert)
    [message] = slack.messages
    assert len(message.blocks) <= 50
    shown = sum(1 for p in alert.top_posts if p.url in json.dumps(message.blocks))
    assert 10 <= shown < 40
    assert f"…and {40 - shown} more in Kibana." in json.dumps(message.blocks, ensure_ascii=False)
    assert message.blocks[-2]["type"] == "actions"  # the Kibana button survives


def test_long_brand_fits_the_header(slack, make_alert):
    bot(slack).send(make_alert(brand="A" * 400))
    header = slack.messages[0].blocks[0]["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")


def test_discover_url_over_slack_limit_drops_button_not_message(slack, make_alert):
    bot(slack).send(make_alert(discover_url="http://kibana.local/" + "a" * 3100))
    [message] = slack.messages
    assert not [b for b in message.blocks if b["type"] == "actions"]
    assert "Kibana link omitted" in json.dumps(message.blocks)


def test_high_reach_alert(slack, make_alert, make_post):
    post = make_post(7, author="bigaccount", author_reach=2_500_000)
    alert = make_alert(
        kind="high_reach", wave_id=post.id, top_posts=(post,), observed=1, expected=0
    )
    bot(slack).send(alert)
    [message] = slack.messages
    assert "High-reach negative post" in message.blocks[0]["text"]["text"]
    assert "bigaccount" in message.text and "2,500,000" in message.text
    assert "reach 2,500,000" in json.dumps(message.blocks)


THEMES = (
    AlertTheme("data loss · update · backups", 0.62, 52),
    AlertTheme("support · wait <!channel> & <@U1>", 0.21, 18),
)


def test_the_waves_themes_are_one_escaped_line_in_the_alert_and_its_thread_update(
    slack, make_alert
):
    notifier = bot(slack)
    first = notifier.send(make_alert(themes=THEMES))
    later = T0 + timedelta(hours=1)
    notifier.send(
        make_alert(
            "continuing", interval_start=later, interval_end=later + timedelta(hours=1),
            themes=THEMES,
        ),
        reply_to=first,
    )
    notifier.send(make_alert("ended", posts=0, themes=THEMES), reply_to=first)
    root, update, ended = slack.messages
    for message in (root, update):
        summary = next(t for t in mrkdwn_texts(message.blocks) if "Mostly:" in t)
        assert (
            "Mostly: data loss · update · backups (62%), "
            "support · wait &lt;!channel&gt; &amp; &lt;@U1&gt; (21%)."
        ) in summary
        assert "<!channel>" not in summary and "<@U1>" not in summary
    assert "Mostly: data loss · update · backups (62%)" in slack.render()
    # "Back to normal" says nothing about what the wave was about.
    assert "Mostly:" not in json.dumps(ended.blocks)
    # Without themes (too few posts), no line at all.
    notifier.send(make_alert(interval_end=T0 + timedelta(hours=3)))
    assert "Mostly" not in json.dumps(slack.messages[-1].blocks)


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------


def test_continuing_and_ended_go_into_the_waves_thread(slack, make_alert):
    notifier = bot(slack)
    first = notifier.send(make_alert())
    later = T0 + timedelta(hours=1)
    cont = notifier.send(
        make_alert("continuing", interval_start=later, interval_end=later + timedelta(hours=1)),
        reply_to=first,
    )
    end = notifier.send(
        make_alert(
            "ended",
            posts=0,
            interval_start=later,
            interval_end=later + timedelta(hours=2),
            observed=9,
        ),
        reply_to=cont,  # a reply to a reply still lands in the root's thread
    )
    root, reply1, reply2 = slack.messages
    assert reply1.thread_ts == root.ts == cont.thread_ts
    assert reply2.thread_ts == root.ts == end.thread_ts
    assert reply2.payload.get("reply_broadcast") is True  # "back to normal" shows in the channel
    assert reply1.payload.get("reply_broadcast") is None
    assert reply1.blocks[0]["type"] == "section"  # no second header inside a thread
    assert "still going on (2h 00m so far)" in json.dumps(reply1.blocks)
    assert "Back to normal" in reply2.text
    assert [m.ts for m in slack.replies(root.ts)] == [reply1.ts, reply2.ts]


# ---------------------------------------------------------------------------
# Rate limits and failures
# ---------------------------------------------------------------------------


def test_429_is_retried_after_the_retry_after_header(slack, make_alert):
    slack.rate_limit_next(retry_after=1)
    started = time.monotonic()
    bot(slack).send(make_alert())
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0
    assert [r.status for r in slack.requests] == [429, 200]
    assert len(slack.messages) == 1


def test_429_waits_are_bounded_and_counted(slack, make_alert):
    waits: list[float] = []
    slack.rate_limit_next(retry_after=7, n=2)
    bot(slack, sleep=waits.append).send(make_alert())
    assert waits == [7.0, 7.0]
    assert len(slack.messages) == 1

    slack.rate_limit_next(retry_after=3, n=5)
    with pytest.raises(SlackDeliveryError, match=r"rate limited \(HTTP 429\).*wait 3s") as info:
        bot(slack, sleep=waits.append, rate_limit_retries=2).send(make_alert())
    assert info.value.retryable and info.value.retry_after == 3
    assert len(slack.messages) == 1


def test_429_longer_than_the_bound_is_reported_not_slept(slack, make_alert):
    waits: list[float] = []
    slack.rate_limit_next(retry_after=600)
    with pytest.raises(SlackDeliveryError) as info:
        bot(slack, sleep=waits.append, max_retry_wait=30).send(make_alert())
    assert waits == []
    assert info.value.retry_after == 600
    assert not slack.messages


def test_outage_raises_a_clear_error_then_recovers(slack, make_alert):
    notifier = bot(slack)
    with slack.outage(503), pytest.raises(SlackDeliveryError, match=r"HTTP 503.*outage") as info:
        notifier.send(make_alert())
    assert info.value.retryable
    assert not slack.messages
    notifier.send(make_alert())
    assert len(slack.messages) == 1


def test_a_5xx_is_not_retried_blindly(slack, make_alert):
    # Slack may have posted before failing; a blind retry could post twice.
    slack.fail_next(1, status=500)
    with pytest.raises(SlackDeliveryError, match="HTTP 500"):
        bot(slack).send(make_alert())
    assert [r.status for r in slack.requests] == [500]


def test_invalid_token_names_the_setting(slack, make_alert):
    notifier = SlackNotifier(token="xoxb-wrong", channel=slack.channel, base_url=slack.base_url)
    with pytest.raises(
        SlackDeliveryError, match=r"invalid_auth \(the bot token is not valid; check slack.token\)"
    ) as info:
        notifier.send(make_alert())
    assert not info.value.retryable
    with pytest.raises(SlackDeliveryError, match="invalid_auth"):
        notifier.check()


def test_unknown_channel_names_the_setting(slack, make_alert):
    notifier = SlackNotifier(token=slack.token, channel="#nope", base_url=slack.base_url)
    with pytest.raises(SlackDeliveryError, match=r"channel_not_found.*slack.channel"):
        notifier.send(make_alert())


def test_channel_by_name_works(slack, make_alert):
    notifier = SlackNotifier(token=slack.token, channel="#brand-alerts", base_url=slack.base_url)
    assert notifier.send(make_alert()).channel == slack.channel
    assert "brandpulse" in notifier.check()


def test_network_down_raises_cannot_reach(make_alert):
    with SlackSandbox() as sandbox:
        url, token, channel = sandbox.base_url, sandbox.token, sandbox.channel
    # The sandbox is stopped: nothing listens on its port any more.
    notifier = SlackNotifier(token=token, channel=channel, base_url=url, timeout=2)
    with pytest.raises(SlackDeliveryError, match="cannot reach Slack") as info:
        notifier.send(make_alert())
    assert info.value.retryable
    assert not info.value.maybe_delivered  # refused: the request never reached Slack


# ---------------------------------------------------------------------------
# Incoming webhook
# ---------------------------------------------------------------------------


def test_webhook_delivers_the_same_message(slack, make_alert):
    notifier = SlackNotifier(webhook_url=slack.webhook_url)
    delivery = notifier.send(make_alert())
    [message] = slack.messages
    assert message.via == "webhook"
    assert delivery.ts is None  # webhooks return no message id
    assert message.blocks[0]["type"] == "header" and "Acme" in message.text


def test_webhook_follow_ups_are_new_messages_saying_the_wave_goes_on(slack, make_alert):
    notifier = SlackNotifier(webhook_url=slack.webhook_url)
    first = notifier.send(make_alert())
    notifier.send(make_alert("continuing"), reply_to=first)
    second = slack.messages[1]
    assert second.thread_ts is None
    assert second.blocks[0]["type"] == "header"  # a standalone message needs its header
    assert "Still elevated for Acme" in second.text


def test_webhook_errors_are_named(slack, make_alert):
    wrong = SlackNotifier(webhook_url=slack.url + "/services/T0/B0/revoked")
    with pytest.raises(SlackDeliveryError, match=r"no_service.*slack.webhook_url") as info:
        wrong.send(make_alert())
    assert not info.value.retryable

    notifier = SlackNotifier(webhook_url=slack.webhook_url)
    slack.fail_next(1, status=502)
    with pytest.raises(SlackDeliveryError, match="HTTP 502"):
        notifier.send(make_alert())

    waits: list[float] = []
    slack.rate_limit_next(retry_after=2)
    SlackNotifier(webhook_url=slack.webhook_url, sleep=waits.append).send(make_alert())
    assert waits == [2.0]
    assert len(slack.messages) == 1


# ---------------------------------------------------------------------------
# Construction and the core types
# ---------------------------------------------------------------------------


def test_from_config_and_registry(slack, make_alert):
    assert NOTIFIERS["slack"] is SlackNotifier
    section = SlackConfig(token=slack.token, channel=slack.channel, base_url=slack.base_url)
    notifier = SlackNotifier.from_config(section)
    assert notifier.supports_threads
    notifier.send(make_alert())
    hook = SlackNotifier.from_config(SlackConfig(webhook_url=slack.webhook_url))
    assert not hook.supports_threads
    hook.send(make_alert())
    assert [m.via for m in slack.messages] == ["api", "webhook"]

    config = Config.model_validate(
        {"brands": [{"name": "Acme"}], "slack": {"webhook_url": slack.webhook_url}}
    )
    assert isinstance(notifier_from_config(config), SlackNotifier)

    # Nothing configured, or an unset ${SLACK_BOT_TOKEN:-}: alerts go to the log.
    assert isinstance(
        notifier_from_config(Config.model_validate({"brands": [{"name": "Acme"}]})), LogNotifier
    )
    blank = Config.model_validate(
        {"brands": [{"name": "Acme"}], "slack": {"token": "", "channel": "#x"}}
    )
    assert isinstance(notifier_from_config(blank), LogNotifier)


def test_log_notifier_writes_the_alert_unescaped(make_alert, make_post, caplog):
    post = make_post(0, author="a<b>&c")
    alert = make_alert("high_reach", wave_id=post.id, top_posts=(post,), observed=1, expected=0)
    with caplog.at_level("WARNING", logger="brandpulse.alerts"):
        delivery = LogNotifier().send(alert)
    assert delivery.alert_id == alert.alert_id and delivery.ts is None
    [record] = caplog.records
    assert alert.alert_id in record.getMessage()
    assert "High-reach negative post about Acme by a<b>&c (reach 1,000)" in record.getMessage()
    assert post.url in record.getMessage()


def test_log_notifier_names_the_waves_themes(make_alert, caplog):
    with caplog.at_level("WARNING", logger="brandpulse.alerts"):
        LogNotifier().send(make_alert(themes=THEMES))
    [record] = caplog.records
    assert "Mostly: data loss · update · backups (62%), support · wait <!channel> & <@U1> (21%)" in (
        record.getMessage()
    )


def test_constructor_needs_exactly_one_way_in():
    with pytest.raises(ValueError, match="neither"):
        SlackNotifier()
    with pytest.raises(ValueError, match="both"):
        SlackNotifier(token="xoxb-1", channel="C1", webhook_url="http://x/services/a")
    with pytest.raises(ValueError, match="needs a channel"):
        SlackNotifier(token="xoxb-1")


def test_alert_ids_are_deterministic_and_round_trip(make_alert):
    a, b = make_alert(), make_alert()
    assert (
        a.alert_id
        == b.alert_id
        == alert_id_for("started", "Acme", wave_id_for("Acme", T0), a.interval_end)
    )
    assert make_alert("continuing").alert_id != a.alert_id
    assert make_alert(interval_end=T0 + timedelta(hours=2)).alert_id != a.alert_id
    again = Alert.from_dict(json.loads(json.dumps(a.to_dict())))
    assert again == a
    themed = make_alert(themes=THEMES)
    assert Alert.from_dict(json.loads(json.dumps(themed.to_dict()))) == themed
    assert again.top_posts[0].id == a.top_posts[0].id


def test_alert_rejects_naive_times_and_inverted_windows(make_alert):
    with pytest.raises(ValueError, match="naive datetime"):
        make_alert(interval_start=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        make_alert(interval_end=T0 - timedelta(minutes=5))


def test_kibana_discover_url_selects_brand_negative_and_time():
    url = kibana_discover_url("http://kb:5601/", "Ac\"me's", T0, T0 + timedelta(hours=1))
    parts = urlsplit(url)
    assert parts.path == "/app/discover"
    state = parse_qs(parts.fragment.split("?", 1)[1])
    g, a = unquote(state["_g"][0]), unquote(state["_a"][0])
    assert g == "(time:(from:'2026-11-27T14:00:00Z',to:'2026-11-27T15:00:00Z'))"
    assert "index:brandpulse-mentions" in a
    # KQL escapes the double quote; rison escapes the single quote with '!'.
    assert ("query:'brands:\"Ac\\\"me!'s\" and (brand_sentiment_keys:\"Ac\\\"me!'s|negative\""
            " or (not brand_sentiment_keys:* and sentiment.label:negative))'") in a
    assert "language:kuery" in a
    assert rison({"a": [True, None, "x y"]}) == "(a:!(!t,!n,'x y'))"


def test_sandbox_renderer_decodes_what_slack_shows():
    assert mrkdwn_to_text("&lt;!channel&gt; &amp; <https://x.io/a?b=1&amp;c=2|*site*>") == (
        "<!channel> & site (https://x.io/a?b=1&c=2)"
    )


# ---------------------------------------------------------------------------
# Reading back: did an attempt that looked failed reach the channel?
# ---------------------------------------------------------------------------


def test_failures_say_whether_the_message_may_have_arrived(slack, make_alert):
    slack.fail_next(1, status=502, after_posting=True)
    with pytest.raises(SlackDeliveryError, match="HTTP 502") as info:
        bot(slack).send(make_alert())
    assert info.value.maybe_delivered
    assert len(slack.messages) == 1  # Slack took it; the answer got lost on the way back
    wrong = SlackNotifier(token="xoxb-wrong", channel=slack.channel, base_url=slack.base_url)
    with pytest.raises(SlackDeliveryError) as info:
        wrong.send(make_alert())
    assert not info.value.maybe_delivered


def test_find_reads_back_a_posted_alert_and_a_thread_reply(slack, make_alert):
    notifier = bot(slack)
    alert = make_alert()
    assert notifier.find(alert) is None
    first = notifier.send(alert)
    found = notifier.find(alert)
    assert found is not None and (found.ts, found.channel) == (first.ts, slack.channel)

    later = T0 + timedelta(hours=1)
    follow = make_alert("continuing", interval_start=later, interval_end=later + timedelta(hours=1))
    assert notifier.find(follow, reply_to=first) is None
    reply = notifier.send(follow, reply_to=first)
    found = notifier.find(follow, reply_to=first)
    assert found is not None and (found.ts, found.thread_ts) == (reply.ts, first.ts)
    assert notifier.find(follow) is None  # a reply is not in the channel's own history


def test_find_needs_a_channel_id(slack, make_alert):
    alert = make_alert()
    bot(slack).send(alert)
    named = SlackNotifier(token=slack.token, channel="#brand-alerts", base_url=slack.base_url)
    with pytest.raises(CannotTell, match="not known yet"):
        named.find(alert)
    found = named.find(alert, channel=slack.channel)  # the engine's hint from its outbox
    assert found is not None and found.ts == slack.messages[0].ts


def test_find_cannot_tell_without_history_scope_or_with_a_webhook(make_alert):
    with SlackSandbox(history_scope=False) as slack:
        with pytest.raises(CannotTell, match="missing_scope"):
            bot(slack).find(make_alert())
        with pytest.raises(CannotTell, match="webhook"):
            SlackNotifier(webhook_url=slack.webhook_url).find(make_alert())
