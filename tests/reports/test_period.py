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


def test_last_complete_local_week_is_seven_local_days() -> None:
    # run on Monday 2026-10-26 09:00 in London, the day after summer time ended
    p = Period.last_complete_local("week", datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
                                   "Europe/London")
    assert p.start == datetime(2026, 10, 18, 23, 0, tzinfo=UTC)  # Monday 00:00 BST
    assert p.end == datetime(2026, 10, 26, 0, 0, tzinfo=UTC)  # Monday 00:00 GMT
    assert p.length == timedelta(hours=169)
    day = Period.last_complete_local("day", datetime(2026, 11, 30, 1, 0, tzinfo=UTC),
                                     "Asia/Shanghai")
    # 09:00 on 30 November in Shanghai: the report covers 29 November, local
    assert (day.start, day.end) == (datetime(2026, 11, 28, 16, tzinfo=UTC),
                                    datetime(2026, 11, 29, 16, tzinfo=UTC))
