"""Alert delivery channels.

`NOTIFIERS` is the one registry of channels: a name maps to a `Notifier` class that
says whether the configuration sets it up (`configured(config)`) and builds itself
from it (`build(config)`). Adding a channel means adding a module beside `slack.py`
(with its message template beside it) and one entry here, under the name of its
config section in `brandpulse.config.Config`; that section needs a
`channel_configured(raw)` classmethod for `alerts.routes` to accept the name (the
webhook-style ones inherit it from `UrlChannelConfig`). The engine and the daemon
only ever see `Notifier`, built by `notifiers_from_config` (every configured channel)
and `notifier_from_config` (the default one).
"""

from __future__ import annotations

import logging

from alerts.notifiers.base import CannotTell, Notifier, NotifierError, kibana_discover_url
from alerts.notifiers.dingtalk import DingtalkNotifier
from alerts.notifiers.email import EmailNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.log import LogNotifier
from alerts.notifiers.slack import SlackDeliveryError, SlackNotifier
from alerts.notifiers.teams import TeamsNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WecomNotifier
from brandpulse.config import Config

log = logging.getLogger(__name__)

# Registry order is preference order: the first configured channel is the default one
# (every alert without `alerts.routes`, and the health notices); routes may name any.
NOTIFIERS: dict[str, type[Notifier]] = {
    SlackNotifier.name: SlackNotifier,
    EmailNotifier.name: EmailNotifier,
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
    """The default channel: the first of `NOTIFIERS` that `config` sets up (Slack: a bot
    token or a webhook; e-mail: `email.host`; Teams, Feishu, DingTalk, WeCom, the
    webhook: its URL); the fallback (the log) only when none is, with a warning.
    Without `alerts.routes` it is the one channel alerts go to."""
    return next(iter(notifiers_from_config(config).values()))


def notifiers_from_config(config: Config) -> dict[str, Notifier]:
    """Every channel `config` sets up, by name, in registry order: the first is the
    default channel. The fallback (the log) is included when a route names it, and is
    the only one, with a warning, when nothing else is configured."""
    named = {c for route in config.alerts.routes for c in (*route.channels, *route.escalate_to)}
    channels: dict[str, Notifier] = {}
    for name, notifier_class in NOTIFIERS.items():
        if notifier_class.fallback:
            if name in named:
                channels[name] = notifier_class.build(config)
        elif notifier_class.configured(config):
            channels[name] = notifier_class.build(config)
    if all(NOTIFIERS[name].fallback for name in channels):
        log.warning(
            "no alert channel configured (slack.token + slack.channel, slack.webhook_url, "
            "email.host, or the url of webhook/teams/wecom/dingtalk/feishu): alerts are "
            "written to the log only"
        )
        fallback = next(c for c in NOTIFIERS.values() if c.fallback)
        channels = {fallback.name: channels.get(fallback.name) or fallback.build(config)}
    return channels


__all__ = [
    "NOTIFIERS",
    "CannotTell",
    "DingtalkNotifier",
    "EmailNotifier",
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
    "notifiers_from_config",
]
