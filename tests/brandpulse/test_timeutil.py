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


def test_local_to_utc_reads_a_naive_time_in_the_zone_and_keeps_an_offset() -> None:
    from brandpulse.timeutil import local_to_utc

    assert local_to_utc(datetime(2026, 7, 1, 12, 0), "Europe/Paris") == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    aware = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert local_to_utc(aware, "Europe/Paris") == datetime(2026, 7, 1, 17, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        local_to_utc(datetime(2026, 7, 1), "Mars/Base")
