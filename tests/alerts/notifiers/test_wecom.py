"""WecomNotifier against the local WeCom group bot of sandbox.bots (real HTTP).

The sandbox checks the key, the message type, the 4096-byte content limit and the
20-a-minute rate, answering with WeCom's errcodes (93000, 40008, 40058, 45009).
"""

from __future__ import annotations

import logging

import pytest

from alerts.notifiers import NOTIFIERS, notifier_from_config
from alerts.notifiers.base import CannotTell
from alerts.notifiers.chat_markdown import escape, link_target
from alerts.notifiers.http import ChannelError
from alerts.notifiers.wecom import WecomNotifier
from alerts.notifiers.wecom_templates import MAX_CONTENT_BYTES
from brandpulse.config import Config, ConfigError, parse_config
from sandbox.bots import WECOM_PATH


def wecom(bots, **kwargs) -> WecomNotifier:
    return WecomNotifier(url=bots.wecom_url, **kwargs)


def content_of(message) -> str:
    assert message.payload["msgtype"] == "markdown"
    return message.payload["markdown"]["content"]


def test_alert_arrives_as_markdown(bots, make_alert):
    alert = make_alert()
    delivery = wecom(bots).send(alert)
    [message] = bots.messages("wecom")
    assert delivery.notifier == "wecom" and delivery.alert_id == alert.alert_id
    text = content_of(message)
    assert text.startswith("### Negative spike: Acme\n")
    assert "84 negative mentions of Acme" in text and "> Negative share: 42% (usual 12%)" in text
    for i, post in enumerate(alert.top_posts):
        assert f"**[Acme support ignored me ({i})]({post.url}) (www.reddit.com)**" in text
        assert f"> user{i} · reach" in text
    # parentheses percent-encoded inside the link (Kibana decodes them)
    assert f"[Open in Kibana]({link_target(alert.discover_url)})" in text
    assert "(" not in link_target(alert.discover_url) and "%28" in text
    assert f'<font color="comment">alert {alert.alert_id}' in text


def test_notice_arrives(bots, make_notice):
    wecom(bots).send_notice(make_notice(kind="source_back", subject="hn"))
    text = content_of(bots.messages("wecom")[0])
    assert text.startswith("### Source recovered: hn") and "crawling again" in text


def test_post_text_cannot_mention_format_or_link(bots, make_alert, make_post):
    hostile = '<@all> <font color="warning">x</font> **b** [kibana](http://evil.example) `c` # h @all'
    post = make_post(0, title=hostile, text=hostile + " \u202eevil", author="<@boss>")
    wecom(bots).send(make_alert(top_posts=(post,)))
    text = content_of(bots.messages("wecom")[0])
    for inert in ("<@all>", "<@boss>", "<font color=\"warning\">", "**b**", "[kibana](http://evil", "`c`", "@all"):
        assert inert not in text, inert
    assert "\u202e" not in text
    assert escape(hostile) in text  # shown, full-width: ＜@⁠all＞ ...


def test_content_is_cut_to_4096_bytes_keeping_link_and_id(bots, make_alert, make_post):
    posts = tuple(make_post(i, title="标题" * 100, text="很长的抱怨" * 2000) for i in range(10))
    alert = make_alert(top_posts=posts)
    wecom(bots).send(alert)
    text = content_of(bots.messages("wecom")[0])
    assert len(text.encode("utf-8")) <= MAX_CONTENT_BYTES
    assert f"[Open in Kibana]({link_target(alert.discover_url)})" in text and alert.alert_id in text
    assert "more in Kibana." in text


def test_a_huge_title_is_cut_not_the_other_posts(bots, make_alert, make_post):
    posts = (make_post(0, title="标" * 5000), make_post(1), make_post(2))
    wecom(bots).send(make_alert(top_posts=posts))
    text = content_of(bots.messages("wecom")[0])
    assert "标" * 149 + "…" in text and "标" * 151 not in text
    assert all(p.url in text for p in posts)  # every post still shown


def test_wrong_key_is_not_retryable_and_never_shown(bots, make_alert, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"{bots.url}{WECOM_PATH}?key=wrong-secret-key-123"
    with pytest.raises(ChannelError) as info:
        WecomNotifier(url=url).send(make_alert())
    error = info.value
    assert error.notifier == "wecom" and error.code == 93000 and not error.retryable
    assert "wecom.url" in str(error)
    assert "wrong-secret-key-123" not in str(error) and "wrong-secret-key-123" not in caplog.text
    with pytest.raises(ChannelError, match="93000"):
        WecomNotifier(url=url).check()
    assert bots.messages() == []


def test_rate_limit_is_retryable(bots, make_alert):
    bots.rate_limits["wecom"] = 2
    notifier = wecom(bots)
    notifier.send(make_alert())
    notifier.send(make_alert(kind="continuing"))
    with pytest.raises(ChannelError) as info:
        notifier.send(make_alert(kind="ended"))
    assert info.value.code == 45009 and info.value.retryable and not info.value.maybe_delivered
    assert len(bots.messages("wecom")) == 2


def test_an_errcode_in_a_429_is_read_with_its_retry_after(bots, make_alert):
    bots.rate_limit_next(retry_after=12, body={"errcode": 45009, "errmsg": "api freq out of limit"})
    with pytest.raises(ChannelError) as info:
        wecom(bots).send(make_alert())
    assert info.value.code == 45009 and info.value.retry_after == 12.0 and info.value.retryable


def test_5xx_and_429(bots, make_alert):
    bots.fail_next(status=500, after_posting=True)
    with pytest.raises(ChannelError) as down:
        wecom(bots).send(make_alert())
    assert down.value.maybe_delivered and down.value.retryable
    bots.rate_limit_next(retry_after=30)
    with pytest.raises(ChannelError) as limited:
        wecom(bots).send(make_alert())
    assert limited.value.retry_after == 30.0 and not limited.value.maybe_delivered


def test_check_validates_the_key_without_posting(bots):
    assert "key accepted" in wecom(bots).check()
    assert bots.messages() == [] and [r.code for r in bots.requests] == [40008]


def test_find_config_and_registry(bots, make_alert):
    with pytest.raises(CannotTell):
        wecom(bots).find(make_alert())
    assert NOTIFIERS["wecom"] is WecomNotifier
    config = Config.model_validate({"brands": [{"name": "Acme"}], "wecom": {"url": bots.wecom_url}})
    assert isinstance(notifier_from_config(config), WecomNotifier)
    with pytest.raises(ConfigError) as info:
        parse_config({"brands": [{"name": "Acme"}], "wecom": {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?kye=k-9"}})
    assert "wecom.url: must carry the credential as ?key=" in str(info.value)
    assert "k-9" not in str(info.value)
