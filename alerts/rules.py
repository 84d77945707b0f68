"""The alert rules: one contract, one registry.

A rule is a small class (ElastAlert2's spirit) that the engine builds per brand and per
check, as `rule_class(brand, settings)`:

* `settings_model` -- its pydantic settings model (in `brandpulse/alert_settings.py`,
  the configuration's side), and `settings_for(config, brand)` -- how a brand's
  settings are resolved from the configuration (global section, brand override);
* `evaluate(check, state) -> Evaluation` -- judge the brand at `check.now`, reading
  mentions only through `check.reader` (`alerts.reader.MentionReader`: counts per
  interval, posts by reach), and return the alerts to send plus the rule's new state;
* the state is opaque to the engine: a JSON-serialisable dict (or None before the
  first check) that the engine stores per brand and per rule in Elasticsearch and
  hands back at the next check, so a restarted daemon continues where it stopped.

`RULES` maps the name used in the configuration and in the stored state to the class;
the engine runs every registered rule, in this order, for every brand. Adding a rule is
one class here (or beside it) and one entry in `RULES`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel

from alerts.detector import (
    Point,
    SpikeContinuing,
    SpikeDetector,
    SpikeEnded,
    SpikeEvent,
    SpikeStarted,
)
from alerts.model import Alert, AlertKind, alert_id_for, wave_id_for
from alerts.reader import Counts, MentionReader, count_grid
from alerts.state import OpenWave
from alerts.visibility import Visibility
from brandpulse.alert_settings import HighReachSettings, SpikeSettings
from brandpulse.config import AlertsConfig, Config
from brandpulse.mention import SENTIMENT_LABELS, Mention

log = logging.getLogger(__name__)

# A high-reach post that reaches us more than a day after it was written is old news.
HIGH_REACH_LOOKBACK = timedelta(hours=24)
# The longest stretch of missed intervals judged after a daemon was down.
CATCH_UP = timedelta(hours=6)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(at: datetime, step: timedelta) -> datetime:
    """`at` rounded down to a whole `step` since the epoch (interval boundaries)."""
    return at - ((at - _EPOCH) % step)


@dataclass(frozen=True)
class Check:
    """What a rule is given to judge one brand at one moment.

    `discover(brand, start, end)` is the Kibana Discover link for a window, or None
    when no Kibana is configured.
    """

    brand: str
    now: datetime
    reader: MentionReader
    alerts: AlertsConfig
    discover: Callable[[str, datetime, datetime], str | None] = lambda brand, start, end: None


@dataclass(frozen=True)
class Planned:
    """An alert a rule wants sent. `root_alert_id` is the alert whose message a reply
    hangs under (a wave's first one); None for an alert that starts its own thread."""

    alert: Alert
    root_alert_id: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """A rule's verdict on one brand: alerts in sending order, and its new state."""

    alerts: list[Planned]
    state: dict[str, Any] | None


class AlertRule(ABC):
    """The contract of every rule (see the module docstring)."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]

    def __init__(self, brand: str = "", settings: Any = None) -> None:
        self.brand = brand
        self.settings = settings if settings is not None else self.settings_model()

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> Any:
        """The rule's settings for `brand`; by default `alerts.<name>` of the config."""
        return getattr(config.alerts, cls.name)

    @classmethod
    def for_brand(cls, config: Config, brand: str) -> AlertRule:
        return cls(brand, cls.settings_for(config, brand))

    @abstractmethod
    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        """Judge `check.brand` at `check.now` from `state` (None: never judged before)."""


@dataclass(frozen=True)
class BrandView:
    """A mention as one of its brands sees it: `sentiment_label` (which the high-reach
    rule reads first) is the brand's own bucket -- its label, or "uncertain" -- or the
    post's label for a mention scored before per-brand sentiment existed. The rest is
    the mention's."""

    mention: Mention
    sentiment_label: str | None

    @classmethod
    def of(cls, mention: Mention, brand: str) -> BrandView:
        own = [b.bucket for b in mention.brand_sentiments if b.brand == brand]
        if own:
            return cls(mention, own[0])
        return cls(mention, mention.sentiment.label if mention.sentiment else None)

    def __getattr__(self, name: str) -> object:
        return getattr(self.mention, name)


@dataclass(frozen=True, slots=True)
class HighReachMention:
    """One negative mention by an author who reaches many people."""

    kind: ClassVar[str] = "high_reach"
    brand: str
    at: datetime
    mention_id: str
    author_reach: int
    label: str
    author: str | None = None
    url: str | None = None


def _label_of(mention: Any) -> str | None:
    # Accept brandpulse.mention.Mention (sentiment.label), a plain label string,
    # or anything exposing `sentiment_label`.
    label = getattr(mention, "sentiment_label", None)
    if label is not None:
        return str(label)
    sentiment = getattr(mention, "sentiment", None)
    if sentiment is None:
        return None
    if isinstance(sentiment, str):
        return sentiment
    inner = getattr(sentiment, "label", None)
    return None if inner is None else str(inner)


class HighReachRule(AlertRule):
    """Alert once per mention when a negative mention's author reach >= `min_reach`.

    `evaluate` reads the brand's mentions of the last `HIGH_REACH_LOOKBACK` with at
    least `min_reach`, for each of `settings.labels`, and judges each one, oldest
    first, with `observe`, which needs only `id`, `author_reach` and the sentiment
    label of what it is fed. Ids already alerted are remembered (bounded, in the
    rule's state) so re-crawls do not re-alert.
    """

    name: ClassVar[str] = "high_reach"
    settings_model: ClassVar[type[HighReachSettings]] = HighReachSettings

    settings: HighReachSettings

    def __init__(self, brand: str = "", settings: HighReachSettings | None = None) -> None:
        super().__init__(brand, settings)
        self._seen: deque[str] = deque(maxlen=self.settings.remember or None)
        self._seen_set: set[str] = set()

    def observe(self, mention: Any) -> HighReachMention | None:
        reach = getattr(mention, "author_reach", None)
        if reach is None or reach < self.settings.min_reach:
            return None
        label = _label_of(mention)
        if label not in self.settings.labels:
            return None
        mid = str(mention.id)
        if mid in self._seen_set:
            return None
        self._remember(mid)
        at = getattr(mention, "created_at", None) or datetime.now(UTC)
        return HighReachMention(
            self.brand,
            at,
            mid,
            int(reach),
            label,
            getattr(mention, "author", None),
            getattr(mention, "url", None),
        )

    def _remember(self, mid: str) -> None:
        if self.settings.remember == 0:
            return
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(mid)
        self._seen_set.add(mid)

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> HighReachSettings:
        """The brand's own `high_reach` section when it has one, else the global one."""
        try:
            own = config.brand(brand).high_reach
        except KeyError:
            own = None
        return own or config.alerts.high_reach

    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        rule = self.from_state(state, self.settings) if state else self
        rule.brand = check.brand
        settings = self.settings
        candidates: dict[str, Mention] = {}
        start = check.now - HIGH_REACH_LOOKBACK
        for label in settings.labels:
            if label not in SENTIMENT_LABELS:
                continue
            found = check.reader.by_reach(
                check.brand,
                start,
                check.now,
                sentiment=label,  # type: ignore[arg-type]
                min_reach=settings.min_reach,
            )
            candidates.update((m.id, m) for m in found)
        planned: list[Planned] = []
        for mention in sorted(candidates.values(), key=lambda m: (m.created_at, m.id)):
            # The search chose the mention by the brand's own sentiment; the rule judges
            # the same one (a post praising one brand can attack this one).
            if rule.observe(BrandView.of(mention, check.brand)) is None:
                continue
            at = mention.created_at
            alert = Alert(
                kind="high_reach",
                brand=check.brand,
                wave_id=mention.id,
                interval_start=at,
                interval_end=at,
                observed=1,
                expected=0.0,
                signal="reach",
                top_posts=(mention,),
                discover_url=check.discover(
                    check.brand, at - timedelta(hours=1), at + timedelta(hours=1)
                ),
            )
            planned.append(Planned(alert))
        return Evaluation(planned, rule.to_state())

    def describe(self, event: HighReachMention) -> str:
        who = event.author or "an author"
        where = f" {event.url}" if event.url else ""
        return (
            f"{event.brand or 'brand'}: {event.label} mention by {who} "
            f"(reach {event.author_reach:,}){where}"
        )

    def to_state(self) -> dict[str, Any]:
        return {"v": 1, "brand": self.brand, "seen": list(self._seen)}

    @classmethod
    def from_state(
        cls, state: dict[str, Any], settings: HighReachSettings | None = None
    ) -> HighReachRule:
        rule = cls(state.get("brand", ""), settings)
        for mid in state.get("seen", []):
            rule._remember(str(mid))
        return rule


class NegativeSpikeRule(AlertRule):
    """A wave of negative mentions (`alerts.detector.SpikeDetector`), threaded per wave.

    Each check reads `alerts.history` of counts ending at `now - alerts.query_delay`
    rounded down to a whole interval (only complete intervals that crawling and
    indexing have caught up with are judged), rebuilds the detector from them plus
    its stored alert state (open wave, cooldown), and feeds it the intervals it has
    not judged yet. The alerts carry the top negative posts of the judged window.

    State: `{"detector": <SpikeDetector state without history>, "last_fed": <start of
    the last judged interval>, "open_wave": <OpenWave>}`.
    """

    name: ClassVar[str] = "negative_spike"
    settings_model: ClassVar[type[SpikeSettings]] = SpikeSettings
    settings: SpikeSettings

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> SpikeSettings:
        """The brand's own spike settings merged over the global ones."""
        return config.spike_settings(brand)

    def _span(self, check: Check) -> tuple[datetime, datetime]:
        step = self.settings.interval
        end = floor_to(check.now - check.alerts.query_delay, step)
        return floor_to(end - check.alerts.history, step), end

    def visibility(self, check: Check, factor: float = 3.0) -> Visibility | None:
        """The smallest wave this rule can see at the brand's current volume; None
        without enough history for a baseline. Reads only."""
        start, end = self._span(check)
        detector = SpikeDetector(check.brand, self.settings)
        if end > start:
            grid = count_grid(check.reader, check.brand, start, end, self.settings.interval)
            detector.warm(Point(c.at, c.negative, c.total) for c in grid)
        return detector.visibility(factor)

    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        state = state or {}
        settings, brand = self.settings, check.brand
        step = settings.interval
        start, end = self._span(check)
        if end <= start:
            return Evaluation([], state or None)
        last_fed = datetime.fromisoformat(state["last_fed"]) if state.get("last_fed") else None
        grid = count_grid(check.reader, brand, start, end, step)
        detector = (
            SpikeDetector.from_state(state["detector"], settings)
            if state.get("detector")
            else SpikeDetector(brand, settings)
        )
        # Only intervals never judged are judged. After a long absence (or on the very
        # first check) older ones are history only: alerting now on last week's wave
        # would be noise, while a few hours of catch-up keep a wave that ran through a
        # restart coherent (its continuing/ended messages still arrive).
        oldest_new = end - max(settings.window, CATCH_UP)
        if last_fed is not None:
            oldest_new = max(oldest_new, last_fed + step)
        elif grid:
            oldest_new = grid[-1].at
        history = [c for c in grid if c.at < oldest_new]
        fresh = [c for c in grid if c.at >= oldest_new]
        detector.warm(Point(c.at, c.negative, c.total) for c in history)
        events: list[SpikeEvent] = []
        for c in fresh:
            event = detector.observe(Point(c.at, c.negative, c.total))
            if event is None:
                continue
            if self.winding_down(event, settings):
                log.info("%s: wave winding down, no 'still elevated' message", brand)
                continue
            events.append(event)

        planned = [self._alert(check, event, grid) for event in events]
        wave = OpenWave.from_dict(state["open_wave"]) if state.get("open_wave") else None
        wave = self._next_wave(wave, planned, check.now)
        new_last_fed = grid[-1].at if grid else last_fed
        return Evaluation(
            planned,
            {
                "detector": detector.to_state(include_history=False),
                "last_fed": new_last_fed.isoformat() if new_last_fed else None,
                "open_wave": wave.to_dict() if wave else None,
            },
        )

    @staticmethod
    def winding_down(event: SpikeEvent, settings: SpikeSettings) -> bool:
        """Whether `event` is an hourly "still elevated" of a wave already dying down.

        The detector reports an open wave hourly, even while it is dying down towards
        its end; "still elevated" over a normal window would mislead, and "back to
        normal" follows shortly, so such an update is not sent.
        """
        return isinstance(event, SpikeContinuing) and event.score < settings.end_threshold

    @staticmethod
    def _next_wave(wave: OpenWave | None, planned: list[Planned], now: datetime) -> OpenWave | None:
        for plan in planned:
            alert = plan.alert
            if alert.kind == "ended":
                wave = None
            elif wave is None or wave.wave_id != alert.wave_id:
                assert alert.wave_started_at is not None
                wave = OpenWave(
                    wave_id=alert.wave_id,
                    started_at=alert.wave_started_at,
                    root_alert_id=plan.root_alert_id or alert.alert_id,
                    last_update=now,
                )
            else:
                wave = replace(wave, last_update=now)
        return wave

    def _alert(self, check: Check, event: SpikeEvent, grid: list[Counts]) -> Planned:
        brand, step = check.brand, self.settings.interval
        window_end = event.at + step
        window_start = window_end - event.window  # the window that judged the wave
        in_window = [c for c in grid if window_start <= c.at < window_end]
        total = sum(c.total for c in in_window)
        negative = sum(c.negative for c in in_window)

        kind: AlertKind
        if isinstance(event, SpikeStarted):
            kind, started_at = "started", event.at
            score: float | None = event.score
        elif isinstance(event, SpikeContinuing):
            kind, started_at, score = "continuing", event.started_at, event.score
        else:
            assert isinstance(event, SpikeEnded)
            kind, started_at, score = "ended", event.started_at, None

        wave_id = wave_id_for(brand, started_at)
        root = alert_id_for("started", brand, wave_id, started_at + step)
        # The detector dates a wave by the interval it was detected in; a reader takes
        # "started" to mean when the elevated window began.
        began = started_at + step - event.window
        # The usual share is taken from before the wave, or the wave would raise it.
        before = [c for c in grid if c.at < began]
        usual_total = sum(c.total for c in before)
        usual_share = sum(c.negative for c in before) / usual_total if usual_total else None
        if isinstance(event, SpikeStarted) and event.expected_share is not None:
            usual_share = event.expected_share
        posts: tuple[Mention, ...] = ()
        if kind != "ended":
            posts = tuple(
                check.reader.by_reach(
                    brand,
                    window_start,
                    window_end,
                    sentiment="negative",
                    limit=check.alerts.top_posts,
                )
            )
        link_from = min(window_start, began)
        alert = Alert(
            kind=kind,
            brand=brand,
            wave_id=wave_id,
            interval_start=window_start,
            interval_end=window_end,
            observed=event.observed,
            expected=float(event.expected),
            total=total,
            negative_share=negative / total if total else None,
            usual_share=usual_share,
            score=score,
            signal=event.signal,
            wave_started_at=began,
            top_posts=posts,
            discover_url=check.discover(brand, link_from, window_end),
        )
        return Planned(alert, None if kind == "started" else root)


RULES: dict[str, type[AlertRule]] = {
    NegativeSpikeRule.name: NegativeSpikeRule,
    HighReachRule.name: HighReachRule,
}
