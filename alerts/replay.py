"""`alerts explain` and `alerts backtest`: the alert rules replayed over stored mentions.

The replay is the daemon's check, repeated: at every check time of a period (each
interval's end plus `alerts.query_delay`, the first moment a daemon check sees that
interval), `alerts.rules.evaluate_rules` runs the brand's rules -- the same rule
objects, the same history window (`alerts.kept.anchor`: from `alerts.history` before
the check, rounded down to UTC midnight) rebuilt at every check, the same rule
states carried from one check to the next -- through a `MentionReader`
(Elasticsearch's in the CLI). So a backtest lists the alerts the daemon sent on the
same data, with the same expected counts and ids (tests/alerts/test_replay.py drives
the engine check by check and compares), and an explanation is the reasoning of the
check that was (or would have been) made. Nothing is written and nothing is sent.

* `explain(...)` / `explain_all(...)` answer "why did (or didn't) it page at this
  time?": per rule, the figures of the check at that time (observed, expected, the
  line a wave needed, the false-alerts-per-month rate of the observed count) and the
  condition that blocked a new wave (`alerts.detector.Blocked`), or for the rules
  without a spike detector their own line of reasoning (`Evaluation.notes`); a wave
  that fired but was held back by a snooze or maintenance window says so.
* `backtest(...)` lists the alerts a period would have produced -- with the
  configured settings or with some changed (`with_overrides`), so a setting can be
  tried on last month's data before it is deployed.

The replay starts `lead` (`_lead`: a wave's cooldown, end and window) before the
first check of interest with no state, as a daemon started then would; an open wave
or cooldown older than that is not known to it. Other differences from the live
daemon, on purpose: the replay sees the counts as they are now (mentions indexed
late are in their interval), knows nothing of the daemon's downtime or of failing
sources (the flatline rule judges them all), and its checks run once per interval
(a daemon checking every minute sends a high-reach alert up to an interval sooner).
Whether the daemon kept its detectors between checks (`alerts.keep_detectors`) makes
no difference: a kept detector is the one a rebuild makes (`alerts.kept`).
Cost: each check of each spike rule rebuilds its history of counts, as a daemon
without kept detectors does (about 40 ms for 14 days of 5-minute intervals): a week's backtest of
one rule takes a minute or two. Counts are read from Elasticsearch once per replay
(`_Prefetched`), not once per check.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from alerts.detector import Verdict, _fmt_td
from alerts.engine import held_back
from alerts.model import Alert
from alerts.reader import MentionReader
from alerts.rules import (
    AlertRule,
    Check,
    Evaluation,
    FlatlineRule,
    Judged,
    NegativeSpikeRule,
    Planned,
    SpikeRule,
    evaluate_rules,
    floor_to,
    rules_for,
)
from alerts.state import AlertStateStore, BrandState
from brandpulse.alert_settings import SpikeSettings
from brandpulse.config import Config
from brandpulse.mention import Mention, SentimentLabel
from brandpulse.timeutil import require_utc
from store.queries import IntervalCounts, SourceCounts

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

# What each spike rule counts, for the lines people read.
_COUNTED = {
    "negative_spike": "negative mentions",
    "competitor_negative_spike": "negative mentions",
    "positive_spike": "positive mentions",
    "volume_spike": "mentions",
}


def _rate(rate: float | None) -> str:
    """A false-alert rate for people: per month, or that the count is not above usual."""
    if rate is None or rate == float("inf"):
        return "all the time (not above the expected count)"
    return f"{rate:.3g} times" if rate >= 0.001 else "less than 0.001 times"


def with_overrides(settings: SpikeSettings, overrides: Mapping[str, str]) -> SpikeSettings:
    """`settings` with `name=value` changes, validated like the configuration.

    A name may be spelled `spike.<name>` (as in `alerts.spike`). Raises ValueError
    naming an unknown setting or every invalid value at once.
    """
    overrides = {k.removeprefix("spike."): v for k, v in overrides.items()}
    unknown = sorted(set(overrides) - set(SpikeSettings.model_fields))
    if unknown:
        raise ValueError(
            f"unknown spike setting(s) {unknown}; known: {', '.join(SpikeSettings.model_fields)}"
        )
    data = settings.model_dump() | {
        k: (None if v in ("null", "none") else v) for k, v in overrides.items()
    }
    try:
        return SpikeSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None


class _Prefetched:
    """A `MentionReader` that reads each brand's counts once for the whole replay and
    answers every check's window from them (the same buckets: intervals are aligned to
    the epoch); posts are read through `reader` as they are asked for."""

    def __init__(self, reader: MentionReader, end: datetime) -> None:
        self.reader = reader
        self.end = end
        self._counts: dict[tuple[str, timedelta], tuple[datetime, Sequence[IntervalCounts]]] = {}
        self._sources: dict[tuple[str, timedelta], tuple[datetime, Sequence[SourceCounts]]] = {}

    def counts(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> Sequence[IntervalCounts]:
        cached = self._counts.get((brand, step))
        if cached is None or start < cached[0] or end > self.end:
            cached = (start, self.reader.counts(brand, start, max(end, self.end), step))
            self._counts[(brand, step)] = cached
        return [r for r in cached[1] if start <= r.start < end]

    def counts_by_source(
        self, brand: str, start: datetime, end: datetime, step: timedelta
    ) -> Sequence[SourceCounts]:
        cached = self._sources.get((brand, step))
        if cached is None or start < cached[0] or end > self.end:
            cached = (start, self.reader.counts_by_source(brand, start, max(end, self.end), step))
            self._sources[(brand, step)] = cached
        return [r for r in cached[1] if start <= r.start < end]

    def by_reach(
        self, brand: str, start: datetime, end: datetime, *, sentiment: SentimentLabel | None,
        limit: int | None = None, min_reach: int = 0,
    ) -> list[Mention]:  # fmt: skip
        return self.reader.by_reach(
            brand, start, end, sentiment=sentiment, limit=limit, min_reach=min_reach
        )

    def newest(
        self, brand: str, start: datetime, end: datetime, *, sentiment: SentimentLabel, limit: int
    ) -> list[Mention]:
        return self.reader.newest(brand, start, end, sentiment=sentiment, limit=limit)


def _intervals(rules: Mapping[str, AlertRule]) -> list[timedelta]:
    out = []
    for rule in rules.values():
        if isinstance(rule, SpikeRule):
            out.append(rule.settings.interval)
        elif isinstance(rule, FlatlineRule):
            out.append(rule.detector.interval)
    return out


def _cadence(rules: Mapping[str, AlertRule]) -> timedelta:
    """How often the replay checks: every interval of every spike rule begins a check
    (the greatest common divisor of their intervals; 5 minutes without any)."""
    seconds = [int(i.total_seconds()) for i in _intervals(rules)] or [300]
    return timedelta(seconds=math.gcd(*seconds))


def _lead(rules: Mapping[str, AlertRule]) -> timedelta:
    """How long before the first check of interest the replay starts, with no state:
    long enough for an open wave's end and cooldown (and the window that started it)."""
    lead = timedelta(0)
    for rule in rules.values():
        if isinstance(rule, SpikeRule):
            s = rule.settings
            lead = max(lead, s.cooldown + s.end_after + max(s.window, s.long_window or s.window))
    return lead


