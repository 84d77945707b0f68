"""Alert delivery channels.

`NOTIFIERS` is the one registry of channels: a name in the configuration maps to a
class with `from_config(section)`. Adding a channel means adding a module beside
`slack.py` and one line here; the engine only ever sees `Notifier`.
"""

from __future__ import annotations

from alerts.notifiers.base import (
    Alert,
    AlertKind,
    Delivery,
    Notifier,
    NotifierError,
    alert_id_for,
    kibana_discover_url,
    wave_id_for,
)
from alerts.notifiers.slack import SlackDeliveryError, SlackNotifier
from brandpulse.config import Config

NOTIFIERS: dict[str, type[Notifier]] = {"slack": SlackNotifier}


def notifier_from_config(config: Config) -> Notifier:
    """The notifier the configuration asks for; an error naming what is missing otherwise."""
    slack = config.slack
    if slack.token is None and slack.webhook_url is None:
        raise ValueError(
            "no alert channel configured: set slack.token + slack.channel, or slack.webhook_url"
        )
    return SlackNotifier.from_config(slack)


__all__ = [
    "NOTIFIERS",
    "Alert",
    "AlertKind",
    "Delivery",
    "Notifier",
    "NotifierError",
    "SlackDeliveryError",
    "SlackNotifier",
    "alert_id_for",
    "kibana_discover_url",
    "notifier_from_config",
    "wave_id_for",
]
