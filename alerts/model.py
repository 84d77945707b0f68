"""What an alert is, independent of the rule that raised it and the channel it goes to.

`Alert` and `Delivery` are shared by the rules (which produce alerts), the engine's
outbox (which stores them) and the notifiers (which send them), so they live here and
not in any one of those: a channel is one consumer among several.

Ids are deterministic on purpose: the same wave seen by two checks, two daemons or a
restarted daemon yields the same `wave_id` and the same `alert_id`, and that is what the
engine's outbox deduplicates on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from brandpulse.alert_settings import Severity
from brandpulse.mention import Mention
from brandpulse.timeutil import require_utc

AlertKind = Literal["started", "continuing", "ended", "high_reach"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)

# What made the detector fire: the count of negative mentions, their share of all
# mentions (a "sentiment dip" with a flat volume), or one post from a large account.
Signal = Literal["volume", "share", "reach"]

# A spike at least this many times its usual level (or one from nothing) is `high`.
HIGH_SEVERITY_RATIO = 5.0


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused (alerts use aware UTC times)."""
    return require_utc(value, "an alert's time")


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:20]


def wave_id_for(
    brand: str, started_at: datetime, rule: str = "negative_spike", subject: str | None = None
) -> str:
    """The id of the wave of `brand` that started at `started_at` (an interval boundary).

    `rule` (and `subject`, what the rule watched for the brand: a competitor, a source)
    keep two rules' waves that start in the same interval apart; a negative spike's id
    is the one it had before there were other rules.
    """
    if rule == "negative_spike" and subject is None:
        return "wave-" + _digest(brand, as_utc(started_at).isoformat())
    return "wave-" + _digest(brand, as_utc(started_at).isoformat(), rule, subject or "")


def alert_id_for(kind: AlertKind, brand: str, wave_id: str, interval_end: datetime) -> str:
    """One id per (kind, brand, wave, interval): a re-run of the same check yields the same id."""
    return f"{kind}-" + _digest(kind, brand, wave_id, as_utc(interval_end).isoformat())


ESCALATED_SUFFIX = "-escalated"


def escalation_id(alert_id: str) -> str:
    """The id of the escalation copy of alert `alert_id`."""
    return alert_id + ESCALATED_SUFFIX


def base_alert_id(alert_id: str) -> str:
    """The alert an id names: an escalation copy's id names its original."""
    return alert_id.removesuffix(ESCALATED_SUFFIX)


@dataclass(frozen=True, slots=True)
class AlertTheme:
    """What part of a wave complains about one thing (`alerts.themes.wave_themes`).

    `label` is the theme's distinctive words ("data loss · backups · cloud"), taken from
    what posts wrote (untrusted: a channel escapes it); `posts` is how many of the wave's
    negative posts that were read fall in it, `share` that count over all posts read, so
    the shares of an alert add up to at most 1 (the rest is in no shown theme).
    """

    label: str
    share: float
    posts: int

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "share": self.share, "posts": self.posts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertTheme:
        return cls(label=str(data["label"]), share=float(data["share"]), posts=int(data["posts"]))


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing worth telling the PR team, independent of the channel it goes to.

    `observed`/`expected` are negative mentions in the judged window
    [`interval_start`, `interval_end`) against the usual level for that window;
    `negative_share`/`usual_share` are the same as fractions of all mentions.
    For a `high_reach` alert the window is the post's own minute, `observed` is 1 and
    `wave_id` is the mention's id, so each mention can alert at most once per brand.
    `themes`: what the wave's negative posts are mostly about, largest first; empty when
    the wave had too few posts to tell (or for a high-reach or ended alert).

    `rule` is the rule that raised it (`alerts.rules.RULES`; empty means the one its
    kind implies, as for alerts stored before there were other rules) and says what
    `observed` counts: negative mentions (`negative_spike`), all mentions
    (`volume_spike`, `flatline`), positive ones (`positive_spike`), a competitor's
    negative ones (`competitor_negative_spike`), the brand's mentions out of `total`
    mentions of it and its competitors (`sov_shift`). `subject` is what the rule
    watched on the brand's behalf: the competitor, or the source of a silent source.
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
    themes: tuple[AlertTheme, ...] = ()
    discover_url: str | None = None
    rule: str = ""
    subject: str | None = None
    alert_id: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Set on the copy sent to a route's `escalate_to` channels (`escalated`): nobody
    # acknowledged the alert this long after it was raised.
    escalated_after: timedelta | None = None

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"alert kind {self.kind!r} is not one of {ALERT_KINDS}")
        if not self.brand:
            raise ValueError("an alert needs a brand")
        if not self.wave_id:
            raise ValueError("an alert needs a wave_id (see wave_id_for)")
        # Frozen dataclass: object.__setattr__ is the documented way to normalise fields.
        object.__setattr__(self, "interval_start", as_utc(self.interval_start))
        object.__setattr__(self, "interval_end", as_utc(self.interval_end))
        if self.interval_end < self.interval_start:
            raise ValueError(
                f"alert interval ends ({self.interval_end.isoformat()}) before it starts "
                f"({self.interval_start.isoformat()})"
            )
        if self.wave_started_at is not None:
            object.__setattr__(self, "wave_started_at", as_utc(self.wave_started_at))
        object.__setattr__(self, "created_at", as_utc(self.created_at))
        object.__setattr__(self, "top_posts", tuple(self.top_posts))
        object.__setattr__(self, "themes", tuple(self.themes))
        if not self.rule:
            implied = "high_reach" if self.kind == "high_reach" else "negative_spike"
            object.__setattr__(self, "rule", implied)
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

    @property
    def severity(self) -> Severity:
        """How urgent the alert is, as the rule that raised it declares
        (`alerts.rules.AlertRule.severity`, documented per rule in docs/routing.md):
        derived from what the alert says, so it needs no storing and never disagrees
        with itself after a restart. An alert of a rule no longer registered is
        `low` when ended, else `medium`."""
        from alerts.rules import RULES, AlertRule  # the rules build alerts: imported late

        return RULES.get(self.rule, AlertRule).severity(self)

    @property
    def brands(self) -> tuple[str, ...]:
        """The brands the alert is about: its own brand, and for a rule that watches
        another brand on its behalf (`AlertRule.subject_kind == "brand"`: the
        competitor of `competitor_negative_spike`) that brand too. What a route's
        `brands` selects on."""
        from alerts.rules import RULES

        rule = RULES.get(self.rule)
        if self.subject and rule is not None and rule.subject_kind == "brand":
            return (self.brand, self.subject)
        return (self.brand,)

    def escalated(self, after: timedelta) -> Alert:
        """The copy of this alert sent to escalation channels: its own deterministic id
        (`<alert_id>-escalated`, so a channel's duplicate check and an e-mail's
        Message-ID tell it from the first message) and the time nobody reacted in."""
        return replace(self, alert_id=escalation_id(self.alert_id), escalated_after=after)

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
            "themes": [theme.to_dict() for theme in self.themes],
            "discover_url": self.discover_url,
            "rule": self.rule,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "escalated_after": (
                self.escalated_after.total_seconds() if self.escalated_after is not None else None
            ),
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
            themes=tuple(AlertTheme.from_dict(theme) for theme in data.get("themes") or []),
            discover_url=data.get("discover_url"),
            rule=data.get("rule") or "",
            subject=data.get("subject"),
            created_at=when("created_at") or datetime.now(UTC),
            escalated_after=(
                timedelta(seconds=data["escalated_after"])
                if data.get("escalated_after") is not None
                else None
            ),
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
