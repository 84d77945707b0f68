"""Alert delivery channels.

`NOTIFIERS` is the one registry of channels: a name in the configuration maps to a
class with `from_config(section)`. Adding a channel means adding a module beside
`slack.py` and one line here; the engine only ever sees `Notifier`.
"""

from __future__ import annotations

import logging

from alerts.notifiers.base import CannotTell, Notifier, NotifierError, kibana_discover_url
from alerts.notifiers.log import LogNotifier
from alerts.notifiers.slack import SlackDeliveryError, SlackNotifier, secret
from brandpulse.config import Config

log = logging.getLogger(__name__)

NOTIFIERS: dict[str, type[Notifier]] = {"slack": SlackNotifier, "log": LogNotifier}


def notifier_from_config(config: Config) -> Notifier:
    """Slack when a bot token or a webhook is configured, else alerts go to the log.

    An empty value counts as unset: `token: ${SLACK_BOT_TOKEN:-}` with the variable
    missing must not produce a notifier that fails on every alert.
    """
    slack = config.slack
    if secret(slack.token) is None and secret(slack.webhook_url) is None:
        log.warning(
            "no Slack configured (slack.token + slack.channel, or slack.webhook_url): "
            "alerts are written to the log only"
        )
        return LogNotifier()
    return SlackNotifier.from_config(slack)


__all__ = [
    "NOTIFIERS",
    "CannotTell",
    "LogNotifier",
    "Notifier",
    "NotifierError",
    "SlackDeliveryError",
    "SlackNotifier",
    "kibana_discover_url",
    "notifier_from_config",
]
