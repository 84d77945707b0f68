"""The channel-agnostic core of alert delivery.

The alert engine produces `Alert`s and hands them to a `Notifier`; nothing here knows
what Slack (or any other channel) is. A notifier turns one alert into one message and
returns a `Delivery` naming where it landed, so that later alerts of the same wave can
be posted as replies to it (Slack threads) and so that the engine can record that the
alert went out.

Ids are deterministic on purpose: the same wave seen by two checks, two daemons or a
restarted daemon yields the same `wave_id` and the same `alert_id`, and that is what the
engine's outbox deduplicates on.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args
from urllib.parse import quote

from brandpulse.mention import Mention

if TYPE_CHECKING:
    from alerts.health import HealthNotice

AlertKind = Literal["started", "continuing", "ended", "high_reach"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)

# What made the detector fire: the count of negative mentions, their share of all
# mentions (a "sentiment dip" with a flat volume), or one post from a large account.
Signal = Literal["volume", "share", "reach"]

DATA_VIEW_ID = "brandpulse-mentions"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} in an alert; alerts use aware UTC times"
        )
    return value.astimezone(UTC)


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:20]


def wave_id_for(brand: str, started_at: datetime) -> str:
    """The id of the wave of `brand` that started at `started_at` (an interval boundary)."""
    return "wave-" + _digest(brand, _utc(started_at).isoformat())


def alert_id_for(kind: AlertKind, brand: str, wave_id: str, interval_end: datetime) -> str:
    """One id per (kind, brand, wave, interval): a re-run of the same check yields the same id."""
    return f"{kind}-" + _digest(kind, brand, wave_id, _utc(interval_end).isoformat())


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing worth telling the PR team, independent of the channel it goes to.

    `observed`/`expected` are negative mentions in the judged window
    [`interval_start`, `interval_end`) against the usual level for that window;
    `negative_share`/`usual_share` are the same as fractions of all mentions.
    For a `high_reach` alert the window is the post's own minute, `observed` is 1 and
    `wave_id` is the mention's id, so each mention can alert at most once per brand.
    """

    kind: AlertKind
    brand: str
    wave_id: str
    interval_start: datetime
    interval_end: datetime
    observed: int
    expected: float
    total: int | None = None
    negative_share: float | None = None
    usual_share: float | None = None
    score: float | None = None
    signal: Signal = "volume"
    wave_started_at: datetime | None = None
    top_posts: tuple[Mention, ...] = ()
    discover_url: str | None = None
    alert_id: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"alert kind {self.kind!r} is not one of {ALERT_KINDS}")
        if not self.brand:
            raise ValueError("an alert needs a brand")
        if not self.wave_id:
            raise ValueError("an alert needs a wave_id (see wave_id_for)")
        # Frozen dataclass: object.__setattr__ is the documented way to normalise fields.
        object.__setattr__(self, "interval_start", _utc(self.interval_start))
        object.__setattr__(self, "interval_end", _utc(self.interval_end))
        if self.interval_end < self.interval_start:
            raise ValueError(
                f"alert interval ends ({self.interval_end.isoformat()}) before it starts "
                f"({self.interval_start.isoformat()})"
            )
        if self.wave_started_at is not None:
            object.__setattr__(self, "wave_started_at", _utc(self.wave_started_at))
        object.__setattr__(self, "created_at", _utc(self.created_at))
        object.__setattr__(self, "top_posts", tuple(self.top_posts))
        if not self.alert_id:
            object.__setattr__(
                self,
                "alert_id",
                alert_id_for(self.kind, self.brand, self.wave_id, self.interval_end),
            )

    @property
    def ratio(self) -> float | None:
        """Observed over expected; None when nothing was expected (a ratio would be infinite)."""
        if self.expected <= 0:
            return None
        return self.observed / self.expected

    def with_posts(self, posts: tuple[Mention, ...] | list[Mention]) -> Alert:
        return replace(self, top_posts=tuple(posts))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored in the engine's outbox; the inverse of `from_dict`."""
        return {
            "kind": self.kind,
            "brand": self.brand,
            "wave_id": self.wave_id,
            "alert_id": self.alert_id,
            "interval_start": self.interval_start.isoformat(),
            "interval_end": self.interval_end.isoformat(),
            "observed": self.observed,
            "expected": self.expected,
            "total": self.total,
            "negative_share": self.negative_share,
            "usual_share": self.usual_share,
            "score": self.score,
            "signal": self.signal,
            "wave_started_at": self.wave_started_at.isoformat() if self.wave_started_at else None,
            "top_posts": [post.to_document() for post in self.top_posts],
            "discover_url": self.discover_url,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value) if value else None

        return cls(
            kind=data["kind"],
            brand=data["brand"],
            wave_id=data["wave_id"],
            alert_id=data["alert_id"],
            interval_start=datetime.fromisoformat(data["interval_start"]),
            interval_end=datetime.fromisoformat(data["interval_end"]),
            observed=int(data["observed"]),
            expected=float(data["expected"]),
            total=data.get("total"),
            negative_share=data.get("negative_share"),
            usual_share=data.get("usual_share"),
            score=data.get("score"),
            signal=data.get("signal", "volume"),
            wave_started_at=when("wave_started_at"),
            top_posts=tuple(Mention.from_document(doc) for doc in data.get("top_posts", [])),
            discover_url=data.get("discover_url"),
            created_at=when("created_at") or datetime.now(UTC),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where an alert landed. `ts` is the channel's message id when it has one (Slack Web
    API); `thread_ts` is the root message a reply was posted under."""

    notifier: str
    alert_id: str
    delivered_at: datetime
    channel: str | None = None
    ts: str | None = None
    thread_ts: str | None = None

    @property
    def thread_root(self) -> str | None:
        """The message later replies should hang under: the root of this delivery's thread."""
        return self.thread_ts or self.ts

    def to_dict(self) -> dict[str, Any]:
        return {
            "notifier": self.notifier,
            "alert_id": self.alert_id,
            "delivered_at": self.delivered_at.isoformat(),
            "channel": self.channel,
            "ts": self.ts,
            "thread_ts": self.thread_ts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            notifier=data["notifier"],
            alert_id=data["alert_id"],
            delivered_at=datetime.fromisoformat(data["delivered_at"]),
            channel=data.get("channel"),
            ts=data.get("ts"),
            thread_ts=data.get("thread_ts"),
        )


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
    """The contract every channel implements."""

    name: ClassVar[str]
    # Whether `reply_to` is honoured. A channel without threads (an incoming webhook)
    # posts follow-ups as new messages that say which wave they belong to.
    supports_threads: ClassVar[bool] = False

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
            "from": _utc(start).isoformat().replace("+00:00", "Z"),
            "to": _utc(end).isoformat().replace("+00:00", "Z"),
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
