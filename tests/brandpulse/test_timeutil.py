"""The one time-zone helper: naive times from outside are UTC; our own must be aware."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from brandpulse.timeutil import parse_board_time, require_utc, to_utc

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


# 2026-11-27 12:00 in Beijing: the injected clock board times are read against.
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
SH = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("shown", "zone", "utc"),
    [
        ("2024-3-5 14:22", SH, datetime(2024, 3, 5, 6, 22)),
        ("发表于 2026-11-26 21:14:05", SH, datetime(2026, 11, 26, 13, 14, 5)),
        ("昨天 10:05", SH, datetime(2026, 11, 26, 2, 5)),
        ("昨天\xa010:05", SH, datetime(2026, 11, 26, 2, 5)),
        ("前天 23:30", SH, datetime(2026, 11, 25, 15, 30)),
        ("3 天前", SH, datetime(2026, 11, 24, 4, 0)),
        ("5 分钟前", SH, datetime(2026, 11, 27, 3, 55)),
        ("半小时前", SH, datetime(2026, 11, 27, 3, 30)),
        ("刚刚", SH, datetime(2026, 11, 27, 4, 0)),
        ("14:22", SH, datetime(2026, 11, 27, 6, 22)),  # Tieba: today
        ("00:10", SH, datetime(2026, 11, 26, 16, 10)),  # today in Beijing is yesterday in UTC
        ("3-5", SH, datetime(2026, 3, 4, 16, 0)),  # Tieba: this year
        ("12-30", SH, datetime(2025, 12, 29, 16, 0)),  # not yet this year: last year's
        ("Tue Mar 05, 2024 2:22 pm", "Europe/Berlin", datetime(2024, 3, 5, 13, 22)),
        ("27 Apr 2011 23:57", None, datetime(2011, 4, 27, 23, 57)),
        ("2026-11-24T14:22:00+01:00", SH, datetime(2026, 11, 24, 13, 22)),  # <time datetime>
    ],
)
def test_board_times_are_read_in_the_board_zone_against_the_clock(shown, zone, utc) -> None:
    got = parse_board_time(shown, zone, NOW)
    assert got == utc.replace(tzinfo=UTC) and got.tzinfo is UTC


def test_board_time_refuses_what_is_not_a_time_and_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="not a board time: '2楼'"):
        parse_board_time("2楼", SH, NOW)
    with pytest.raises(ValueError, match="board clock must be timezone-aware"):
        parse_board_time("刚刚", SH, datetime(2026, 11, 27, 12, 0))


def test_board_time_reads_weibos_api_form_and_refuses_impossible_dates_by_name() -> None:
    # Weibo's API (and Twitter's) form, with its own offset, whatever the zone given.
    for zone in (SH, None):
        got = parse_board_time("Sat Nov 28 12:00:00 +0800 2026", zone, NOW)
        assert got == datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
    # A date the calendar does not have is "not a board time", naming the text, as
    # any other unreadable value (it used to escape as datetime's own message).
    for bad, why in (("13-45", "month must be in 1..12"), ("昨天 25:99", "hour must be in 0..23")):
        with pytest.raises(ValueError, match=rf"not a board time: '{bad}' \({why}\)"):
            parse_board_time(bad, SH, NOW)
    with pytest.raises(ValueError, match="not a board time: None"):
        parse_board_time(None, SH, NOW)  # type: ignore[arg-type]


def test_local_to_utc_reads_a_naive_time_in_the_zone_and_keeps_an_offset() -> None:
    from brandpulse.timeutil import local_to_utc

    assert local_to_utc(datetime(2026, 7, 1, 12, 0), "Europe/Paris") == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    aware = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert local_to_utc(aware, "Europe/Paris") == datetime(2026, 7, 1, 17, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        local_to_utc(datetime(2026, 7, 1), "Mars/Base")


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
