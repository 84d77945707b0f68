"""The channel-agnostic contract of alert delivery.

The alert engine produces `Alert`s (alerts/model.py) and hands them to a `Notifier`;
nothing here knows what Slack (or any other channel) is. A notifier turns one alert
into one message and returns a `Delivery` naming where it landed, so that later alerts
of the same wave can be posted as replies to it (Slack threads) and so that the engine
can record that the alert went out.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from alerts.model import Alert, Delivery, as_utc

if TYPE_CHECKING:
    from alerts.health import HealthNotice
    from brandpulse.config import Config

DATA_VIEW_ID = "brandpulse-mentions"



class NotifierError(Exception):
    """An alert could not be delivered. The message names the channel and the cause.

    `retryable` is False when sending again cannot help until someone changes the
    configuration (a revoked token, an unknown channel); the engine keeps the alert
    either way. `retry_after` is the channel's own hint, in seconds, when it gave one.
    `maybe_delivered` is True when the message may have arrived all the same (a 5xx or
    a timeout after the request went out): the engine then looks before resending.
    """

    def __init__(
        self,
        notifier: str,
        cause: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        self.notifier = notifier
        self.cause = cause
        self.retryable = retryable
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        super().__init__(f"{notifier}: {cause}")


class CannotTell(Exception):
    """The channel cannot say whether a message was posted (no history access)."""


class Notifier(ABC):
    """The contract every channel implements.

    A channel is registered in `alerts.notifiers.NOTIFIERS` under its `name`;
    `notifiers_from_config` asks each one, in registry order, whether the configuration
    sets it up (`configured`) and builds every one that says yes (`build`); the first
    is the default channel. A `fallback` channel (the log) is used only when no other
    one is configured, or when a route names it.
    """

    name: ClassVar[str]
    # Whether `reply_to` is honoured. A channel without threads (an incoming webhook)
    # posts follow-ups as new messages that say which wave they belong to.
    supports_threads: ClassVar[bool] = False
    fallback: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def configured(cls, config: Config) -> bool:
        """Whether `config` sets this channel up (credentials present, not blank)."""

    @classmethod
    @abstractmethod
    def build(cls, config: Config) -> Notifier:
        """The channel as `config` sets it up; only called when `configured` said so."""

    @abstractmethod
    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        """Deliver one alert, as a reply to `reply_to` where the channel can; raise
        NotifierError on any failure, never return without having delivered."""

    def send_notice(self, notice: HealthNotice) -> Delivery:
        """Deliver one operational notice (`alerts.health`: a failing source, an
        Elasticsearch outage); raise NotifierError on any failure. A channel that has
        no way to show one says so, permanently."""
        raise NotifierError(self.name, "cannot deliver health notices", retryable=False)

    def find_notice(self, notice: HealthNotice) -> Delivery | None:
        """Look for a health notice among the channel's recent messages, like `find`."""
        raise CannotTell(f"{self.name} cannot read back what it posted")

    def check(self) -> str:
        """Verify the channel is reachable and the credentials work; return a description."""
        return self.name

    def find(
        self, alert: Alert, *, reply_to: Delivery | None = None, channel: str | None = None
    ) -> Delivery | None:
        """Look for `alert` among the channel's recent messages: its Delivery if it was
        posted, None if it was not. Raise CannotTell when the channel cannot be read,
        NotifierError when it cannot be reached.

        The engine asks this before re-sending an alert whose sender crashed between
        posting and recording it. `channel` is a hint (a channel id seen earlier).
        """
        raise CannotTell(f"{self.name} cannot read back what it posted")


# ---------------------------------------------------------------------------
# Kibana Discover links
# ---------------------------------------------------------------------------

_RISON_ID = re.compile(r"^[A-Za-z_./~-][A-Za-z0-9_./~-]*$")


def rison(value: Any) -> str:
    """Encode a value as Rison (what Kibana's `_g`/`_a` URL state is written in)."""
    if value is None:
        return "!n"
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        if value and _RISON_ID.match(value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, dict):
        return "(" + ",".join(f"{rison(k)}:{rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as rison")


def _kql_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kibana_discover_url(
    kibana_url: str,
    brand: str,
    start: datetime,
    end: datetime,
    *,
    sentiment: str | None = "negative",
    data_view: str = DATA_VIEW_ID,
) -> str:
    """A Discover link showing `brand`'s mentions (negative by default) in [start, end).

    The sentiment filter is the one the alert counted (`store.queries.brand_sentiment_filter`):
    the brand's own confident sentiment, or the post label for a mention scored before
    per-brand sentiment existed. `index:` is the data view id; Kibana versions that use
    `dataSource:` migrate it.
    """
    query = f"brands:{_kql_quoted(brand)}"
    if sentiment:
        key = _kql_quoted(f"{brand}|{sentiment}")
        query += (f" and (brand_sentiment_keys:{key} or"
                  f" (not brand_sentiment_keys:* and sentiment.label:{sentiment}))")
    g = {
        "time": {
            "from": as_utc(start).isoformat().replace("+00:00", "Z"),
            "to": as_utc(end).isoformat().replace("+00:00", "Z"),
        }
    }
    a = {
        "index": data_view,
        "columns": ["source", "author", "author_reach", "title", "text"],
        "query": {"language": "kuery", "query": query},
        "sort": [["created_at", "desc"]],
    }
    # Rison's punctuation stays readable; spaces, quotes and '&' must be escaped.
    safe = "()!:,'*-._~/"
    return (
        f"{kibana_url.rstrip('/')}/app/discover#/"
        f"?_g={quote(rison(g), safe=safe)}&_a={quote(rison(a), safe=safe)}"
    )
