"""Alert delivery channels.

`NOTIFIERS` is the one registry of channels: a name maps to a `Notifier` class that
says whether the configuration sets it up (`configured(config)`) and builds itself
from it (`build(config)`). Adding a channel means adding a module beside `slack.py`
(with its message template beside it) and one entry here; the engine and the daemon
only ever see `Notifier`, built by `notifier_from_config`.
"""

from __future__ import annotations

import logging

from alerts.notifiers.base import CannotTell, Notifier, NotifierError, kibana_discover_url
from alerts.notifiers.dingtalk import DingtalkNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.log import LogNotifier
from alerts.notifiers.slack import SlackDeliveryError, SlackNotifier
from alerts.notifiers.teams import TeamsNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WecomNotifier
from brandpulse.config import Config

log = logging.getLogger(__name__)

# Registry order is preference order: the first configured channel is used.
NOTIFIERS: dict[str, type[Notifier]] = {
    SlackNotifier.name: SlackNotifier,
    # The webhook-style channels (alerts/notifiers/http.py): each is built from its own
    # config section alone, so a router can build several side by side.
    TeamsNotifier.name: TeamsNotifier,
    FeishuNotifier.name: FeishuNotifier,
    DingtalkNotifier.name: DingtalkNotifier,
    WecomNotifier.name: WecomNotifier,
    WebhookNotifier.name: WebhookNotifier,
    LogNotifier.name: LogNotifier,
}


def notifier_from_config(config: Config) -> Notifier:
    """The first channel of `NOTIFIERS` that `config` sets up (Slack: a bot token or a
    webhook; another channel: its URL); the fallback (the log) only when none is, with
    a warning."""
    for notifier_class in NOTIFIERS.values():
        if not notifier_class.fallback and notifier_class.configured(config):
            return notifier_class.build(config)
    log.warning(
        "no alert channel configured (slack.token + slack.channel, slack.webhook_url, or "
        "the url of webhook/teams/wecom/dingtalk/feishu): alerts are written to the log only"
    )
    fallback = next(c for c in NOTIFIERS.values() if c.fallback)
    return fallback.build(config)


__all__ = [
    "NOTIFIERS",
    "CannotTell",
    "DingtalkNotifier",
    "FeishuNotifier",
    "LogNotifier",
    "Notifier",
    "NotifierError",
    "SlackDeliveryError",
    "SlackNotifier",
    "TeamsNotifier",
    "WebhookNotifier",
    "WecomNotifier",
    "kibana_discover_url",
    "notifier_from_config",
]
