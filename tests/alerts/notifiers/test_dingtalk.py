"""DingtalkNotifier against the local DingTalk custom robot of sandbox.bots (real HTTP).

The sandbox checks the access token, the signature and its timestamp (within an hour),
custom keywords and the 20-a-minute rate, answering with DingTalk's errcodes
(300001, 310000, 130101).
"""

from __future__ import annotations

import logging
import time

import pytest

from alerts.notifiers import NOTIFIERS, notifier_from_config
from alerts.notifiers.base import CannotTell
from alerts.notifiers.chat_markdown import link_target
from alerts.notifiers.dingtalk import DingtalkNotifier, sign
from alerts.notifiers.dingtalk_templates import MAX_TEXT_BYTES
from alerts.notifiers.http import ChannelError
from brandpulse.config import Config, ConfigError, parse_config
from sandbox.bots import BotSandbox


def ding(bots, **kwargs) -> DingtalkNotifier:
    kwargs.setdefault("secret", bots.dingtalk_secret)
    return DingtalkNotifier(url=bots.dingtalk_url, **kwargs)


def markdown_of(message) -> dict:
    assert message.payload["msgtype"] == "markdown"
    assert message.payload["at"] == {"isAtAll": False, "atMobiles": [], "atUserIds": []}
    return message.payload["markdown"]


def test_alert_arrives_signed_as_markdown(bots, make_alert):
    alert = make_alert()
    delivery = ding(bots).send(alert)
    [message] = bots.messages("dingtalk")
    assert delivery.notifier == "dingtalk" and delivery.alert_id == alert.alert_id
    markdown = markdown_of(message)
    assert markdown["title"] == "Negative spike: Acme"
    text = markdown["text"]
    assert text.startswith("### Negative spike: Acme\n\n")
    assert "84 negative mentions of Acme" in text
    for i, post in enumerate(alert.top_posts):
        assert f"**[Acme support ignored me ({i})]({post.url}) (www.reddit.com)**  \n> user{i}" in text
    assert f"[Open in Kibana]({link_target(alert.discover_url)})" in text
    assert alert.alert_id in text


def test_signature_is_dingtalks():
    # the documented example's construction: base64(HmacSHA256(secret, f"{ts}\n{secret}"))
    import base64
    import hashlib
    import hmac

    secret, ts = "SECexample", 1_700_000_000_000
    expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
    assert sign(secret, ts) == expected


def test_notice_arrives(bots, make_notice):
    ding(bots).send_notice(make_notice())
    markdown = markdown_of(bots.messages("dingtalk")[0])
    assert markdown["title"] == "Source failing: reddit" and "failed 3 crawls" in markdown["text"]


def test_post_text_cannot_mention_or_format(bots, make_alert, make_post):
    hostile = "@all @13800000000 **b** [x](http://evil.example) <font color=red>y</font> # h"
    ding(bots).send(make_alert(top_posts=(make_post(0, title=hostile, text=hostile, author="@all"),)))
    text = markdown_of(bots.messages("dingtalk")[0])["text"]
    for inert in ("@all", "@1380", "**b**", "[x](http://evil", "<font"):
        assert inert not in text, inert


def test_text_is_bounded(bots, make_alert, make_post):
    posts = tuple(make_post(i, title="标" * 300, text="长" * 30_000) for i in range(10))
    alert = make_alert(top_posts=posts)
    ding(bots).send(alert)
    text = markdown_of(bots.messages("dingtalk")[0])["text"]
    assert len(text.encode()) <= MAX_TEXT_BYTES
    assert link_target(alert.discover_url) in text and alert.alert_id in text


def test_wrong_secret_is_refused_not_retryable_and_never_shown(bots, make_alert, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ChannelError) as info:
        ding(bots, secret="SECwrong-secret-value").send(make_alert())
    error = info.value
    assert error.notifier == "dingtalk" and error.code == 310000 and not error.retryable
    assert "sign not match" in str(error) and "dingtalk.secret" in str(error)
    for leaked in ("SECwrong-secret-value", "0sandbox-dingtalk-token"):
        assert leaked not in str(error) and leaked not in caplog.text
    with pytest.raises(ChannelError, match="310000"):
        ding(bots, secret="SECwrong-secret-value").check()
    assert bots.messages() == []


