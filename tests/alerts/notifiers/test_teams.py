"""TeamsNotifier against the local Teams connector of sandbox.bots (real HTTP).

The sandbox refuses what Teams refuses (a message that is not an Adaptive Card
webhook message, over 28 KB, an unknown webhook) and throttles the way the connector
does: HTTP 200 with a "delivery failed ... HTTP error 429" text.
"""

from __future__ import annotations

import logging
import re

import pytest

from alerts.notifiers import NOTIFIERS, notifier_from_config
from alerts.notifiers.base import CannotTell
from alerts.notifiers.http import ChannelError
from alerts.notifiers.teams import TeamsNotifier
from alerts.notifiers.teams_templates import MAX_BODY_BYTES, escape
from brandpulse.config import Config, ConfigError, parse_config
from sandbox.bots import TEAMS_PATH, teams_texts


def teams(bots, **kwargs) -> TeamsNotifier:
    return TeamsNotifier(url=bots.teams_url, **kwargs)


def card_of(message) -> dict:
    [attachment] = message.payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def test_alert_arrives_as_adaptive_card(bots, make_alert):
    alert = make_alert()
    delivery = teams(bots).send(alert)
    [message] = bots.messages("teams")
    assert delivery.notifier == "teams" and delivery.alert_id == alert.alert_id
    assert message.payload["type"] == "message"
    card = card_of(message)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = teams_texts(message.payload)
    assert texts[0] == "Negative spike: Acme"
    assert any("84 negative mentions of Acme" in t for t in texts)
    assert "Negative mentions" in texts and "84 (usual 12)" in texts  # the FactSet
    for i, post in enumerate(alert.top_posts):
        link = f"]({post.url}) (www.reddit.com)"
        assert any(link in t and "Acme support ignored me" in t for t in texts), post.url
        assert any(t.startswith(f"user{i} · reach") for t in texts)
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in Kibana",
                                "url": alert.discover_url}]  # fmt: skip
    assert any(alert.alert_id in t for t in texts)  # the footer


def test_notice_arrives(bots, make_notice):
    notice = make_notice(kind="elasticsearch_down", subject="elasticsearch", spooled=12)
    teams(bots).send_notice(notice)
    texts = teams_texts(bots.messages("teams")[0].payload)
    assert texts[0] == "Elasticsearch down"
    assert "spooled (12 so far)" in texts[1]


HOSTILE = "**bold** [kibana](http://evil.example) # head <at>all</at> _x_ `code`"


def test_post_text_cannot_format_link_or_mention(bots, make_alert, make_post):
    post = make_post(0, title=HOSTILE, text=HOSTILE + " \u202eevil", author="[boss](http://evil.example)",
                     url="javascript:alert(1)")  # fmt: skip
    teams(bots).send(make_alert(brand="Acme", top_posts=(post,)))
    texts = teams_texts(bots.messages("teams")[0].payload)
    joined = "\n".join(texts)
    # every Markdown character of the post is escaped: no unescaped [ * _ ` # < left
    for t in texts:
        if "evil.example" in t or "boss" in t:
            inner = t[2:-2] if t.startswith("**") and t.endswith("**") else t  # our own bold
            assert not re.search(r"(?<!\\)[\[*_`#<]", inner), t
    assert "\u202e" not in joined
    assert "](javascript" not in joined  # not a link: the title alone


def test_long_alert_is_cut_under_the_limit_keeping_kibana(bots, make_alert, make_post):
    posts = tuple(make_post(i, title="Ü" * 2000 + str(i), text="ж" * 20_000) for i in range(60))
    alert = make_alert(top_posts=posts)
    teams(bots).send(alert)
    [message] = bots.messages("teams")
    assert len(message.body) <= MAX_BODY_BYTES
    card = card_of(message)
    assert card["actions"][0]["url"] == alert.discover_url
    texts = teams_texts(message.payload)
    assert texts[0] == "Negative spike: Acme"
    assert any(t.startswith("…and ") and t.endswith("more in Kibana.") for t in texts)


def test_unknown_webhook_is_not_retryable_and_url_not_shown(bots, make_alert, caplog):
    caplog.set_level(logging.DEBUG)
    url = bots.url + TEAMS_PATH.replace("0sandboxhook", "revoked-secret-id")
    with pytest.raises(ChannelError) as info:
        TeamsNotifier(url=url).send(make_alert())
    error = info.value
    assert error.notifier == "teams" and error.status == 404 and not error.retryable
    assert "teams.url" in str(error)
    assert "revoked-secret-id" not in str(error) and "revoked-secret-id" not in caplog.text


def test_throttling_reported_in_a_200_is_retryable(bots, make_alert):
    bots.rate_limits["teams"] = 1
    notifier = teams(bots)
    notifier.send(make_alert())
    with pytest.raises(ChannelError) as info:
        notifier.send(make_alert(kind="continuing"))
    assert info.value.retryable and info.value.status == 429
    assert not info.value.maybe_delivered
    assert len(bots.messages("teams")) == 1


def test_429_with_retry_after_and_5xx(bots, make_alert):
    bots.rate_limit_next(retry_after=3)
    with pytest.raises(ChannelError) as limited:
        teams(bots).send(make_alert())
    assert limited.value.retryable and limited.value.retry_after == 3.0
    bots.fail_next(status=503)
    with pytest.raises(ChannelError) as down:
        teams(bots).send(make_alert())
    assert down.value.maybe_delivered and down.value.retryable
    assert bots.messages() == []


def test_find_cannot_tell_config_and_registry(bots, make_alert):
    notifier = teams(bots)
    with pytest.raises(CannotTell):
        notifier.find(make_alert())
    assert "not verifiable without posting" in notifier.check()
    assert NOTIFIERS["teams"] is TeamsNotifier
    config = Config.model_validate({"brands": [{"name": "Acme"}], "teams": {"url": bots.teams_url}})
    assert isinstance(notifier_from_config(config), TeamsNotifier)
    with pytest.raises(ConfigError) as info:
        parse_config({"brands": [{"name": "Acme"}],
                      "teams": {"url": "http://acme.webhook.office.com/webhookb2/sekrit-77"}})  # fmt: skip
    assert "teams.url: must be an https:// URL" in str(info.value)
    assert "sekrit-77" not in str(info.value)


def test_escape_neutralises_markdown_and_list_markers():
    assert escape("*b* [l](u) `c` ~s~ <at>x</at> # h") == (
        r"\*b\* \[l\](u) \`c\` \~s\~ \<at\>x\</at\> \# h"
    )
    assert escape("- item") == r"\- item" and escape("12. item") == r"12\. item"
    assert escape("2026-11-27 (7.0× usual).") == "2026-11-27 (7.0× usual)."  # our own text stays readable
