"""Streaming negative-spike detector: one instance per brand, fed complete intervals.

How it judges a check (see docs/alerting.md for the long version):

* Counts are bucketed into clock hours (UTC). The expected count of an hour is a
  seasonal profile (median of the same hour on the previous 7 days; raised to
  the same hour-of-week when that hour was at least this busy in each of the
  last three weeks) scaled by the recent level (median ratio actual/profile over
  the last `level_hours` hours). Medians keep a past spike from becoming "normal".
* The latest `window` of intervals is compared with the sum of the predictions
  for the hours they fall in: score = log((observed+1)/(expected+1)) / sqrt(
  sigma^2 + 1/(expected+1)). sigma is the extra-Poisson spread of the hourly log
  ratio over the last week (1.4826*MAD, minus the hourly Poisson part); the
  second term is the Poisson spread of the window's own count, so a low-volume
  brand needs a much bigger ratio before the score is high.
* A wave starts when score >= threshold AND observed >= min_count AND
  observed >= min_ratio * expected, after the warm-up. While it lasts the
  detector emits one `SpikeContinuing` per `continuing_every`, and a `SpikeEnded`
  once the score has stayed below `end_threshold` for `end_after`. A crossing
  within `cooldown` of the end reopens the same wave (`SpikeContinuing`,
  reopened=True) instead of paging again.

Nothing looks ahead: the expected count of an hour only uses hours before it, and
a check only sees intervals it has been fed. The caller applies the query delay
for crawl/indexing lag and feeds complete intervals only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from alerts.settings import SpikeSettings

STATE_VERSION = 1
_MAD_TO_SIGMA = 1.4826
_SIGMA_FLOOR = 0.1  # a perfectly flat history must not turn a +10% blip into z=inf
_DAILY_SAMPLES = 7
_WEEKLY_SAMPLES = 3
_SCALE_HOURS = 168
_MIN_SCALE_HOURS = 12
_SHARE_FLOOR = 0.01

Signal = Literal["volume", "share"]


def _utc(at: datetime) -> datetime:
    # Naive timestamps are taken as UTC, like brandpulse.mention does for sources.
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


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


SpikeEvent = SpikeStarted | SpikeContinuing | SpikeEnded


@dataclass(slots=True)
class _Check:
    observed: int
    expected: float
    score: float
    ratio: float
    step_expected: float  # expected count of the latest interval alone
    total: int | None = None
    share: float | None = None
    expected_share: float | None = None
    share_score: float | None = None
    slow: float = 0.0


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
        )


@dataclass(slots=True)
class _Baseline:
    """What the current hour expects; derived from the stored history, never stored itself."""

    hour: int
    profile: float  # seasonal expected count of the current hour
    expected_hour: float  # profile scaled by the recent level
    level: float
    sigma: float | None = None  # filled lazily: only checks need it, warming does not
    share: float | None = None
    slow: float | None = None  # slow-rise CUSUM over the completed hours (lazy too)


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

    # ------------------------------------------------------------------ public API

    def observe(self, point: Point) -> SpikeEvent | None:
        """Feed the next complete interval; return the event it causes, if any.

        Intervals at or before the last one fed are ignored (returns None), so a
        restarted daemon may safely re-feed what it already fed.
        """
        at = _utc(point.at)
        if not self._advance(at, point.count, point.total):
            return None
        if self._seen < self._warmup_steps:
            return None
        check = self._check(at)
        if check is None:
            return None
        return self._decide(at, check)

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
                self._advance(_utc(p.at), p.count, p.total)
            else:
                self._advance(_utc(p[0]), p[1], p[2] if len(p) > 2 else None)  # type: ignore[misc]

    @property
    def active(self) -> bool:
        """True while a wave is open (between SpikeStarted and SpikeEnded)."""
        return self._episode is not None

    @property
    def warmed_up(self) -> bool:
        return self._seen >= self._warmup_steps

    def describe(self, event: SpikeEvent) -> str:
        """One line for a human (Slack text, logs)."""
        who = event.brand or "brand"
        when = event.at.strftime("%Y-%m-%d %H:%M UTC")
        win = _fmt_td(self.settings.window)
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
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {state.get('v')!r}")
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
        if "hours" in state:
            s = det.settings
            det._last = datetime.fromisoformat(state["last"]) if state["last"] else None
            det._seen = int(state["seen"])
            det._recent = deque((int(x) for x in state["recent"]), maxlen=s.window_steps)
            det._recent_totals = deque(
                (int(x) for x in state["recent_totals"]), maxlen=s.window_steps
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
        self._hist = _History(
            hours=deque(maxlen=n),
            totals=deque(maxlen=n),
            profile=deque(maxlen=_SCALE_HOURS),
            expected=deque(maxlen=_SCALE_HOURS),
        )
        self._recent: deque[int] = deque(maxlen=s.window_steps)
        # -1 marks an interval without a known total, which disables the share signal.
        self._recent_totals: deque[int] = deque(maxlen=s.window_steps)
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
            return float(_median(list(hours)))
        prof = float(_median(daily))
        weekly = [hours[n - 168 * w] for w in range(1, _WEEKLY_SAMPLES + 1) if 168 * w <= n]
        if len(weekly) == _WEEKLY_SAMPLES:
            # An hour-of-week that was this busy in each of the last three weeks is a
            # rhythm (the Monday-morning peak), not news; one or two busy weeks are not.
            prof = max(prof, float(min(weekly)))
        return prof

    def _level(self) -> float:
        """Median log-ratio actual/profile over the last `level_hours` completed hours."""
        h = self._hist
        k = min(self.settings.level_hours, len(h.profile))
        logr = []
        for j in range(1, k + 1):
            p = h.profile[-j]
            if not math.isnan(p):
                logr.append(math.log((h.hours[-j] + 1.0) / (p + 1.0)))
        return _median(logr) if logr else 0.0

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
        # warm() after restoring an open wave gets the same predictions it had.
        level = ep.level if frozen and ep is not None and ep.level is not None else self._level()
        expected_hour = max((prof + 1.0) * math.exp(level) - 1.0, 0.0)
        self._baseline = _Baseline(h.hour, prof, expected_hour, level)
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
        the hourly excess over `slow_drift` finds it before it is absorbed. Only
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
            z = math.log((h.hours[-back] + 1.0) / (e + 1.0)) / math.sqrt(
                sigma * sigma + 1.0 / (e + 1.0)
            )
            total = max(0.0, total + z - s.slow_drift)
        base.slow = total
        return total

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
        # Expected count of each interval in the window, from the prediction made
        # for the hour it falls in.
        expected = 0.0
        for k in range(len(self._recent)):
            back = h.hour - (ts - k * step_s) // 3600
            e = h.expected[n_exp - back] if 0 < back <= n_exp else math.nan
            expected += step_expected if math.isnan(e) else e / sph
        observed = sum(self._recent)
        poisson = 1.0 / math.sqrt(expected + 1.0)
        ratio = (observed + 1.0) / (expected + 1.0)
        score = math.log(ratio) / math.sqrt(sigma * sigma + poisson * poisson)
        check = _Check(observed, expected, score, ratio, step_expected)
        if s.slow_threshold > 0:
            check.slow = self._slow(base, sigma)
        if base.share is not None and min(self._recent_totals) >= 0:
            total = sum(self._recent_totals)
            check.total = total
            if total > 0:
                p0 = base.share
                check.share = observed / total
                check.expected_share = p0
                check.share_score = (observed - total * p0) / math.sqrt(
                    total * p0 * (1.0 - p0) + 1.0
                )
        return check

    def _decide(self, at: datetime, c: _Check) -> SpikeEvent | None:
        s = self.settings
        ep = self._episode
        if ep is not None:
            score = c.score if ep.signal == "volume" else (c.share_score or 0.0)
            ep.excess += self._recent[-1] - c.step_expected
            ep.peak_observed = max(ep.peak_observed, c.observed)
            ep.peak_score = max(ep.peak_score, score)
            ep.quiet_steps = ep.quiet_steps + 1 if score < s.end_threshold else 0
            if ep.quiet_steps * s.interval >= s.end_after:
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
                )
            if at - ep.last_report >= s.continuing_every:
                ep.last_report = at
                return self._continuing(at, c, ep, score, reopened=False)
            return None
        signal, score, ratio = self._trigger(c)
        if signal is None:
            self._crossings = 0
            return None
        # A window that just reaches the magnitude line for a check or two and
        # falls back (a burst that barely tips the 2 h sum, then a lull) is
        # borderline noise; a real wave stays over it. Only such borderline
        # crossings wait (`confirm_checks - 1` intervals): a window already well
        # past the line (`confirm_margin` times it) pages at once.
        self._crossings += 1
        line = s.min_ratio if signal == "volume" else s.share_min_ratio
        clear = ratio >= s.confirm_margin * line
        if self._crossings < s.confirm_checks and not clear:
            return None
        self._crossings = 0
        if self._cooldown_until is not None and at < self._cooldown_until:
            closed = self._closed
            if closed is None or closed.signal != signal:
                return None
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
            return self._continuing(at, c, closed, score, reopened=True)
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
        )
        return SpikeStarted(
            self.brand,
            at,
            c.observed,
            c.expected,
            score,
            ratio,
            signal,
            s.window,
            c.total,
            c.share,
            c.expected_share,
        )

    def _trigger(self, c: _Check) -> tuple[Signal | None, float, float]:
        s = self.settings
        if c.observed < s.min_count:
            return None, 0.0, 0.0
        if c.score >= s.threshold and c.ratio >= s.min_ratio:
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
            self.settings.window,
            reopened,
        )


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
    "Point",
    "SpikeContinuing",
    "SpikeDetector",
    "SpikeEnded",
    "SpikeEvent",
    "SpikeStarted",
]
