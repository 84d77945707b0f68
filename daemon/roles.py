"""`scheduler.py run --role`: the daemon's work split over processes sharing one Redis.

- `all` (the default): the whole daemon in one process (`daemon.service.Daemon`),
  exactly as without roles; Redis is optional.
- `coordinator`: one of them is the leader (`daemon.coord.LeaderLock`, with a fencing
  token); only the leader puts due crawl jobs on the job stream (`CrawlQueue`), each
  source on its own `schedule.every` (+ jitter), one job per source in flight. The
  schedule lives in Redis, so a successor carries on where a dead leader stopped
  (it takes over within `redis.leader_ttl`).
- `crawler`: takes jobs from the stream (XREADGROUP in the group `crawlers`), crawls
  under the source's lease (so two workers never crawl one source at once) exactly as
  the daemon crawls (`Daemon.crawl_source`: crawl child, scoring, indexing, cursor
  commit), and acknowledges the job only after that. A worker killed mid-job stops
  touching its job; after `redis.claim_idle` another worker reclaims it (XAUTOCLAIM)
  and crawls the source again from the cursor the dead one never committed: its
  mentions are fetched again and written under the same deterministic ids (once in
  Elasticsearch).
- `alerter`: the deployment's one-at-a-time jobs -- the alert check, the outbox
  delivery, the scheduled reports, index retention -- run by whichever alerter holds
  the alerter lock (`<prefix>alerter`, a `LeaderLock` with its own fencing tokens and
  `redis.leader_ttl`); the others wait as standbys and one takes over within
  `leader_ttl` of the leader's death, running a check (and retention) at once. What
  "sent once" means across alerters is in `alerts.engine` (module doc): decisions are
  exactly once in the Elasticsearch outbox (deterministic ids, create-only and
  conditional writes, whoever makes them); each claim records the claimant's fence
  and the lock is confirmed in Redis right before each post, so a claim left by a
  killed leader is taken over at once, the channel read back for the alert id, and
  posted only if it is not there. An alerter crawls nothing and never loads the model. Coordinators and
  crawlers never run alert checks, reports or retention; `--role all` runs them
  without any lock (so do not run a whole daemon with alerts beside alerters).
- `scorer` (with `redis.scoring: scorer`): crawler workers then hand the unscored
  mentions of each crawl to the stream `<prefix>score-batches` (`daemon.coord.ScoreQueue`)
  before committing the cursor, and never load the model; scorer workers take one
  batch at a time (XREADGROUP in the group `scorers`), score it with the model and
  index it (`Pipeline.ingest`: bulk writer, spool, deterministic ids), and XACK it
  only after that. A scorer killed mid-batch stops touching it; after
  `redis.claim_idle` another scorer reclaims it (XAUTOCLAIM) and scores and indexes it
  again under the same ids: every mention once in Elasticsearch. With the default
  `redis.scoring: crawler`, crawlers score in-process and a scorer has nothing to take
  but still scores what was indexed unscored (its housekeeping).

Every role but `all` needs the `redis:` section.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from brandpulse.config import Config
from daemon.logs import log_event

if TYPE_CHECKING:
    import redis

    from daemon.coord import CrawlQueue, LeaderLock, QueuedBatch, QueuedCrawl, ScoreQueue
    from daemon.service import Daemon

logger = logging.getLogger("brandpulse.roles")

ROLES = ("all", "coordinator", "crawler", "scorer", "alerter")
# How long a worker's XREADGROUP waits for a job before it looks again (and notices
# a stop request).
BLOCK_MS = 1000


def role_problem(config: Config, role: str) -> str | None:
    """Why `config` cannot run `role` (one line), or None when it can."""
    if role not in ROLES:
        return f"unknown role {role!r}; one of {', '.join(ROLES)}"
    if role != "all" and config.redis is None:
        return (f"--role {role} needs the redis: section (the roles share crawl jobs, leases "
                "and cursors through Redis); without it run the whole daemon (--role all)")  # fmt: skip
    return None


def _client(config: Config) -> redis.Redis:
    from daemon.coord import redis_client

    assert config.redis is not None
    return redis_client(config.redis)


class Coordinator:
    """Puts due crawl jobs on the stream while it is the leader (see the module doc).

    `tick` is one step (hold or try for the leader lock, then enqueue what is due),
    `run` ticks every third of the lock's TTL (at most every second) until stopped
    and gives the lock up on the way out. `clock` (seconds since the epoch) decides
    what is due; `rng` (0..1) spreads each source's `schedule.jitter`.
    """

    def __init__(
        self,
        config: Config,
        client: redis.Redis | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        from crawlers.job import CrawlJob
        from daemon.coord import CrawlQueue, LeaderLock

        assert config.redis is not None, "a coordinator needs redis:"
        self.config = config
        self.client = client if client is not None else _client(config)
        prefix = config.redis.key_prefix
        self.lock: LeaderLock = LeaderLock(self.client, f"{prefix}leader",
                                           config.redis.leader_ttl.total_seconds())  # fmt: skip
        self.queue: CrawlQueue = CrawlQueue(self.client, prefix)
        self.clock = clock
        self.rng = rng
        self.sources = [s for s in config.sources if s.enabled]
        # Secrets masked: a source's credentials never go through Redis; each crawler
        # worker takes them from its own config.
        self.jobs = {s.name: CrawlJob.from_config(config, s.name).model_dump_json()
                     for s in self.sources}  # fmt: skip
        self.interval = min(config.redis.leader_ttl.total_seconds() / 3, 1.0)

    def tick(self) -> list[str]:
        """One step; the ids of the jobs enqueued (none unless leader)."""
        was = self.lock.fence
        fence = self.lock.hold()
        if fence != was:
            if was is not None:
                log_event(logger, "leader.lost", logging.WARNING, fence=was)
            if fence is not None:
                log_event(logger, "leader.acquired", fence=fence)
        if fence is None:
            return []
        now = self.clock()
        enqueued = []
        for source in self.sources:
            every = source.schedule.every.total_seconds()
            jitter = source.schedule.jitter.total_seconds() * self.rng()
            entry = self.queue.enqueue_due(self.lock, source.name, self.jobs[source.name],
                                           now, now + every + jitter)  # fmt: skip
            if entry is not None:
                enqueued.append(entry)
                log_event(logger, "crawl.enqueued", source=source.name, entry=entry, fence=fence)
        if self.lock.fence is None:
            log_event(logger, "leader.lost", logging.WARNING, fence=fence)
        return enqueued

    def run(self, stop: threading.Event) -> None:
        from redis.exceptions import RedisError

        log_event(logger, "coordinator.started", sources=[s.name for s in self.sources],
                  holder=self.lock.token)  # fmt: skip
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except RedisError as exc:  # the lock lapses on its own if this lasts
                    log_event(logger, "coordinator.redis_unavailable", logging.WARNING, error=str(exc))
                stop.wait(self.interval)
        finally:
            try:
                if self.lock.release():
                    log_event(logger, "leader.released")
            except RedisError:
                pass
            self.client.close()


class Alerter:
    """Holds (or waits for) the alerter lock for a `Daemon(role="alerter")` (module doc).

    `tick` renews the lock when held, else tries for it, and logs each change;
    `on_acquired` runs after each new leadership (the role runs an alert check at
    once). `run` ticks every third of `redis.leader_ttl` (at most every second) until
    stopped, then gives the lock up, so a standby need not wait out the TTL.
    """

    def __init__(
        self,
        config: Config,
        client: redis.Redis | None = None,
        on_acquired: Callable[[int], None] | None = None,
    ) -> None:
        from daemon.coord import LeaderLock

        assert config.redis is not None, "an alerter needs redis:"
        self.client = client if client is not None else _client(config)
        ttl = config.redis.leader_ttl.total_seconds()
        self.lock: LeaderLock = LeaderLock(self.client, f"{config.redis.key_prefix}alerter", ttl)
        self.on_acquired = on_acquired
        self.interval = min(ttl / 3, 1.0)

    def tick(self) -> int | None:
        """One renewal or attempt: the fence held now, or None (standby)."""
        was = self.lock.fence
        fence = self.lock.hold()
        if fence != was:
            if was is not None:
                log_event(logger, "alerter.lost", logging.WARNING, fence=was)
            if fence is not None:
                log_event(logger, "alerter.leading", fence=fence, holder=self.lock.token)
                if self.on_acquired is not None:
                    self.on_acquired(fence)
        return fence

    def run(self, stop: threading.Event) -> None:
        from redis.exceptions import RedisError

        log_event(logger, "alerter.started", holder=self.lock.token)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except RedisError as exc:  # the lock lapses on its own if this lasts
                    if self.lock.fence is not None:
                        log_event(logger, "alerter.lost", logging.WARNING, fence=self.lock.fence)
                    self.lock.fence = None  # not leading without a confirmed lock
                    log_event(logger, "alerter.redis_unavailable", logging.WARNING, error=str(exc))
                stop.wait(self.interval)
        finally:
            try:
                if self.lock.release():
                    log_event(logger, "alerter.released")
            except RedisError:
                pass
            self.client.close()


class CrawlerWorker:
    """Takes crawl jobs from the stream and crawls them with `daemon` (see the module doc).

    `step` takes and finishes at most one job; `run` steps until stopped.
    """

    def __init__(self, daemon: Daemon, client: redis.Redis | None = None) -> None:
        from daemon.coord import CrawlQueue, holder_token

        config = daemon.config
        assert config.redis is not None, "a crawler worker needs redis:"
        self.daemon = daemon
        self.client = client if client is not None else _client(config)
        self.queue: CrawlQueue = CrawlQueue(self.client, config.redis.key_prefix)
        self.consumer = holder_token()
        self.claim_idle_ms = int(config.redis.claim_idle.total_seconds() * 1000)
        self.sources = {s.name for s in config.sources if s.enabled}

    def step(self) -> QueuedCrawl | None:
        """Take one job (a reclaimed one first) and crawl it; the job, or None."""
        entry = self.queue.take(self.consumer, self.claim_idle_ms, BLOCK_MS)
        if entry is None:
            return None
        log_event(logger, "crawl.taken", source=entry.source, entry=entry.entry_id,
                  fence=entry.fence, reclaimed=entry.reclaimed, worker=self.consumer)  # fmt: skip
        if entry.source not in self.sources:
            # A coordinator with another config: this worker cannot crawl it (it has no
            # credentials for it); the coordinator queues it again when due.
            log_event(logger, "crawl.unknown_source", logging.ERROR, source=entry.source,
                      note="the coordinator's config names a source this worker's does not")  # fmt: skip
            self.queue.done(entry)
            return entry
        toucher = _Toucher(self.queue, self.consumer, entry.entry_id, self.claim_idle_ms / 3000)
        try:
            found = self.daemon.crawl_source(entry.source)
        except Exception as exc:  # as the daemon's schedule: logged, the next run tries again
            log_event(logger, "crawl.crashed", logging.ERROR, source=entry.source,
                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            found = 0
        finally:
            toucher.stop()
        if found is None:
            # Not crawled (the source's lease is held elsewhere, or Redis is away): the
            # job stays pending and is reclaimed after claim_idle.
            log_event(logger, "crawl.job_left", source=entry.source, entry=entry.entry_id)
            return entry
        self.queue.done(entry)
        log_event(logger, "crawl.job_done", source=entry.source, entry=entry.entry_id,
                  mentions=found)  # fmt: skip
        return entry

    def run(self, stop: threading.Event) -> None:
        from redis.exceptions import RedisError

        log_event(logger, "crawler.started", worker=self.consumer, sources=sorted(self.sources))
        while not stop.is_set():
            try:
                self.step()
            except RedisError as exc:
                log_event(logger, "crawler.redis_unavailable", logging.WARNING, error=str(exc))
                stop.wait(1.0)


class ScorerWorker:
    """Takes batches of unscored mentions from the score stream and scores and indexes
    them with `daemon` (`Daemon(role="scorer")`; see the module doc).

    `step` takes and finishes at most one batch; `run` steps until stopped.
    """

    def __init__(self, daemon: Daemon, client: redis.Redis | None = None) -> None:
        from daemon.coord import ScoreQueue, holder_token

        config = daemon.config
        assert config.redis is not None, "a scorer worker needs redis:"
        self.daemon = daemon
        self.client = client if client is not None else _client(config)
        self.queue: ScoreQueue = ScoreQueue(self.client, config.redis.key_prefix)
        self.consumer = holder_token()
        self.claim_idle_ms = int(config.redis.claim_idle.total_seconds() * 1000)

    def step(self) -> QueuedBatch | None:
        """Take one batch (a reclaimed one first), score and index it; the batch, or None."""
        from pydantic import ValidationError

        from brandpulse.mention import Mention

        batch = self.queue.take(self.consumer, self.claim_idle_ms, BLOCK_MS)
        if batch is None:
            return None
        try:
            mentions = [Mention.model_validate(m) for m in json.loads(batch.mentions)]
        except (ValueError, TypeError, ValidationError) as exc:
            # Not ours to fix, and it would fail the same way every time.
            log_event(logger, "score.bad_batch", logging.ERROR, entry=batch.entry_id,
                      error=f"{type(exc).__name__}: {exc}"[:500])  # fmt: skip
            self.queue.done(batch)
            return batch
        log_event(logger, "score.taken", source=batch.source, entry=batch.entry_id,
                  n=len(mentions), reclaimed=batch.reclaimed, worker=self.consumer)  # fmt: skip
        toucher = _Toucher(self.queue, self.consumer, batch.entry_id, self.claim_idle_ms / 3000)
        try:
            # Scored, then indexed or spooled (a scoring failure indexes them unscored,
            # for the housekeeping to score): only then is the batch done.
            report = self.daemon.score_batch(batch.source, mentions)
        finally:
            toucher.stop()
        self.queue.done(batch)
        log_event(logger, "score.batch_done", source=batch.source, entry=batch.entry_id,
                  scored=report.scored, indexed=report.write.indexed, spooled=report.write.spooled)  # fmt: skip
        return batch

    def run(self, stop: threading.Event) -> None:
        from redis.exceptions import RedisError

        assert self.daemon.config.redis is not None
        # The model loads before the first batch is taken, not inside it: on a crowded
        # machine a load took minutes (bench/capacity.py, four scorers on one core), the
        # held batch went idle past `redis.claim_idle` and was reclaimed and scored twice
        # (each mention still indexed once, but the work was done twice).
        self.daemon.pipeline  # noqa: B018 -- loads the scorer
        log_event(logger, "scorer.started", worker=self.consumer)
        if self.daemon.config.redis.scoring != "scorer":
            log_event(logger, "scorer.nothing_handed_over", logging.WARNING,
                      note="redis.scoring is 'crawler': crawler workers score what they crawl; "
                      "this scorer only scores what was indexed unscored")  # fmt: skip
        while not stop.is_set():
            try:
                self.step()
            except RedisError as exc:
                log_event(logger, "scorer.redis_unavailable", logging.WARNING, error=str(exc))
                stop.wait(1.0)


class _Toucher:
    """Touches a job every `interval` seconds on a thread, so it is not reclaimed
    while its worker is alive."""

    def __init__(self, queue: CrawlQueue | ScoreQueue, consumer: str, entry_id: str,
                 interval: float) -> None:  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(queue, consumer, entry_id, interval),
                                        name="touch-job", daemon=True)  # fmt: skip
        self._thread.start()

    def _run(self, queue: CrawlQueue | ScoreQueue, consumer: str, entry_id: str,
             interval: float) -> None:  # fmt: skip
        while not self._stop.wait(max(interval, 0.05)):
            try:
                queue.touch(consumer, entry_id)
            except Exception as exc:  # Redis away a moment: the next touch may work
                log_event(logger, "crawl.touch_failed", logging.WARNING, error=str(exc))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _until_signal(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        log_event(logger, "daemon.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def run_role(config: Config, role: str) -> None:
    """Run `role` until SIGTERM/SIGINT (`role_problem` must be None)."""
    from daemon.service import Daemon

    if role == "all":
        Daemon(config).run_forever()
        return
    stop = threading.Event()
    _until_signal(stop)
    if role == "coordinator":
        Coordinator(config).run(stop)
        return
    if role == "alerter":
        _run_alerter(config, stop)
        return
    assert role in ("crawler", "scorer"), role
    daemon = Daemon(config, role=role)
    worker: CrawlerWorker | ScorerWorker = (CrawlerWorker(daemon) if role == "crawler"
                                            else ScorerWorker(daemon))  # fmt: skip
    daemon.start()  # Elasticsearch set-up and housekeeping (spool, unscored, health)
    thread = threading.Thread(target=worker.run, args=(stop,), name=f"{role}-worker")
    thread.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        stop.set()
        daemon.cancel_crawls()  # a running crawl stops; what it found is written first
        thread.join(config.daemon.shutdown_timeout.total_seconds())
        daemon.stop()


def _run_alerter(config: Config, stop: threading.Event) -> None:
    from daemon.service import Daemon

    alerter = Alerter(config)
    daemon = Daemon(config, role="alerter", leadership=alerter.lock)
    alerter.on_acquired = lambda _fence: daemon.lead_now()
    daemon.start()  # Elasticsearch set-up; jobs that run only while the lock is held
    lock_stop = threading.Event()
    thread = threading.Thread(target=alerter.run, args=(lock_stop,), name="alerter-lock")
    thread.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        daemon.stop()  # a running check finishes first, still under the lock
        lock_stop.set()
        thread.join(config.daemon.shutdown_timeout.total_seconds())
