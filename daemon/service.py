"""The BrandPulse daemon: APScheduler jobs around the pipeline.

Jobs:
- one crawl job per enabled source, on the source's own interval with jitter;
  `max_instances=1` so one source never runs twice at once, `coalesce=True` so
  runs missed while the daemon was busy or asleep collapse into one;
- the alert check on `alerts.check_every`;
- one cron job per scheduled report (`reports.schedules`, `daemon.reports`), in the
  schedule's own time zone;
- index retention once a day when `elasticsearch.retention` is set
  (`store.retention`: delete or close mention indices past the cutoff, delete the
  counts index's hours past it), the first
  run right after start;
- housekeeping every minute: replay the spool, score mentions left unscored,
  deliver alerts still waiting in the outbox, apply the health thresholds and
  deliver health notices.

Roles (`daemon.roles`): `all` runs every job above. A `crawler` runs no schedule of its
own (a `CrawlerWorker` calls `crawl_source`) and, of the rest, only housekeeping; with
`redis.scoring: scorer` it hands what it crawled to the score stream
(`daemon.coord.ScoreQueue`) instead of scoring it, and never loads the model. A
`scorer` crawls nothing (a `ScorerWorker` feeds it batches, `Pipeline.ingest`) and
its housekeeping scores what was left unscored. An
`alerter` crawls and scores nothing (it never loads the model): it runs the
deployment's one-at-a-time jobs -- the alert check, the outbox delivery, the
scheduled reports and retention -- each only while it holds the alerter lock
(`leadership`, a `daemon.coord.LeaderLock`), plus its own health notices.

Health notices (`health:`, `alerts.health.HealthTracker`): a source that keeps
failing and Elasticsearch staying down are told to Slack once, and once more when
they recover; the episode state and the notices waiting to go out are kept in a
file under `daemon.state_dir`, so a restart neither repeats nor loses one.

Crawls run in child processes (see `crawlers.runner`), so Scrapy's
one-reactor-per-process rule and a crashing spider cannot take the daemon down;
the failure is logged and counted and the next run happens on schedule.
SIGTERM/SIGINT stop it cleanly: no new jobs, running crawls are asked to stop
and what they collected is written or spooled, then the process exits within
`daemon.shutdown_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from brandpulse.config import Config
from brandpulse.secrets import redact, secret_values
from daemon.health import HealthServer
from daemon.logs import log_event
from daemon.metrics import Metrics
from daemon.pipeline import IngestReport, Pipeline
from store.client import make_client
from store.errors import ES_ERRORS, describe_es_error
from store.rollup import counts_rollup
from store.setup import setup_elasticsearch
from store.writer import BulkWriter, WriteReport

if TYPE_CHECKING:
    from alerts.engine import AlertEngine, Leadership
    from alerts.health import HealthNotice, HealthTracker
    from alerts.model import Alert
    from alerts.notifiers import Notifier
    from alerts.notifiers.slack_actions import SlackActionListener
    from brandpulse.mention import Mention
    from daemon.coord import ScoreQueue, SharedState
    from nlp.scorer import SentimentScorer

logger = logging.getLogger("brandpulse.daemon")

# Without `redis:` a crawl lease is an flock the kernel drops with its holder, so the
# TTL only paces the (trivial) renewal thread.
LOCAL_LEASE_TTL = timedelta(seconds=60)


@dataclass
class SourceStatus:
    last_started: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    runs: int = 0
    failures: int = 0
    last_mentions: int = 0


@dataclass
class DaemonState:
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    last_alert_check: datetime | None = None
    alerts_sent: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        scorer: SentimentScorer | None = None,
        engine: AlertEngine | None = None,
        metrics: Metrics | None = None,
        role: str = "all",
        leadership: Leadership | None = None,
    ) -> None:
        # "all": the whole daemon (the default). "crawler": no schedule of its own,
        # no alerts, no reports: a `daemon.roles.CrawlerWorker` feeds it crawl jobs
        # (`crawl_source`); housekeeping (spool, unscored, health) still runs.
        # "alerter": alerts, outbox, reports and retention, each only while
        # `leadership` is held (`daemon.roles.Alerter`); no crawls, no model.
        # "scorer": no schedule of its own: a `daemon.roles.ScorerWorker` feeds it
        # batches (`score_batch`); housekeeping (spool, unscored, health) still runs.
        self.role = role
        self.leadership = leadership
        self.handoff: ScoreQueue | None = None  # a crawler's hand-off to scorer workers
        if role == "crawler" and config.redis is not None and config.redis.scoring == "scorer":
            from daemon.coord import ScoreQueue, redis_client

            self.handoff = ScoreQueue(redis_client(config.redis), config.redis.key_prefix)
        self._write_lock = threading.Lock()  # writes without the pipeline (no model)
        self.config = config
        self.metrics = metrics or Metrics()
        self.state = DaemonState()
        self.client = make_client(config.elasticsearch)
        self.writer = BulkWriter(self.client, config.elasticsearch)
        self.rollup = counts_rollup(config, self.client, self.writer)
        self._scorer = scorer
        self._engine = engine
        self._pipeline: Pipeline | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._cancel = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=max(4, len(config.sources) + 2))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.scheduler.add_listener(
            self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.health_server: HealthServer | None = None
        self._es_hosts = [config.elasticsearch.cloud_id] if config.elasticsearch.cloud_id else list(config.elasticsearch.hosts)
        self._es_lock = threading.Lock()
        self._es_down_since: datetime | None = None
        self._setup_pending = False
        self._notices: HealthTracker | None = None
        if config.health.enabled:
            from alerts.health import HealthTracker

            self._notices = HealthTracker(
                config.health, config.daemon.state_dir, secrets=secret_values(config)
            )
        self._notice_notifier: Notifier | None = None
        self.slack_actions: SlackActionListener | None = None  # with slack.app_token
        self._shared: SharedState | None = None  # made on first use (shared_state)

    # ------------------------------------------------------------------ parts

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            if self._scorer is None:
                from nlp.scorer import SentimentScorer

                self._scorer = SentimentScorer.from_config(self.config.nlp)
            from nlp.enrich import brand_queries

            self._pipeline = Pipeline(self._scorer, self.writer, self.metrics,
                                      brand_queries(self.config.brands))
        return self._pipeline

    @property
    def engine(self) -> AlertEngine | None:
        if self._engine is None and self.config.alerts.enabled and self.runs_alerts:
            from alerts.engine import AlertEngine
            from alerts.notifiers import notifiers_from_config

            self._engine = AlertEngine(
                self.config,
                self.client,
                None,
                channels=notifiers_from_config(self.config),
                failing_sources=self._sources_down,
                leadership=self.leadership,
            )
        return self._engine

    @property
    def scores(self) -> bool:
        """Whether this process scores mentions (and so loads the model): not an
        alerter, nor a crawler that hands its mentions to scorer workers."""
        return self.role != "alerter" and self.handoff is None

    def _replay_spool(self) -> WriteReport:
        """Replay the spool, through the pipeline where there is one (it serialises
        writes with scoring), else straight through the writer."""
        if self.scores:
            return self.pipeline.replay_spool()
        with self._write_lock:
            return self.writer.replay()

    def _hand_off(self, source_name: str, mentions: list[Mention]) -> None:
        """Give a crawl's mentions to the scorer workers (`ScoreQueue.put`) before the
        cursor moves. Redis refusing: they are indexed unscored instead (or spooled),
        never dropped, and a scorer's housekeeping scores them (`_score_unscored`); a
        batch queued before Redis failed mid-way is scored by a scorer too, under the
        same ids (whichever write lands last, the mention ends up scored)."""
        from redis.exceptions import RedisError

        assert self.handoff is not None
        try:
            ids = self.handoff.put(source_name, mentions)
        except RedisError as exc:
            log_event(logger, "scoring.handoff_failed", logging.WARNING, source=source_name,
                      n=len(mentions), error=redact(str(exc)),
                      note="indexed unscored; a scorer scores them later")  # fmt: skip
            with self._write_lock:
                self._es_outcome(self.writer.write(mentions))
            return
        log_event(logger, "scoring.handed_off", source=source_name, n=len(mentions), batches=len(ids))

    def score_batch(self, source_name: str, mentions: list[Mention]) -> IngestReport:
        """A scorer's batch: scored and indexed (or spooled) through the pipeline; an
        Elasticsearch outage is recorded as for a crawl's own mentions."""
        report = self.pipeline.ingest(source_name, mentions)
        self._es_outcome(report.write)
        return report

    @property
    def runs_alerts(self) -> bool:
        """Whether this role runs the alert check, the outbox, reports and retention."""
        return self.role in ("all", "alerter")

    def leading(self) -> bool:
        """Whether the one-at-a-time jobs (`runs_alerts`) may run now: always without a
        `leadership` (a whole daemon), else while it is held."""
        return self.leadership is None or self.leadership.fence is not None

    def _sources_down(self) -> set[str]:
        """Sources the health notices report as failing (the flatline rule skips them)."""
        return self._notices.sources_down() if self._notices is not None else set()

    @property
    def notices(self) -> HealthTracker | None:
        """The health tracker (None with `health.enabled: false`)."""
        return self._notices

    def _notifier_for_notices(self) -> Notifier:
        if self._notice_notifier is None:
            engine = self.engine
            if engine is not None and engine.notifier is not None:
                self._notice_notifier = engine.notifier
            else:
                from alerts.notifiers import notifier_from_config

                self._notice_notifier = notifier_from_config(self.config)
        return self._notice_notifier

    # ------------------------------------------------------------------- jobs

    @property
    def shared_state(self) -> SharedState:
        """Cursors, duplicate state and crawl leases (`daemon.coord`): in Redis with
        `redis:` configured (`RedisState`), else the files under `daemon.state_dir`
        (`LocalState`: the same files the daemon always kept, plus one `<source>.lease`
        lock file per source). Both go through the one crawl path of `crawl_job`."""
        if self._shared is None:
            from daemon.coord import LocalState, RedisState

            if self.config.redis is not None:
                self._shared = RedisState.from_config(self.config.redis)
            else:
                self._shared = LocalState(self.config.daemon.state_dir)
        return self._shared

    def crawl_job(self, source_name: str) -> int:
        """Crawl one source and push what it found through the pipeline.

        The crawl gets a `CrawlJob` built from the configuration this daemon holds
        in memory: an edited or deleted config file does not change a running
        daemon's crawls (a restart does).

        The crawl first takes the source's lease (`shared_state`), so two daemons (or
        crawler workers) never crawl one source at once: the one without it skips
        this run with an INFO line. With `redis:` it works on the cursor and
        duplicate state kept in Redis; the cursor moves there only after the
        mentions are indexed or spooled, and only while the lease is still this
        daemon's; sources crawled with the same API credential take its lease too
        (`daemon.coord.credential_lease`), so one credential serves one crawl at a
        time. Redis unreachable: the run is skipped with a WARNING (crawling
        without the lease could crawl twice; the next run tries again). Without
        `redis:` the lease is an `flock` and the crawl works on the files under
        `daemon.state_dir` in place, as it always did.
        """
        return self.crawl_source(source_name) or 0

    def crawl_source(self, source_name: str) -> int | None:
        """`crawl_job`, telling a skipped run (None: the lease is held elsewhere or the
        shared state is unreachable) from a crawl that ran (the mentions it found)."""
        from crawlers import settings as crawl_settings
        from daemon.coord import credential_lease, leased, staged_crawl

        shared = self.shared_state
        source = next(s for s in self.config.sources if s.name == source_name)
        # With shared state, one crawl per API credential too (its rate limit is per
        # credential); one daemon alone keeps crawling such sources side by side.
        credential = credential_lease(source) if self.config.redis is not None else None
        if self.config.redis is not None:
            from redis.exceptions import RedisError

            unavailable: tuple[type[Exception], ...] = (RedisError,)
        else:
            unavailable = ()
        ttl = self.config.redis.lease_ttl if self.config.redis is not None else LOCAL_LEASE_TTL
        try:
            with contextlib.ExitStack() as held:
                # the credential first, then the source: nothing is held for nothing
                if not held.enter_context(leased(shared, credential, ttl.total_seconds())):
                    log_event(logger, "crawl.skipped", source=source_name,
                              reason="another crawl uses the source's API credential",
                              holder=shared.holder(credential or ""))  # fmt: skip
                    return None
                staged = held.enter_context(staged_crawl(
                    shared, source_name,
                    ttl_seconds=ttl.total_seconds(),
                    work_dir=self.config.daemon.state_dir / "staged",
                    max_age=crawl_settings.BRANDPULSE_RECENT_HASH_DAYS * 86400.0,
                    keep=crawl_settings.BRANDPULSE_RECENT_HASHES,
                ))  # fmt: skip
                if staged is None:
                    log_event(logger, "crawl.skipped", source=source_name,
                              reason="another daemon holds the source's lease",
                              holder=shared.holder(source_name))  # fmt: skip
                    return None

                def publish() -> None:
                    try:
                        shared_ok = staged.publish_cursor()
                    except unavailable as exc:
                        shared_ok = False
                        log_event(logger, "crawl.cursor_not_shared", logging.WARNING,
                                  source=source_name, error=redact(str(exc)))  # fmt: skip
                    if not shared_ok:
                        log_event(logger, "crawl.cursor_not_advanced", logging.WARNING,
                                  source=source_name,
                                  note="the next crawl fetches the same posts again")  # fmt: skip

                return self._crawl(source_name, staged.state_dir, publish)
        except unavailable as exc:
            log_event(logger, "crawl.skipped", logging.WARNING, source=source_name,
                      reason="shared state (Redis) unavailable", error=redact(str(exc)))  # fmt: skip
            return None

    def _crawl(
        self, source_name: str, state_dir: Path, on_commit: Callable[[], None] | None = None
    ) -> int:
        """One crawl on the cursor and duplicate files of `state_dir`; `on_commit` runs
        after the cursor was committed there (the mentions are indexed or spooled)."""
        from crawlers.job import CrawlJob
        from crawlers.runner import run_crawl

        status = self.state.sources.setdefault(source_name, SourceStatus())
        status.last_started = datetime.now(UTC)
        status.runs += 1
        started = time.perf_counter()
        job = CrawlJob.from_config(self.config, source_name, state_dir=state_dir)
        result = run_crawl(
            job,
            timeout=max(30.0, job.source.timeout.total_seconds() * 4),
            cancel=self._cancel,
        )
        self.metrics.crawl_seconds.labels(source_name).observe(time.perf_counter() - started)
        errors = int(result.stats.get("errors", 0) or 0) if isinstance(result.stats, dict) else 0
        if errors:
            self.metrics.crawl_errors.labels(source_name).inc(errors)
        # Whatever came back is written (or spooled) first; only then may the cursor move.
        if result.mentions and self.handoff is not None:
            self._hand_off(source_name, result.mentions)
        elif result.mentions:
            ingest = self.pipeline.ingest(source_name, result.mentions)
            self._es_outcome(ingest.write)
        status.last_mentions = len(result.mentions)
        if result.error is None and errors and not result.stats.get("pages"):
            # Every request failed (host down, all 5xx, HTML instead of JSON): the
            # crawl ended normally but collected nothing, which is not a success.
            result.error = f"no page could be read ({errors} fault(s): {result.stats.get('failed')})"
        if result.error:
            status.failures += 1
            status.last_error = result.error
            self.metrics.crawl_runs.labels(source_name, "failed").inc()
            result.discard_cursor()
            # A crawl cut short by our own shutdown is expected, not a warning.
            level = logging.INFO if self._cancel.is_set() else logging.WARNING
            log_event(
                logger, "crawl.failed", level, source=source_name,
                mentions=len(result.mentions), error=result.error,
            )  # fmt: skip
            if not self._cancel.is_set():
                self._health_event(lambda t: t.crawl_failed(source_name, result.error))
            return len(result.mentions)
        if result.commit_cursor() and on_commit is not None:
            on_commit()
        status.last_success = datetime.now(UTC)
        status.last_error = None
        self._health_event(lambda t: t.crawl_succeeded(source_name))
        self.metrics.crawl_runs.labels(source_name, "ok").inc()
        # Some requests failed although pages were read: a person should hear of it
        # (the summary is the crawl child's, by kind of fault).
        faults = {"faults": result.stats.get("failed") or errors} if errors else {}
        log_event(
            logger, "crawl.finished", logging.WARNING if errors else logging.INFO,
            source=source_name, mentions=len(result.mentions),
            seconds=round(time.perf_counter() - started, 2),
            stats=_short_stats(result.stats), **faults,
        )  # fmt: skip
        return len(result.mentions)

    def alert_job(self) -> int:
        from alerts.engine import CheckStopped

        engine = self.engine
        if engine is None or self._setup_pending or not self.leading():
            return 0
        now = datetime.now(UTC)
        try:
            sent = engine.check(now)
        except ES_ERRORS as exc:  # one line per outage, not a traceback per check
            self._es_failed(describe_es_error(exc, self._es_hosts))
            return 0
        except CheckStopped as exc:
            # Elasticsearch stopped answering mid-pass (down, or hung: every brand would
            # have waited out request_timeout): one line for this check, and the
            # outage recorded without saying it again; the next check runs every brand.
            log_event(logger, "alerts.check_stopped", logging.WARNING, not_checked=exc.not_checked,
                      checked=exc.checked, reason=exc.reason)  # fmt: skip
            self._es_failed(exc.reason, said=True)
            self._count_sent(exc.sent)
            return len(exc.sent)
        self._es_ok()
        self.metrics.alert_checks.inc()
        self.state.last_alert_check = now
        self._count_sent(sent)
        return len(sent)

    def _count_sent(self, sent: list[Alert]) -> None:
        for alert in sent:
            self.metrics.alerts_sent.labels(alert.brand, str(alert.kind)).inc()
        self.state.alerts_sent += len(sent)
        if sent:
            log_event(logger, "alerts.sent", n=len(sent), brands=sorted({a.brand for a in sent}))

    def lead_now(self) -> None:
        """A new alerter leader: run the alert check and retention as soon as a worker
        thread is free, rather than after `alerts.check_every` and a day (both are
        idempotent, so running them early costs nothing)."""
        if not self.scheduler.running:
            return
        for job_id in ("alerts:check", "retention"):
            if self.scheduler.get_job(job_id) is not None:
                self.scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))

    def report_job(self, n: int) -> None:
        """The `n`th scheduled report (`reports.schedules`): files, and Slack if asked."""
        from daemon.reports import run_scheduled_report

        schedule = self.config.reports.schedules[n]
        if not self.leading():  # a standby alerter: the leading one writes it
            return
        run = run_scheduled_report(self.config, self.client, schedule, datetime.now(UTC))
        log_event(logger, "report.done", schedule=schedule.describe(), files=len(run.files),
                  posted=run.posted, failed=run.failed)

    def housekeeping_job(self) -> None:
        if self._setup_pending and not self._try_setup():
            return
        self._es_outcome(self._replay_spool())
        if self.scores and self.writer.pending() == 0:
            self._score_unscored()
        engine = self.engine
        if engine is not None and self.leading():
            try:
                delivered = engine.retry_outbox()
            except ES_ERRORS as exc:
                self._es_failed(describe_es_error(exc, self._es_hosts))
                return
            if delivered:
                log_event(logger, "alerts.outbox_delivered", n=len(delivered))
        self._probe_es()
        self._health_event(lambda t: t.tick(self.writer.pending), deliver=True)

    def retention_job(self) -> None:
        """Apply `elasticsearch.retention` (`store.retention.apply_retention`) now.
        Elasticsearch being down is an outage like any other (said once); the next
        daily run tries again."""
        from store.retention import apply_retention

        if not self.leading():
            return
        try:
            result = apply_retention(self.client, self.config.elasticsearch, datetime.now(UTC))
        except ES_ERRORS as exc:
            self._es_failed(describe_es_error(exc, self._es_hosts))
            return
        log_event(logger, "retention.done", action=result.action, cutoff=result.cutoff.isoformat(),
                  indices=result.acted, kept=len(result.kept), ignored=result.ignored,
                  rollup_hours_deleted=result.rollup_hours)  # fmt: skip

    def _score_unscored(self) -> None:
        from daemon.rescore import rescore

        try:
            n = rescore(
                self.client, self.config.elasticsearch.index_prefix, self.pipeline.scorer,
                self.writer, only_unscored=True, progress=None, brands=self.pipeline.brands,
            )  # fmt: skip
        except ES_ERRORS as exc:  # an outage: said once, by _es_failed
            self._es_failed(describe_es_error(exc, self._es_hosts))
            return
        except Exception as exc:  # the next housekeeping run tries again
            log_event(logger, "rescore.failed", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            return
        if n:
            log_event(logger, "rescore.unscored", n=n)

    # ------------------------------------------------------------ lifecycle

    def setup(self) -> None:
        """Idempotent start-up work: templates, alert state index, spool replay."""
        result = setup_elasticsearch(self.client, self.config.elasticsearch)
        log_event(logger, "elasticsearch.ready", alias=result.alias, zh_analyzer=result.zh_analyzer)
        if self.rollup is not None and not self.client.indices.exists(index=self.rollup.index):
            # First start with the rollup on: its hours are built from what is indexed
            # before anything new is written (later writes keep them current).
            n = self.rollup.rebuild()
            log_event(logger, "counts_rollup.built", index=self.rollup.index, documents=n)
        engine = self.engine
        if engine is not None:
            engine.install()
        self.writer.hold = None  # the templates exist: what waited may go now
        self._replay_spool()

    def _try_setup(self) -> bool:
        """`setup`, or (Elasticsearch unreachable or refusing) hold the writer so
        mentions spool until the templates exist; housekeeping tries again."""
        try:
            self.setup()
        except ES_ERRORS as exc:
            reason = describe_es_error(exc, self._es_hosts)
            self._setup_pending = True
            self.writer.hold = f"waiting for Elasticsearch set-up ({reason})"
            self._es_failed(reason)
            return False
        self._setup_pending = False
        self._es_ok()
        return True

    # ------------------------------------------------- Elasticsearch outages

    def _probe_es(self) -> None:
        """While an outage is open and nothing else would touch Elasticsearch (no spool
        to replay, alerts off), ask it directly, so its recovery is noticed."""
        if self._es_down_since is None or self._setup_pending:
            return
        try:
            self.client.cluster.health(timeout="5s")
        except ES_ERRORS as exc:
            self._es_failed(describe_es_error(exc, self._es_hosts))
            return
        self._es_ok()

    def _es_failed(self, reason: str, spooled: int | None = None, *, said: bool = False) -> None:
        """Record a failed Elasticsearch call: one WARNING when an outage begins.
        `spooled`: the spool's size when the caller knows it (a write report). `said`:
        the caller logged its own WARNING about it (`alerts.check_stopped`), so the
        outage's beginning is not said twice (its end still is)."""
        with self._es_lock:
            first = self._es_down_since is None
            if first:
                self._es_down_since = datetime.now(UTC)
        if first and not said:
            log_event(logger, "elasticsearch.unavailable", logging.WARNING, reason=reason,
                      note="mentions wait in the spool; retrying every minute")  # fmt: skip
        else:
            log_event(logger, "elasticsearch.still_unavailable", logging.DEBUG, reason=reason)
        count = self.writer.pending if spooled is None else spooled
        self._health_event(lambda t: t.es_failed(reason, count))

    def _es_ok(self) -> None:
        """Record a successful Elasticsearch call: one line when an outage ends."""
        with self._es_lock:
            since, self._es_down_since = self._es_down_since, None
        if since is not None:
            seconds = round((datetime.now(UTC) - since).total_seconds())
            log_event(logger, "elasticsearch.recovered", down_seconds=seconds,
                      spool_pending=self.writer.pending())  # fmt: skip
        # The tracker's episode may be older than this process (a restart mid-outage).
        if since is not None or (self._notices is not None and self._notices.elasticsearch_down):
            self._health_event(lambda t: t.es_ok(self.writer.pending()))

    # --------------------------------------------------------- health notices

    def _health_event(
        self, event: Callable[[HealthTracker], list[HealthNotice]], *, deliver: bool = False
    ) -> None:
        """Tell the tracker what happened; deliver at once what that produced (and, with
        `deliver`, whatever still waits). Never raises: a notice problem must not stop
        a crawl or the housekeeping."""
        tracker = self._notices
        if tracker is None:
            return
        try:
            produced = event(tracker)
            for notice in produced:
                log_event(logger, "health.notice", kind=notice.kind, subject=notice.subject,
                          notice_id=notice.notice_id)  # fmt: skip
            if not (produced or deliver) or not tracker.pending():
                return
            result = tracker.deliver(self._notifier_for_notices())
        except Exception as exc:  # a full disk, a bug: logged, tried again next minute
            log_event(logger, "health.failed", logging.WARNING, error=redact(f"{type(exc).__name__}: {exc}"))
            return
        if result.delivered:
            log_event(logger, "health.notices_delivered", n=len(result.delivered))
        if result.error:
            log_event(logger, "health.notice_not_delivered", logging.WARNING, error=result.error,
                      waiting=len(tracker.pending()))  # fmt: skip

    def _es_outcome(self, report: WriteReport) -> None:
        if report.unavailable and report.spooled and self.writer.hold is None:
            self._es_failed(report.unavailable, report.spooled)
        elif report.indexed:
            self._es_ok()

    def start(self) -> None:
        """Start the schedule. Elasticsearch being down is not a reason to refuse:
        crawls run and spool, and housekeeping finishes the set-up when it is back."""
        if self._notices is not None:
            self._notices.forget_sources({s.name for s in self.config.sources if s.enabled})
        self._try_setup()
        for source in self.config.sources if self.role == "all" else []:
            if not source.enabled:
                log_event(logger, "source.disabled", source=source.name)
                continue
            self.state.sources[source.name] = SourceStatus()
            self.scheduler.add_job(
                self.crawl_job,
                IntervalTrigger(
                    seconds=source.schedule.every.total_seconds(),
                    jitter=int(source.schedule.jitter.total_seconds()) or None,
                    timezone=UTC,
                ),
                args=[source.name],
                id=f"crawl:{source.name}",
                name=f"crawl {source.name}",
                next_run_time=datetime.now(UTC),  # first crawl right away, not after one interval
            )
        if self.config.alerts.enabled and self.runs_alerts:
            self.scheduler.add_job(
                self.alert_job,
                IntervalTrigger(seconds=self.config.alerts.check_every.total_seconds(), timezone=UTC),
                id="alerts:check",
                name="alert check",
            )
        self.scheduler.add_job(
            self.housekeeping_job, IntervalTrigger(seconds=60, timezone=UTC), id="housekeeping"
        )
        if self.config.elasticsearch.retention is not None and self.runs_alerts:
            # One cluster-wide job: crawler/coordinator roles leave it to the `all` daemon
            # or the leading alerter.
            self.scheduler.add_job(
                self.retention_job, IntervalTrigger(days=1, timezone=UTC), id="retention",
                name="index retention", next_run_time=datetime.now(UTC),
            )  # fmt: skip
        if self.config.reports.schedules and self.runs_alerts:
            from daemon.reports import report_trigger
            from reports.publish import ReportOutputError, output_dir

            try:
                output_dir(self.config.reports.output_dir)
            except ReportOutputError as exc:
                # said at start, not first at Monday 09:00; the jobs are kept, so fixing
                # the directory's permissions is enough, without a restart
                log_event(logger, "report.output_unwritable", logging.ERROR, error=str(exc))

            for n, schedule in enumerate(self.config.reports.schedules):
                self.scheduler.add_job(
                    self.report_job, report_trigger(schedule), args=[n],
                    id=f"report:{n}", name=schedule.describe(),
                )
        if self.config.daemon.http_port:  # 0: off; "auto": the system picks (logged)
            port = self.config.daemon.http_port
            self.health_server = HealthServer(
                self.config.daemon.http_host, 0 if port == "auto" else port, self.health,
                self.metrics.registry,
            ).start()  # fmt: skip
            log_event(logger, "http.listening", url=self.health_server.url,
                      port=self.health_server.port)
        if self.runs_alerts:
            self._start_slack_actions()
        self.scheduler.start()
        log_event(
            logger, "daemon.started", role=self.role,
            sources=[s for s in self.state.sources],
            alerts=self.config.alerts.enabled and self.runs_alerts,
        )  # fmt: skip

    def _start_slack_actions(self) -> None:
        """With `slack.app_token`: listen for the alert buttons over Socket Mode
        (`alerts.notifiers.slack_actions`). A failure to connect is logged, not fatal:
        alerts still go out, and `alerts ack` / `alerts snooze` still work."""
        from alerts.notifiers.slack import secret

        if not (secret(self.config.slack.app_token) and secret(self.config.slack.token)):
            return
        from alerts.notifiers.slack_actions import SlackActionListener
        from alerts.state import AlertStateStore

        try:
            state = AlertStateStore(self.client, self.config.elasticsearch.index_prefix)
            self.slack_actions = SlackActionListener.from_config(self.config, state)
            self.slack_actions.start()
            log_event(logger, "slack.buttons_listening")
        except Exception as exc:
            self.slack_actions = None
            log_event(logger, "slack.buttons_unavailable", logging.WARNING,
                      error=redact(f"{type(exc).__name__}: {exc}", secret_values(self.config)))  # fmt: skip

    def cancel_crawls(self) -> None:
        """Ask running crawls to stop now; what they collected is still written or spooled."""
        self._cancel.set()

    def stop(self) -> None:
        """Stop within `daemon.shutdown_timeout`; in-flight mentions are written or spooled."""
        if self._stopping.is_set():
            self._stopped.wait()
            return
        self._stopping.set()
        deadline = time.monotonic() + self.config.daemon.shutdown_timeout.total_seconds()
        log_event(logger, "daemon.stopping")
        self._cancel.set()  # running crawls stop their child and return what they have
        if self.scheduler.running:
            self.scheduler.pause()
            waiter = threading.Thread(
                target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True
            )
            waiter.start()
            waiter.join(max(0.0, deadline - time.monotonic()))
            if waiter.is_alive():
                log_event(logger, "daemon.stop_timeout", logging.WARNING, note="jobs still running")
        if self.health_server is not None:
            self.health_server.stop()
        if self.slack_actions is not None:
            self.slack_actions.close()
        self.writer.close()
        if self._shared is not None:
            self._shared.close()
        if self.handoff is not None:
            self.handoff.client.close()
        self._stopped.set()
        log_event(logger, "daemon.stopped", spool_pending=self.writer.spool.pending_count())

    def run_forever(self) -> None:
        """Start, then block until SIGTERM/SIGINT, then stop cleanly."""
        stop = threading.Event()

        def handle(signum: int, _frame: Any) -> None:
            log_event(logger, "daemon.signal", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()

    # --------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        try:
            es = self.client.cluster.health(timeout="2s")
            es_status = {"reachable": True, "status": es["status"]}
        except ES_ERRORS as exc:
            es_status = {"reachable": False, "error": describe_es_error(exc, self._es_hosts)}
        except Exception as exc:
            es_status = {"reachable": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        sources = {
            name: {
                "last_success": s.last_success,
                "last_started": s.last_started,
                "last_error": redact(s.last_error) if s.last_error else None,
                "runs": s.runs,
                "failures": s.failures,
                "last_mentions": s.last_mentions,
            }
            for name, s in self.state.sources.items()
        }
        spool = self.writer.spool.pending_count()
        ok = es_status["reachable"] and not self._stopping.is_set()
        return {
            "status": "ok" if ok else "degraded",
            "elasticsearch": es_status,
            "spool_pending": spool,
            "sources": sources,
            "last_alert_check": self.state.last_alert_check,
            "alerts_sent": self.state.alerts_sent,
            "health_notices_waiting": len(self._notices.pending()) if self._notices else 0,
            "started_at": self.state.started_at,
        }

    def _on_job_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            # The previous run of this job is still going: by design it is not started
            # twice, and the run is simply skipped.
            log_event(logger, "job.still_running", logging.DEBUG, job=event.job_id)
            return
        if event.code == EVENT_JOB_MISSED:
            log_event(logger, "job.missed", logging.WARNING, job=event.job_id)
            return
        # A job that raised: log it; the schedule carries on.
        assert isinstance(event, JobExecutionEvent)
        if event.job_id.startswith("crawl:"):
            name = event.job_id.split(":", 1)[1]
            status = self.state.sources.setdefault(name, SourceStatus())
            status.failures += 1
            status.last_error = f"{type(event.exception).__name__}: {event.exception}"
            self.metrics.crawl_runs.labels(name, "crashed").inc()
            error = status.last_error
            self._health_event(lambda t: t.crawl_failed(name, error))
        log_event(
            logger, "job.crashed", logging.ERROR, job=event.job_id,
            error=f"{type(event.exception).__name__}: {event.exception}",
        )  # fmt: skip


def _short_stats(stats: dict[str, Any]) -> dict[str, Any]:
    keep = ("requests", "responses", "yielded", "dropped", "errors", "pages")
    return {k: v for k, v in stats.items() if k in keep}
