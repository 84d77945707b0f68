"""WebhookNotifier against the local signed-webhook receiver of sandbox.bots (real HTTP).

The sandbox verifies the signature the way docs/channels.md tells receivers to, so
"the message arrived" also means "a correct receiver accepts it".
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from alerts.notifiers import NOTIFIERS, notifier_from_config
from alerts.notifiers.base import CannotTell
from alerts.notifiers.http import ChannelError
from alerts.notifiers.webhook import WebhookNotifier, signature
from alerts.notifiers.webhook_templates import MAX_BODY_BYTES
from brandpulse.config import Config, ConfigError, WebhookConfig, parse_config


def hook(bots, **kwargs) -> WebhookNotifier:
    return WebhookNotifier(url=bots.webhook_url, secret=bots.webhook_secret, **kwargs)


def test_alert_arrives_as_documented_signed_json(bots, make_alert):
    alert = make_alert()
    delivery = hook(bots).send(alert)

    [message] = bots.messages("webhook")
    assert delivery.alert_id == alert.alert_id and delivery.notifier == "webhook"
    body = message.payload
    assert body["schema"] == "brandpulse.alert/1" and body["event"] == "alert"
    assert body["id"] == alert.alert_id == message.headers["x-brandpulse-id"]
    assert message.headers["x-brandpulse-event"] == "alert"
    assert body["text"].startswith("Negative spike for Acme: 84 negative mentions")
    data = body["alert"]
    assert data["brand"] == "Acme" and data["observed"] == 84 and data["expected"] == 12.0
    assert data["wave_id"] == alert.wave_id and data["discover_url"] == alert.discover_url
    assert data["interval_start"] == "2026-11-27T14:00:00+00:00"
    assert [p["url"] for p in data["top_posts"]] == [p.url for p in alert.top_posts]
    assert data["top_posts"][0]["author"] == "user0" and data["top_posts"][0]["author_reach"] == 1000
    assert data["posts_omitted"] == 0

    # The documented receiver check, over the raw bytes, accepts it.
    fields = dict(part.split("=", 1) for part in message.headers["x-brandpulse-signature"].split(","))
    assert signature(bots.webhook_secret, int(fields["t"]), message.body) == (
        message.headers["x-brandpulse-signature"]
    )


def test_notice_arrives(bots, make_notice):
    notice = make_notice()
    delivery = hook(bots).send_notice(notice)
    [message] = bots.messages("webhook")
    assert delivery.alert_id == notice.notice_id
    assert message.payload["event"] == "notice" and message.payload["id"] == notice.notice_id
    assert message.payload["notice"]["kind"] == "source_down"
    assert "failed 3 crawls in a row" in message.payload["text"]


def test_text_is_cleaned_not_escaped(bots, make_alert, make_post):
    post = make_post(0, title="a \u202egnp.exe <b>&", author="\u2067mallory\u2069",
                     url="https://trusted.example@evil.example/x", text="x" * 5000)  # fmt: skip
    bad_link = make_post(1, url="javascript:alert(1)")
    hook(bots).send(make_alert(top_posts=(post, bad_link)))
    [first, second] = bots.messages("webhook")[0].payload["alert"]["top_posts"]
    # bidi controls go; markup stays as written (JSON needs no escaping)
    assert first["title"] == "a gnp.exe <b>&" and first["author"] == "mallory"
    assert first["url"] == "https://evil.example/x"  # the host it really goes to
    assert second["url"] is None
    assert len(first["excerpt"]) == 280 and first["excerpt"].endswith("…")
    assert first["excerpt_truncated"] is True


def test_a_huge_alert_is_cut_to_the_limit_keeping_links(bots, make_alert, make_post):
    # 150 posts (more than top_posts allows, to pass the limit): excerpts go, then posts.
    posts = tuple(make_post(i, title="标题" * 100, text="y" * 10_000) for i in range(150))
    alert = make_alert(top_posts=posts)
    hook(bots).send(alert)
    [message] = bots.messages("webhook")
    assert len(message.body) <= MAX_BODY_BYTES
    data = message.payload["alert"]
    assert data["discover_url"] == alert.discover_url and message.payload["id"] == alert.alert_id
    assert 0 < len(data["top_posts"]) < 150
    assert data["posts_omitted"] == 150 - len(data["top_posts"])
    assert all(p["excerpt"] == "" and p["excerpt_truncated"] for p in data["top_posts"])


def test_wrong_secret_is_refused_not_retryable_and_secret_never_shown(bots, make_alert, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "whsec-wrong-and-secret-value"
    with pytest.raises(ChannelError) as info:
        WebhookNotifier(url=bots.webhook_url + "?token=tok-in-the-url", secret=secret).send(make_alert())
    error = info.value
    assert error.notifier == "webhook" and error.status == 401
    assert error.retryable is False and error.maybe_delivered is False
    assert "webhook.secret" in str(error)
    for leaked in (secret, "tok-in-the-url"):
        assert leaked not in str(error) and leaked not in caplog.text
    assert bots.messages() == []


def test_stale_timestamp_is_refused(bots, make_alert):
    with pytest.raises(ChannelError, match="HTTP 401"):
        hook(bots, clock=lambda: time.time() - 3600).send(make_alert())
    assert [r.code for r in bots.requests] == ["stale_timestamp"]


def test_rate_limit_is_retryable_with_retry_after(bots, make_alert):
    bots.rate_limit_next(retry_after=7)
    with pytest.raises(ChannelError) as info:
        hook(bots).send(make_alert())
    assert info.value.retryable and info.value.retry_after == 7.0
    assert not info.value.maybe_delivered
    hook(bots).send(make_alert())  # the next attempt goes through
    assert len(bots.messages()) == 1


def test_5xx_may_have_delivered(bots, make_alert):
    bots.fail_next(status=502, after_posting=True)
    with pytest.raises(ChannelError) as info:
        hook(bots).send(make_alert())
    assert info.value.maybe_delivered and info.value.retryable
    assert len(bots.messages()) == 1  # it did arrive: the engine cannot tell, sends again


def test_timeout_may_have_delivered_refused_did_not(silent_port, closed_port, make_alert):
    with pytest.raises(ChannelError) as hung:
        WebhookNotifier(url=f"http://127.0.0.1:{silent_port}/h?key=k-secret-1", secret="s3cret-x",
                        timeout=0.5).send(make_alert())  # fmt: skip
    assert hung.value.maybe_delivered and hung.value.retryable
    assert "timed out" in str(hung.value) and "k-secret-1" not in str(hung.value)
    with pytest.raises(ChannelError) as refused:
        WebhookNotifier(url=f"http://127.0.0.1:{closed_port}/h", secret="s3cret-x").send(make_alert())
    assert not refused.value.maybe_delivered and refused.value.retryable


def test_a_redirect_is_not_followed(bots, make_alert):
    from sandbox.bots import MOVED_PATH

    with pytest.raises(ChannelError) as info:
        WebhookNotifier(url=bots.url + MOVED_PATH, secret=bots.webhook_secret).send(make_alert())
    assert info.value.status == 308 and not info.value.retryable
    assert bots.messages() == [] and [r.path for r in bots.requests] == [MOVED_PATH]


def test_find_cannot_tell_and_check_does_not_post(bots, make_alert):
    notifier = hook(bots)
    with pytest.raises(CannotTell):
        notifier.find(make_alert())
    assert "not verifiable without posting" in notifier.check()
    assert bots.requests == []


def test_config_section_registry_and_validation(bots, make_alert):
    assert NOTIFIERS["webhook"] is WebhookNotifier
    config = Config.model_validate({"brands": [{"name": "Acme"}],
                                    "webhook": {"url": bots.webhook_url, "secret": bots.webhook_secret}})  # fmt: skip
    notifier = notifier_from_config(config)
    assert isinstance(notifier, WebhookNotifier)
    notifier.send(make_alert())
    assert len(bots.messages("webhook")) == 1
    assert WebhookNotifier.from_config(WebhookConfig(url=bots.webhook_url, secret="x")).where

    with pytest.raises(ConfigError) as info:
        parse_config({"brands": [{"name": "Acme"}],
                      "webhook": {"url": "http://example.com/hook?token=tok-secret-9"}})  # fmt: skip
    text = str(info.value)
    assert "webhook.url: must be an https:// URL" in text
    assert "webhook.secret is not" in text
    assert "tok-secret-9" not in text
    # unset ${VAR:-} means "not configured"
    blank = Config.model_validate({"brands": [{"name": "Acme"}], "webhook": {"url": "", "secret": ""}})
    assert not WebhookNotifier.configured(blank)
    json.dumps(config.model_dump(mode="json"))  # secrets dump masked, not crashing
