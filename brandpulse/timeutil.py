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

from datetime import UTC, datetime, tzinfo


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


def zone_of(name: str) -> tzinfo:
    """The IANA time zone `name` (e.g. Europe/Paris); ValueError naming it when unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as Europe/Paris)") from None


def local_to_utc(value: datetime, zone: str) -> datetime:
    """`value` in UTC, a naive `value` being local time in IANA zone `zone`.

    For times people write in a configuration (a maintenance window "from 22:00 to
    06:00 Paris time"): an aware `value` keeps its own offset.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone_of(zone))
    return value.astimezone(UTC)