@dataclass(frozen=True)
class ReplayedCheck:
    """One check of the replay: when it ran, the alerts it would have sent, and each
    rule's evaluation (its reasoning)."""

    at: datetime
    planned: list[Planned]
    evaluations: dict[str, Evaluation] = field(default_factory=dict)


def replay(
    config: Config,
    reader: MentionReader,
    brand: str,
    start: datetime,
    end: datetime,
    rules: Mapping[str, AlertRule] | None = None,
    *,
    explain_last: bool = False,
) -> Iterator[ReplayedCheck]:
    """The daemon's checks of `brand` whose judged interval ends in `(start, end]`, in
    order (each at its interval's end plus the query delay), preceded by `_lead` of
    checks whose results are not yielded. `rules`: the rules built for the brand
    (`rules_for`, every registered one unless given). `explain_last`: the last check
    also computes the figures people read (`Check.explain`)."""
    start, end = require_utc(start, "start"), require_utc(end, "end")
    rules = dict(rules) if rules is not None else rules_for(config, brand)
    from nlp.enrich import brand_queries  # what a wave's themes locate brands by

    queries = brand_queries(config.brands)
    cadence, delay = _cadence(rules), config.alerts.query_delay
    first = floor_to(start - _lead(rules), cadence) + cadence
    last = floor_to(end, cadence)
    prefetched = _Prefetched(reader, last)
    state = BrandState(brand)
    boundary = first
    while boundary <= last:
        check = Check(brand=brand, now=boundary + delay, reader=prefetched, alerts=config.alerts,
                      queries=queries, explain=explain_last and boundary == last)  # fmt: skip
        planned, state, evaluations = evaluate_rules(rules, check, state)
        if boundary > start:
            yield ReplayedCheck(check.now, planned, evaluations)
        boundary += cadence


