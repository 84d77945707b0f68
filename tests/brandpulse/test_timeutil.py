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


def test_local_to_utc_reads_a_naive_time_as_wall_clock_time_in_the_zone() -> None:
    from brandpulse.timeutil import local_to_utc

    # Shanghai has no daylight saving time: always UTC+8.
    assert local_to_utc(datetime(2026, 11, 30, 8, 15), "Asia/Shanghai") == datetime(
        2026, 11, 30, 0, 15, tzinfo=UTC
    )
    assert local_to_utc(datetime(2026, 1, 1, 3, 0), "Asia/Shanghai") == datetime(
        2025, 12, 31, 19, 0, tzinfo=UTC
    )
    # An aware time keeps its own offset.
    assert local_to_utc(datetime(2026, 11, 30, 17, 0, tzinfo=CST), "Europe/Berlin").hour == 9
