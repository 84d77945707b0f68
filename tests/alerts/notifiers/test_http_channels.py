"""What the five webhook-style channels share, each against sandbox.bots: the health
notice outbox delivers through them, and a send that may have arrived (a 5xx after
the service took the message) is sent again, because none can read the group back
(at least once, as their module docstrings say); and each is built from its own
config section alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alerts.health import HealthTracker
from alerts.notifiers import NOTIFIERS
from alerts.notifiers.dingtalk import DingtalkNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.teams import TeamsNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WecomNotifier
from brandpulse.config import Config, HealthConfig

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

CHANNELS = {
    "webhook": lambda b: {"url": b.webhook_url, "secret": b.webhook_secret},
    "teams": lambda b: {"url": b.teams_url},
    "wecom": lambda b: {"url": b.wecom_url},
    "dingtalk": lambda b: {"url": b.dingtalk_url, "secret": b.dingtalk_secret},
    "feishu": lambda b: {"url": b.feishu_url, "secret": b.feishu_secret},
}
CLASSES = {"webhook": WebhookNotifier, "teams": TeamsNotifier, "wecom": WecomNotifier,
           "dingtalk": DingtalkNotifier, "feishu": FeishuNotifier}  # fmt: skip


def config_with(name: str, section: dict) -> Config:
    return Config.model_validate({"brands": [{"name": "Acme"}], name: section})


@pytest.mark.parametrize("name", list(CHANNELS))
def test_health_notices_go_out_at_least_once(name, bots, tmp_path):
    notifier = NOTIFIERS[name].build(config_with(name, CHANNELS[name](bots)))
    assert isinstance(notifier, CLASSES[name])
    now = [T0]
    tracker = HealthTracker(HealthConfig(source_failures=1), tmp_path, clock=lambda: now[0])
    [notice] = tracker.crawl_failed("reddit", "HTTP 503")

    bots.fail_next(status=502, after_posting=True)  # taken, then a proxy failed
    first = tracker.deliver(notifier)
    assert first.delivered == [] and "502" in (first.error or "")
    [item] = tracker.outbox()
    assert item.maybe_posted  # the channel said it may have arrived

    now[0] = T0.replace(hour=10)
    assert tracker.deliver(notifier).delivered == [notice]
    received = bots.messages(name)
    assert len(received) == 2  # cannot read back: sent again, the id shows the repeat
    # (Teams shows the id's `_` Markdown-escaped: `\_`, JSON-encoded `\\_`)
    assert all(notice.notice_id in m.body.decode().replace("\\\\", "") for m in received)


@pytest.mark.parametrize("name", list(CHANNELS))
def test_each_channel_is_built_from_its_section_alone(name, bots, make_alert):
    # two channels configured: each builds from its own section, side by side
    other = "wecom" if name != "wecom" else "teams"
    config = Config.model_validate({"brands": [{"name": "Acme"}], name: CHANNELS[name](bots),
                                    other: CHANNELS[other](bots)})  # fmt: skip
    for channel in (name, other):
        assert NOTIFIERS[channel].configured(config)
        NOTIFIERS[channel].build(config).send(make_alert())
    assert len(bots.messages(name)) == 1 and len(bots.messages(other)) == 1


@pytest.mark.parametrize("name", list(CHANNELS))
def test_an_escalation_copy_says_it_is_one_and_how_to_acknowledge(name, bots, make_alert):
    """A route's `escalate_to` may name any of these channels: what arrives there must
    read as an escalation (as on Slack and by e-mail), not as a second copy."""
    notifier = NOTIFIERS[name].build(config_with(name, CHANNELS[name](bots)))
    alert = make_alert()
    notifier.send(alert)
    notifier.send(alert.escalated(timedelta(minutes=30)))
    first, escalated = (json.loads(m.body) for m in bots.messages(name))
    texts = [" ".join(_strings(first)), " ".join(_strings(escalated)).replace("\\", "")]
    assert "ESCALATED" not in texts[0] and "acknowledge" not in texts[0]
    assert "ESCALATED" in texts[1] and "not acknowledged within 30 min" in texts[1]
    assert f"alerts ack {alert.alert_id}" in texts[1]
    if name == "webhook":
        assert escalated["id"] == f"{alert.alert_id}-escalated"
        assert escalated["alert"]["escalated_after"] == 1800 and first["alert"]["escalated_after"] is None


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []
