"""Time zones in one place: every time BrandPulse stores, compares or sends is aware UTC.

Two policies, named at the call site because they mean different things:

* `to_utc(value)` is for times that come from outside: source APIs and stored
  state. A naive value is taken as UTC: every API we crawl documents its
  timestamps as UTC, and a silent local-time shift would misplace mentions in
  the alert windows.
* `require_utc(value, what)` is for times our own code passes around: alert
  windows, query bounds, report periods, health notices. There a naive value is
  a programming error (whose local time would it be?), so it raises and names
  `what`.

Local time zones (a forum board's, a report schedule's) are named by IANA name and
resolved by `zone`; `local_midnight` and `shift_local_days` do the calendar arithmetic
of local days (a report's week in Europe/London), which UTC arithmetic gets wrong
across a DST change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def to_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive `value` is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def require_utc(value: datetime, what: str = "time") -> datetime:
    """`value` in UTC; a naive `value` raises ValueError naming `what`."""
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got a naive datetime {value.isoformat()}")
    return value.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (Europe/London, Asia/Shanghai); ValueError naming it
    when the machine's zone database does not know it. Config validators and the
    schedulers call this one function, so a zone accepted at load time is one that
    works at run time."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as Asia/Shanghai)"
        ) from None


def local_midnight(value: datetime, time_zone: str) -> datetime:
    """The midnight (in `time_zone`) that starts `value`'s local day, in UTC.

    A local day is 23 or 25 hours long on a DST change: step days with
    `shift_local_days`, not with a timedelta."""
    tz = zone(time_zone)
    local = require_utc(value, "time").astimezone(tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
    return midnight.astimezone(UTC)


def shift_local_days(value: datetime, days: int, time_zone: str) -> datetime:
    """`value` moved by `days` calendar days on the wall clock of `time_zone`, in UTC:
    Monday 00:00 London minus 7 days is the previous Monday 00:00 London even when a
    DST change lies between (167 or 169 hours, not 168)."""
    tz = zone(time_zone)
    local = require_utc(value, "time").astimezone(tz).replace(tzinfo=None)
    return (local + timedelta(days=days)).replace(tzinfo=tz).astimezone(UTC)
