"""Streaming negative-spike detector: one instance per brand, fed complete intervals.

How it judges a check (see docs/alerting.md for the long version):

* Counts are bucketed into clock hours (UTC). The expected count of an hour is a
  seasonal profile scaled by the recent level. Busy brands (5+ mentions an hour):
  the median of the same hour on the previous 7 days (raised to the same
  hour-of-week when that hour was at least this busy in each of the last three
  weeks) and the median hourly log ratio actual/profile over `level_hours`, so a
  past spike does not become "normal". Quiet brands, where medians of small
  counts are biased: a Gamma-Poisson shrunk profile and a ratio-of-sums level
  resting on at least ~100 expected mentions, with each hour capped at 3x(+3).
* The latest window(s) of intervals are judged by the exact tail probability of
  their count under that expectation: negative binomial with over-dispersion
  learned per series (the robust extra-Poisson spread of its hourly ratios, plus
  the uncertainty of the level itself, ~1/mentions behind it) — Poisson when
  there is none (`alerts.counts.tail`). The sensitivity is
  `false_alerts_per_month`: a crossing pages only when a line at this count would
  be reached by noise alone no more often than that, given the series' own
  window, interval and check cadence (`alerts.counts.false_alerts_per_month`).
  So the same default asks a quiet brand for a much bigger relative wave than a
  busy one; `alerts.visibility` says how big, per brand.
* A wave also needs observed >= min_count and >= min_ratio * expected, after the
  warm-up; borderline crossings must hold `confirm_checks` checks. A slow-rise
  CUSUM over hourly scores catches rises no single window shows. While a wave
  lasts the detector emits one `SpikeContinuing` per `continuing_every`, and a
  `SpikeEnded` once the score has stayed below `end_threshold` for `end_after`.
  A crossing within `cooldown` of the end reopens the same wave
  (`SpikeContinuing`, reopened=True) instead of paging again.

Nothing looks ahead: the expected count of an hour only uses hours before it, and
a check only sees intervals it has been fed. The caller applies the query delay
for crawl/indexing lag and feeds complete intervals only.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from alerts.counts import false_alerts_per_month, smallest_alerting_count, surprise, tail
from alerts.visibility import Visibility, ratio_line, smallest_visible_wave
from brandpulse.alert_settings import SpikeSettings
from brandpulse.timeutil import to_utc

STATE_VERSION = 2  # 2: count-tail model (quiet-brand baseline, episode offset/window)
_MAD_TO_SIGMA = 1.4826
_SIGMA_FLOOR = 0.1  # a perfectly flat history must not turn a +10% blip into z=inf
_DAILY_SAMPLES = 7
_WEEKLY_SAMPLES = 3
_SCALE_HOURS = 168
_MIN_SCALE_HOURS = 12
_SHARE_FLOOR = 0.01
_MEDIAN_FROM = 5.0  # hourly counts from which a median is within ~10 % of the mean
_LEVEL_CAP = 3.0  # an hour above 3x(+3) its profile counts as 3x(+3) for the level
_MIN_SEASONAL_CV2 = 0.01  # a quiet brand's hours are never taken as more alike than +-10 %
_LEVEL_MENTIONS = 100.0  # a quiet brand's level rests on at least this many expected mentions
_RECORD_FROM_HOURS = 168  # the record path needs a week of history: a shorter one has no record
_RECORD_RATE = 30.0  # a record must also be under 30x the false-alert budget by the model

Signal = Literal["volume", "share"]
log = logging.getLogger(__name__)
_HOUR = timedelta(hours=1)
_HISTORY_KEYS = frozenset(
    {"last", "seen", "recent", "recent_totals", "hour", "hour_count", "hour_total",
     "hour_total_known", "hours", "totals", "profile", "expected"}
)  # fmt: skip


def _typical(values: list[float] | list[int]) -> float:
    """The median where it is nearly unbiased (counts of 5 or more), else a robust mean.

    A median is robust to several spike days among the samples, but the median
    of small counts is biased (0 at 0.3 mentions an hour, whatever the true
    rate); there the mean with its largest value capped (`_robust_mean`) is used.
    """
    med = _median([float(v) for v in values])
    return med if med >= _MEDIAN_FROM else _robust_mean(values)


def _robust_mean(values: list[float] | list[int]) -> float:
    """Mean with the largest value capped at 3x the mean of the others, +3.

    Unbiased at 0.3 mentions an hour (where a median is 0), and one spike day
    among the samples raises it only as far as a 3x(+3) day would.
    """
    s = [float(v) for v in values]
    if len(s) >= 2:
        top = max(s)
        rest = (sum(s) - top) / (len(s) - 1)
        return (sum(s) - top + min(top, _LEVEL_CAP * rest + _LEVEL_CAP)) / len(s)
    return s[0] if s else 0.0


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])


@dataclass(frozen=True, slots=True)
class Point:
    """One complete interval: its start (UTC), the watched count, optionally all mentions."""

    at: datetime
    count: int
    total: int | None = None


@dataclass(frozen=True, slots=True)
class SpikeStarted:
    """A new wave: the first alert of an episode."""

    kind: ClassVar[str] = "spike_started"
    brand: str
    at: datetime  # start of the latest interval of the judged window
    observed: int  # count in the window
    expected: float  # expected count in the window
    score: float  # robust z-score (binomial z for signal="share")
    ratio: float  # (observed+1)/(expected+1); for "share": share / usual share
    signal: Signal = "volume"
    window: timedelta = timedelta(hours=1)
    total: int | None = None  # all mentions in the window, when fed
    share: float | None = None  # observed/total
    expected_share: float | None = None


@dataclass(frozen=True, slots=True)
class SpikeContinuing:
    """The wave started at `started_at` is still going; new figures for the latest window."""

    kind: ClassVar[str] = "spike_continuing"
    brand: str
    at: datetime
    started_at: datetime
    observed: int
    expected: float
    score: float
    ratio: float
    peak_observed: int
    peak_score: float
    excess: float  # mentions above expectation since the start, all intervals summed
    signal: Signal = "volume"
    window: timedelta = timedelta(hours=1)
    reopened: bool = False  # a flare-up within `cooldown` of the wave's end


@dataclass(frozen=True, slots=True)
class SpikeEnded:
    """Back to normal."""

    kind: ClassVar[str] = "spike_ended"
    brand: str
    at: datetime
    started_at: datetime
    duration: timedelta
    observed: int
    expected: float
    peak_observed: int
    peak_score: float
    excess: float
    signal: Signal = "volume"
    reason: Literal["normal", "reset"] = "normal"
    window: timedelta = timedelta(hours=2)  # the window the wave was followed on


SpikeEvent = SpikeStarted | SpikeContinuing | SpikeEnded

# Why a judged interval did not start a wave (`Verdict.blocked`), in the order the
# detector asks: not judged yet (warm-up, no baseline), already in a wave, too few
# mentions, not improbable enough (the line), too small a multiple of the expected
# count, a borderline crossing still waiting for its confirmations, or a flare-up
# within the cooldown of the last wave (which reopens it instead of paging).
Blocked = Literal[
    "already fed", "warm-up", "no baseline", "in wave", "min_count", "line", "ratio",
    "confirmations", "cooldown",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    """The detector's reasoning on one interval (`SpikeDetector.judge`): the event it
    caused, if any, what blocked a new wave, and the figures of the judged window.

    `line` is the smallest window count that would have started a wave (the highest of
    the false-alert line, `min_count` and `min_ratio` x expected); `rate` how many
    false alerts a month a line at the observed count would give on noise alone.
    Figures are None where the detector never got that far (warm-up, no baseline).
    """

    at: datetime
    event: SpikeEvent | None
    blocked: Blocked | None
    observed: int | None = None
    expected: float | None = None
    ratio: float | None = None
    score: float | None = None
    rate: float | None = None
    line: int | None = None
    window: timedelta | None = None
    crossings: int = 0
    record: int | None = None  # most mentions in any earlier window of the history (records on)


@dataclass(slots=True)
class _Check:
    observed: int
    expected: float
    score: float
    ratio: float
    step_expected: float  # expected count of the latest interval alone
    rate: float = math.inf  # false alerts per month of a line at this count (noise alone)
    window: timedelta = timedelta(hours=2)  # the window these figures are for
    total: int | None = None
    share: float | None = None
    expected_share: float | None = None
    share_score: float | None = None
    slow: float = 0.0
    mu: float = 0.0  # the expectation the tail is taken under (floored)
    alpha: float = 0.0  # its over-dispersion
    record: float = math.inf  # most mentions in an earlier window of the brand's history


@dataclass(slots=True)
class _Episode:
    signal: Signal
    started_at: datetime
    last_report: datetime
    peak_observed: int
    peak_score: float
    excess: float = 0.0
    quiet_steps: int = 0
    level: float | None = None  # baseline level frozen at the start
    frozen_from: int | None = None  # first hour (since epoch) judged with the frozen level
    offset: float = 1.0  # of the frozen level (see SpikeDetector._level)
    window: timedelta = timedelta(hours=2)  # the window that started it, which follows it

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "started_at": self.started_at.isoformat(),
            "last_report": self.last_report.isoformat(),
            "peak_observed": self.peak_observed,
            "peak_score": self.peak_score,
            "excess": self.excess,
            "quiet_steps": self.quiet_steps,
            "level": self.level,
            "frozen_from": self.frozen_from,
            "offset": self.offset,
            "window": self.window.total_seconds(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Episode:
        return cls(
            signal=d["signal"],
            started_at=datetime.fromisoformat(d["started_at"]),
            last_report=datetime.fromisoformat(d["last_report"]),
            peak_observed=int(d["peak_observed"]),
            peak_score=float(d["peak_score"]),
            excess=float(d["excess"]),
            quiet_steps=int(d["quiet_steps"]),
            level=None if d.get("level") is None else float(d["level"]),
            frozen_from=d.get("frozen_from"),
            offset=float(d.get("offset", 1.0)),
            window=timedelta(seconds=float(d.get("window", 7200))),
        )


@dataclass(slots=True)
class _Baseline:
    """What the current hour expects; derived from the stored history, never stored itself."""

    hour: int
    profile: float  # seasonal expected count of the current hour
    expected_hour: float  # profile scaled by the recent level
    level: float
    offset: float  # 1: busy brand, medians of (c+1)/(p+1); 0: quiet, ratio of sums
    sigma: float | None = None  # filled lazily: only checks need it, warming does not
    share: float | None = None
    slow: float | None = None  # slow-rise CUSUM over the completed hours (lazy too)
    alpha: float | None = None  # over-dispersion of the window count (lazy too)
    phi: float = 1.0  # a quiet brand's index of dispersion (clustering), set with alpha
    record: float | None = None  # most mentions in any earlier window (lazy; inf: no record yet)


@dataclass(slots=True)
class _History:
    """Hourly buckets of the watched count (and totals), with what was expected of each."""

    hours: deque[int]
    totals: deque[int]  # -1 = not known for that hour
    profile: deque[float]  # seasonal profile of each completed hour (NaN = none yet)
    expected: deque[float]  # full prediction made for each completed hour (NaN = none)
    hour: int | None = None  # index (hours since epoch) of the hour being filled
    hour_count: int = 0
    hour_total: int = 0
    hour_total_known: bool = True


class SpikeDetector:
    """The `negative_spike` rule for one brand.

    Contract: `observe(point) -> SpikeEvent | None`, `describe(event) -> str`,
    `warm(points)`, `to_state()` / `from_state()`.
    """

    name: ClassVar[str] = "negative_spike"
    settings_model: ClassVar[type[SpikeSettings]] = SpikeSettings

    def __init__(self, brand: str = "", settings: SpikeSettings | None = None) -> None:
        self.brand = brand
        self.settings = settings or SpikeSettings()
        self._last: datetime | None = None
        self._seen = 0
        self._reset_history()
        self._episode: _Episode | None = None
        self._cooldown_until: datetime | None = None
        self._closed: _Episode | None = None  # the wave that ended, during its cooldown
        self._baseline: _Baseline | None = None
        # First hour (since epoch) the slow-rise sum may use: the hours of a wave
        # that already paged must not push the next one over the line.
        self._slow_from: int | None = None
        self._crossings = 0  # consecutive checks over the line, outside a wave
        # (first hour, end hour (exclusive), level, offset) of the waves that ended within
        # the week of predictions kept: their hours were predicted with the level the
        # wave froze, and a history rebuilt by `warm()` must predict them the same way.
        self._frozen: list[tuple[int, int, float, float]] = []

    # ------------------------------------------------------------------ public API

    def observe(self, point: Point) -> SpikeEvent | None:
        """Feed the next complete interval; return the event it causes, if any.

        Intervals at or before the last one fed are ignored (returns None), so a
        restarted daemon may safely re-feed what it already fed.
        """
        return self.judge(point, figures=False).event

    def judge(self, point: Point, *, figures: bool = True) -> Verdict:
        """`observe`, with the reasoning: what blocked a wave and the window's figures.

        The one decision path (`observe` is this without the reasons), so what
        `alerts explain` and `alerts backtest` report is what the daemon did.
        `figures=False` leaves out the line and the rate (a search over counts that
        only a person reading the verdict needs).
        """
        at = to_utc(point.at)
        if not self._advance(at, point.count, point.total):
            return Verdict(at, None, "already fed")
        if self._seen < self._warmup_steps:
            return Verdict(at, None, "warm-up")
        check = self._check(at)
        if check is None:
            return Verdict(at, None, "no baseline")
        event, blocked = self._decide(at, check)
        return Verdict(
            at,
            event,
            blocked,
            check.observed,
            check.expected,
            check.ratio,
            check.score,
            self._rate(check) if figures else None,
            self._line(check) if figures else None,
            check.window,
            self._crossings if blocked == "confirmations" else int(blocked is None),
            int(check.record) if math.isfinite(check.record) else None,
        )

    def _rate(self, c: _Check) -> float:
        """False alerts a month of a line at the observed count (also with `threshold`,
        where the decision does not use it); inf when the count is not above expected."""
        if c.observed <= c.mu:
            return math.inf
        s = self.settings
        rate = false_alerts_per_month(c.observed, c.mu, c.alpha, c.window, s.interval)
        return rate * len(s.windows)

    def _line(self, c: _Check) -> int:
        """The smallest window count that would start a wave on volume at this check."""
        s = self.settings
        by_ratio = ratio_line(s, c.expected)
        if s.threshold is not None:
            lo = c.observed
            while lo > 0 and surprise(tail(lo - 1, c.mu, c.alpha)) >= s.threshold:
                lo -= 1
            hi = max(lo, 1)
            while surprise(tail(hi, c.mu, c.alpha)) < s.threshold:
                hi += 1
            prob_line = hi
        else:
            prob_line = smallest_alerting_count(
                c.mu, c.alpha, c.window, s.interval, s.false_alerts_per_month / len(s.windows)
            )
        line = max(prob_line, s.min_count, by_ratio)
        if s.threshold is None and math.isfinite(c.record) and c.record + 1 < line:
            line = min(line, _record_line(s, c.record, c.expected, c.mu, c.alpha))
        return line

    def update(self, at: datetime, count: int, total: int | None = None) -> SpikeEvent | None:
        """`observe` without building a `Point`."""
        return self.observe(Point(at, count, total))

    def warm(
        self, points: Iterable[Point | tuple[datetime, int] | tuple[datetime, int, int | None]]
    ) -> None:
        """Feed history without judging it: no events, episode and cooldown untouched.

        The daemon rebuilds the history from Elasticsearch counts at each check and
        restores only the alert part of the state (`to_state(include_history=False)`).
        """
        for p in points:
            if isinstance(p, Point):
                self._advance(to_utc(p.at), p.count, p.total)
            else:
                self._advance(to_utc(p[0]), p[1], p[2] if len(p) > 2 else None)  # type: ignore[misc]

    @property
    def active(self) -> bool:
        """True while a wave is open (between SpikeStarted and SpikeEnded)."""
        return self._episode is not None

    @property
    def warmed_up(self) -> bool:
        return self._seen >= self._warmup_steps

    def visibility(self, factor: float = 3.0) -> Visibility | None:
        """The smallest wave this brand can show at its current volume (None before any data).

        The level is the mean prediction over the last day (so a brand's daily
        rhythm does not make the answer depend on the hour asked), the
        over-dispersion the one the next check would use.
        """
        base = self._predict() if self._hist.hour is not None else None
        if base is None:
            return None
        recent = [e for e in list(self._hist.expected)[-24:] if not math.isnan(e)]
        per_hour = sum(recent) / len(recent) if recent else base.expected_hour
        mu = per_hour * (self.settings.window / timedelta(hours=1))
        alpha = self._window_alpha(base, self._spread(base), mu)
        s = self.settings
        vis = smallest_visible_wave(per_hour, s, factor, alpha)
        record = self._record(base) if s.records else math.inf
        if not math.isfinite(record) or s.threshold is not None or vis.window != s.window:
            return vis
        line = _record_line(s, record, vis.expected, max(vis.expected, 1e-9), alpha)
        return replace(vis, record=int(record), record_line=line)

    def expected_since(self, since: datetime) -> tuple[float, float] | None:
        """(expected count, over-dispersion alpha) of the watched count from `since` to
        the end of the last interval fed, by the detector's own predictions.

        The sum of the predictions made for each hour (its seasonal profile scaled by
        the recent level, as a check judges it), the partial first and current hours
        pro rata; alpha is the one the next check would use (the count is negative
        binomial with variance mu + alpha mu^2, `alerts.counts.tail`). What the
        flatline rule asks: how many mentions the silence should have held. None
        before any prediction covers the stretch (too little history, or the stretch
        reaches beyond the predictions kept, a week).
        """
        h = self._hist
        if h.hour is None or self._last is None:
            return None
        since = to_utc(since)
        until = self._last + self.settings.interval
        if since >= until:
            return (0.0, 0.0)
        base = self._predict()
        if base is None:
            return None
        first = int(since.timestamp() // 3600)
        total = 0.0
        for hour in range(first, h.hour + 1):
            lo = max(since.timestamp(), hour * 3600.0)
            hi = min(until.timestamp(), (hour + 1) * 3600.0)
            if hi <= lo:
                continue
            if hour == h.hour:
                e = base.expected_hour
            else:
                back = h.hour - hour
                if back > len(h.expected) or math.isnan(h.expected[-back]):
                    return None
                e = h.expected[-back]
            total += e * (hi - lo) / 3600.0
        return total, self._dispersion(base, self._spread(base))

    def describe(self, event: SpikeEvent) -> str:
        """One line for a human (Slack text, logs)."""
        who = event.brand or "brand"
        when = event.at.strftime("%Y-%m-%d %H:%M UTC")
        win = _fmt_td(event.window)
        what = "negative share" if event.signal == "share" else "negative mentions"
        if isinstance(event, SpikeStarted):
            if event.signal == "share" and event.share is not None:
                return (
                    f"{who}: {what} at {event.share:.0%} in the last {win} "
                    f"(usually {event.expected_share or 0:.0%}; {event.observed} of {event.total}), "
                    f"z={event.score:.1f} - {when}"
                )
            return (
                f"{who}: {event.observed} {what} in the last {win}, expected about "
                f"{event.expected:.0f} ({event.ratio:.1f}x), score {event.score:.1f} - {when}"
            )
        if isinstance(event, SpikeContinuing):
            return (
                f"{who}: still going since {event.started_at.strftime('%H:%M')} "
                f"({_fmt_td(event.at - event.started_at)}): {event.observed} {what} in the last "
                f"{win} vs about {event.expected:.0f}; peak {event.peak_observed}, "
                f"about {event.excess:.0f} more than usual so far - {when}"
            )
        return (
            f"{who}: back to normal after {_fmt_td(event.duration)} ({event.observed} in the "
            f"last {win}, expected about {event.expected:.0f}); peak {event.peak_observed}, "
            f"about {event.excess:.0f} more than usual in all - {when}"
        )

    def to_state(self, include_history: bool = True) -> dict[str, Any]:
        """JSON-able state; `from_state(to_state())` continues identically.

        Without history only the alert part is kept (episode, cooldown): the
        daemon rebuilds the history with `warm()` from Elasticsearch counts.
        """
        state: dict[str, Any] = {
            "v": STATE_VERSION,
            "brand": self.brand,
            "episode": self._episode.to_dict() if self._episode else None,
            "cooldown_until": self._cooldown_until.isoformat() if self._cooldown_until else None,
            "closed": self._closed.to_dict() if self._closed else None,
            "slow_from": self._slow_from,
            "crossings": self._crossings,
            "frozen": [list(f) for f in self._frozen],
        }
        if include_history:
            h = self._hist
            state.update(
                last=self._last.isoformat() if self._last else None,
                seen=self._seen,
                recent=list(self._recent),
                recent_totals=list(self._recent_totals),
                hour=h.hour,
                hour_count=h.hour_count,
                hour_total=h.hour_total,
                hour_total_known=h.hour_total_known,
                hours=list(h.hours),
                totals=list(h.totals),
                profile=[_nan_to_none(x) for x in h.profile],
                expected=[_nan_to_none(x) for x in h.expected],
            )
        return state

    @classmethod
    def from_state(
        cls, state: dict[str, Any], settings: SpikeSettings | None = None
    ) -> SpikeDetector:
        version = state.get("v")
        if version not in (1, STATE_VERSION):
            raise ValueError(f"unsupported detector state version {version!r}")
        if version == 1 and "hours" in state:
            # Its hourly predictions were made by the previous model: keep the alert
            # part (open wave, cooldown) and rebuild the history from counts.
            log.info(
                "detector state of %r is version 1: keeping its open wave and cooldown, "
                "dropping its history (the daemon rebuilds it from Elasticsearch counts)",
                state.get("brand", ""),
            )
            state = {k: v for k, v in state.items() if k not in _HISTORY_KEYS}
        det = cls(state.get("brand", ""), settings)
        if state.get("episode"):
            det._episode = _Episode.from_dict(state["episode"])
        if state.get("cooldown_until"):
            det._cooldown_until = datetime.fromisoformat(state["cooldown_until"])
        if state.get("closed"):
            det._closed = _Episode.from_dict(state["closed"])
        if state.get("slow_from") is not None:
            det._slow_from = int(state["slow_from"])
        det._crossings = int(state.get("crossings", 0))
        det._frozen = [(int(a), int(b), float(lv), float(off))
                       for a, b, lv, off in state.get("frozen") or ()]  # fmt: skip
        if "hours" in state:
            s = det.settings
            det._last = datetime.fromisoformat(state["last"]) if state["last"] else None
            det._seen = int(state["seen"])
            det._recent = deque((int(x) for x in state["recent"]), maxlen=s.kept_steps)
            det._recent_totals = deque(
                (int(x) for x in state["recent_totals"]), maxlen=s.kept_steps
            )
            h = det._hist
            h.hour = state["hour"]
            h.hour_count = int(state["hour_count"])
            h.hour_total = int(state["hour_total"])
            h.hour_total_known = bool(state["hour_total_known"])
            h.hours.extend(int(x) for x in state["hours"])
            h.totals.extend(int(x) for x in state["totals"])
            h.profile.extend(_none_to_nan(x) for x in state["profile"])
            h.expected.extend(_none_to_nan(x) for x in state["expected"])
        return det

    # ------------------------------------------------------------------ ingestion

    @property
    def _warmup_steps(self) -> int:
        return self.settings.warmup // self.settings.interval

    def _reset_history(self) -> None:
        s = self.settings
        n = s.history_days * 24
        # What was expected of each hour is kept for a week (the spread and a quiet
        # brand's level are learnt over it), never for longer than the hours
        # themselves: every reader pairs an expectation with its hour counting back
        # from the newest. A history under a week (`history_days` 2-6) is a brand's
        # first week made permanent: fewer daily samples, spread over those days.
        scale = min(_SCALE_HOURS, n)
        self._hist = _History(
            hours=deque(maxlen=n),
            totals=deque(maxlen=n),
            profile=deque(maxlen=scale),
            expected=deque(maxlen=scale),
        )
        self._recent: deque[int] = deque(maxlen=s.kept_steps)
        # -1 marks an interval without a known total, which disables the share signal.
        self._recent_totals: deque[int] = deque(maxlen=s.kept_steps)
        self._seen = 0
        self._baseline = None

    def _advance(self, at: datetime, count: int, total: int | None) -> bool:
        """Add one interval (zero-filling a short hole); False if it is not new."""
        if count < 0 or (total is not None and total < count):
            raise ValueError(f"bad counts at {at}: count={count} total={total}")
        step = self.settings.interval
        if self._last is not None:
            if at <= self._last:
                return False
            gap = at - self._last
            if gap > self.settings.max_gap:
                # A long outage says nothing about the brand; zeros would fake a quiet
                # period and make its return look like a spike.
                self._reset_history()
                self._episode = None
            else:
                t = self._last + step
                while t < at:
                    self._ingest(t, 0, 0 if total is not None else None)
                    t += step
        self._ingest(at, count, total)
        self._last = at
        return True

    def _ingest(self, at: datetime, count: int, total: int | None) -> None:
        self._seen += 1
        self._recent.append(count)
        self._recent_totals.append(-1 if total is None else total)
        h = self._hist
        hour = int(at.timestamp() // 3600)
        if h.hour is None:
            h.hour = hour
        while h.hour < hour:
            self._close_hour()
        h.hour_count += count
        if total is None:
            h.hour_total_known = False
        else:
            h.hour_total += total

    def _close_hour(self) -> None:
        h = self._hist
        assert h.hour is not None
        # The prediction for the closing hour only uses hours before it (and the
        # frozen level of an open wave), so making it now equals making it when
        # the hour began, whether or not a check happened in between.
        base = self._predict()
        h.hours.append(h.hour_count)
        h.totals.append(h.hour_total if h.hour_total_known else -1)
        # Rounded once here, so the JSON state is compact and a restored detector
        # sees exactly the numbers the live one used.
        h.profile.append(round(base.profile, 4) if base else math.nan)
        h.expected.append(round(base.expected_hour, 4) if base else math.nan)
        h.hour += 1
        h.hour_count = 0
        h.hour_total = 0
        h.hour_total_known = True
        self._baseline = None

    def _profile_for_next(self) -> float | None:
        """Seasonal expected count of the hour after the last completed one."""
        hours = self._hist.hours
        n = len(hours)
        if n == 0:
            return None
        daily = [hours[n - 24 * d] for d in range(1, _DAILY_SAMPLES + 1) if 24 * d <= n]
        if not daily:
            # Less than a day known: the typical hour so far is the best guess.
            return _typical(list(hours))
        prof = _median([float(v) for v in daily])
        if prof < _MEDIAN_FROM:
            prof = self._quiet_profile(daily)
        weekly = [hours[n - 168 * w] for w in range(1, _WEEKLY_SAMPLES + 1) if 168 * w <= n]
        if len(weekly) == _WEEKLY_SAMPLES:
            # An hour-of-week that was this busy in each of the last three weeks is a
            # rhythm (the Monday-morning peak), not news; one or two busy weeks are not.
            prof = max(prof, float(min(weekly)))
        return prof

    def _quiet_profile(self, daily: list[int]) -> float:
        """Seasonal expectation of a quiet brand's next hour (Gamma-Poisson shrinkage).

        Seven samples of one hour at 1.5 mentions an hour range from 0 to 3:
        taken alone they would invent a daily rhythm. The estimate is the
        posterior mean of the hour's rate under a Gamma prior centred on the
        brand's mean hourly count m over the last week, with the spread of true
        hour-of-day rates (v, their squared coefficient of variation) measured
        on the same week: (S + 1/v) / (n + 1/(v m)). A busy brand's own hour
        dominates; a brand at 0.1 an hour gets its weekly mean. S and the
        hour-of-day means are `_robust_mean`s, so one spike day hardly raises them.
        """
        hours = self._hist.hours
        n = len(hours)
        days = min(_DAILY_SAMPLES, n // 24)
        if days < 2:
            return _robust_mean(list(hours))  # too little to tell hours apart
        # Hour-of-day means over the last `days` days, aligned on the next hour.
        means = []
        for offset in range(24):
            vals = [hours[n - 24 * d + offset] for d in range(1, days + 1)]
            means.append(_robust_mean(vals))
        m = sum(means) / 24.0
        if m <= 0.0:
            return 0.0
        var = sum((x - m) ** 2 for x in means) / 23.0
        # Remove the Poisson part of the spread of means of `days` samples.
        v = max((var - m / days) / (m * m), _MIN_SEASONAL_CV2)
        total = _robust_mean(daily) * len(daily)
        return (total + 1.0 / v) / (len(daily) + 1.0 / (v * m))

    def _level(self) -> tuple[float, float]:
        """(log level, offset): the recent level actual/profile over `level_hours`.

        Busy brands (a median profile of 5 or more per hour): the median of
        the hourly log ratios (c+1)/(p+1), so a past spike does not move it;
        offset 1. Quieter brands: a ratio of sums, because there the median of
        the counts is 0 or 1 whatever the true rate is; an hour over 3x its
        profile (+3) counts as 3x(+3), so one wave does not become the level;
        offset 0. The expected hour is (profile + offset) * exp(level) - offset.
        """
        h = self._hist
        k = min(self.settings.level_hours, len(h.profile))
        pairs = [(h.hours[-j], h.profile[-j]) for j in range(1, k + 1)]
        pairs = [(c, p) for c, p in pairs if not math.isnan(p)]
        if not pairs:
            return 0.0, 0.0
        if _median([p for _, p in pairs]) >= _MEDIAN_FROM:
            return _median([math.log((c + 1.0) / (p + 1.0)) for c, p in pairs]), 1.0
        seen, prof = self._quiet_level_sums()
        return math.log((seen + 1.0) / (prof + 1.0)), 0.0

    def _quiet_level_sums(self) -> tuple[float, float]:
        """(mentions seen, mentions expected by the profile) behind a quiet brand's level.

        A day of a quiet brand holds too few mentions to know its level: look
        further back (up to the week of profiles kept) until the hours looked
        at expect `_LEVEL_MENTIONS` mentions, so the level rests on that many.
        Each hour counts at most 3x(+3) its profile, so one wave does not become
        the level.
        """
        h = self._hist
        k = min(self.settings.level_hours, len(h.profile))
        seen = prof = 0.0
        for j in range(1, len(h.profile) + 1):
            p = h.profile[-j]
            if math.isnan(p):
                break
            if j > k and prof >= _LEVEL_MENTIONS:
                break
            seen += min(float(h.hours[-j]), _LEVEL_CAP * p + _LEVEL_CAP)
            prof += p
        return seen, prof

    # ------------------------------------------------------------------ judging

    def _predict(self) -> _Baseline | None:
        """Prediction for the hour being filled (cached until the hour closes)."""
        h = self._hist
        assert h.hour is not None
        if self._baseline is not None and self._baseline.hour == h.hour:
            return self._baseline
        prof = self._profile_for_next()
        if prof is None:
            return None
        ep = self._episode
        # While a wave is open its own hours must not raise the level it is judged
        # against, or a plateau would "end" by becoming the norm.
        frozen = ep is not None and ep.level is not None and h.hour >= (ep.frozen_from or 0)
        # Hours before the freeze use the normal level, so a history re-fed by
        # warm() after restoring an open wave gets the same predictions it had; the
        # hours of a wave that ended (`_frozen`, in the alert part) its frozen level.
        if frozen and ep is not None and ep.level is not None:
            level, offset = ep.level, ep.offset
        else:
            past = next(((lv, off) for a, b, lv, off in self._frozen if a <= h.hour < b), None)
            level, offset = past if past is not None else self._level()
        expected_hour = max((prof + offset) * math.exp(level) - offset, 0.0)
        self._baseline = _Baseline(h.hour, prof, expected_hour, level, offset)
        return self._baseline

    def _spread(self, base: _Baseline) -> float:
        if base.sigma is not None:
            return base.sigma
        h = self._hist
        n = len(h.expected)
        hours = list(h.hours)[-n:] if n else []
        pairs = [(c, e) for c, e in zip(hours, h.expected, strict=True) if not math.isnan(e)]
        logr = [math.log((c + 1.0) / (e + 1.0)) for c, e in pairs]
        if len(logr) >= _MIN_SCALE_HOURS:
            mid = _median(logr)
            sigma = _MAD_TO_SIGMA * _median([abs(x - mid) for x in logr])
            # Part of the hourly spread is Poisson noise of hourly counts, which
            # shrinks over a longer window; keep only the extra-Poisson part here
            # and add the window's own Poisson term when scoring.
            pois = _median([1.0 / (e + 1.0) for _, e in pairs])
            sigma = math.sqrt(max(sigma * sigma - pois, 0.0))
        else:
            sigma = 1.0  # hardly any history: stay cautious
        base.sigma = max(sigma, _SIGMA_FLOOR)
        known = [
            (c, t)
            for c, t in zip(
                list(h.hours)[-_SCALE_HOURS:], list(h.totals)[-_SCALE_HOURS:], strict=True
            )
            if t >= 0
        ]
        tot = sum(t for _, t in known)
        if known and tot > 0:
            base.share = max(sum(c for c, _ in known) / tot, _SHARE_FLOOR)
        return base.sigma

    def _slow(self, base: _Baseline, sigma: float) -> float:
        """One-sided CUSUM of the hourly scores over the last `slow_hours` completed hours.

        A slow rise (each hour 1.5-2x its expectation for many hours) never makes
        a 2 h window stand out, and the recent level starts to absorb it; summing
        the hourly excess over `slow_drift` finds it before it is absorbed. An
        hour's score is its log ratio over its spread, except for a quiet brand's
        hours expecting under one mention, where it is the normal z of the
        hour count's mid-p negative-binomial tail. Only
        completed hours with a prediction count, and none from before
        `_slow_from` (the end of the last wave), so a wave is not paged twice.
        """
        if base.slow is not None:
            return base.slow
        h = self._hist
        assert h.hour is not None
        s = self.settings
        n = min(s.slow_hours, len(h.expected))
        first = h.hour - n
        if self._slow_from is not None:
            first = max(first, self._slow_from)
        total = 0.0
        for hour in range(first, h.hour):
            back = h.hour - hour
            e = h.expected[-back]
            if math.isnan(e):
                continue
            c = h.hours[-back]
            if base.offset == 0.0 and e < 1.0:
                # Under a mention an hour the log ratio is mostly its +1: one
                # mention in an hour expecting 0.1 scores 0.6 (barely over the
                # drift) though it happens one hour in 20; the mid-p tail of the
                # hour's own count scores it 1.6.
                a = self._window_alpha(base, sigma, e)
                z = surprise(0.5 * (tail(c, e, a) + tail(c + 1, e, a)))
            else:
                z = math.log((c + 1.0) / (e + 1.0)) / math.sqrt(sigma * sigma + 1.0 / (e + 1.0))
            total = max(0.0, total + z - s.slow_drift)
        base.slow = total
        return total

    def _dispersion(self, base: _Baseline, sigma: float) -> float:
        """Over-dispersion alpha of the window count around its expectation.

        sigma^2 is the extra-Poisson spread of the hourly ratio actual/predicted
        (robust: a median of absolute deviations, so past spikes do not inflate
        it). The second term is the uncertainty of the expected level itself,
        about 1/counts behind it (the last `level_hours` for a busy brand, all the
        hours a quiet brand's level looks back over): a brand with 3 mentions
        behind its level does not know it to better than a factor of about 2, a
        brand with 3,000 does. As a Gamma-distributed rate this is the
        posterior-predictive negative binomial of the window.
        """
        if base.alpha is not None:
            return base.alpha
        h = self._hist
        if base.offset == 0.0:
            # A quiet brand's level is a ratio of sums over as many hours as it
            # takes to expect `_LEVEL_MENTIONS` mentions: its uncertainty is that
            # of the mentions it rests on, not of the last `level_hours` alone.
            behind = self._quiet_level_sums()[0]
        else:
            k = min(self.settings.level_hours, len(h.hours))
            behind = sum(h.hours[-j] for j in range(1, k + 1))
        if base.offset == 0.0:
            # A quiet brand: the log-ratio spread is mostly Poisson noise and says
            # nothing about bursts (a retweet cascade is 5 mentions in an hour
            # that expects 0.5). Bursts are clusters -- one story, several
            # mentions -- not a rate that wanders: the count's variance grows
            # with its mean (phi x mu, the index of dispersion of the hourly
            # counts, every hour capped like the level at 3x+3 so a past wave
            # does not inflate it), which `_window_alpha` turns into the
            # window's over-dispersion. Taken as a rate that wanders (variance
            # alpha x mu^2, the previous model) a few cascades made even 19
            # mentions in a window expecting 2 look like noise.
            n = len(h.expected)
            num = den = 0.0
            for c, e in zip(list(h.hours)[-n:], h.expected, strict=True):
                if math.isnan(e):
                    continue
                c = min(float(c), _LEVEL_CAP * e + _LEVEL_CAP)
                num += (c - e) ** 2
                den += e
            base.phi = max(1.0, num / den) if den > 0.0 else 1.0
        extra = sigma * sigma
        base.alpha = extra + 1.0 / (behind + 1.0)
        return base.alpha

    def _window_alpha(self, base: _Baseline, sigma: float, mu: float) -> float:
        """Over-dispersion of a count expecting `mu`: the brand's own (`_dispersion`)
        plus, for a quiet brand, its clustering -- variance phi x mu is a negative
        binomial with alpha (phi - 1) / mu, so the same cascades weigh less in a
        window that expects more."""
        alpha = self._dispersion(base, sigma)
        return alpha + (base.phi - 1.0) / mu if mu > 0.0 else alpha

    def _record(self, base: _Baseline) -> float:
        """Most mentions in any `window`-long stretch of whole hours of the history kept.

        The stretches end before the last ceil(window) completed hours, which the
        window being judged may overlap, so a wave is never its own record. With
        less than `_RECORD_FROM_HOURS` of history there is no record yet (inf).
        Derived from the hourly counts alone, so a history rebuilt by `warm()`
        gives the same figure as one fed live; computed once per hour.
        """
        if base.record is not None:
            return base.record
        hours = list(self._hist.hours)
        k = max(1, math.ceil(self.settings.window / _HOUR))
        if len(hours) < _RECORD_FROM_HOURS:
            base.record = math.inf
            return base.record
        run = sum(hours[:k])
        best = run
        for i in range(k, len(hours) - k):
            run += hours[i] - hours[i - k]
            best = max(best, run)
        base.record = float(best)
        return base.record

    def _floor_expected(self, window: timedelta) -> float:
        """The least the window may expect: half a mention per history length (Jeffreys).

        A brand silent for its whole history has an unknown, not a zero, rate.
        """
        hours = max(len(self._hist.hours), 1)
        return 0.5 * (window / timedelta(hours=1)) / hours

    def _check(self, at: datetime) -> _Check | None:
        base = self._predict()
        if base is None:
            return None
        sigma = self._spread(base)
        s = self.settings
        h = self._hist
        assert h.hour is not None
        sph = s.steps_per_hour
        step_s = int(s.interval.total_seconds())
        ts = int(at.timestamp())
        n_exp = len(h.expected)
        step_expected = base.expected_hour / sph
        # Expected count of each interval in the windows, from the prediction made
        # for the hour it falls in; observed and expected summed over each window.
        recent = self._recent
        n = len(recent)
        ends = [min(w // s.interval, n) for w in s.windows]
        sums: list[tuple[int, float]] = []
        expected = 0.0
        observed = 0
        for k in range(n):
            back = h.hour - (ts - k * step_s) // 3600
            e = h.expected[n_exp - back] if 0 < back <= n_exp else math.nan
            expected += step_expected if math.isnan(e) else e / sph
            observed += recent[n - 1 - k]
            if k + 1 in ends:
                sums.append((observed, expected))
        share = len(s.windows)  # the false-alert budget is split between the windows
        ep = self._episode
        check: _Check | None = None
        for j, (obs, exp) in enumerate(sums):
            window = s.windows[j]
            mu = max(exp, self._floor_expected(window))
            a_w = self._window_alpha(base, sigma, mu)
            score = surprise(tail(obs, mu, a_w))
            c = _Check(obs, exp, score, (obs + 1.0) / (exp + 1.0), step_expected, window=window,
                       mu=mu, alpha=a_w)  # fmt: skip
            if s.threshold is None and obs > mu:
                rate = false_alerts_per_month(obs, mu, a_w, window, s.interval)
                c.rate = rate * share
            if ep is not None:
                # An open wave is followed on the window that started it.
                if window == ep.window or check is None:
                    check = c
            elif check is None or _stronger(c, check, s):
                check = c
        if check is None:
            return None
        if s.records and check.window == s.window:
            check.record = self._record(base)
        if s.slow_threshold > 0:
            check.slow = self._slow(base, sigma)
        totals = list(self._recent_totals)[-s.window_steps :]
        if base.share is not None and min(totals) >= 0 and check.window == s.window:
            observed = sum(list(self._recent)[-s.window_steps :])
            total = sum(totals)
            check.total = total
            if total > 0:
                p0 = base.share
                check.share = observed / total
                check.expected_share = p0
                check.share_score = (observed - total * p0) / math.sqrt(
                    total * p0 * (1.0 - p0) + 1.0
                )
        return check

    def _decide(self, at: datetime, c: _Check) -> tuple[SpikeEvent | None, Blocked | None]:
        """The event of this check, and what kept it from starting a wave (None: it did)."""
        s = self.settings
        ep = self._episode
        if ep is not None:
            score = c.score if ep.signal == "volume" else (c.share_score or 0.0)
            ep.excess += self._recent[-1] - c.step_expected
            ep.peak_observed = max(ep.peak_observed, c.observed)
            ep.peak_score = max(ep.peak_score, score)
            ep.quiet_steps = ep.quiet_steps + 1 if score < s.end_threshold else 0
            if ep.quiet_steps * s.interval >= s.end_after:
                self._remember_frozen(ep)
                self._episode = None
                self._closed = ep
                self._baseline = None  # the level is no longer frozen
                self._cooldown_until = at + s.cooldown
                self._slow_from = self._hist.hour
                return SpikeEnded(
                    self.brand,
                    at,
                    ep.started_at,
                    at - ep.started_at,
                    c.observed,
                    c.expected,
                    ep.peak_observed,
                    ep.peak_score,
                    ep.excess,
                    ep.signal,
                    window=ep.window,
                ), "in wave"
            if at - ep.last_report >= s.continuing_every:
                ep.last_report = at
                return self._continuing(at, c, ep, score, reopened=False), "in wave"
            return None, "in wave"
        signal, score, ratio = self._trigger(c)
        if signal is None:
            self._crossings = 0
            return None, self._why_not(c)
        # A window that just reaches the magnitude line for a check or two and
        # falls back (a burst that barely tips the 2 h sum, then a lull) is
        # borderline noise; a real wave stays over it. Only such borderline
        # crossings wait (`confirm_checks - 1` intervals): a window already well
        # past the line (`confirm_margin` times it) pages at once.
        self._crossings += 1
        line = s.min_ratio if signal == "volume" else s.share_min_ratio
        clear = ratio >= s.confirm_margin * line
        if self._crossings < s.confirm_checks and not clear:
            return None, "confirmations"
        self._crossings = 0
        if self._cooldown_until is not None and at < self._cooldown_until:
            closed = self._closed
            if closed is None or closed.signal != signal:
                return None, "cooldown"
            # A flare-up soon after a wave ended is the same story coming back: tell
            # people (new figures) but do not page them as if it were a new one.
            closed.quiet_steps = 0
            closed.last_report = at
            closed.peak_observed = max(closed.peak_observed, c.observed)
            closed.peak_score = max(closed.peak_score, score)
            closed.frozen_from = self._hist.hour
            self._episode, self._closed, self._cooldown_until = closed, None, None
            self._baseline = None  # back to the level frozen when the wave began
            self._slow_from = self._hist.hour
            return self._continuing(at, c, closed, score, reopened=True), "cooldown"
        self._closed = None
        self._cooldown_until = None
        self._slow_from = self._hist.hour
        base = self._baseline
        self._episode = _Episode(
            signal,
            at,
            at,
            c.observed,
            score,
            c.observed - c.expected if signal == "volume" else 0.0,
            level=base.level if base else None,
            frozen_from=self._hist.hour,
            offset=base.offset if base else 1.0,
            window=c.window,
        )
        return SpikeStarted(
            self.brand,
            at,
            c.observed,
            c.expected,
            score,
            ratio,
            signal,
            c.window,
            c.total,
            c.share,
            c.expected_share,
        ), None

    def _remember_frozen(self, ep: _Episode) -> None:
        """Keep the hours `ep` froze (from its `frozen_from` to the hour it ends in,
        which is predicted at the normal level again) for the week their predictions
        are kept, so `warm()` after a restore records the history this detector did."""
        hour = self._hist.hour
        assert hour is not None
        week_ago = hour - _SCALE_HOURS
        self._frozen = [f for f in self._frozen if f[1] > week_ago]
        if ep.level is not None and ep.frozen_from is not None and ep.frozen_from < hour:
            self._frozen.append((ep.frozen_from, hour, ep.level, ep.offset))

    def _why_not(self, c: _Check) -> Blocked:
        """Which volume condition failed, in the order `_trigger` asks them."""
        s = self.settings
        if c.observed < s.min_count:
            return "min_count"
        improbable = (
            c.score >= s.threshold
            if s.threshold is not None
            else c.rate <= s.false_alerts_per_month
        )
        return "ratio" if improbable else "line"

    def _trigger(self, c: _Check) -> tuple[Signal | None, float, float]:
        s = self.settings
        if c.observed < s.min_count:
            return None, 0.0, 0.0
        improbable = (
            c.score >= s.threshold
            if s.threshold is not None
            else c.rate <= s.false_alerts_per_month
        )
        if improbable and c.ratio >= s.min_ratio:
            return "volume", c.score, c.ratio
        if (
            c.observed > c.record
            and c.ratio >= s.min_ratio
            and s.threshold is None
            and c.rate <= _RECORD_RATE * s.false_alerts_per_month
        ):
            # The brand's own record: more mentions than in any window of its
            # history, at least `min_ratio` times what this hour expects, and not
            # ordinary by the model either (under `_RECORD_RATE` times the
            # budget). It needs no model of the brand's bursts, so it holds where
            # the fitted spread is least sure: a quiet brand, whose few cascades
            # make the negative binomial's tail wide. Chance sets a record about
            # once per history length at most (once in three weeks), fewer when
            # noise cannot double the usual count: see docs/alerting.md.
            return "volume", c.score, c.ratio
        if (
            s.slow_threshold > 0
            and c.slow >= s.slow_threshold
            and c.score >= s.end_threshold
            and c.ratio >= s.min_ratio
        ):
            # A slow rise: the hours so far add up, and the window is still clearly up.
            return "volume", c.score, c.ratio
        if (
            c.share_score is not None
            and c.share is not None
            and c.expected_share is not None
            and c.share_score >= s.share_threshold
            and c.share >= s.share_min_ratio * c.expected_share
        ):
            return "share", c.share_score, c.share / c.expected_share
        return None, 0.0, 0.0

    def _continuing(
        self, at: datetime, c: _Check, ep: _Episode, score: float, reopened: bool
    ) -> SpikeContinuing:
        return SpikeContinuing(
            self.brand,
            at,
            ep.started_at,
            c.observed,
            c.expected,
            score,
            c.ratio,
            ep.peak_observed,
            ep.peak_score,
            ep.excess,
            ep.signal,
            c.window,
            reopened,
        )


def _record_line(
    s: SpikeSettings, record: float, expected: float, mu: float, alpha: float
) -> int:
    """The smallest `window` count the record path of `_trigger` starts a wave at:
    past the record, at `min_ratio` and `min_count`, and under `_RECORD_RATE` x the
    false-alert budget by the model (expecting `mu` with over-dispersion `alpha`)."""
    loose = smallest_alerting_count(
        mu, alpha, s.window, s.interval, _RECORD_RATE * s.false_alerts_per_month / len(s.windows)
    )
    return max(int(record) + 1, loose, s.min_count, ratio_line(s, expected))


def _stronger(a: _Check, b: _Check, s: SpikeSettings) -> bool:
    """Whether window check `a` makes a stronger case for a wave than `b`."""
    if s.threshold is None:
        return a.rate < b.rate
    return a.score > b.score


def _nan_to_none(x: float) -> float | None:
    # NaN is not JSON (Elasticsearch rejects it); None marks "no prediction".
    return None if math.isnan(x) else x


def _none_to_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _fmt_td(td: timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h} h" if not m else f"{h} h {m:02d}"


__all__ = [
    "Blocked",
    "Point",
    "SpikeContinuing",
    "SpikeDetector",
    "SpikeEnded",
    "SpikeEvent",
    "SpikeStarted",
    "Verdict",
]
