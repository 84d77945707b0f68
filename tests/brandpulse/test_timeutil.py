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
