"""`alerts explain` and `alerts backtest`: the negative spike rule replayed over stored counts.

Both read a brand's counts per interval through a `MentionReader` (Elasticsearch's in
the CLI) and feed them, oldest first, through the real `SpikeDetector` with
`SpikeDetector.judge` -- the one decision path the daemon uses -- as a daemon that had
been running all along would have: `alerts.history` of counts before the first interval
of interest are judged too, so warm-up, open waves, confirmations and cooldowns are the
ones the daemon had. Nothing is written and nothing is sent.

* `explain(...)` answers "why did (or didn't) it page at this time?": the figures of the
  window the check at that time judged (observed, expected, the line a wave needed, the
  false-alerts-per-month rate of the observed count) and the condition that blocked a
  new wave (`alerts.detector.Blocked`).
* `backtest(...)` lists the alerts a period would have produced -- with the configured
  settings or with some changed (`with_overrides`), so a setting can be tried on last
  month's data before it is deployed.

Differences from the live daemon, on purpose: the replay sees the counts as they are
now (mentions indexed late are in their interval), and does not stop at a daemon's
downtime.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from alerts.detector import Point, SpikeDetector, SpikeEvent, Verdict, _fmt_td
from alerts.engine import held_back
from alerts.model import Alert
from alerts.reader import Counts, MentionReader, count_grid
from alerts.rules import Check, NegativeSpikeRule, floor_to
from alerts.state import AlertStateStore
from brandpulse.alert_settings import SpikeSettings
from brandpulse.config import Config
from brandpulse.timeutil import require_utc

# What each blocking condition means, for a person reading `alerts explain`.
_BLOCKED_TEXT = {
    "warm-up": "warm-up: not enough history yet to judge ({warmup} needed)",
    "no baseline": "no baseline: no expected count could be built from the history",
    "in wave": "a wave was already open: it was followed, not paged again",
    "min_count": "min_count: {observed} mentions in the window, fewer than min_count={min_count}",
    "line": "line: {observed} mentions is below the line of {line} "
    "(a line at {observed} would page on noise alone {rate} a month; "
    "false_alerts_per_month={fapm})",
    "ratio": "ratio: {ratio:.2f}x the expected count, under min_ratio={min_ratio}",
    "confirmations": "confirmations: a borderline crossing, {crossings} of confirm_checks="
    "{confirm} checks so far",
    "cooldown": "cooldown: within cooldown={cooldown} of the last wave's end, so it reopened "
    "that wave instead of paging",
    "already fed": "this interval was already judged",
}


def _rate(rate: float | None) -> str:
    """A false-alert rate for people: per month, or that the count is not above usual."""
    if rate is None or rate == float("inf"):
        return "all the time (not above the expected count)"
    return f"{rate:.3g} times" if rate >= 0.001 else "less than 0.001 times"


def with_overrides(settings: SpikeSettings, overrides: Mapping[str, str]) -> SpikeSettings:
    """`settings` with `name=value` changes, validated like the configuration.

    Raises ValueError naming an unknown setting or every invalid value at once.
    """
    unknown = sorted(set(overrides) - set(SpikeSettings.model_fields))
    if unknown:
        raise ValueError(
            f"unknown spike setting(s) {unknown}; known: {', '.join(SpikeSettings.model_fields)}"
        )
    data = settings.model_dump() | {k: (None if v in ("null", "none") else v) for k, v in overrides.items()}
    try:
        return SpikeSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None


def _judged_end(config: Config, at: datetime, step: timedelta) -> datetime:
    """The end of the last interval a check at `at` judges (the query delay applied)."""
    return floor_to(at - config.alerts.query_delay, step)


def _replay(
    config: Config,
    reader: MentionReader,
    brand: str,
    settings: SpikeSettings,
    start: datetime,
    end: datetime,
    *,
    figures: bool = True,
) -> Iterator[tuple[Counts, list[Counts], Verdict, SpikeDetector]]:
    """Judge every interval of `[start - alerts.history, end)`; yield those from `start` on.

    One detector judges the whole stretch in order, as a daemon running all along
    would have. The live daemon rebuilds its detector's history from the last
    `alerts.history` of counts at every check (keeping only the alert state), so its
    expected counts can differ a little from the replay's; the decisions rest on the
    same code. Yields each interval's counts, the whole grid, the verdict (with the
    line and rate when `figures`) and the detector.
    """
    step = settings.interval
    first = floor_to(start - config.alerts.history, step)
    grid = count_grid(reader, brand, first, end, step)
    detector = SpikeDetector(brand, settings)
    # The daemon's detector has seen `alerts.history` of intervals at every check (the
    # quiet ones before a brand's first mention included): shorter than the warm-up,
    # it never judges at all.
    never_warm = config.alerts.history // step < settings.warmup // step
    for counts in grid:
        point = Point(counts.at, counts.negative, counts.total)
        if never_warm:
            detector.warm([point])
            verdict = Verdict(counts.at, None, "warm-up")
        else:
            verdict = detector.judge(point, figures=figures and counts.at >= start)
        if counts.at >= start:
            yield counts, grid, verdict, detector


@dataclass(frozen=True)
class Explanation:
    """Why the negative spike rule did or did not page for `brand` at a check at `at`."""

    brand: str
    at: datetime
    interval: datetime  # start of the last interval that check judged
    verdict: Verdict
    settings: SpikeSettings
    held_back: str | None = None  # the detector fired, but a snooze/maintenance held it


    @property
    def fired(self) -> bool:
        return self.verdict.blocked is None

    def lines(self) -> list[str]:
        v, s = self.verdict, self.settings
        interval_end = self.interval + s.interval
        out = [
            f"{self.brand}, negative_spike, check at {self.at:%Y-%m-%d %H:%M} UTC "
            f"(judges the interval ending {interval_end:%H:%M} UTC):"
        ]
        if v.observed is not None and v.expected is not None and v.window is not None:
            out += [
                f"  observed:  {v.observed} negative mentions in the last {_fmt_td(v.window)}",
                f"  expected:  {v.expected:.1f} ({v.ratio or 0:.2f}x)",
                f"  line:      {v.line} (the smallest count that would have started a wave)",
                f"  false alerts/month of a line at {v.observed}: {_rate(v.rate)} "
                + (f"(setting: false_alerts_per_month={s.false_alerts_per_month:g})"
                   if s.threshold is None else
                   f"(score {v.score or 0:.2f}; the line is set by threshold={s.threshold:g})"),
            ]  # fmt: skip
        if self.fired and self.held_back:
            out.append(f"  verdict:   the detector fired, but the alert was not sent - blocked by "
                       f"snooze: {self.held_back}")  # fmt: skip
            return out
        if self.fired:
            out.append("  verdict:   FIRED - a new wave started (alert sent)")
            return out
        assert v.blocked is not None
        reason = _BLOCKED_TEXT[v.blocked].format(
            warmup=_fmt_td(s.warmup), observed=v.observed, min_count=s.min_count, line=v.line,
            rate=_rate(v.rate), fapm=f"{s.false_alerts_per_month:g}", ratio=v.ratio or 0.0,
            min_ratio=s.min_ratio, crossings=v.crossings, confirm=s.confirm_checks,
            cooldown=_fmt_td(s.cooldown),
        )  # fmt: skip
        if v.blocked == "line" and s.threshold is not None:
            reason = (f"line: {v.observed} mentions is below the line of {v.line} "
                      f"(score {v.score or 0:.2f} under threshold={s.threshold:g})")  # fmt: skip
        out.append(f"  verdict:   did not fire - blocked by {reason}")
        if v.event is not None:
            out.append(f"  (the check sent a {v.event.kind.replace('_', ' ')} update of that wave)")
        return out


def explain(
    config: Config,
    reader: MentionReader,
    brand: str,
    at: datetime,
    settings: SpikeSettings | None = None,
    state: AlertStateStore | None = None,
) -> Explanation:
    """Replay the brand's counts up to the check at `at` and explain its verdict; with
    `state`, a wave it started is also checked against snoozes and maintenance windows."""
    at = require_utc(at, "at")
    config.brand(brand)  # KeyError for an unknown brand
    settings = settings or NegativeSpikeRule.settings_for(config, brand)
    step = settings.interval
    end = _judged_end(config, at, step)
    interval = end - step
    last: Verdict | None = None
    for _counts, _grid, verdict, _detector in _replay(config, reader, brand, settings, interval, end):
        last = verdict
    if last is None:  # no interval at all (cannot happen with history >= 1 h)
        raise ValueError(f"no interval to judge before {at.isoformat()}")
    held = None
    if last.blocked is None and state is not None:
        held = held_back(config, state, brand, NegativeSpikeRule.name, at)
    return Explanation(brand, at, interval, last, settings, held)


@dataclass(frozen=True)
class BacktestAlert:
    """An alert the replay would have sent, with the detector's event and when the check
    that sent it would have run (the interval's end plus the query delay)."""

    alert: Alert
    event: SpikeEvent
    check_at: datetime

    def line(self) -> str:
        a = self.alert
        return (
            f"{self.check_at:%Y-%m-%d %H:%M} UTC  {a.kind:<10}  {a.brand}: {a.observed} negative "
            f"in {_fmt_td(a.interval_end - a.interval_start)} (expected {a.expected:.1f})"
            f"  [{a.alert_id}]"
        )


def backtest(
    config: Config,
    reader: MentionReader,
    brand: str,
    start: datetime,
    end: datetime,
    settings: SpikeSettings | None = None,
) -> list[BacktestAlert]:
    """The negative spike alerts checks between `start` and `end` would have sent.

    Every interval is judged as the live rule judges it (including its rule of not
    telling "still elevated" about a wave that is winding down); the alerts are built
    by the rule itself, so they read as the real ones would (top posts, ids).
    """
    start, end = require_utc(start, "start"), require_utc(end, "end")
    if end <= start:
        raise ValueError("the backtest period must end after it starts")
    config.brand(brand)
    settings = settings or NegativeSpikeRule.settings_for(config, brand)
    step = settings.interval
    rule = NegativeSpikeRule(brand, settings)
    first, last = _judged_end(config, start, step), _judged_end(config, end, step)
    out: list[BacktestAlert] = []
    replay = _replay(config, reader, brand, settings, first, last, figures=False)
    for counts, grid, verdict, _detector in replay:
        event = verdict.event
        if event is None or NegativeSpikeRule.winding_down(event, settings):
            continue
        check_at = counts.at + step + config.alerts.query_delay
        check = Check(brand=brand, now=check_at, reader=reader, alerts=config.alerts)
        planned = rule._alert(check, event, grid, brand, None)
        out.append(BacktestAlert(planned.alert, event, check_at))
    return out


__all__ = ["BacktestAlert", "Explanation", "backtest", "explain", "with_overrides"]
