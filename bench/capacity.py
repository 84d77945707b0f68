"""Capacity: the single-process daemon and 1, 2, 4 workers per role, in one run.

    taskset -c 1 nice -n 10 .venv/bin/python bench/capacity.py --quick
    taskset -c 1 nice -n 10 .venv/bin/python bench/capacity.py [--rate 40] [--period 180] [--topologies all,1,2,4]

Starts a real local Elasticsearch node (`esnode`), a real `redis-server`
(`redisnode`), the local Slack (`sandbox.slack`) and the local Hacker News and
Mastodon servers (`sandbox.sources`), then runs each topology in turn as real
`scheduler.py run --role ...` processes against them:

- `all`: the whole daemon in one process (no Redis), the baseline;
- `k=1`, `k=2`, `k=4`: one coordinator, k crawlers, k scorers (`redis.scoring:
  scorer`) and one alerter.

Each topology gets its own index prefix, Redis key prefix and a fresh source server.
The load: 50 brands, their mentions spread over 8 Hacker News sources (6-7 brands
each, crawled every 10 s) at `--rate` mentions/s for `--period` seconds of compressed
time (the post times are real: a post is served from its creation time on), made by
a deterministic generator (seeded; every text names exactly one brand, so every post
is one mention of one source). A third of the way in, a burst of 20 negative posts
about one brand appears on a Mastodon source, the first one by an author with 2.4 M
followers (the high-reach rule alerts on it; the spike rule may too: its min_count is
set above what the steady stream puts in a brand's window, since with no history
its baseline is empty and it would otherwise page for all 50 brands).
Before the clock starts, one post per brand warms the processes up (crawl children,
language detector, the model of the scorers that take a warm-up batch); start-up is
reported apart.

Figures per topology (printed as a table, then key=value lines):
- mentions/s end to end: the period's mentions (posts served -> documents in
  Elasticsearch) divided by the time from the first post served to the last document
  indexed; the offered rate beside it (above what one shared core can take, so the
  figure is the topology's capacity, not the offered rate echoed back);
- burst -> Slack: from the loud post being served to its alert arriving at the Slack
  sandbox;
- Redis: commands/s over the measured window (INFO stats total_commands_processed),
  the peak of instantaneous_ops_per_sec, the busiest commands (INFO commandstats);
- Elasticsearch: documents indexed/s and searches/s over the window (node stats);
- CPU seconds of each role's processes (their own, their reaped crawl children's and
  their live descendants': a fork server and its children, /proc/PID/stat) and of Elasticsearch and Redis, and mentions per CPU-second: what a
  core does when it is not shared, the figure the sizing in docs/deployment.md uses;
- peak RSS per role process (VmHWM) and of its descendants (crawl children, a fork
  server; sampled);
- the check: Elasticsearch holds every generated mention exactly once (by id: none
  missing, none extra, each scored), and no crawl job or score batch is left pending.

The machine has 2 cores and they are shared (the caller pins everything to one of
them with taskset): four workers per role on one core measure contention, not
scaling. The mentions per CPU-second are the figures to extrapolate from.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from brandpulse.config import AlertsConfig, parse_config  # noqa: E402
from esnode import LocalNode  # noqa: E402
from redisnode import LocalRedis  # noqa: E402
from sandbox.corpus import BURST_EN, NEGATIVE_EN, NEUTRAL_EN, POSITIVE_EN, Post  # noqa: E402
from sandbox.slack import DEFAULT_CHANNEL_NAME, DEFAULT_TOKEN, SlackMessage, SlackSandbox  # noqa: E402
from sandbox.sources import SourcesServer  # noqa: E402

BRANDS = 50
HN_SOURCES = 8
BURST_SOURCE = "mastodon-burst"
BURST_BRAND = 7
BURST_SIZE = 20
LOUD_FOLLOWERS = 2_400_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def brand_name(i: int) -> str:
    return f"Brand{i:02d}"


# ------------------------------------------------------------------ the load


def _text(rng: random.Random, brand: str, tone: str) -> str:
    templates = {"negative": NEGATIVE_EN, "neutral": NEUTRAL_EN, "positive": POSITIVE_EN}[tone]
    product = rng.choice([f"{brand} Phone X2", f"{brand} Cloud", f"the {brand} app", f"{brand} Buds"])
    return rng.choice(templates).format(p=product, b=brand)


def _post(post_id: int, at: datetime, text: str, tone: str, followers: int) -> Post:
    return Post(id=post_id, created_at=at, author=f"user{post_id % 997}", followers=followers,
                text=text, language="en", tone=tone, score=3, replies=1)  # fmt: skip


def stream(t0: datetime, rate: float, seconds: float, first_id: int, seed: int) -> list[tuple[int, Post]]:
    """(brand, post) at `rate` posts/s from `t0` for `seconds`: post k is created at
    t0 + k/rate, about brand k mod 50; 15 % negative, 40 % neutral, the rest positive."""
    rng = random.Random(seed)
    out = []
    for k in range(int(rate * seconds)):
        brand = k % BRANDS
        roll = rng.random()
        tone = "negative" if roll < 0.15 else "neutral" if roll < 0.55 else "positive"
        at = t0 + timedelta(seconds=k / rate)
        out.append((brand, _post(first_id + k, at, _text(rng, brand_name(brand), tone), tone,
                                 int(rng.lognormvariate(5.5, 1.6)))))  # fmt: skip
    return out


def burst(at: datetime, first_id: int, seed: int) -> list[Post]:
    """BURST_SIZE negative posts about the burst brand over 10 s from `at`; the first
    one by an author who reaches LOUD_FOLLOWERS people (the high-reach alert)."""
    rng = random.Random(seed)
    brand = brand_name(BURST_BRAND)
    posts = []
    for j in range(BURST_SIZE):
        text = rng.choice(BURST_EN).format(b=brand, p=f"{brand} Cloud")
        followers = LOUD_FOLLOWERS if j == 0 else int(rng.lognormvariate(5.5, 1.6))
        posts.append(_post(first_id + j, at + timedelta(seconds=10 * j / BURST_SIZE), text,
                           "negative", followers))  # fmt: skip
    return posts


# ------------------------------------------------------------------ config


def spike_min_count(rate: float) -> int:
    """Above the negatives the steady stream puts in one brand's 5-minute window (15 %
    of rate/50 per second): with no history the detector's baseline is empty, and a
    lower floor would page for every brand at these rates."""
    return max(10, math.ceil(1.5 * rate / BRANDS * 0.15 * 300))


def config_data(work: Path, es_url: str, base_urls: dict[str, str], slack: SlackSandbox,
                index_prefix: str, redis: dict[str, Any] | None, n: int, rate: float) -> dict[str, Any]:  # fmt: skip
    """The config of process `n` of a topology: everything shared but its state and spool."""
    every = {"every": "10s", "jitter": "0s"}
    uncapped = {"requests_per_minute": 1_000_000.0, "max_pages": 100, "lookback": "1h"}
    sources: list[dict[str, Any]] = [
        {"name": f"hn-{j}", "type": "hackernews", "base_url": base_urls["hackernews"],
         "brands": [brand_name(b) for b in range(BRANDS) if b % HN_SOURCES == j],
         "schedule": every, **uncapped}
        for j in range(HN_SOURCES)
    ]  # fmt: skip
    sources.append({"name": BURST_SOURCE, "type": "mastodon", "instance_url": base_urls["mastodon"],
                    "base_url": base_urls["mastodon"], "tags": [brand_name(BURST_BRAND).lower()],
                    "brands": [brand_name(BURST_BRAND)], "schedule": every, **uncapped})  # fmt: skip
    data: dict[str, Any] = {
        "brands": [{"name": brand_name(b), "query": brand_name(b).lower(), "own": b == 0}
                   for b in range(BRANDS)],
        "sources": sources,
        "nlp": {"model": "default"},
        "elasticsearch": {"hosts": [es_url], "index_prefix": index_prefix,
                          "spool_dir": str(work / f"spool{n}")},
        "slack": {"token": DEFAULT_TOKEN, "channel": f"#{DEFAULT_CHANNEL_NAME}",
                  "base_url": slack.base_url},
        # The demo's compressed schedule.
        "alerts": {"check_every": "10s", "query_delay": "5s", "history": "4d",
                   "spike": {"interval": "1m", "window": "5m", "warmup": "1d",
                             "min_count": spike_min_count(rate)}},
        "health": {"enabled": False},  # no source-health notices in the measured channel
        "crawl": {"allow_private_addresses": True},
        "daemon": {"state_dir": str(work / f"state{n}"), "http_port": 0, "log_format": "text",
                   "log_level": "INFO", "shutdown_timeout": "60s"},
    }  # fmt: skip
    if redis is not None:
        data["redis"] = redis
    parse_config(data, env={})  # refuse a bad config here, not in N processes
    return data


# ------------------------------------------------------------------ processes


class Role:
    """`scheduler.py run --role ROLE` as a real process (inheriting this one's CPU
    affinity and niceness), its log in a file."""

    def __init__(self, role: str, config: Path, log: Path) -> None:
        self.role, self.log_path = role, log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "scheduler.py", "run", "--role", role, "--config", str(config)],
            cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.pid = self.proc.pid
        self.peak_rss_kb = 0

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        self.peak_rss_kb = max(self.peak_rss_kb, _status_kb(self.pid, "VmHWM"))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


STARTED = {"all": "daemon.started", "coordinator": "coordinator.started", "crawler": "crawler.started",
           "scorer": "scorer.started", "alerter": "alerter.started"}  # fmt: skip


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and of its children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def _parents() -> dict[int, int]:
    """Every live process's parent pid, from one scan of /proc."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            ppid = _status_kb(int(proc.name), "PPid")
            if ppid:
                parents[int(proc.name)] = ppid
    return parents


