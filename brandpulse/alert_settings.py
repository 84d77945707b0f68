"""Settings for the alert rules, one pydantic model per rule.

They are part of the configuration (`brandpulse/config.py` embeds them in `Config`),
so they live on the core's side: the core imports nothing from `alerts/`, and the
rules in `alerts/` import their settings from here. The defaults are meant for a brand nobody has
tuned: they were chosen to be quiet on low-volume brands and on daily/weekly
rhythm, and they are the same defaults the NAB benchmark (`bench/spike_nab.py`)
runs with.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from brandpulse.units import Duration

_HOUR = timedelta(hours=1)
# A spike detector judging at check time T learns from the counts since
# `floor(T - alerts.history, HISTORY_ANCHOR)` (UTC midnight): the start moves once a
# day, not at every check, so a detector kept between checks and one rebuilt at T are
# the same detector (`alerts.kept.anchor`). It reads up to `alerts.history` plus this.
HISTORY_ANCHOR = timedelta(days=1)

# How urgent an alert is (`alerts.model.Alert.severity` says how it is derived); routes
# select on it, so the configuration must know the words.
Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


class SpikeSettings(BaseModel):
    """Settings of the `negative_spike` rule (`alerts.detector.SpikeDetector`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: Duration = Field(
        default=timedelta(minutes=5),
        description="length of one complete interval the caller feeds (must divide one hour)",
    )
    window: Duration = Field(
        default=timedelta(hours=2),
        description="the latest `window` of intervals is what gets judged at each check",
    )
    false_alerts_per_month: float = Field(
        default=1.0,
        gt=0.0,
        le=1000.0,
        description="the sensitivity: how many false alerts a month a brand may get from noise "
        "alone. The detector converts it, for each brand's own volume, check interval and window, "
        "into how improbable a window's count must be; lower means fewer alerts (and bigger "
        "waves needed on quiet brands)",
    )
    long_window: Duration | None = Field(
        default=None,
        description="a second, longer window judged beside `window` at every check; a quiet "
        "brand's wave shows over hours rather than in one window (null: only `window`). The "
        "false-alert budget is split evenly between the two",
    )
    min_count: int = Field(
        default=3,
        ge=1,
        description="an alert needs at least this many mentions in the window, whatever its "
        "probability (a floor: on a quiet brand 1-2 mentions are never a wave)",
    )
    min_ratio: float = Field(
        default=2.0,
        ge=1.0,
        le=100.0,
        description="and at least this multiple of the expected count (so a small relative "
        "change on a huge brand, however improbable, does not page)",
    )
    threshold: float | None = Field(
        default=None,
        gt=0.0,
        le=50.0,
        description="expert override of `false_alerts_per_month`: a fixed surprise (one-sided "
        "normal z of the window's tail probability, e.g. 3.7 = 1 in 10,000) needed to start an "
        "alert, the same for every volume and cadence; unset by default",
    )
    confirm_checks: int = Field(
        default=3,
        ge=1,
        le=12,
        description="consecutive checks that must cross before a borderline wave starts "
        "(a window that only touches the line and falls back is not paged); 1 pages at "
        "the first crossing",
    )
    confirm_margin: float = Field(
        default=1.25,
        ge=1.0,
        le=100.0,
        description="a crossing whose window is at least this multiple of its magnitude line "
        "(`min_ratio` x expected; `share_min_ratio` x usual share for a sentiment dip) is "
        "clear and pages at once, without waiting for `confirm_checks`",
    )
    end_threshold: float = Field(
        default=1.5,
        ge=0.0,
        description="a wave is over once its surprise (z of the window's tail probability) stays "
        "below this for `end_after`",
    )
    end_after: Duration = Field(
        default=timedelta(hours=2), description="how long the score must stay low to call it over"
    )
    warmup: Duration = Field(
        default=timedelta(days=2),
        description="history needed before the first alert (the daily profile needs days)",
    )
    cooldown: Duration = Field(
        default=timedelta(hours=12),
        description="after a wave ends, a new crossing within this time reopens it "
        "(SpikeContinuing with reopened=True) instead of paging with a new SpikeStarted",
    )
    continuing_every: Duration = Field(
        default=timedelta(hours=1),
        description="while a wave keeps going, one SpikeContinuing per this period",
    )
    history_days: int = Field(
        default=21,
        ge=2,
        le=56,
        description="days of hourly counts kept for the seasonal baseline: 7 gives the daily "
        "profile its seven same-hour samples; fewer works as a brand's first week does (fewer "
        "samples, the spread learnt over those days); >=21 enables the hour-of-week profile, "
        "which needs three past weeks",
    )
    level_hours: int = Field(
        default=24,
        ge=1,
        le=168,
        description="hours over which the recent level (robust ratio to the seasonal profile) is taken",
    )
    max_gap: Duration = Field(
        default=timedelta(days=1),
        description="a longer hole between intervals resets the history instead of reading as zeros",
    )
    # Slow-rise path: a one-sided CUSUM of the hourly scores.
    slow_threshold: float = Field(
        default=10.0,
        ge=0.0,
        le=100.0,
        description="CUSUM of hourly robust scores (minus `slow_drift` each hour) that starts a "
        "wave on a slow rise the window score misses (the window must still be at `min_ratio` "
        "and score `end_threshold`); 0 turns the slow-rise path off",
    )
    slow_hours: int = Field(
        default=24, ge=2, le=168, description="completed hours the slow-rise CUSUM looks back over"
    )
    slow_drift: float = Field(
        default=0.5,
        ge=0.0,
        description="hourly score subtracted in the slow-rise CUSUM (ordinary noise must not add up)",
    )
    # Record path: the brand's own busiest window, which needs no model of its noise.
    records: bool = Field(
        default=True,
        description="a window at `min_ratio` x its expected count (and `min_count`) that holds "
        "more mentions than any window of its length in the history kept (once a week of it "
        "is known) starts a wave even under the false-alert line; false turns this path off",
    )
    # Negative-share ("sentiment dip") signal: only used when totals are fed.
    share_threshold: float = Field(
        default=4.0,
        gt=0.0,
        description="binomial z-score of the negative share needed for a sentiment-dip alert",
    )
    share_min_ratio: float = Field(
        default=1.5,
        ge=1.0,
        description="the negative share must also be this multiple of its usual share",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SpikeSettings:
        if self.interval <= timedelta(0) or self.interval > _HOUR:
            raise ValueError("interval must be positive and at most one hour")
        if _HOUR % self.interval:
            raise ValueError("interval must divide one hour (e.g. 1, 5, 10, 15, 30, 60 minutes)")
        if self.window < self.interval or self.window % self.interval:
            raise ValueError("window must be a whole number of intervals")
        if self.window > timedelta(hours=24):
            raise ValueError("window must be at most 24 hours")
        if self.long_window is not None:
            if self.long_window <= self.window or self.long_window % self.interval:
                raise ValueError("long_window must be a whole number of intervals above window")
            if self.long_window > timedelta(hours=24):
                raise ValueError("long_window must be at most 24 hours")
        for name in ("end_after", "warmup", "cooldown", "continuing_every"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        if self.continuing_every < self.interval:
            raise ValueError("continuing_every must be at least one interval")
        if self.max_gap < self.interval:
            raise ValueError("max_gap must be at least one interval")
        if self.threshold is not None and self.end_threshold >= self.threshold:
            raise ValueError("end_threshold must be below threshold")
        return self

    @property
    def steps_per_hour(self) -> int:
        return _HOUR // self.interval

    @property
    def window_steps(self) -> int:
        return self.window // self.interval

    @property
    def windows(self) -> tuple[timedelta, ...]:
        """The windows judged at each check, shortest first."""
        return (self.window,) if self.long_window is None else (self.window, self.long_window)

    @property
    def kept_steps(self) -> int:
        """Intervals the detector keeps for judging: its longest window."""
        return max(self.windows) // self.interval


class HighReachSettings(BaseModel):
    """Settings of the `high_reach` rule (`alerts.rules.HighReachRule`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_reach: int = Field(
        default=100_000,
        ge=1,
        description="a negative mention whose author reaches at least this many people alerts",
    )
    labels: tuple[str, ...] = Field(
        default=("negative",),
        min_length=1,
        description="sentiment labels that count",
    )
    remember: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000,
        description="how many alerted mention ids to remember so a re-crawl does not re-alert",
    )


# ---------------------------------------------------------------------------
# The rules added beside the two first ones. Each is off until the configuration's
# `alerts.rules.<name>` turns it on (`enabled: true`): a new kind of message in a PR
# team's channel is the team's choice. Everything else has a default that works
# untuned.
# ---------------------------------------------------------------------------


class RuleSpikeSettings(SpikeSettings):
    """A spike rule beside `negative_spike`, with the same detector and settings.

    The detector's fields given here override `alerts.spike` (and a brand's own
    `spike` section) for this rule only; those not given are inherited, so one
    `false_alerts_per_month` can govern every spike rule.
    """

    enabled: bool = Field(default=False, description="run this rule (off unless turned on)")


class VolumeSpikeSettings(RuleSpikeSettings):
    """`volume_spike`: a wave of all mentions; detector fields not given come from alerts.spike.

    The rule watches every mention of the brand, whatever its sentiment. The defaults
    in the reference are the detector's; a field not written here is inherited from
    `alerts.spike` and the brand's own `spike` section.
    """


class PositiveSpikeSettings(RuleSpikeSettings):
    """`positive_spike`: a wave of positive mentions; detector fields not given come from alerts.spike.

    An opportunity (praise to amplify). As for `volume_spike`, a detector field not
    written here is inherited from `alerts.spike` and the brand's own `spike` section.
    """


class CompetitorSpikeSettings(RuleSpikeSettings):
    """`competitor_negative_spike`: a competitor's negative wave, told to each own brand.

    An opportunity for the own brand's team. A detector field not written here is
    inherited from `alerts.spike`.
    """

    competitors: tuple[str, ...] | None = Field(
        default=None,
        description="the competitors watched for this brand (brand names with `own: false`); "
        "null: every configured competitor",
    )


class SovShiftSettings(BaseModel):
    """`sov_shift`: an own brand's share of voice against its competitors on a UTC day.

    The day's share is judged against the days before (`alerts.rules.SovShiftRule`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=False, description="run this rule (off unless turned on)")
    competitors: tuple[str, ...] | None = Field(
        default=None,
        description="the competitors the share is taken against (brand names with `own: false`); "
        "null: every configured competitor",
    )
    baseline_days: int = Field(
        default=14, ge=3, le=56, description="previous days the usual share is learnt from"
    )
    false_alerts_per_month: float = Field(
        default=0.5,
        gt=0.0,
        le=30.0,
        description="how many shifts a month noise alone may report for a brand (one test a "
        "day, both directions): converted into how improbable a day's share must be",
    )
    min_mentions: int = Field(
        default=50,
        ge=1,
        description="a day with fewer mentions of the brand and its competitors together is "
        "not judged (a share of a handful of mentions says nothing)",
    )
    min_change: float = Field(
        default=0.05,
        gt=0.0,
        lt=1.0,
        description="and the share must move by at least this much (0.05 = 5 percentage "
        "points), however improbable a smaller move is on a busy day",
    )


class FlatlineSettings(BaseModel):
    """`flatline`: a brand's mentions (or those from one source) stop when silence is improbable.

    The expected rate is the spike detector's (`alerts.rules.FlatlineRule`; the brand's
    `spike` settings give its interval and history).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=False, description="run this rule (off unless turned on)")
    false_alerts_per_month: float = Field(
        default=1.0,
        gt=0.0,
        le=1000.0,
        description="how many silences a month chance alone may report per brand (and per "
        "source): converted, for the expected rate, into how improbable the silence must be",
    )
    min_silence: Duration = Field(
        default=timedelta(hours=1),
        description="no report before the silence lasts this long (crawl schedules and "
        "indexing make shorter gaps ordinary)",
    )
    per_source: bool = Field(
        default=True,
        description="also watch the brand's mentions from each enabled source that searches "
        "for it, apart (a source whose crawls succeed but find nothing, which the health "
        "notices do not see)",
    )
    crawl_lag: Duration | None = Field(
        default=None,
        description="the newest stretch never counted as silence, because crawls have not "
        "fetched its posts yet; null: the source's `schedule.every` + `jitter` (for the "
        "brand as a whole, the longest of its sources')",
    )

    @model_validator(mode="after")
    def _positive(self) -> FlatlineSettings:
        if self.min_silence <= timedelta(0):
            raise ValueError("min_silence must be positive")
        if self.crawl_lag is not None and self.crawl_lag < timedelta(0):
            raise ValueError("crawl_lag must not be negative")
        return self


class RulesSettings(BaseModel):
    """`alerts.rules`: the further alert rules by name, each off until `enabled: true`.

    `negative_spike` (`alerts.spike`) and `high_reach` (`alerts.high_reach`) keep
    their own sections and are always on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    volume_spike: VolumeSpikeSettings = Field(
        default_factory=VolumeSpikeSettings,
        description="a wave of all mentions of a brand; detector fields override alerts.spike",
    )
    positive_spike: PositiveSpikeSettings = Field(
        default_factory=PositiveSpikeSettings,
        description="a wave of positive mentions; detector fields override alerts.spike",
    )
    competitor_negative_spike: CompetitorSpikeSettings = Field(
        default_factory=CompetitorSpikeSettings,
        description="a competitor's negative wave, told to each own brand; detector fields "
        "override alerts.spike",
    )
    sov_shift: SovShiftSettings = Field(
        default_factory=SovShiftSettings,
        description="an own brand's share of voice against its competitors moves on a day",
    )
    flatline: FlatlineSettings = Field(
        default_factory=FlatlineSettings,
        description="a busy brand's mentions (or those from one of its sources) go silent",
    )


# The names of the alert rules, in the engine's order, for routes that select alerts by
# the rule that raised them: the two always-on rules, then one per `alerts.rules`
# section, so a new rule's section names it here too. A test keeps this equal to the
# registry `alerts.rules.RULES` (the core cannot import `alerts/`).
RULE_NAMES: tuple[str, ...] = ("negative_spike", "high_reach", *RulesSettings.model_fields)
