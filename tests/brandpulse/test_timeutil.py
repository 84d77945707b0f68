"""The one time-zone helper: naive times from outside are UTC; our own must be aware."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from brandpulse.timeutil import require_utc, to_utc

CST = timezone(timedelta(hours=8))


def test_to_utc_takes_a_naive_time_as_utc_and_converts_an_aware_one() -> None:
    assert to_utc(datetime(2026, 11, 30, 9, 0)) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    converted = to_utc(datetime(2026, 11, 30, 17, 0, tzinfo=CST))
    assert converted == datetime(2026, 11, 30, 9, 0, tzinfo=UTC) and converted.tzinfo is UTC


def test_require_utc_refuses_a_naive_time_and_names_it() -> None:
    with pytest.raises(ValueError, match="report start must be timezone-aware"):
        require_utc(datetime(2026, 11, 30, 9, 0), "report start")
    assert require_utc(datetime(2026, 11, 30, 17, 0, tzinfo=CST)).hour == 9


def test_zone_names_an_unknown_zone() -> None:
    from brandpulse.timeutil import zone

    assert zone("Europe/London").key == "Europe/London"
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Lndon'"):
        zone("Europe/Lndon")


def test_local_days_across_a_dst_change() -> None:
    from brandpulse.timeutil import local_midnight, shift_local_days

    # London left summer time on Sunday 2026-10-25: that local day had 25 hours
    monday = local_midnight(datetime(2026, 10, 26, 9, 30, tzinfo=UTC), "Europe/London")
    assert monday == datetime(2026, 10, 26, 0, 0, tzinfo=UTC)  # GMT again
    week_before = shift_local_days(monday, -7, "Europe/London")
    assert week_before == datetime(2026, 10, 18, 23, 0, tzinfo=UTC)  # 00:00 BST
    assert monday - week_before == timedelta(hours=169)
    # Shanghai has no DST: its midnight is 16:00 UTC the day before
    assert local_midnight(datetime(2026, 11, 30, 3, 0, tzinfo=UTC), "Asia/Shanghai") == \
        datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