def _role_of(pid: int, parents: dict[int, int], roles: dict[int, str]) -> str | None:
    """The role whose process `pid` descends from (a spawned crawl child is a child of
    its role process; a forked one is a child of the role's fork server)."""
    for _ in range(6):
        pid = parents.get(pid, 0)
        if pid in roles:
            return roles[pid]
        if not pid:
            return None
    return None


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of `pid` plus that of each of its live descendants (a fork server
    and the crawl children it forked live below the role process, and their CPU reaches
    the role's reaped-children figure only when the server exits)."""
    parents = _parents()
    return cpu_seconds(pid) + sum(
        cpu_seconds(d) for d in parents if _role_of(d, parents, {pid: "x"}) is not None
    )


class ChildSampler:
    """Samples the RSS of the role processes' descendants (the crawl children, and a
    fork server with the children it forked) every `every` seconds; the peak per role."""

    def __init__(self, roles: list[Role], every: float = 2.0) -> None:
        self.by_pid = {r.pid: r.role for r in roles}
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            parents = _parents()
            for pid in parents:
                role = _role_of(pid, parents, self.by_pid)
                if role is not None:
                    rss = _status_kb(pid, "VmRSS")
                    self.peak[role] = max(self.peak.get(role, 0), rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# ------------------------------------------------------------------ one topology


@dataclass
class Result:
    name: str
    processes: dict[str, int]
    startup_s: float = 0.0
    mentions: int = 0
    offered_per_s: float = 0.0
    e2e_s: float = 0.0
    per_s: float = 0.0
    lag_after_last_served_s: float = 0.0
    burst_to_slack_s: float | None = None
    burst_message: str = ""
    slack_messages: int = 0
    queued_to_sent_s: float | None = None
    redis_cmds_per_s: float = 0.0
    redis_peak_ops: int = 0
    redis_top: list[tuple[str, float]] = field(default_factory=list)
    es_docs_per_s: float = 0.0
    es_searches_per_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    crawls: int = 0
    window_s: float = 0.0
    rss_mb: dict[str, float] = field(default_factory=dict)
    child_rss_mb: dict[str, float] = field(default_factory=dict)
    exactly_once: bool = False
    check: str = ""
    exit_codes: dict[str, list[int | None]] = field(default_factory=dict)


def _indexed(es: Any, alias: str) -> int:
    if not es.indices.exists_alias(name=alias):
        return 0
    es.indices.refresh(index=alias)
    return int(es.count(index=alias)["count"])


def _redis_stats(client: Any) -> tuple[int, dict[str, int]]:
    total = int(client.info("stats")["total_commands_processed"])
    calls = {k.removeprefix("cmdstat_"): int(v["calls"])
             for k, v in client.info("commandstats").items()}  # fmt: skip
    return total, calls


def _es_stats(es: Any) -> tuple[int, int]:
    stats = es.nodes.stats(metric="indices")["nodes"]
    node = next(iter(stats.values()))["indices"]
    return int(node["indexing"]["index_total"]), int(node["search"]["query_total"])


def run_topology(name: str, k: int | None, args: argparse.Namespace, work: Path, node: LocalNode,
                 redis_node: LocalRedis, slack: SlackSandbox, seed: int) -> Result:  # fmt: skip
    import redis as redis_lib
    from elasticsearch import helpers

    es = node.client(request_timeout=120)
    rclient = redis_lib.Redis.from_url(redis_node.url, decode_responses=True)
    index_prefix, key_prefix = f"cap-{name}", f"cap-{name}:"
    tdir = work / name
    tdir.mkdir(parents=True)
    plan = [("all", 1)] if k is None else [("coordinator", 1), ("crawler", k), ("scorer", k), ("alerter", 1)]
    redis_cfg = None if k is None else {"url": redis_node.url, "key_prefix": key_prefix,
                                        "scoring": "scorer"}  # fmt: skip
    result = Result(name, {role: n for role, n in plan})
    roles: list[Role] = []
    arrivals: list[tuple[float, SlackMessage]] = []
    slack.on_message = lambda m: arrivals.append((time.time(), m))
    with SourcesServer() as sources:
        n = 0
        launched = time.monotonic()
        for role, count in plan:
            for _ in range(count):
                n += 1
                data = config_data(tdir, node.url, sources.base_urls(), slack, index_prefix, redis_cfg, n,
                                   args.rate)  # fmt: skip
                if args.counts_source:
                    data["alerts"]["counts_source"] = args.counts_source
                path = tdir / f"config{n}.yaml"
                path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
                roles.append(Role(role, path, tdir / f"{role}{n}.log"))
        sampler = ChildSampler(roles)
        try:
            _wait(lambda: all(STARTED[r.role] in r.log() for r in roles), 600, "every process to start",
                  roles)  # fmt: skip
            # Warm-up: one post per brand, served now; wait until all are indexed.
            warm_t = datetime.now(UTC)
            warm = stream(warm_t, BRANDS / 1.0, 1.0, 5_000_000, seed + 1)
            _publish(sources, warm)
            alias = f"{index_prefix}-mentions"
            _wait(lambda: _indexed(es, alias) >= len(warm), 900, "the warm-up posts", roles)
            result.startup_s = time.monotonic() - launched

            # The measured period.
            t0 = datetime.now(UTC) + timedelta(seconds=2)
            main = stream(t0, args.rate, args.period, 10_000_000, seed)
            burst_at = t0 + timedelta(seconds=args.period / 3)
            wave = burst(burst_at, 90_000_000, seed + 2)
            _publish(sources, main)
            sources.store.add("mastodon", wave)
            # Each post's own id ends its source_id (Hacker News: the objectID; the
            # Mastodon stand-in: the status URL), whichever document id it gets.
            expected = {p.id for _, p in warm + main} | {p.id for p in wave}
            total = len(expected)
            last_served = max(p.created_at for _, p in main).timestamp()
            result.mentions = len(main) + len(wave)
            result.offered_per_s = args.rate
            while datetime.now(UTC) < t0:
                time.sleep(0.05)
            cpu0 = {r.pid: tree_cpu_seconds(r.pid) for r in roles}
            infra0 = {"elasticsearch": cpu_seconds(node.pid or 0), "redis": cpu_seconds(redis_node.pid or 0)}
            r0, calls0 = _redis_stats(rclient)
            e0 = _es_stats(es)
            w0 = time.monotonic()
            deadline = w0 + args.period + args.drain
            done_at: float | None = None
            while time.monotonic() < deadline:
                ops = int(rclient.info("stats")["instantaneous_ops_per_sec"])
                result.redis_peak_ops = max(result.redis_peak_ops, ops)
                if time.time() > last_served and _indexed(es, alias) >= total:
                    done_at = time.time()
                    break
                if any(r.proc.poll() is not None for r in roles):
                    dead = [f"{r.role} pid {r.pid} exit {r.proc.returncode}" for r in roles
                            if r.proc.poll() is not None]  # fmt: skip
                    raise RuntimeError(f"a process died: {dead}")
                time.sleep(2.0)
            dt = time.monotonic() - w0
            if done_at is None:
                done_at = time.time()
                print(f"[{name}] not every mention indexed within the drain time "
                      f"({_indexed(es, alias)}/{total})", file=sys.stderr, flush=True)  # fmt: skip
            result.e2e_s = done_at - t0.timestamp()
            result.per_s = result.mentions / result.e2e_s
            result.lag_after_last_served_s = done_at - last_served
            r1, calls1 = _redis_stats(rclient)
            e1 = _es_stats(es)
            result.redis_cmds_per_s = (r1 - r0) / dt
            top = sorted(((c, (calls1[c] - calls0.get(c, 0)) / dt) for c in calls1), key=lambda x: -x[1])
            result.redis_top = [(c, v) for c, v in top[:4] if v > 0]
            result.es_docs_per_s = (e1[0] - e0[0]) / dt
            result.es_searches_per_s = (e1[1] - e0[1]) / dt
            for r in roles:
                result.cpu[r.role] = result.cpu.get(r.role, 0.0) + tree_cpu_seconds(r.pid) - cpu0[r.pid]
            result.cpu["elasticsearch"] = cpu_seconds(node.pid or 0) - infra0["elasticsearch"]
            result.cpu["redis"] = cpu_seconds(redis_node.pid or 0) - infra0["redis"]
            result.window_s = dt
            result.crawls = sum(crawls_between(r.log(), t0.timestamp(), done_at) for r in roles)

            # The burst's alert: the first message about the burst brand once the burst's
            # first post (the loud one) was served.
            loud = wave[0]

            def alerted() -> tuple[float, str] | None:
                for at, m in arrivals:
                    if brand_name(BURST_BRAND) in m.text and at >= loud.created_at.timestamp():
                        return at, m.text.split("\n")[0][:80]
                return None

            with contextlib.suppress(AssertionError):
                _wait(alerted, args.alert_wait, "the burst's alert", roles)
            found = alerted()
            if found is not None:
                result.burst_to_slack_s = found[0] - loud.created_at.timestamp()
                result.burst_message = found[1]
            result.slack_messages = len(arrivals)
            # How long the alert waited in the outbox: queued at its check's start
            # (created_at is the check's time), delivered when the check got to it.
            result.queued_to_sent_s = _queued_to_sent(es, index_prefix, brand_name(BURST_BRAND))

            # Every generated mention exactly once, scored; nothing left pending.
            es.indices.refresh(index=alias)
            docs: Counter[int] = Counter()
            unscored = 0
            for hit in helpers.scan(es, index=alias, query={"query": {"match_all": {}}},
                                    _source=["source_id", "sentiment.label"]):  # fmt: skip
                src = hit.get("_source") or {}
                docs[int(re.search(r"(\d+)$", str(src["source_id"])).group(1))] += 1  # type: ignore[union-attr]
                unscored += not src.get("sentiment")
            missing, extra = expected - set(docs), set(docs) - expected
            twice = sum(1 for n in docs.values() if n > 1)
            pending = ""
            if k is not None:
                jobs = rclient.xpending(f"{key_prefix}crawl-jobs", "crawlers")["pending"]
                backlog = rclient.xlen(f"{key_prefix}score-batches")
                pending = f", crawl jobs pending {jobs}, score batches left {backlog}"
            result.exactly_once = not missing and not extra and not twice and not unscored
            result.check = (f"{sum(docs.values())} documents for {total} generated mentions: missing "
                            f"{len(missing)}, extra {len(extra)}, in two documents {twice}, unscored "
                            f"{unscored}{pending}")  # fmt: skip
        finally:
            sampler.stop()
            for r in roles:
                result.exit_codes.setdefault(r.role, []).append(r.stop())
                mb = r.peak_rss_kb / 1024
                result.rss_mb[r.role] = max(result.rss_mb.get(r.role, 0.0), mb)
            result.child_rss_mb = {role: kb / 1024 for role, kb in sampler.peak.items()}
            slack.on_message = None
            rclient.close()
            es.close()
    return result


def crawls_between(log: str, start: float, end: float) -> int:
    """Crawls a role's log says finished between `start` and `end` (epoch seconds)."""
    n = 0
    for m in re.finditer(r"^ts=(\S+) .*event=crawl\.finished", log, re.MULTILINE):
        if start <= datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() <= end:
            n += 1
    return n


def _queued_to_sent(es: Any, index_prefix: str, brand: str) -> float | None:
    """Seconds from queued to delivered of the burst brand's first delivered alert."""
    res = es.search(index=f"{index_prefix}-alert-state", size=1, sort=[{"delivered_at": "asc"}],
                    query={"bool": {"filter": [{"term": {"type": "alert"}}, {"term": {"brand": brand}},
                                               {"term": {"status": "delivered"}}]}})  # fmt: skip
    hits = res["hits"]["hits"]
    if not hits:
        return None
    src = hits[0]["_source"]
    return (datetime.fromisoformat(src["delivered_at"]) - datetime.fromisoformat(src["created_at"])).total_seconds()


def _publish(sources: SourcesServer, posts: list[tuple[int, Post]]) -> None:
    sources.store.add("hackernews", [p for _, p in posts])


def _wait(condition: Any, timeout: float, what: str, roles: list[Role]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        dead = [r for r in roles if r.proc.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead[0].role} exited ({dead[0].proc.returncode}) waiting for {what}; "
                               f"log {dead[0].log_path}")  # fmt: skip
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


# ------------------------------------------------------------------ report


def report(results: list[Result], args: argparse.Namespace) -> None:
    cores = sorted(os.sched_getaffinity(0))
    print()
    print(f"machine: {os.cpu_count()} cores, this run pinned to core(s) {cores} (shared with other "
          f"work: load average {os.getloadavg()[0]:.1f}); every process of every topology is on those "
          f"cores, so k workers per role measure contention, not scaling")  # fmt: skip
    per_day = args.rate * 86400 / 1e6
    print(f"load: {BRANDS} brands over {HN_SOURCES} Hacker News sources + 1 Mastodon (burst) source, "
          f"crawled every 10 s; offered {args.rate:g} mentions/s ({per_day:.1f} M/day) for {args.period:g} s; "
          f"burst of {BURST_SIZE} negative posts at a third of the period")  # fmt: skip
    head = (f"{'topology':<10}{'procs':>6}{'start s':>8}{'mentions':>9}{'e2e s':>7}{'mentions/s':>11}"
            f"{'burst->Slack s':>15}{'redis cmd/s':>12}{'redis peak':>11}{'ES docs/s':>10}{'ES srch/s':>10}"
            f"{'CPU s':>7}{'ment/CPU-s':>11}  exactly once")  # fmt: skip
    print(head)
    for r in results:
        cpu = sum(r.cpu.values())
        burst_s = "none" if r.burst_to_slack_s is None else f"{r.burst_to_slack_s:.1f}"
        print(f"{r.name:<10}{sum(r.processes.values()):>6}{r.startup_s:>8.0f}{r.mentions:>9}{r.e2e_s:>7.0f}"
              f"{r.per_s:>11.1f}{burst_s:>15}{r.redis_cmds_per_s:>12.0f}{r.redis_peak_ops:>11}"
              f"{r.es_docs_per_s:>10.1f}{r.es_searches_per_s:>10.1f}{cpu:>7.0f}{r.mentions / cpu:>11.2f}"
              f"  {'yes' if r.exactly_once else 'NO'}")  # fmt: skip
    print()
    for r in results:
        details(r)
    print()
    for r in results:
        burst_s = "none" if r.burst_to_slack_s is None else f"{r.burst_to_slack_s:.1f}"
        print(f"topology={r.name} mentions_per_s={r.per_s:.1f} burst_to_slack_s={burst_s} "
              f"redis_cmds_per_s={r.redis_cmds_per_s:.0f} es_docs_per_s={r.es_docs_per_s:.1f} "
              f"cpu_s={sum(r.cpu.values()):.0f} mentions_per_cpu_s={r.mentions / sum(r.cpu.values()):.2f} "
              f"exactly_once={'yes' if r.exactly_once else 'no'}")  # fmt: skip


def details(r: Result) -> None:
    """One topology's figures beyond the table (printed as soon as it is done, too)."""
    print(f"[{r.name}] check: {r.check}; exit codes {r.exit_codes}")
    cpu = ", ".join(f"{role} {s:.0f} s ({r.mentions / s:.1f} mentions/CPU-s)" for role, s in r.cpu.items() if s > 0)
    print(f"[{r.name}] CPU over the window ({r.window_s:.0f} s): {cpu}")
    crawler = r.cpu.get("crawler", r.cpu.get("all", 0.0))
    print(f"[{r.name}] crawls finished in the window: {r.crawls} ({crawler / max(r.crawls, 1):.1f} CPU-s "
          f"of the crawling process(es) per crawl); Slack messages {r.slack_messages}, the burst's "
          f"first: {r.burst_message!r}, queued -> delivered {r.queued_to_sent_s} s (the rest of its "
          f"check's pass over {BRANDS} brands)")  # fmt: skip
    rss = ", ".join(f"{role} {mb:.0f}" for role, mb in r.rss_mb.items())
    child = ", ".join(f"{role}'s {mb:.0f}" for role, mb in r.child_rss_mb.items())
    print(f"[{r.name}] peak RSS MB per process: {rss}; crawl children: {child or 'none seen'}")
    print(f"[{r.name}] busiest Redis commands/s: "
          + (", ".join(f"{c} {v:.1f}" for c, v in r.redis_top) or "none (no Redis)"))
    print(f"[{r.name}] lag after the last post served: {r.lag_after_last_served_s:.0f} s; "
          f"start-up (launch to warm-up indexed): {r.startup_s:.0f} s", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 mentions/s for 60 s")
    parser.add_argument("--rate", type=float, help="offered mentions/s (default 40; quick 20)")
    parser.add_argument("--period", type=float, help="seconds of posts (default 180; quick 60)")
    parser.add_argument("--drain", type=float, default=900.0, help="seconds allowed after the period")
    parser.add_argument("--topologies", help="comma-separated, of all,1,2,4 (the default)")
    parser.add_argument("--alert-wait", type=float, default=300.0,
                        help="seconds to wait for the burst's alert after the drain")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--counts-source", choices=("raw", "rollup"),
                        help="alerts.counts_source for every process (default: the config's default)")
    parser.add_argument("--work", type=Path, help="folder for logs and configs (default: a temp folder)")
    args = parser.parse_args()
    args.rate = args.rate or (20.0 if args.quick else 40.0)
    args.period = args.period or (60.0 if args.quick else 180.0)
    names = (args.topologies or "all,1,2,4").split(",")
    # SIGTERM unwinds like Ctrl-C: every role process is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda _signo, _frame: sys.exit(143))
    work = args.work or Path(tempfile.mkdtemp(prefix="brandpulse-capacity-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder (logs, configs): {work}", flush=True)
    default = AlertsConfig.model_fields["counts_source"].default
    print(f"alerts.counts_source: {args.counts_source or f'{default} (the default)'}", flush=True)
    results = []
    with LocalNode(port=0, data_dir=work / "es", heap="1g") as node, \
            LocalRedis(work_dir=work / "redis") as redis_node, SlackSandbox() as slack:  # fmt: skip
        for name in names:
            k = None if name == "all" else int(name)
            label = "all" if k is None else f"k{k}"
            print(f"running {label} ...", flush=True)
            results.append(run_topology(label, k, args, work, node, redis_node, slack, args.seed))
            r = results[-1]
            print(f"  {label}: {r.per_s:.1f} mentions/s, burst->Slack {r.burst_to_slack_s}, "
                  f"{sum(r.cpu.values()):.0f} CPU-s", flush=True)  # fmt: skip
            details(r)
    report(results, args)
    return 0 if all(r.exactly_once for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
