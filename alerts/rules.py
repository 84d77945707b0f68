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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel

from alerts.counts import MONTH, share_tails, surprise, tail
from alerts.detector import (
    Point,
    SpikeContinuing,
    SpikeDetector,
    SpikeEnded,
    SpikeEvent,
    SpikeStarted,
    Verdict,
    _fmt_td,
)
from alerts.kept import DetectorCache, anchor, fed_arrays
from alerts.model import (
    HIGH_SEVERITY_RATIO,
    Alert,
    AlertKind,
    AlertTheme,
    alert_id_for,
    wave_id_for,
)
from alerts.reader import Counts, MentionReader, count_grid
from alerts.state import BrandState, OpenWave
from alerts.themes import WAVE_THEME_POSTS, wave_themes
from alerts.visibility import Visibility
from brandpulse.alert_settings import (
    CompetitorSpikeSettings,
    FlatlineSettings,
    HighReachSettings,
    PositiveSpikeSettings,
    Severity,
    SovShiftSettings,
    SpikeSettings,
    VolumeSpikeSettings,
)
from brandpulse.config import AlertsConfig, Config
from brandpulse.mention import SENTIMENT_LABELS, Mention, SentimentLabel
from brandpulse.query import BrandQuery

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
    when no Kibana is configured. `queries`: every configured brand's compiled query by
    name (`nlp.enrich.brand_queries`), which a wave's themes leave out of their labels and
    locate a brand's clauses with; empty, the brand's name alone is left out.
    `discover(brand, start, end, sentiment="negative")` is the Kibana Discover link
    for a window (of the brand's mentions of `sentiment`; None: all of them), or None
    when no Kibana is configured. `failing_sources` are the sources the health notices
    (`alerts.health`) already report as failing: their silence is explained.
    """

    brand: str
    now: datetime
    reader: MentionReader
    alerts: AlertsConfig
    discover: Callable[[str, datetime, datetime], str | None] = lambda brand, start, end: None
    queries: Mapping[str, BrandQuery] = field(default_factory=dict)
    discover: Callable[..., str | None] = lambda brand, start, end, sentiment="negative": None
    failing_sources: frozenset[str] = frozenset()
    # Whether the spike rules compute the figures a person reads (the line a wave needed
    # and its false-alert rate, `SpikeDetector.judge(figures=True)`): `alerts explain`.
    explain: bool = False
    # Spike detectors kept with their history from one check to the next (the engine's,
    # `alerts.kept`); None: every check rebuilds them from `alerts.history` of counts.
    detectors: DetectorCache | None = None


@dataclass(frozen=True)
class Planned:
    """An alert a rule wants sent. `root_alert_id` is the alert whose message a reply
    hangs under (a wave's first one); None for an alert that starts its own thread."""

    alert: Alert
    root_alert_id: str | None = None


@dataclass(frozen=True)
class Judged:
    """One interval a spike rule judged at a check: the detector's `Verdict` (what blocked
    a new wave, the window's figures) and whether its event was sent (a "still elevated"
    of a wave winding down is not). `subject`: the competitor watched, None for the
    brand itself. What `alerts explain` reads; the engine ignores it."""

    subject: str | None
    verdict: Verdict
    sent: bool


@dataclass(frozen=True)
class Evaluation:
    """A rule's verdict on one brand: alerts in sending order, and its new state.

    `judged` (spike rules) and `notes` (the other rules: one line each on what they
    saw and why they did or did not alert) are the reasoning `alerts explain` prints;
    the engine only sends `alerts` and stores `state`.
    """

    alerts: list[Planned]
    state: dict[str, Any] | None
    judged: tuple[Judged, ...] = ()
    notes: tuple[str, ...] = ()


class AlertRule(ABC):
    """The contract of every rule (see the module docstring).

    `severity(alert)` is how urgent an alert of the rule is (`Alert.severity` asks the
    rule that raised it; routes select on it): derived from what the alert says, so it
    needs no storing and reads the same after a restart. Every rule declares its own;
    an ended wave is `low` for all of them.
    """

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    # What `Alert.subject` names for this rule: a brand (a competitor, which routes
    # may select by name), a source, or nothing.
    subject_kind: ClassVar[str | None] = None

    @classmethod
    def severity(cls, alert: Alert) -> Severity:
        """`low` for an ended wave, else `medium`."""
        return "low" if alert.kind == "ended" else "medium"

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

    @property
    def enabled(self) -> bool:
        """Whether the rule judges anything for its brand (`enabled` of its settings,
        where they have one; the rules with competitors also need some)."""
        return bool(getattr(self.settings, "enabled", True))

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

    @classmethod
    def severity(cls, alert: Alert) -> Severity:
        """Always `high`: one post can reach more people than a whole wave."""
        return "high"

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
        note = (f"{len(candidates)} {'/'.join(settings.labels)} post(s) with reach >= "
                f"{settings.min_reach:,} in the last {_fmt_td(HIGH_REACH_LOOKBACK)}, "
                f"{len(planned)} not alerted before: "
                + ("FIRED" if planned else "nothing new to alert"))  # fmt: skip
        return Evaluation(planned, rule.to_state(), notes=(note,))

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


class SpikeRule(AlertRule):
    """A wave in one of a brand's counts (`alerts.detector.SpikeDetector`), threaded per wave.

    The base of every spike rule: a subclass says which count it watches (`watched`),
    whether the detector also gets the total for its share signal (`share_total`) and
    which posts an alert shows (`posts_label`, None: any sentiment). Nothing of the
    detector is copied: every spike rule is the same detector over another count.

    Each check reads the counts ending at `now - alerts.query_delay` rounded down to a
    whole interval (only complete intervals that crawling and indexing have caught up
    with are judged) and starting at `alerts.kept.anchor` (`alerts.history` before,
    rounded down to UTC midnight), rebuilds the detector from them plus its stored
    alert state (open wave, cooldown), and feeds it the intervals it has not judged
    yet. With `Check.detectors` (the engine's `alerts.kept.DetectorCache`,
    `alerts.keep_detectors`) the detector of the last check is fed on instead, when its
    start, the counts it was fed and the stored state are unchanged (the rebuild is for
    what they are not, and makes the same detector: see `alerts.kept`), so a check
    costs the new intervals, not `alerts.history`. The alerts carry the top negative posts of the judged window, and
    (started and continuing ones) the themes of the wave's negative posts since it
    began, its newest `WAVE_THEME_POSTS` (`alerts.themes`).

    State: `{"detector": <SpikeDetector state without history>, "last_fed": <start of
    the last judged interval>, "open_wave": <OpenWave>}`; None while the rule is off.
    """

    settings_model: ClassVar[type[SpikeSettings]] = SpikeSettings
    settings: SpikeSettings
    posts_label: ClassVar[SentimentLabel | None] = "negative"
    # Severity of a started or still-elevated wave: `levels[0]` at `high_ratio` times
    # its expected count or more (or from an expected count of zero), else `levels[1]`.
    high_ratio: ClassVar[float] = HIGH_SEVERITY_RATIO
    levels: ClassVar[tuple[Severity, Severity]] = ("high", "medium")

    @classmethod
    def severity(cls, alert: Alert) -> Severity:
        """By how far the wave is above its expected count (`high_ratio`, `levels`);
        `low` once it ended."""
        if alert.kind == "ended":
            return "low"
        ratio = alert.ratio
        return cls.levels[0] if ratio is None or ratio >= cls.high_ratio else cls.levels[1]
    # Whether the alerts carry the brand's negative share (and its usual one).
    negative_share: ClassVar[bool] = False

    @staticmethod
    def watched(c: Counts) -> int:
        return c.negative

    @staticmethod
    def share_total(c: Counts) -> int | None:
        return None

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> SpikeSettings:
        """`alerts.spike`, then the brand's own `spike`, then the rule's own section of
        `alerts.rules` (for the rules that have one), each merged over the last."""
        return config.spike_settings(brand, getattr(config.alerts.rules, cls.name))

    def _span(self, check: Check) -> tuple[datetime, datetime]:
        step = self.settings.interval
        end = floor_to(check.now - check.alerts.query_delay, step)
        return anchor(end, check.alerts.history, step), end

    def _point(self, c: Counts) -> Point:
        return Point(c.at, self.watched(c), self.share_total(c))

    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        if not self.enabled:
            return Evaluation([], None)
        return self._judge(check, state, check.brand, None)

    def _judge(
        self, check: Check, state: dict[str, Any] | None, watched: str, subject: str | None
    ) -> Evaluation:
        """Judge the counts of brand `watched` for `check.brand` (the same brand, or a
        competitor named by `subject`), from and to this rule's state for it."""
        state = state or {}
        settings = self.settings
        step = settings.interval
        start, end = self._span(check)
        if end <= start:
            return Evaluation([], state or None)
        last_fed = datetime.fromisoformat(state["last_fed"]) if state.get("last_fed") else None
        if last_fed is not None and last_fed + step >= end and state.get("detector"):
            # No interval completed since the last check judged one (a check every
            # minute, 5-minute intervals: four checks in five): nothing to judge, and
            # the state a rebuild would return is the one given. Nothing is read; counts
            # changed meanwhile are seen by the next check that judges.
            return Evaluation([], state)
        grid = count_grid(check.reader, watched, start, end, step)
        key = (self.name, check.brand, watched)
        cache = check.detectors
        kept = None
        if cache is not None:
            fed = fed_arrays((self.watched(c), self.share_total(c)) for c in grid)
            kept = cache.take(key, settings, state, start, *fed)
        detector = kept if kept is not None else (
            SpikeDetector.from_state(state["detector"], settings)
            if state.get("detector")
            else SpikeDetector(watched, settings)
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
        # A kept detector has fed every interval up to `last_fed` (`alerts.kept`): it
        # warms only the catch-up intervals after it (`warm` skips the rest anyway).
        detector.warm(self._point(c) for c in history
                      if kept is None or last_fed is None or c.at > last_fed)  # fmt: skip
        events: list[SpikeEvent] = []
        judged: list[Judged] = []
        for c in fresh:
            verdict = detector.judge(self._point(c), figures=check.explain)
            event = verdict.event
            quiet = event is not None and self.winding_down(event, settings)
            judged.append(Judged(subject, verdict, event is not None and not quiet))
            if event is None:
                continue
            if quiet:
                log.info("%s/%s: wave winding down, no 'still elevated' message", watched, self.name)
                continue
            events.append(event)

        planned = [self._alert(check, event, grid, watched, subject) for event in events]
        wave = OpenWave.from_dict(state["open_wave"]) if state.get("open_wave") else None
        wave = self._next_wave(wave, planned, check.now)
        new_last_fed = grid[-1].at if grid else last_fed
        after = {
            "detector": detector.to_state(include_history=False),
            "last_fed": new_last_fed.isoformat() if new_last_fed else None,
            "open_wave": wave.to_dict() if wave else None,
        }
        if cache is not None:
            cache.keep(key, settings, detector, start, *fed, after)
        return Evaluation(planned, after, tuple(judged))

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

    def _alert(
        self,
        check: Check,
        event: SpikeEvent,
        grid: list[Counts],
        watched: str,
        subject: str | None,
    ) -> Planned:
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

        wave_id = wave_id_for(brand, started_at, self.name, subject)
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
        if not self.negative_share:
            usual_share = None
        posts: tuple[Mention, ...] = ()
        themes: tuple[AlertTheme, ...] = ()
        if kind != "ended":
            posts = tuple(
                check.reader.by_reach(
                    watched,
                    window_start,
                    window_end,
                    sentiment=self.posts_label,
                    limit=check.alerts.top_posts,
                )
            )
            # The whole wave so far: an update says what the wave is about, not only
            # its last window.
            # Themes are complaint themes: only for the rules that watch negative posts
            # (the brand's own, or a competitor's for the opportunity rule).
            if self.posts_label == "negative":
                wave_posts = check.reader.newest(
                    watched,
                    min(window_start, began),
                    window_end,
                    sentiment="negative",
                    limit=WAVE_THEME_POSTS,
                )
                themes = wave_themes(wave_posts, watched, queries=check.queries)
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
            negative_share=negative / total if total and self.negative_share else None,
            usual_share=usual_share,
            score=score,
            signal=event.signal,
            wave_started_at=began,
            top_posts=posts,
            themes=themes,
            discover_url=check.discover(watched, link_from, window_end, sentiment=self.posts_label),
            rule=self.name,
            subject=subject,
        )
        return Planned(alert, None if kind == "started" else root)


class NegativeSpikeRule(SpikeRule):
    """A wave of negative mentions of the brand (its own sentiment, confident results):
    the first rule, always on, with `alerts.spike` merged with the brand's `spike`. The
    detector also gets the scored total, for its negative-share ("sentiment dip") signal.
    """

    name: ClassVar[str] = "negative_spike"
    negative_share: ClassVar[bool] = True

    @staticmethod
    def share_total(c: Counts) -> int | None:
        return c.total

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> SpikeSettings:
        """The brand's own spike settings merged over the global ones."""
        return config.spike_settings(brand)

    def visibility(self, check: Check, factor: float = 3.0) -> Visibility | None:
        """The smallest wave this rule can see at the brand's current volume; None
        without enough history for a baseline. Reads only."""
        start, end = self._span(check)
        detector = SpikeDetector(check.brand, self.settings)
        if end > start:
            grid = count_grid(check.reader, check.brand, start, end, self.settings.interval)
            detector.warm(self._point(c) for c in grid)
        return detector.visibility(factor)


class VolumeSpikeRule(SpikeRule):
    """A wave of all the brand's mentions, whatever their sentiment (scored or not).

    What it sees that `negative_spike` does not: a brand suddenly talked about -- a
    launch, a news story, an outage people ask about before they complain. Same
    detector and `false_alerts_per_month` meaning, on the brand's whole volume (which
    is larger, so smaller relative waves are visible). No share signal (a share of
    all mentions in all mentions is 1). Alerts show the posts of any sentiment with
    the widest reach. Off until `alerts.rules.volume_spike.enabled`.
    """

    name: ClassVar[str] = "volume_spike"
    settings_model: ClassVar[type[SpikeSettings]] = VolumeSpikeSettings
    posts_label: ClassVar[SentimentLabel | None] = None

    @staticmethod
    def watched(c: Counts) -> int:
        return c.mentions


class PositiveSpikeRule(SpikeRule):
    """A wave of positive mentions of the brand (its own sentiment): an opportunity to
    amplify (a review going viral, a praised launch). The same detector on the positive
    counts; alerts show the positive posts with the widest reach. Off until
    `alerts.rules.positive_spike.enabled`.
    """

    name: ClassVar[str] = "positive_spike"
    settings_model: ClassVar[type[SpikeSettings]] = PositiveSpikeSettings
    posts_label: ClassVar[SentimentLabel | None] = "positive"
    # An opportunity, not an incident: never `high`.
    levels: ClassVar[tuple[Severity, Severity]] = ("medium", "low")

    @staticmethod
    def watched(c: Counts) -> int:
        return c.positive


class CompetitorNegativeSpikeRule(SpikeRule):
    """A competitor's negative wave, told to an own brand's team: an opportunity.

    Evaluated for each own brand (`own: true`); for a competitor it does nothing.
    The competitors are `alerts.rules.competitor_negative_spike.competitors` when
    given, else every brand configured with `own: false` (the configuration has no
    per-brand competitor list; `Config.competitors`). For each of them it runs the
    negative-spike detector on the competitor's negative counts (its own sentiment)
    and reports waves under the own brand (`Alert.brand`), naming the competitor
    (`Alert.subject`): two own brands each get their message, in their own thread.
    The detector settings are `alerts.spike` with this rule's fields over them.

    State: `{"competitors": {<name>: <the spike state of SpikeRule>}}`; a competitor
    no longer configured is forgotten.
    """

    name: ClassVar[str] = "competitor_negative_spike"
    settings_model: ClassVar[type[SpikeSettings]] = CompetitorSpikeSettings
    settings: CompetitorSpikeSettings
    subject_kind: ClassVar[str | None] = "brand"
    # An opportunity for the own brand, not its incident: never `high`.
    levels: ClassVar[tuple[Severity, Severity]] = ("medium", "low")

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> CompetitorSpikeSettings:
        """`alerts.spike` with this rule's section over it, its competitors resolved
        (none for a competitor brand)."""
        section = config.alerts.rules.competitor_negative_spike
        merged = config.alerts.spike.model_dump() | section.model_dump(exclude_unset=True)
        merged["competitors"] = config.competitors(brand, section.competitors)
        return CompetitorSpikeSettings.model_validate(merged)

    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        competitors = [c for c in self.settings.competitors or () if c != check.brand]
        if not self.enabled or not competitors:
            return Evaluation([], None)
        before = (state or {}).get("competitors") or {}
        planned: list[Planned] = []
        after: dict[str, Any] = {}
        judged: list[Judged] = []
        for rival in competitors:
            result = self._judge(check, before.get(rival), rival, rival)
            planned.extend(result.alerts)
            judged.extend(result.judged)
            if result.state is not None:
                after[rival] = result.state
        return Evaluation(planned, {"competitors": after}, tuple(judged))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.enabled and [c for c in self.settings.competitors or ()
                                               if c != self.brand])


class FlatlineRule(AlertRule):
    """A brand whose mentions go silent -- in all, or from one source -- when it is
    normally busy enough that the silence is improbable.

    Each series (the brand's mentions of every sentiment, scored or not; and with
    `per_source`, its mentions from each enabled source that searches for it) is
    judged alike, on the complete intervals up to `now - alerts.query_delay - lag`,
    where `lag` is how long crawls take to fetch a post (`crawl_lag`, by default the
    source's `schedule.every` + `jitter`; for the brand, the longest of its sources'):

    1. the silence is the run of empty intervals since the last one with a mention;
       shorter than `min_silence`, or no mention in `alerts.history` at all, is nothing;
    2. `SpikeDetector.expected_since` gives how many mentions the stretch should have
       held (its seasonal baseline and recent level, learnt on the same counts) and
       their over-dispersion alpha; the silence's probability is P(X = 0) =
       1 - `alerts.counts.tail(1, mu, alpha)` (Poisson at alpha 0);
    3. a month holds about `MONTH / silence` stretches that long, so the line is
       `MONTH / silence * P(0) <= false_alerts_per_month`: the same meaning as the
       spike detector's sensitivity (chance alone, at most that often a month).

    One "started" alert per silence (its id depends on when the silence began, so a
    re-run cannot repeat it) and one "ended" reply in its thread when a mention
    arrives again. A source that keeps *failing* is the health notices' business
    (`alerts.health`, `health.source_failures`): this rule is for the silences they
    cannot see (crawls that succeed and find nothing, a query that stopped matching,
    a stopped crawler), and skips the sources they report as failing
    (`Check.failing_sources`, from `HealthTracker.sources_down`), and the brand as a
    whole when all its sources are.

    State: `{"series": {"": <brand>, <source>: ...}}`, each `{"silent_since", "root"}`
    while a reported silence lasts.
    """

    name: ClassVar[str] = "flatline"
    settings_model: ClassVar[type[FlatlineSettings]] = FlatlineSettings
    settings: FlatlineSettings
    subject_kind: ClassVar[str | None] = "source"
    # A silence is measured by how many mentions it should have held (`Alert.expected`:
    # its length against the series' normal rate): this many or more is `high` (data
    # is surely being lost), `FLATLINE_MEDIUM` or more `medium`, fewer `low`.
    FLATLINE_HIGH: ClassVar[float] = 20.0
    FLATLINE_MEDIUM: ClassVar[float] = 8.0

    @classmethod
    def severity(cls, alert: Alert) -> Severity:
        """By the mentions the silence should have held; `low` once mentions are back."""
        if alert.kind == "ended":
            return "low"
        if alert.expected >= cls.FLATLINE_HIGH:
            return "high"
        return "medium" if alert.expected >= cls.FLATLINE_MEDIUM else "low"

    def __init__(
        self,
        brand: str = "",
        settings: FlatlineSettings | None = None,
        detector: SpikeSettings | None = None,
        lags: dict[str, timedelta] | None = None,
    ) -> None:
        super().__init__(brand, settings)
        self.detector = detector or SpikeSettings()
        # The crawl lag of each source searching for the brand, by name ("" is the brand
        # as a whole); judged apart when `per_source`.
        self.lags = lags if lags is not None else {"": timedelta(0)}

    @classmethod
    def for_brand(cls, config: Config, brand: str) -> FlatlineRule:
        """The rule with the brand's spike settings (interval, history, warm-up) and the
        enabled sources that search for the brand, with their crawl lag."""
        settings = config.alerts.rules.flatline
        lags: dict[str, timedelta] = {}
        for source in config.sources:
            if source.enabled and (source.brands is None or brand in source.brands):
                lag = source.schedule.every + source.schedule.jitter
                lags[source.name] = settings.crawl_lag if settings.crawl_lag is not None else lag
        whole = max(lags.values(), default=settings.crawl_lag or timedelta(0))
        return cls(brand, settings, config.spike_settings(brand), {"": whole, **lags})

    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        if not self.settings.enabled:
            return Evaluation([], None)
        step = self.detector.interval
        end = floor_to(check.now - check.alerts.query_delay, step)
        # the spike rules' history window (`alerts.kept.anchor`): one window per check,
        # so the incremental counts reader keeps one set of hours per brand
        start = anchor(end, check.alerts.history, step)
        if end <= start:
            return Evaluation([], state)
        before = (state or {}).get("series") or {}
        series: dict[str, list[tuple[datetime, int]]] = {
            "": [(c.at, c.mentions) for c in count_grid(check.reader, check.brand, start, end, step)]
        }
        sources = [name for name in self.lags if name]
        if sources and self.settings.per_source:
            found: dict[tuple[str, datetime], int] = {
                (r.source, r.start): r.total
                for r in check.reader.counts_by_source(check.brand, start, end, step)
            }
            for name in sources:
                series[name] = [(at, found.get((name, at), 0)) for at, _ in series[""]]
        planned: list[Planned] = []
        after: dict[str, Any] = {}
        notes: list[str] = []
        failing = check.failing_sources
        for key, points in series.items():
            # A failing source is the health notices' news (alerts.health); so is the
            # brand's silence when every source that searches for it is failing.
            explained = key in failing if key else bool(sources) and failing >= set(sources)
            if explained:
                if before.get(key):
                    after[key] = before[key]
                notes.append(f"{key or 'all sources'}: failing, reported by the health notices")
                continue
            cut = floor_to(end - self.lags[key], step)
            alerts, kept, note = self._judge(check, key or None, points, cut, before.get(key))
            planned.extend(alerts)
            notes.append(f"{key or 'all sources'}: {note}")
            if kept:
                after[key] = kept
        return Evaluation(planned, {"series": after}, notes=tuple(notes))

    def _judge(
        self,
        check: Check,
        source: str | None,
        points: list[tuple[datetime, int]],
        end: datetime,
        state: dict[str, Any] | None,
    ) -> tuple[list[Planned], dict[str, Any] | None, str]:
        """The alerts of one series, its new state, and a line on why (for `explain`)."""
        brand, step = check.brand, self.detector.interval
        points = [(at, n) for at, n in points if at < end]
        if state and state.get("silent_since"):
            since = datetime.fromisoformat(state["silent_since"])
            back = [(at, n) for at, n in points if at >= since and n > 0]
            if not back:
                # still silent: told once already
                return [], state, f"silent since {since:%Y-%m-%d %H:%M} UTC, already alerted"
            wave_id = wave_id_for(brand, since, self.name, source)
            ended = Alert(
                kind="ended",
                brand=brand,
                wave_id=wave_id,
                interval_start=since,
                interval_end=back[0][0],
                observed=sum(n for _, n in back),
                expected=0.0,
                wave_started_at=since,
                discover_url=check.discover(brand, since, end, sentiment=None),
                rule=self.name,
                subject=source,
            )
            return [Planned(ended, state.get("root"))], None, "mentions again: FIRED (ended)"
        busy = [at for at, n in points if n > 0]
        if not busy:
            # nothing to go by: a new brand, or silent for all the history
            return [], None, "no mention in alerts.history: nothing to compare with"
        since = busy[-1] + step
        silence = end - since
        if silence < self.settings.min_silence:
            return [], None, (f"not silent (last mention in the interval from "
                              f"{busy[-1]:%Y-%m-%d %H:%M} UTC; min_silence="
                              f"{_fmt_td(self.settings.min_silence)})")  # fmt: skip
        detector = SpikeDetector(f"{brand}/{source}" if source else brand, self.detector)
        detector.warm(Point(at, n) for at, n in points)
        expected = detector.expected_since(since) if detector.warmed_up else None
        if expected is None:
            return [], None, f"silent for {_fmt_td(silence)}, but warm-up: no expected count yet"
        mu, alpha = expected
        p_zero = 1.0 - tail(1, mu, alpha)
        rate = MONTH / silence * p_zero
        figures = (f"observed 0 in {_fmt_td(silence)}, expected {mu:.1f}; a silence this long "
                   f"happens by chance {rate:.3g} times a month (line: false_alerts_per_month="
                   f"{self.settings.false_alerts_per_month:g})")  # fmt: skip
        if rate > self.settings.false_alerts_per_month:
            return [], None, f"{figures}: below threshold"
        wave_id = wave_id_for(brand, since, self.name, source)
        alert_id = alert_id_for("started", brand, wave_id, since)  # one per silence
        alert = Alert(
            kind="started",
            brand=brand,
            wave_id=wave_id,
            alert_id=alert_id,
            interval_start=since,
            interval_end=end,
            observed=0,
            expected=mu,
            score=surprise(p_zero),
            wave_started_at=since,
            discover_url=check.discover(brand, since - timedelta(days=1), end, sentiment=None),
            rule=self.name,
            subject=source,
        )
        return [Planned(alert)], {"silent_since": since.isoformat(), "root": alert_id}, f"{figures}: FIRED"


# A day's share of voice is judged this long after the day ends (crawls catch up).
SOV_SETTLE = timedelta(hours=1)
_DAY = timedelta(days=1)
# The least day-to-day spread of a share (its standard deviation, 1 percentage point)
# assumed when the baseline days happen to agree closely.
_MIN_SHARE_SD = 0.01


class SovShiftRule(AlertRule):
    """An own brand's share of voice against its competitors moved on a UTC day.

    Once a day, `SOV_SETTLE` after the day ends (and `alerts.query_delay`), for an own
    brand with competitors (`competitors`, else every `own: false` brand):

    * the day: `k` mentions of the brand out of `n` mentions of the brand and its
      competitors together (`MentionReader.counts` per day, every sentiment; a
      mention naming two of them counts for both, as the counts do);
    * the usual share `p` = the brand's mentions over the set's over the previous
      `baseline_days`, and how much the daily share wanders around it: the spread of
      the daily shares with the binomial part taken out (at least 1 point), plus the
      uncertainty of `p` itself from the mentions it rests on;
    * `k` is judged under a beta-binomial with that mean and spread
      (`alerts.counts.share_tails`), both ways: a share that jumps and one that
      drops. One test a day, so a two-sided tail probability P pages when
      `30 * P <= false_alerts_per_month` (0.5: a brand with an ordinary share sees a
      false shift every two months at most), when the share moved by at least
      `min_change`, and only on a day with at least `min_mentions` in the set and a
      baseline of at least `min_mentions` a day on average.

    The alert: `observed` k, `total` n, `expected` p x n (so the usual share is
    expected / total), the brand's widest-reach posts of the day. State:
    `{"last_day": <the last day judged>}`; None while the rule is off or the brand
    has no competitors.
    """

    name: ClassVar[str] = "sov_shift"
    settings_model: ClassVar[type[SovShiftSettings]] = SovShiftSettings
    settings: SovShiftSettings
    # By the size of the move of the share (percentage points, either way): at least
    # `SOV_HIGH` is `high`, at least `SOV_MEDIUM` `medium`, smaller `low`.
    SOV_HIGH: ClassVar[float] = 0.15
    SOV_MEDIUM: ClassVar[float] = 0.05

    @classmethod
    def severity(cls, alert: Alert) -> Severity:
        """By how far the day's share moved from the usual one (`observed`/`total`
        against `expected`/`total`)."""
        if alert.kind == "ended" or not alert.total:
            return "low"
        move = abs(alert.observed - alert.expected) / alert.total
        return "high" if move >= cls.SOV_HIGH else "medium" if move >= cls.SOV_MEDIUM else "low"

    @classmethod
    def settings_for(cls, config: Config, brand: str) -> SovShiftSettings:
        """`alerts.rules.sov_shift` with its competitors resolved (none for a competitor)."""
        section = config.alerts.rules.sov_shift
        return section.model_copy(
            update={"competitors": config.competitors(brand, section.competitors)}
        )

    @property
    def enabled(self) -> bool:
        return bool(self.settings.enabled and [c for c in self.settings.competitors or ()
                                               if c != self.brand])

    def evaluate(self, check: Check, state: dict[str, Any] | None) -> Evaluation:
        settings, brand = self.settings, check.brand
        rivals = [c for c in settings.competitors or () if c != brand]
        if not settings.enabled or not rivals:
            return Evaluation([], None)
        day = floor_to(check.now - check.alerts.query_delay - SOV_SETTLE, _DAY) - _DAY
        last = (state or {}).get("last_day")
        if last is not None and datetime.fromisoformat(last) >= day:
            return Evaluation([], state, notes=(f"{last[:10]} already judged (one judgement a "
                                                "day, after the day has settled)",))  # fmt: skip
        done = {"last_day": day.isoformat()}
        start = day - settings.baseline_days * _DAY
        per_day: dict[datetime, list[int]] = {}  # day -> [brand's, the set's]
        for name in (brand, *rivals):
            for row in check.reader.counts(name, start, day + _DAY, _DAY):
                counts = per_day.setdefault(row.start, [0, 0])
                counts[1] += row.total
                if name == brand:
                    counts[0] += row.total
        k, n = per_day.pop(day, [0, 0])
        before = [(a, b) for a, b in per_day.values() if b > 0]
        big_k, big_n = sum(a for a, _ in before), sum(b for _, b in before)
        if n < settings.min_mentions or big_n < settings.min_mentions * settings.baseline_days:
            return Evaluation([], done, notes=(
                f"{day:%Y-%m-%d}: {n} mentions of the set that day, {big_n} in the "
                f"{settings.baseline_days} days before: under min_mentions="
                f"{settings.min_mentions} (a day)",))  # fmt: skip
        share = big_k / big_n
        p_lo, p_hi = self._tails(k, n, share, before)
        p_two = min(1.0, 2.0 * min(p_lo, p_hi))
        figures = (f"{day:%Y-%m-%d}: share {k / n:.1%} ({k} of {n}), usual {share:.1%}; a move "
                   f"this large happens by chance {30.0 * p_two:.3g} times a month (line: "
                   f"false_alerts_per_month={settings.false_alerts_per_month:g})")  # fmt: skip
        if abs(k / n - share) < settings.min_change:
            return Evaluation([], done, notes=(
                f"{figures}: moved less than min_change={settings.min_change:g}",))
        if 30.0 * p_two > settings.false_alerts_per_month:
            return Evaluation([], done, notes=(f"{figures}: below threshold",))
        posts = check.reader.by_reach(
            brand, day, day + _DAY, sentiment=None, limit=check.alerts.top_posts
        )
        alert = Alert(
            kind="started",
            brand=brand,
            wave_id=wave_id_for(brand, day, self.name),
            interval_start=day,
            interval_end=day + _DAY,
            observed=k,
            expected=share * n,
            total=n,
            score=surprise(p_two),
            wave_started_at=day,
            top_posts=tuple(posts),
            discover_url=check.discover(brand, day, day + _DAY, sentiment=None),
            rule=self.name,
        )
        return Evaluation([Planned(alert)], done, notes=(f"{figures}: FIRED",))

    @staticmethod
    def _tails(
        k: int, n: int, share: float, before: list[tuple[int, int]]
    ) -> tuple[float, float]:
        """Both tails of `k` of `n` under the usual `share` and its day-to-day spread.

        The spread of the daily shares around `share`, weighted by each day's
        mentions, less its binomial part (moment estimate; at least `_MIN_SHARE_SD`
        squared), plus the uncertainty of `share` from the mentions it rests on, gives
        the variance of the day's true share; a Beta with that mean and variance has
        concentration share(1-share)/variance - 1.
        """
        pq = share * (1.0 - share)
        big_n = sum(b for _, b in before)
        observed = sum(b * (a / b - share) ** 2 for a, b in before) / big_n
        binomial = pq * len(before) / big_n
        spread = max(observed - binomial, _MIN_SHARE_SD**2)
        variance = spread + pq / (big_n + 1.0)
        concentration = max(pq / variance - 1.0, 1e-3)
        return share_tails(k, n, share, concentration)


RULES: dict[str, type[AlertRule]] = {
    NegativeSpikeRule.name: NegativeSpikeRule,
    HighReachRule.name: HighReachRule,
    VolumeSpikeRule.name: VolumeSpikeRule,
    PositiveSpikeRule.name: PositiveSpikeRule,
    CompetitorNegativeSpikeRule.name: CompetitorNegativeSpikeRule,
    SovShiftRule.name: SovShiftRule,
    FlatlineRule.name: FlatlineRule,
}


def rules_for(
    config: Config, brand: str, registry: Mapping[str, type[AlertRule]] = RULES
) -> dict[str, AlertRule]:
    """Every rule of `registry`, built for `brand` from the configuration."""
    return {name: rule_class.for_brand(config, brand) for name, rule_class in registry.items()}


def evaluate_rules(
    rules: Mapping[str, AlertRule], check: Check, state: BrandState
) -> tuple[list[Planned], BrandState, dict[str, Evaluation]]:
    """Every rule, in order, each from and to its own state in `state`.

    The one evaluation of a check: the engine runs it at every check, and the replay
    (`alerts.replay`: `alerts explain`, `alerts backtest`) at every check it replays,
    with the same rules, history window and states, so a backtest lists the alerts
    the daemon sent on the same data. Returns the alerts in sending order, the new
    state and each rule's evaluation (its reasoning, for `explain`).
    """
    planned: list[Planned] = []
    evaluations: dict[str, Evaluation] = {}
    for name, rule in rules.items():
        result = rule.evaluate(check, state.rule_state(name))
        planned.extend(result.alerts)
        evaluations[name] = result
        state = state.with_rule_state(name, result.state)
    return planned, state, evaluations
