"""The reporting period: a half-open window ``[start, end)`` in UTC and the one before it.

Every figure of a report compares a period with the previous period of equal length
(``previous``), so a week is compared with the week before it, whatever day it ends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from brandpulse.timeutil import local_midnight, require_utc, shift_local_days

PeriodName = Literal["day", "week"]
PERIOD_LENGTHS: dict[PeriodName, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7)}

# Up to this length the trend is hourly; longer periods get one point per day.
HOURLY_UP_TO = timedelta(days=2)


@dataclass(frozen=True)
class Period:
    """``[start, end)``, timezone-aware, stored in UTC; never empty."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = require_utc(self.start, "start"), require_utc(self.end, "end")
        if end <= start:
            raise ValueError(f"empty period: end {end.isoformat()} <= start {start.isoformat()}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def previous(self) -> Period:
        """The period of equal length that ends where this one starts."""
        return Period(self.start - self.length, self.start)

    @property
    def trend_interval(self) -> Literal["hour", "day"]:
        """The step of the trend series: hourly for periods up to two days, else daily."""
        return "hour" if self.length <= HOURLY_UP_TO else "day"

    @classmethod
    def ending(cls, name: PeriodName, end: datetime) -> Period:
        """The day or week that ends at ``end``."""
        return cls(end - PERIOD_LENGTHS[name], end)

    @classmethod
    def last_complete(cls, name: PeriodName, now: datetime) -> Period:
        """The last full day (or 7 full days) before the UTC midnight that starts `now`'s day:
        a report run on Monday 08:00 covers up to Monday 00:00, never a half-filled day."""
        now = require_utc(now, "now")
        return cls.ending(name, now.replace(hour=0, minute=0, second=0, microsecond=0))

    @classmethod
    def last_complete_local(cls, name: PeriodName, now: datetime, time_zone: str) -> Period:
        """The last full local day or week (7 local days) before the midnight, in
        `time_zone`, that starts `now`'s local day: what a report scheduled in that zone
        covers. A week across a DST change is 167 or 169 hours; its previous period is
        of equal length (`previous`), which shifts the comparison by that hour at most."""
        end = local_midnight(now, time_zone)
        return cls(shift_local_days(end, -PERIOD_LENGTHS[name].days, time_zone), end)


def iso(value: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, as Elasticsearch range queries and JSON output take it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
