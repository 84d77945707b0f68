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

Local time zones (a forum board's, a report's) are applied where those times are
parsed or shown, with `zoneinfo`, and converted here.
"""

from __future__ import annotations

from datetime import UTC, datetime


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


def local_to_utc(value: datetime, zone: str) -> datetime:
    """A wall-clock time read in IANA time zone `zone` (e.g. "Asia/Shanghai"), in UTC.

    For sources that show local times without an offset (Weibo's "今天 12:30",
    a forum board's dates). A naive `value` is taken as local time in `zone`
    (ambiguous or skipped wall times resolve with `fold=0`, as `zoneinfo` does);
    an aware `value` already says where it is and is only converted.
    """
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    from zoneinfo import ZoneInfo  # lazy: most callers never need a zone database

    return value.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