@dataclass(frozen=True)
class Explanation:
    """Why a spike rule did or did not page for `brand` at a check at `at` (for the
    competitor rule, about `subject`)."""

    brand: str
    at: datetime
    interval: datetime  # start of the last interval that check judged
    verdict: Verdict
    settings: SpikeSettings
    held_back: str | None = None  # the detector fired, but a snooze/maintenance held it
    rule: str = "negative_spike"
    subject: str | None = None
    sent: bool = True  # False: a "still elevated" of a wave winding down, not sent

    @property
    def fired(self) -> bool:
        return self.verdict.blocked is None

    def lines(self) -> list[str]:
        v, s = self.verdict, self.settings
        interval_end = self.interval + s.interval
        about = f" ({self.subject})" if self.subject else ""
        out = [
            f"{self.brand}, {self.rule}{about}, check at {self.at:%Y-%m-%d %H:%M} UTC "
            f"(judges the interval ending {interval_end:%H:%M} UTC):"
        ]
        counted = _COUNTED.get(self.rule, "mentions")
        if v.observed is not None and v.expected is not None and v.window is not None:
            out += [
                f"  observed:  {v.observed} {counted} in the last {_fmt_td(v.window)}",
                f"  expected:  {v.expected:.1f} ({v.ratio or 0:.2f}x)",
                f"  line:      {v.line} (the smallest count that would have started a wave)",
                *([f"  record:    {v.record} (the most in any {_fmt_td(v.window)} of the "
                   "history kept; beating it at min_ratio also starts a wave)"]
                  if v.record is not None else []),
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
            kind = v.event.kind.replace("_", " ")
            out.append(
                f"  (the check sent a {kind} update of that wave)"
                if self.sent
                else f"  (a {kind} update of that wave, not sent: the wave is winding down)"
            )
        return out


@dataclass(frozen=True)
class RuleNotes:
    """What a rule without a spike detector saw at a check (`Evaluation.notes`)."""

    brand: str
    at: datetime
    rule: str
    notes: tuple[str, ...]
    held_back: str | None = None  # it fired, but a snooze/maintenance held it

    def lines(self) -> list[str]:
        out = [f"{self.brand}, {self.rule}, check at {self.at:%Y-%m-%d %H:%M} UTC:"]
        out += [f"  {note}" for note in self.notes]
        if self.held_back:
            out.append(f"  not sent - blocked by snooze: {self.held_back}")
        return out


def explain_all(
    config: Config,
    reader: MentionReader,
    brand: str,
    at: datetime,
    rules: Mapping[str, AlertRule] | None = None,
    state: AlertStateStore | None = None,
) -> list[Explanation | RuleNotes]:
    """Per enabled rule of `brand` (every registered one unless `rules`), why the check
    at `at` did or did not alert; with `state`, an alert is also checked against
    snoozes and maintenance windows (`alerts.engine.held_back`)."""
    at = require_utc(at, "at")
    config.brand(brand)  # KeyError for an unknown brand
    rules = {n: r for n, r in (rules or rules_for(config, brand)).items() if r.enabled}
    cadence = _cadence(rules)
    end = floor_to(at - config.alerts.query_delay, cadence)
    checks = list(replay(config, reader, brand, end - cadence, end, rules, explain_last=True))
    if not checks:  # cannot happen: the period holds one boundary
        raise ValueError(f"no check to replay before {at.isoformat()}")
    last = checks[-1]
    out: list[Explanation | RuleNotes] = []
    for name, rule in rules.items():
        evaluation = last.evaluations[name]
        fired = any(p.alert.rule == name for p in evaluation.alerts)
        held = held_back(config, state, brand, name, at) if fired and state is not None else None
        if isinstance(rule, SpikeRule):
            judged: list[Judged] = list(evaluation.judged)
            if not judged:
                out.append(RuleNotes(brand, at, name, ("no new interval to judge at this check",)))
            for j in judged:
                out.append(Explanation(brand, at, j.verdict.at, j.verdict, rule.settings,
                                       held if j.verdict.blocked is None else None, name,
                                       j.subject, j.sent))  # fmt: skip
        else:
            out.append(RuleNotes(brand, at, name, evaluation.notes, held))
    return out


def explain(
    config: Config,
    reader: MentionReader,
    brand: str,
    at: datetime,
    settings: SpikeSettings | None = None,
    state: AlertStateStore | None = None,
) -> Explanation:
    """`explain_all` of the negative spike rule alone (with `settings`, changed ones)."""
    settings = settings or NegativeSpikeRule.settings_for(config, brand)
    rules: dict[str, AlertRule] = {"negative_spike": NegativeSpikeRule(brand, settings)}
    [explained] = explain_all(config, reader, brand, at, rules, state)
    assert isinstance(explained, Explanation)
    return explained


@dataclass(frozen=True)
class BacktestAlert:
    """An alert the replay would have sent, and when the check that sent it would have
    run (the interval's end plus the query delay)."""

    alert: Alert
    check_at: datetime

    def line(self) -> str:
        a = self.alert
        counted = _COUNTED.get(a.rule, "mentions")
        about = f" ({a.subject})" if a.subject else ""
        return (
            f"{self.check_at:%Y-%m-%d %H:%M} UTC  {a.kind:<10}  {a.brand}{about}: {a.observed} "
            f"{counted.removesuffix(' mentions')} in {_fmt_td(a.interval_end - a.interval_start)} "
            f"(expected {a.expected:.1f})  {a.rule}  [{a.alert_id}]"
        )


def backtest(
    config: Config,
    reader: MentionReader,
    brand: str,
    start: datetime,
    end: datetime,
    settings: SpikeSettings | None = None,
    rules: Sequence[str] | None = None,
) -> list[BacktestAlert]:
    """The alerts the checks between `start` and `end` would have sent.

    Every check is the daemon's (`replay`), so the alerts are built by the rules
    themselves and read as the real ones would (top posts, ids). `rules`: the names
    of the rules to replay (default: every enabled one); `settings`: changed
    negative-spike settings.
    """
    start, end = require_utc(start, "start"), require_utc(end, "end")
    if end <= start:
        raise ValueError("the backtest period must end after it starts")
    config.brand(brand)
    built = rules_for(config, brand)
    if settings is not None:
        built["negative_spike"] = NegativeSpikeRule(brand, settings)
    unknown = sorted(set(rules or ()) - set(built))
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; known: {', '.join(built)}")
    chosen = {n: r for n, r in built.items() if r.enabled and (rules is None or n in rules)}
    delay = config.alerts.query_delay
    out: list[BacktestAlert] = []
    for check in replay(config, reader, brand, start - delay, end - delay, chosen):
        out.extend(BacktestAlert(p.alert, check.at) for p in check.planned)
    return out


__all__ = [
    "BacktestAlert",
    "Explanation",
    "ReplayedCheck",
    "RuleNotes",
    "backtest",
    "explain",
    "explain_all",
    "replay",
    "with_overrides",
]
