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
resolved by `zone`; `local_to_utc` reads a naive configured time (a maintenance
window's "from") in such a zone; `local_midnight` and `shift_local_days` do the calendar arithmetic
of local days (a report's week in Europe/London), which UTC arithmetic gets wrong
across a DST change. `parse_board_time` reads the wall-clock and relative times forum
pages and Weibo show ("昨天 10:05", "3 天前") in a board's zone against an injected clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
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


def local_to_utc(value: datetime, time_zone: str) -> datetime:
    """`value` in UTC, a naive `value` being local time in IANA zone `time_zone`.

    For times people write in a configuration (a maintenance window "from 22:00 to
    06:00 Paris time") and sources that show wall times without an offset (Weibo's
    "今天 12:30" in Asia/Shanghai); ambiguous or skipped wall times resolve with
    `fold=0`, as `zoneinfo` does. An aware `value` keeps its own offset.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(time_zone))
    return value.astimezone(UTC)


# ---------------------------------------------------------------------------
# Board-local times (forum pages show wall-clock times in the board's zone)
# ---------------------------------------------------------------------------

_BOARD_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M",
    "%a %b %d, %Y %I:%M %p",  # phpBB 3 default: "Tue Mar 05, 2024 2:22 pm"
    "%a %b %d, %Y %H:%M",
    "%d %b %Y %H:%M",  # phpBB "D M Y, H:i" style boards: "27 Apr 2011 23:57"
    "%d %b %Y, %H:%M",
    "%b %d, %Y %I:%M %p",
    "%a %b %d %H:%M:%S %z %Y",  # Weibo's API (Twitter's form): "Sat Nov 28 12:00:00 +0800 2026"
)
_PREFIX = re.compile(r"^(?:发表于|發表於|最后回复于|posted|by)\s*[:：]?\s*", re.IGNORECASE)
_DAY_WORDS = {"今天": 0, "昨天": 1, "前天": 2}
_DAY_CLOCK = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_AGO = re.compile(r"^(\d+|半)\s*(秒|分钟|小时|天|周)前$")
_AGO_UNITS = {"秒": "seconds", "分钟": "minutes", "小时": "hours", "天": "days", "周": "weeks"}
_CLOCK_ONLY = re.compile(r"^(\d{1,2}):(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?$")


def parse_board_time(text: str, zone: str | None, now: datetime) -> datetime:
    """A time as a forum board or Weibo shows it -> aware UTC.

    `zone` is the board's IANA zone (None: UTC; Weibo's is Asia/Shanghai); `now` is
    the injected clock (aware), against which relative forms are resolved in that
    zone: "2024-3-5 14:22", "发表于 2024-03-05 14:22:01", "今天 12:30", "昨天 10:05",
    "前天 10:05", "3 天前", "5分钟前", "半小时前", "刚刚", Tieba's "14:22" (today) and
    "3-5" / Weibo's "03-15" (this year; last year when that date is still ahead),
    phpBB's "Tue Mar 05, 2024 2:22 pm". A time that carries its own zone (ISO 8601
    with an offset, phpBB's `<time datetime>`, Weibo's "Sat Nov 28 12:00:00 +0800
    2026") keeps it. Raises ValueError naming the text for anything else, a
    non-string or an impossible date ("13-45", "昨天 25:99") included.
    """
    tz = ZoneInfo(zone) if zone else UTC
    local_now = require_utc(now, "board clock").astimezone(tz)
    if not isinstance(text, str):
        raise ValueError(f"not a board time: {text!r}")
    try:
        return _parse_board_time(text, tz, local_now)
    except ValueError as exc:
        if str(exc).startswith("not a board time"):
            raise
        raise ValueError(f"not a board time: {text!r} ({exc})") from None


def _parse_board_time(text: str, tz: tzinfo, local_now: datetime) -> datetime:
    raw = " ".join(text.split())
    value = _PREFIX.sub("", raw).replace("\xa0", " ").strip()
    if not value:
        raise ValueError(f"not a board time: {text!r}")
    if value == "刚刚":
        return local_now.astimezone(UTC)
    if value == "半小时前":
        return (local_now - timedelta(minutes=30)).astimezone(UTC)
    match = _AGO.match(value)
    if match:
        amount = 0.5 if match.group(1) == "半" else int(match.group(1))
        delta = timedelta(**{_AGO_UNITS[match.group(2)]: amount})
        return (local_now - delta).astimezone(UTC)
    match = _DAY_CLOCK.match(value)
    if match:
        day = local_now.date() - timedelta(days=_DAY_WORDS[match.group(1)])
        at = datetime(day.year, day.month, day.day, int(match.group(2)), int(match.group(3)),
                      int(match.group(4) or 0), tzinfo=tz)  # fmt: skip
        return at.astimezone(UTC)
    match = _CLOCK_ONLY.match(value)
    if match:
        day = local_now.date()
        at = datetime(day.year, day.month, day.day, int(match.group(1)), int(match.group(2)), tzinfo=tz)
        return at.astimezone(UTC)
    match = _MONTH_DAY.match(value)
    if match:
        hour, minute = int(match.group(3) or 0), int(match.group(4) or 0)
        month, day_of_month = int(match.group(1)), int(match.group(2))
        at = datetime(local_now.year, month, day_of_month, hour, minute, tzinfo=tz)
        if at > local_now + timedelta(days=1):  # "12-30" read on Jan 2 is last year's
            at = at.replace(year=local_now.year - 1)
        return at.astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None:
        for fmt in _BOARD_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"not a board time: {text!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)
