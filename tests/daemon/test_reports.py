"""Scheduled reports: the cron trigger keeps local time across DST, and a scheduled run
writes the files and posts to Slack (real Elasticsearch node, the local Slack sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig, ReportSchedule, parse_config
from brandpulse.mention import BrandSentiment, Mention, Sentiment
from daemon.reports import report_trigger, run_scheduled_report
from sandbox.slack import SlackSandbox
from store.setup import install_templates
from store.writer import BulkWriter
from tests.store.conftest import _isolated

LONDON = ZoneInfo("Europe/London")


def _fires(schedule: ReportSchedule, now: datetime, n: int) -> list[datetime]:
    """The next `n` fire times after `now`, by the trigger's own computation."""
    trigger = report_trigger(schedule)
    out: list[datetime] = []
    previous = None
    for _ in range(n):
        fire = trigger.get_next_fire_time(previous, now)
        out.append(fire)
        previous, now = fire, fire + timedelta(microseconds=1)
    return out


@pytest.mark.parametrize("now, utc_hours", [
    # autumn: BST (UTC+1) until Sunday 25 October 2026, GMT after
    (datetime(2026, 10, 13, 12, 0, tzinfo=UTC), [8, 9, 9]),
    # spring: GMT until Sunday 29 March 2026, BST after
    (datetime(2026, 3, 17, 12, 0, tzinfo=UTC), [9, 8, 8]),
])
def test_weekly_london_report_fires_at_nine_local_across_dst(
    now: datetime, utc_hours: list[int]
) -> None:
    schedule = ReportSchedule(period="week", time="09:00", time_zone="Europe/London")
    fires = _fires(schedule, now, 3)
    assert [f.astimezone(LONDON).strftime("%a %H:%M") for f in fires] == ["Mon 09:00"] * 3
    assert [f.astimezone(UTC).hour for f in fires] == utc_hours
    # the week that holds the change is an hour longer or shorter, not 09:00 UTC twice
    # (in UTC: Python subtracts two times of one ZoneInfo by their wall clocks)
    utc = [f.astimezone(UTC) for f in fires]
    gaps = {utc[1] - utc[0], utc[2] - utc[1]}
    assert timedelta(days=7) in gaps and len(gaps) == 2


def test_daily_shanghai_and_weekday_lists() -> None:
    daily = ReportSchedule(period="day", time="07:30", time_zone="Asia/Shanghai")
    fires = _fires(daily, datetime(2026, 11, 30, 0, 0, tzinfo=UTC), 2)
    assert [f.astimezone(UTC) for f in fires] == [datetime(2026, 11, 30, 23, 30, tzinfo=UTC),
                                                 datetime(2026, 12, 1, 23, 30, tzinfo=UTC)]
    mon_thu = ReportSchedule(period="week", day_of_week="mon,thu", time="18:00")
    fires = _fires(mon_thu, datetime(2026, 11, 30, 0, 0, tzinfo=UTC), 3)
    assert [f.strftime("%a %d") for f in fires] == ["Mon 30", "Thu 03", "Mon 07"]


def _mention(sid: str, when: datetime, label: str, text: str) -> Mention:
    probs = {"negative": 0.05, "neutral": 0.05, "positive": 0.05}
    probs[label] = 0.9
    verdict = {"label": label, "confidence": 0.9, **probs}
    return Mention(source="reddit", source_id=sid, source_name="reddit", text=text,
                   language="en", created_at=when, collected_at=when, brands=["Acme"],
                   author=f"u{sid}", author_reach=100, sentiment=Sentiment(model="m", **verdict),
                   brand_sentiments=[BrandSentiment(brand="Acme", source="post", **verdict)])


@pytest.fixture
def es_cfg(es_client: Elasticsearch, tmp_path) -> Iterator[ElasticsearchConfig]:
    with _isolated(es_client, tmp_path / "spool") as cfg:
        yield cfg


def test_scheduled_run_writes_local_week_and_posts(
    es_node, es_client: Elasticsearch, es_cfg: ElasticsearchConfig, tmp_path
) -> None:
    install_templates(es_client, es_cfg)
    # Monday 19 October 00:00 BST is Sunday 18 October 23:00 UTC: a mention at 23:30 UTC
    # on Sunday is in the London week that starts then, not in the UTC week
    mentions = [
        _mention("in-first-hour", datetime(2026, 10, 18, 23, 30, tzinfo=UTC), "negative",
                 "Acme battery died"),
        _mention("in-last-hour", datetime(2026, 10, 25, 23, 30, tzinfo=UTC), "positive",
                 "Acme fixed it"),
        _mention("before", datetime(2026, 10, 18, 22, 30, tzinfo=UTC), "positive", "Acme ok"),
    ]
    with BulkWriter(es_client, es_cfg, refresh=True) as writer:
        assert writer.write(mentions).ok
    with SlackSandbox() as slack:
        config = parse_config({
            "brands": [{"name": "Acme"}],
            "elasticsearch": {"hosts": [es_node.url], "index_prefix": es_cfg.index_prefix,
                              "spool_dir": str(tmp_path / "spool")},
            "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
            "reports": {"schedules": [{"time": "09:00", "time_zone": "Europe/London"}],
                        "output_dir": str(tmp_path / "reports"), "slack": True,
                        "themes": False},
        }, env={})
        (schedule,) = config.reports.schedules
        # the run on Monday 26 October 09:00 GMT, the day after the change
        run = run_scheduled_report(config, es_client, schedule,
                                   datetime(2026, 10, 26, 9, 0, tzinfo=UTC))
        assert run.failed == [] and run.posted == ["Acme"]
        assert len(slack.files) == 2 and len(slack.messages) == 2
    names = sorted(p.name for p in run.files)
    assert names == ["brandpulse-acme-2026-10-19-7d.html", "brandpulse-acme-2026-10-19-7d.pdf"]
    page = (tmp_path / "reports" / names[0]).read_text(encoding="utf-8")
    assert "2026-10-19 00:00 → 2026-10-26 00:00 (Europe/London)" in page
    # both in-period mentions count, the one before the local Monday does not
    assert "data-figure=\"mentions\"><div>Mentions</div><div class=v>2<" in page


def test_daemon_schedules_each_report(es_node, tmp_path, caplog) -> None:
    from daemon.service import Daemon

    (tmp_path / "a-file").write_text("x")

    config = parse_config({
        "brands": [{"name": "Acme"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"rep{id(tmp_path) % 10**6}",
                          "spool_dir": str(tmp_path / "spool")},
        "alerts": {"enabled": False}, "health": {"enabled": False},
        "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
        "reports": {"schedules": [{"time": "09:00", "time_zone": "Europe/London"},
                                  {"period": "day", "time": "07:30", "time_zone": "Asia/Shanghai"}],
                    "output_dir": str(tmp_path / "a-file" / "reports")},
    }, env={})
    daemon = Daemon(config)
    daemon.start()
    try:
        # an unwritable output directory is told at start, and the jobs are still there
        assert any(r.getMessage() == "report.output_unwritable" for r in caplog.records)
        weekly, daily = daemon.scheduler.get_job("report:0"), daemon.scheduler.get_job("report:1")
        assert weekly.name == "week report, mon at 09:00 Europe/London"
        assert str(weekly.trigger.timezone) == "Europe/London"
        assert weekly.next_run_time.astimezone(LONDON).strftime("%a %H:%M") == "Mon 09:00"
        assert daily.next_run_time.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M") == "07:30"
    finally:
        daemon.stop()
