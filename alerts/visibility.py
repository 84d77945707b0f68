"""Low-volume honesty: the smallest wave the spike detector can see at a brand's volume.

A 3x rise from 0.2 to 0.6 negative mentions an hour is not a wave anyone can
tell from chance: over two hours it is 1 mention instead of 0.4. The detector
will not page on it (its false-alert budget forbids it), and a PR lead should
know that before relying on it. `smallest_visible_wave` says, for an expected
level and the rule's settings, which window count pages and how soon a wave of
a given factor gets there; `validate` and `check-alerts --dry-run` print it
per brand.

Pure: the same figures `SpikeDetector` uses (`alerts.counts`), no state, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from alerts.counts import smallest_alerting_count, surprise, tail
from brandpulse.alert_settings import SpikeSettings

_HOUR = timedelta(hours=1)
_SIGMA_FLOOR2 = 0.01  # the detector's floor on the extra-Poisson spread (0.1^2)
# The detector's quiet-brand level (alerts.detector: _MEDIAN_FROM, _LEVEL_MENTIONS, _SCALE_HOURS;
# not imported from there because alerts.detector imports this module).
_QUIET_BELOW = 5.0  # mentions an hour under which the level is a ratio of sums
_LEVEL_MENTIONS = 100.0  # expected mentions that level rests on, at least
_PROFILE_HOURS = 168.0  # as far back as it may look


@dataclass(frozen=True, slots=True)
class Visibility:
    """What the detector can see at one expected level (mentions per hour)."""

    per_hour: float  # expected watched mentions per hour (no daily rhythm)
    factor: float  # the wave asked about: this multiple of the usual level
    window: timedelta  # the window the figures are for (the one that pages first)
    expected: float  # usual count in that window
    smallest: int  # the smallest window count that pages
    pages_after: timedelta | None  # how soon a `factor`x wave pages, None = never
    record: int | None = None  # the brand's most in one window of its history (records on)
    record_line: int | None = None  # the smallest count the record path pages at

    @property
    def visible(self) -> bool:
        return self.pages_after is not None

    @property
    def smallest_ratio(self) -> float:
        return self.smallest / self.expected if self.expected > 0 else math.inf

    def describe(self, what: str = "negative mentions") -> str:
        """One line for a PR lead, e.g. for `validate` and the dry run."""
        vol = _volume(self.per_hour, what)
        win = _fmt(self.window)
        usual = f"{self.expected:.1f}" if self.expected < 10 else f"{self.expected:.0f}"
        # The record path (docs/alerting.md) can page under the line: say so, with
        # the brand's own record, when it would.
        rec = (
            f"; or {self.record_line}, which beats the brand's record of {self.record} in {win}"
            if self.record is not None
            and self.record_line is not None
            and self.record_line < self.smallest
            else ""
        )
        if self.pages_after is not None:
            return (
                f"at {vol}, a wave of {self.factor:g}x over {win} pages within "
                f"~{_fmt(self.pages_after)} (it takes {self.smallest} in {win}; usual {usual}"
                f"{rec})"
            )
        ratio = self.smallest_ratio
        ratio_s = f", {ratio:.0f}x the usual {usual}" if math.isfinite(ratio) else ""
        return (
            f"at {vol}, a {self.factor:g}x rise is statistically invisible; smallest visible: "
            f"{self.smallest} {what} in {win}{ratio_s}{rec}"
        )


def assumed_dispersion(per_hour: float, settings: SpikeSettings) -> float:
    """The over-dispersion the detector uses when the brand's history is ordinary.

    The floor of the extra-Poisson spread plus the uncertainty of a level known
    from `level_hours` of counts; a quiet brand's level looks further back, up to
    the week of predictions kept, until it rests on `_LEVEL_MENTIONS` expected
    mentions (see `SpikeDetector._dispersion` and `_quiet_level_sums`).
    """
    rate = max(per_hour, 0.0)
    hours = float(settings.level_hours)
    if 0.0 < rate < _QUIET_BELOW:
        hours = min(max(hours, _LEVEL_MENTIONS / rate), _PROFILE_HOURS)
    behind = rate * hours
    return _SIGMA_FLOOR2 + 1.0 / (behind + 1.0)


def smallest_alerting(
    expected: float, alpha: float, window: timedelta, settings: SpikeSettings
) -> int:
    """The smallest count in `window` that starts a wave, by every gate of the rule.

    The probability line (the window's share of `false_alerts_per_month`, or the
    `threshold` override), `min_count` and `min_ratio`.
    """
    s = settings
    if s.threshold is None:
        per_month = s.false_alerts_per_month / len(s.windows)
        k = smallest_alerting_count(expected, alpha, window, s.interval, per_month)
    else:
        line = s.threshold
        lo = max(1, math.floor(expected))  # below the mean nothing is surprising
        hi = lo
        while surprise(tail(hi, expected, alpha)) < line:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if surprise(tail(mid, expected, alpha)) < line:
                lo = mid
            else:
                hi = mid
        k = hi
    return max(k, s.min_count, ratio_line(s, expected))


def ratio_line(s: SpikeSettings, expected: float) -> int:
    """The smallest window count at `min_ratio` x `expected` (ratios are (c+1)/(e+1))."""
    return max(0, math.ceil(s.min_ratio * (expected + 1.0) - 1.0 - 1e-9))


def smallest_visible_wave(
    per_hour: float,
    settings: SpikeSettings | None = None,
    factor: float = 3.0,
    alpha: float | None = None,
) -> Visibility:
    """How soon a wave of `factor` x the usual level pages, and the smallest count that does.

    `per_hour` is the brand's expected level of the watched count (negative
    mentions) per hour; `alpha` its over-dispersion if known (the detector's
    own figure), else `assumed_dispersion`. A wave is taken to lift the rate to
    `factor` x at once; over the window the count then grows from the usual
    E to factor x E, so it reaches the line k after about
    window * (k/E - 1) / (factor - 1) (on average: half the waves get there
    sooner), plus the confirmation delay when that crossing is borderline.
    """
    s = settings or SpikeSettings()
    per_hour = max(per_hour, 0.0)
    a = assumed_dispersion(per_hour, s) if alpha is None else alpha
    best: Visibility | None = None
    for window in s.windows:
        expected = per_hour * (window / _HOUR)
        k = smallest_alerting(expected, a, window, s)
        after: timedelta | None = None
        if expected > 0 and factor > 1 and k <= factor * expected:
            frac = max(k / expected - 1.0, 0.0) / (factor - 1.0)
            steps = max(1, math.ceil(frac * (window / s.interval) - 1e-9))
            ratio = (k + 1.0) / (expected + 1.0)
            if ratio < s.confirm_margin * s.min_ratio:
                steps += s.confirm_checks - 1
            after = steps * s.interval
        v = Visibility(per_hour, factor, window, expected, k, after)
        if best is None or _sooner(v, best):
            best = v
    assert best is not None
    return best


def _sooner(a: Visibility, b: Visibility) -> bool:
    if a.pages_after is not None and b.pages_after is not None:
        return a.pages_after < b.pages_after
    if a.pages_after is not None or b.pages_after is not None:
        return a.pages_after is not None
    return a.smallest_ratio < b.smallest_ratio


def _volume(per_hour: float, what: str) -> str:
    per_day = per_hour * 24
    if per_hour >= 10:
        return f"{per_hour:.0f} {what}/h"
    if per_day >= 10:
        return f"{per_day:.0f} {what}/day"
    return f"{per_hour:.2g} {what}/h ({per_day:.2g}/day)"


def _fmt(td: timedelta) -> str:
    minutes = round(td.total_seconds() / 60)
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h} h" if not m else f"{h} h {m:02d}"


__all__ = ["Visibility", "assumed_dispersion", "smallest_alerting", "smallest_visible_wave"]