def test_stale_timestamp_and_unknown_token_are_refused(bots, make_alert):
    with pytest.raises(ChannelError, match="invalid timestamp"):
        ding(bots, clock=lambda: time.time() - 2 * 3600).send(make_alert())
    url = bots.dingtalk_url.replace("0sandbox-dingtalk-token", "gone-token-77")
    with pytest.raises(ChannelError) as info:
        DingtalkNotifier(url=url, secret="x").send(make_alert())
    assert info.value.code == 300001 and not info.value.retryable
    assert "gone-token-77" not in str(info.value)


def test_an_unsigned_robot_is_warned_about():
    config = Config.model_validate({"brands": [{"name": "Acme"}],
                                    "dingtalk": {"url": "https://oapi.dingtalk.com/robot/send?access_token=t"}})  # fmt: skip
    [warning] = config.warnings()
    assert "dingtalk.url is set without dingtalk.secret" in warning
    signed = Config.model_validate({"brands": [{"name": "Acme"}], "dingtalk": {
        "url": "https://oapi.dingtalk.com/robot/send?access_token=t", "secret": "SECx"}})  # fmt: skip
    assert signed.warnings() == []


def test_keyword_robot(make_alert):
    with BotSandbox(dingtalk_robots={"kw-token": None}, dingtalk_keywords=("监控",)) as bots:
        with pytest.raises(ChannelError, match="keywords not in content"):
            DingtalkNotifier(url=bots.dingtalk_url).send(make_alert())
        DingtalkNotifier(url=bots.dingtalk_url, keyword="监控").send(make_alert())
        assert markdown_of(bots.messages("dingtalk")[0])["title"].endswith("[监控]")


def test_rate_limit_is_retryable(bots, make_alert):
    bots.rate_limits["dingtalk"] = 1
    notifier = ding(bots)
    notifier.send(make_alert())
    with pytest.raises(ChannelError) as info:
        notifier.send(make_alert(kind="ended"))
    assert info.value.code == 130101 and info.value.retryable and not info.value.maybe_delivered


def test_5xx_may_have_delivered_timeout_too(bots, silent_port, make_alert):
    bots.fail_next(status=502, after_posting=True)
    with pytest.raises(ChannelError) as info:
        ding(bots).send(make_alert())
    assert info.value.maybe_delivered and len(bots.messages()) == 1
    url = f"http://127.0.0.1:{silent_port}/robot/send?access_token=hung-token-5"
    with pytest.raises(ChannelError) as hung:
        DingtalkNotifier(url=url, secret="SECx", timeout=0.5).send(make_alert())
    assert hung.value.maybe_delivered and "hung-token-5" not in str(hung.value)


def test_check_without_posting_find_config_registry(bots, make_alert):
    assert "accepted (signed" in ding(bots).check()
    assert bots.messages() == [] and [r.code for r in bots.requests] == [40035]
    with pytest.raises(CannotTell):
        ding(bots).find(make_alert())
    assert NOTIFIERS["dingtalk"] is DingtalkNotifier
    config = Config.model_validate({"brands": [{"name": "Acme"}],
                                    "dingtalk": {"url": bots.dingtalk_url, "secret": bots.dingtalk_secret}})  # fmt: skip
    notifier = notifier_from_config(config)
    assert isinstance(notifier, DingtalkNotifier)
    notifier.send(make_alert())
    with pytest.raises(ConfigError) as info:
        parse_config({"brands": [{"name": "Acme"}],
                      "dingtalk": {"url": "https://oapi.dingtalk.com/robot/send?token=t-secret-1"}})  # fmt: skip
    assert "dingtalk.url: must carry the credential as ?access_token=" in str(info.value)
    assert "t-secret-1" not in str(info.value)
