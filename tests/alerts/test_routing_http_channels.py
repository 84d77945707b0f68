"""Routing to the webhook-style channels: one alert fanned out to Slack and two HTTP
channels (the signed JSON webhook and a WeCom group bot), one outbox entry per channel,
each delivered exactly once across a restart.

Real parts only: the local Slack sandbox through slack-sdk, the local bots of
`sandbox.bots` over HTTP, the session's Elasticsearch node for the alert state and the
outbox. Time is injected, never waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from alerts.engine import AlertEngine
from alerts.notifiers import notifiers_from_config
from alerts.state import AlertStateStore
from brandpulse.config import Config
from sandbox.bots import BotSandbox
from sandbox.slack import SlackSandbox
from tests.alerts.test_engine import NOW, prefix
from tests.alerts.test_routing import reader

__all__ = ["prefix", "reader"]  # fixtures, shared with test_engine and test_routing

ROUTED = ("slack", "webhook", "wecom")


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def bots() -> Iterator[BotSandbox]:
    with BotSandbox() as sandbox:
        yield sandbox


def make_config(prefix: str, slack: SlackSandbox, bots: BotSandbox) -> Config:
    return Config.model_validate({
        "brands": [{"name": "Acme"}, {"name": "Tiny"}],
        "elasticsearch": {"index_prefix": prefix},
        "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
        "webhook": {"url": bots.webhook_url, "secret": bots.webhook_secret},
        "wecom": {"url": bots.wecom_url},
        "alerts": {
            "history": "3d",
            "query_delay": "2m",
            "spike": {
                "interval": 300, "window": 3600, "min_count": 10, "min_ratio": 2.0,
                "threshold": 3.0, "end_threshold": 1.5, "end_after": 1800,
                "warmup": 2 * 86400, "cooldown": 3600, "continuing_every": 3600,
            },
            "routes": [{"channels": list(ROUTED)}],
        },
    })  # fmt: skip


def make_engine(config: Config, es: Any, reader: Any, owner: str) -> AlertEngine:
    return AlertEngine(config, es, None, channels=notifiers_from_config(config), reader=reader, owner=owner)


def counts(slack: SlackSandbox, bots: BotSandbox) -> dict[str, int]:
    return {"slack": len(slack.messages), "webhook": len(bots.messages("webhook")),
            "wecom": len(bots.messages("wecom"))}  # fmt: skip


def test_one_alert_reaches_slack_and_two_http_channels_exactly_once_across_a_restart(
    es_client, prefix, slack, bots, reader
):
    config = make_config(prefix, slack, bots)
    # The first request to the bots is refused with a 429 (a definite "not sent"):
    # one HTTP channel stays pending while Slack and the other deliver.
    bots.rate_limit_next(retry_after=None)
    first = make_engine(config, es_client, reader, owner="daemon-1")
    assert set(first.channels) >= set(ROUTED)
    [started] = first.check(NOW)
    store = AlertStateStore(es_client, prefix)
    status = {e.channel: e.status for e in store.entries(alert_id=started.alert_id)}
    assert set(status) == set(ROUTED)  # one outbox entry per (alert, channel)
    assert status["slack"] == "delivered"
    pending = [c for c in ("webhook", "wecom") if status[c] == "pending"]
    assert len(pending) == 1 and sorted(status.values()) == ["delivered", "delivered", "pending"]
    held = store.get_entry(started.alert_id, pending[0])
    assert held is not None and not held.maybe_posted  # a 429 is a definite "not sent"
    assert counts(slack, bots) == {"slack": 1} | {c: int(c not in pending) for c in ("webhook", "wecom")}

    del first  # restart: only Elasticsearch remembers
    again = make_engine(config, es_client, reader, owner="daemon-2")
    assert [a.alert_id for a in again.check(NOW + timedelta(minutes=1))] == [started.alert_id]
    assert counts(slack, bots) == {"slack": 1, "webhook": 1, "wecom": 1}
    assert again.check(NOW + timedelta(minutes=2)) == []
    assert again.retry_outbox(NOW + timedelta(minutes=3)) == []
    assert counts(slack, bots) == {"slack": 1, "webhook": 1, "wecom": 1}
    assert all(e.status == "delivered" for e in store.entries(alert_id=started.alert_id))

    # what arrived is that alert, on each channel
    [hook] = bots.messages("webhook")
    assert hook.payload["id"] == started.alert_id and hook.payload["event"] == "alert"
    [bot] = bots.messages("wecom")
    assert started.alert_id in bot.payload["markdown"]["content"]
    assert slack.messages[0].payload["metadata"]["event_payload"]["alert_id"] == started.alert_id
