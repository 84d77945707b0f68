from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from reports.period import Period


def test_previous_period_has_equal_length_and_ends_at_the_start() -> None:
    p = Period(datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    assert p.previous == Period(datetime(2026, 11, 2, tzinfo=UTC), p.start)
    assert p.trend_interval == "day"
    assert Period(p.start, p.start + timedelta(days=2)).trend_interval == "hour"


def test_last_complete_week_ends_at_today_s_utc_midnight() -> None:
    now = datetime(2026, 11, 16, 8, 30, tzinfo=timezone(timedelta(hours=8)))  # 00:30 UTC
    assert Period.last_complete("week", now) == Period(datetime(2026, 11, 9, tzinfo=UTC),
                                                       datetime(2026, 11, 16, tzinfo=UTC))
    assert Period.last_complete("day", now).start == datetime(2026, 11, 15, tzinfo=UTC)


def test_periods_are_aware_and_not_empty() -> None:
    start = datetime(2026, 11, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        Period(datetime(2026, 11, 9), start)
    with pytest.raises(ValueError, match="empty period"):
        Period(start, start)
    shifted = Period(datetime(2026, 11, 9, 8, tzinfo=timezone(timedelta(hours=8))),
                     start + timedelta(days=1))
    assert shifted.start == start and shifted.start.tzinfo is UTC
