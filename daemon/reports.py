"""Scheduled reports in the daemon: one APScheduler cron job per `reports.schedules` entry.

`report_trigger` is the job's trigger: a `CronTrigger` on the schedule's day-of-week and
wall-clock time **in its own time zone** (a `ZoneInfo` from `brandpulse.timeutil.zone`),
so 09:00 Europe/London fires at 09:00 London time in winter (09:00 UTC) and in summer
(08:00 UTC); APScheduler does the DST arithmetic. A run delayed while the daemon is
busy runs late, once (`coalesce`, no misfire grace limit); a run missed while the daemon
was not running is not made up (jobs are in memory and scheduled from the start time):
`scheduler.py report --to <day> --out DIR` makes that report by hand.

`run_scheduled_report` is what the job does: the period is the last full local day or
week before the local midnight of the run (`Period.last_complete_local`), the trend's
days are local days, and each brand's HTML and PDF are written to `reports.output_dir`;
with `reports.slack` a summary and the charts go to `slack.channel`. A Slack failure is
logged and leaves the files in place; a report that cannot be built is logged and the
next brand still gets its report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from elasticsearch import Elasticsearch

from brandpulse.config import Config, ReportSchedule
from brandpulse.timeutil import require_utc, zone
from daemon.logs import log_event

logger = logging.getLogger("brandpulse.daemon.reports")


def report_trigger(schedule: ReportSchedule) -> CronTrigger:
    """The schedule's cron trigger, in the schedule's time zone."""
    hour, minute = schedule.hour_minute
    return CronTrigger(day_of_week=schedule.days, hour=hour, minute=minute,
                       timezone=zone(schedule.time_zone))


@dataclass
class ReportRun:
    """What one scheduled run produced (for logs and tests)."""

    files: list[Path] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)  # brands whose summary reached Slack
    failed: list[str] = field(default_factory=list)  # "brand: reason"


def run_scheduled_report(
    config: Config, client: Elasticsearch, schedule: ReportSchedule, now: datetime,
) -> ReportRun:
    """Build, write (and post) the reports of `schedule` for the run at `now`."""
    from reports.period import Period
    from reports.publish import output_dir, publish_report
    from store.setup import alias_name

    now = require_utc(now, "now")
    period = Period.last_complete_local(schedule.period, now, schedule.time_zone)
    brands = config.reports.brands or [b.name for b in config.brands if b.own]
    out = output_dir(config.reports.output_dir)
    index = alias_name(config.elasticsearch.index_prefix)
    run = ReportRun()
    for brand in brands:
        try:
            done = publish_report(client, config, index, brand, period, out,
                                  post=_poster(config, brand, run),
                                  time_zone=schedule.time_zone, themes=config.reports.themes,
                                  now=now)
        except Exception as exc:  # one brand's failure must not cost the others theirs
            logger.exception("report of %s failed", brand)
            run.failed.append(f"{brand}: {exc}")
            continue
        run.files += done.files
        log_event(logger, "report.written", brand=brand, period_start=period.start.isoformat(),
                  period_end=period.end.isoformat(), html=str(done.written.html))
        if done.posted:
            run.posted.append(brand)
    return run


def _poster(config: Config, brand: str, run: ReportRun) -> Callable[..., bool] | None:
    """With `reports.slack`, the Slack poster; a refusal is logged and noted in `run`, the
    files stay (the poster returns False instead of raising)."""
    if not config.reports.slack:
        return None
    from reports.slack_message import ReportSlackError, slack_poster

    post = slack_poster(config.slack)

    def post_or_note(report: Any, charts: dict[str, bytes], files: list[str]) -> bool:
        try:
            post(report, charts, files)
        except ReportSlackError as exc:
            log_event(logger, "report.slack_failed", logging.WARNING, brand=brand,
                      error=str(exc))
            run.failed.append(f"{brand}: {exc}")
            return False
        return True

    return post_or_note
