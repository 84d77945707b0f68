"""FeishuNotifier against the local Feishu custom bot of sandbox.bots (real HTTP).

The sandbox checks the hook id, the signature and its timestamp (within an hour), the
card's shape, the 20 KB body limit and the 5-a-second / 100-a-minute rates, answering
with Feishu's codes (19001, 19021, 9499 "Bad Request" / "too many request", 11232).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time

import pytest

from alerts.notifiers import NOTIFIERS, notifier_from_config
from alerts.notifiers.base import CannotTell
from alerts.notifiers.feishu import FeishuNotifier, sign
from alerts.notifiers.feishu_templates import MAX_BODY_BYTES
from alerts.notifiers.http import ChannelError
from brandpulse.config import Config, ConfigError, parse_config
from sandbox.bots import FEISHU_MAX_BYTES, BotSandbox, feishu_texts


def bot(bots, **kwargs) -> FeishuNotifier:
    kwargs.setdefault("secret", bots.feishu_secret)
    return FeishuNotifier(url=bots.feishu_url, **kwargs)


def buttons(payload: dict) -> list[dict]:
    return [a for e in payload["card"]["elements"] if e["tag"] == "action" for a in e["actions"]]


def test_alert_arrives_as_signed_card(bots, make_alert):
    alert = make_alert()
    delivery = bot(bots).send(alert)
    [message] = bots.messages("feishu")
    assert delivery.notifier == "feishu" and delivery.alert_id == alert.alert_id
    payload = message.payload
    assert payload["msg_type"] == "interactive" and payload["timestamp"].isdigit() and payload["sign"]
    card = payload["card"]
    assert card["header"] == {"title": {"tag": "plain_text", "content": "Negative spike: Acme"},
                              "template": "red"}  # fmt: skip
    texts = feishu_texts(payload)
    assert {tag for tag, _ in texts} == {"plain_text"}  # nothing is parsed as Markdown
    contents = [c for _, c in texts]
    assert any("84 negative mentions of Acme" in c for c in contents)
    assert "Brand: Acme" in contents
    assert any(c.startswith("Acme support ignored me (0)\nuser0 · reach 1,000") for c in contents)
    urls = [b["url"] for b in buttons(payload)]
    assert urls == [p.url for p in alert.top_posts] + [alert.discover_url]
    assert buttons(payload)[0]["text"]["content"] == "Open post (www.reddit.com)"
    assert f"alert {alert.alert_id} · wave {alert.wave_id}" in contents


def test_signature_is_feishus():
    # key = f"{timestamp}\n{secret}", message empty
    expected = base64.b64encode(hmac.new(b"1700000000\nsec", b"", hashlib.sha256).digest()).decode()
    assert sign("sec", 1700000000) == expected


def test_notice_arrives(bots, make_notice):
    bot(bots).send_notice(make_notice(kind="elasticsearch_back", subject="elasticsearch", spooled=3))
    payload = bots.messages("feishu")[0].payload
    assert payload["card"]["header"]["template"] == "green"
    assert any("Elasticsearch is back" in c for _, c in feishu_texts(payload))


def test_hostile_text_stays_plain(bots, make_alert, make_post):
    hostile = '<at id=all></at> <at user_id="all">x</at> **b** [k](http://evil.example) \u202egnp'
    post = make_post(0, title=hostile, text=hostile, author="<at id=all></at>",
                     url="https://good.example@evil.example/p")  # fmt: skip
    bot(bots).send(make_alert(top_posts=(post,)))
    payload = bots.messages("feishu")[0].payload
    for tag, content in feishu_texts(payload):
        assert tag == "plain_text" and "\u202e" not in content
    assert buttons(payload)[0]["url"] == "https://evil.example/p"
    assert buttons(payload)[0]["text"]["content"] == "Open post (evil.example)"


def test_card_stays_under_20_kb_keeping_kibana(bots, make_alert, make_post):
    posts = tuple(make_post(i, title="飞" * 1500, text="书" * 20_000) for i in range(60))
    alert = make_alert(top_posts=posts)
    bot(bots).send(alert)
    [message] = bots.messages("feishu")
    assert len(message.body) <= FEISHU_MAX_BYTES and len(message.body) <= MAX_BODY_BYTES + 200
    assert buttons(message.payload)[-1]["url"] == alert.discover_url
    assert any("more in Kibana." in c for _, c in feishu_texts(message.payload))


def test_wrong_secret_is_refused_not_retryable_and_never_shown(bots, make_alert, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ChannelError) as info:
        bot(bots, secret="wrong-feishu-secret").send(make_alert())
    error = info.value
    assert error.notifier == "feishu" and error.code == 19021 and not error.retryable
    assert "feishu.secret" in str(error)
    for leaked in ("wrong-feishu-secret", "0sandbox-feishu-hook"):
        assert leaked not in str(error) and leaked not in caplog.text
    with pytest.raises(ChannelError, match="19021"):
        bot(bots, secret="wrong-feishu-secret").check()
    with pytest.raises(ChannelError, match="19021"):
        bot(bots, clock=lambda: time.time() - 7200).send(make_alert())
    assert bots.messages() == []


def test_unknown_hook_is_not_retryable(bots, make_alert):
    url = bots.feishu_url.replace("0sandbox-feishu-hook", "deleted-hook-42")
    with pytest.raises(ChannelError) as info:
        FeishuNotifier(url=url, secret="s").send(make_alert())
    assert info.value.code == 19001 and not info.value.retryable and info.value.status == 400
    assert "deleted-hook-42" not in str(info.value)


def test_rate_limits_are_retryable(make_alert):
    clock = [1_800_000_000.0]
    with BotSandbox(clock=lambda: clock[0], rate_limits={"feishu": 6}) as bots:
        notifier = bot(bots, clock=lambda: clock[0])
        for _ in range(5):
            notifier.send(make_alert())
        with pytest.raises(ChannelError) as per_second:
            notifier.send(make_alert())
        assert per_second.value.code == 9499 and per_second.value.retryable
        assert "rate limited" in str(per_second.value) and "bug" not in str(per_second.value)
        clock[0] += 2
        notifier.send(make_alert())  # the sixth of the minute
        with pytest.raises(ChannelError) as per_minute:
            notifier.send(make_alert())
        assert per_minute.value.code == 11232 and per_minute.value.retryable
        assert not per_minute.value.maybe_delivered
        assert len(bots.messages("feishu")) == 6


def test_bad_request_is_not_retryable(bots, make_alert, make_post):
    # A body over 20 KB is refused as "Bad Request" (9499, like the per-second limit):
    # the msg tells them apart. The template never sends one; a raw oversized probe does.
    from alerts.notifiers.http import encode_json, post_json

    answer = post_json("feishu", bots.feishu_url, encode_json({"msg_type": "text", "x": "y" * 30_000}))
    assert answer.status == 400 and answer.json()["code"] == 9499
    with pytest.raises(ChannelError) as info:
        bot(bots)._deliver({"msg_type": "nonsense"})
    assert info.value.code == 9499 and not info.value.retryable and "BrandPulse bug" in str(info.value)


def test_5xx_and_429(bots, make_alert):
    bots.fail_next(status=504)
    with pytest.raises(ChannelError) as down:
        bot(bots).send(make_alert())
    assert down.value.maybe_delivered and down.value.retryable
    bots.rate_limit_next(retry_after=4)
    with pytest.raises(ChannelError) as limited:
        bot(bots).send(make_alert())
    assert limited.value.retry_after == 4.0


def test_check_without_posting_find_config_registry(bots, make_alert):
    assert "accepted (signed" in bot(bots).check()
    assert bots.messages() == [] and [r.code for r in bots.requests] == [9499]  # "Bad Request"
    with pytest.raises(CannotTell):
        bot(bots).find(make_alert())
    assert NOTIFIERS["feishu"] is FeishuNotifier
    config = Config.model_validate({"brands": [{"name": "Acme"}],
                                    "feishu": {"url": bots.feishu_url, "secret": bots.feishu_secret}})  # fmt: skip
    notifier = notifier_from_config(config)
    assert isinstance(notifier, FeishuNotifier)
    notifier.send(make_alert())
    with pytest.raises(ConfigError) as info:
        parse_config({"brands": [{"name": "Acme"}],
                      "feishu": {"url": "https://open.feishu.cn/open-apis/bot/v1/hook-secret-5"}})  # fmt: skip
    assert "feishu.url: must be the bot's webhook URL" in str(info.value)
    assert "hook-secret-5" not in str(info.value)


def test_webhook_urls_are_masked_wherever_printed():
    from brandpulse.secrets import mask_url

    assert mask_url("https://open.feishu.cn/open-apis/bot/v2/hook/abc-123") == "https://open.feishu.cn/open-apis/***"
    assert "sec-9" not in mask_url("https://acme.webhook.office.com/webhookb2/g@t/IncomingWebhook/sec-9/o")
    assert mask_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1").endswith("key=***")
    assert mask_url("https://oapi.dingtalk.com/robot/send?access_token=t1").endswith("access_token=***")
