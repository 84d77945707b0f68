"""`scheduler.py run --role` (daemon.roles) and its Redis parts (daemon.coord's
LeaderLock and CrawlQueue), against the session's real redis-server; the crawler
tests also against the real Elasticsearch node, Scrapy against local servers and
the default model. Worker and coordinator processes are real `scheduler.py run`
processes, killed with SIGKILL where the test says so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from alerts.engine import AlertEngine
from alerts.notifiers.slack import SlackNotifier
from alerts.state import AlertStateStore, OutboxEntry
from brandpulse.config import parse_config
from brandpulse.mention import Mention
from crawlers.job import CrawlJob
from daemon.cli import main
from daemon.coord import CrawlQueue, LeaderLock, ScoreQueue
from daemon.demo import demo_config
from daemon.roles import Coordinator
from daemon.service import Daemon
from sandbox.corpus import build_corpus
from sandbox.slack import SlackSandbox
from sandbox.sources import SourcesServer, assign_source
from store.setup import setup_elasticsearch
from store.writer import BulkWriter
from tests.alerts.test_engine import mention
from tests.daemon.held_server import HeldServer

REPO = Path(__file__).resolve().parents[2]


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until `condition()` is truthy (its value), failing after `timeout` (a bound
    on a hang, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _prefix() -> str:
    return f"r{uuid.uuid4().hex[:8]}:"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RoleProcess:
    """`python scheduler.py run --role ROLE` as a real process, its log in a file."""

    def __init__(self, role: str, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "scheduler.py", "run", "--role", role, "--config", str(config)],
            cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sigkill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def processes() -> Iterator[list[RoleProcess]]:
    started: list[RoleProcess] = []
    yield started
    for p in started:
        p.close()


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# ------------------------------------------------------------------- the CLI


def _bare(tmp_path: Path, **extra: Any) -> Path:
    return _write(tmp_path / "config.yaml", {
        "brands": [{"name": "Acme", "query": "acme"}],
        "daemon": {"state_dir": str(tmp_path / "state")}, **extra,
    })  # fmt: skip


@pytest.mark.parametrize("role", ["coordinator", "crawler", "scorer", "alerter"])
def test_a_role_without_redis_is_a_config_error(role, tmp_path, capsys):
    assert main(["run", "--role", role, "--config", str(_bare(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert f"--role {role} needs the redis: section" in err and "--role all" in err


def test_an_unknown_role_is_refused(tmp_path, capsys):
    assert main(["run", "--role", "janitor", "--config", str(_bare(tmp_path))]) == 2
    assert "unknown role 'janitor'" in capsys.readouterr().err


# ---------------------------------------------------------- the leader lock


@pytest.fixture
def client(redis_node) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_node.url, decode_responses=True)
    yield c
    c.close()


def test_one_leader_at_a_time_each_with_a_higher_fence(client):
    key = f"{_prefix()}leader"
    a, b = LeaderLock(client, key, 30), LeaderLock(client, key, 30)
    first = a.acquire()
    assert first is not None and a.value == f"{first}/{a.token}"
    assert b.acquire() is None and b.hold() is None, "the lock is held"
    assert a.renew() and a.hold() == first
    assert a.release() and a.value is None and client.get(key) is None
    second = b.acquire()
    assert second is not None and second > first
    assert not a.renew(), "a released leadership is not renewed"


def test_a_lapsed_leadership_is_not_taken_back_by_a_renewal(client):
    key = f"{_prefix()}leader"
    stalled, other = LeaderLock(client, key, 0.2), LeaderLock(client, key, 30)
    first = stalled.acquire()
    _wait(lambda: client.get(key) is None, 30, "the short lock to expire")
    assert not stalled.renew() and stalled.value is None, "expired: no longer leader"
    again = stalled.hold()
    assert again is not None and again > first, "acquired anew, with a new fence"
    assert stalled.release()
    third = other.acquire()
    assert third is not None and third > again
    assert not stalled.renew()


# ------------------------------------------------------------ the coordinator


def _coordinated(redis_url: str, prefix: str, sources: list[dict[str, Any]], tmp: Path,
                 leader_ttl: str = "30s") -> dict[str, Any]:  # fmt: skip
    return {
        "brands": [{"name": "Acme", "query": "acme"}],
        "sources": sources,
        "daemon": {"state_dir": str(tmp / "state"), "http_port": 0},
        "redis": {"url": redis_url, "key_prefix": prefix, "leader_ttl": leader_ttl},
    }


def _hn(name: str, every: str = "10m", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "hackernews", "base_url": "http://127.0.0.1:9/hn",
            "schedule": {"every": every, "jitter": "0s"}, **extra}  # fmt: skip


def test_only_the_leader_enqueues_due_jobs_one_per_source_in_flight(redis_node, client, tmp_path):
    prefix = _prefix()
    config = parse_config(_coordinated(redis_node.url, prefix,
                          [_hn("hn-a"), {"name": "yt", "type": "youtube", "api_key": "s3cret-key",
                                          "video_ids": ["v1"], "schedule": {"every": "10m"}}], tmp_path), env={})  # fmt: skip
    clock = Clock()
    leader = Coordinator(config, redis.Redis.from_url(redis_node.url, decode_responses=True), clock=clock)
    other = Coordinator(config, redis.Redis.from_url(redis_node.url, decode_responses=True), clock=clock)
    queue = CrawlQueue(client, prefix)
    assert len(leader.tick()) == 2, "both sources are due at first"
    assert other.tick() == [], "not the leader: enqueues nothing"
    assert leader.tick() == [], "not due again yet, and still in flight"
    entries = queue.entries()
    assert [f["source"] for _, f in entries] == ["hn-a", "yt"]
    assert {f["fence"] for _, f in entries} == {str(leader.lock.fence)}
    job = CrawlJob.model_validate_json(entries[1][1]["job"])
    assert job.source.name == "yt"
    assert "s3cret-key" not in entries[1][1]["job"], "credentials never go through Redis"

    taken = queue.take("w1", claim_idle_ms=60_000, block_ms=100)
    assert taken is not None and taken.source == "hn-a" and not taken.reclaimed
    clock.now += 600  # due again: hn-a is done, yt still in flight
    queue.done(taken)
    assert len(leader.tick()) == 1 and [f["source"] for _, f in queue.entries()] == ["yt", "hn-a"]

    # the leader dies without releasing: the other coordinator leads after the TTL
    client.pexpire(leader.lock.key, 1)
    _wait(lambda: client.get(leader.lock.key) is None, 30, "the lock to lapse")
    clock.now += 600
    other.tick()
    assert other.lock.fence is not None and other.lock.fence > int(entries[0][1]["fence"])
    # the old leader, stalled and unaware, can no longer enqueue: Redis checks the fence
    assert leader.lock.value is not None
    assert leader.queue.enqueue_due(leader.lock, "hn-c", "{}", clock.now, clock.now) is None
    assert leader.lock.value is None
    assert "hn-c" not in {f["source"] for _, f in queue.entries()}


def test_a_job_nobody_touches_is_reclaimed_by_another_worker(client):
    prefix = _prefix()
    queue = CrawlQueue(client, prefix)
    queue.ensure_group()
    client.xadd(queue.stream, {"source": "hn", "fence": "1", "job": "{}"})
    first = queue.take("dead", claim_idle_ms=200, block_ms=100)
    assert first is not None
    assert queue.take("alive", claim_idle_ms=60_000, block_ms=100) is None, "not idle long yet"
    reclaimed = _wait(lambda: queue.take("alive", claim_idle_ms=200, block_ms=100), 30, "a reclaim")
    assert reclaimed.entry_id == first.entry_id and reclaimed.reclaimed
    # a live worker's touch keeps its job: reset idle, so no reclaim right after
    assert queue.touch("alive", reclaimed.entry_id)
    assert queue.take("third", claim_idle_ms=60_000, block_ms=100) is None
    queue.done(reclaimed)
    assert queue.entries() == [] and client.xpending(queue.stream, queue.GROUP)["pending"] == 0


def _leader_pid(lock: LeaderLock) -> tuple[int, int] | None:
    """(fence, pid) of whoever leads now."""
    current = lock.current()
    if current is None:
        return None
    fence, holder = current.split("/", 1)
    return int(fence), int(holder.split(":")[1])


def test_leader_failover_between_two_coordinator_processes(redis_node, client, tmp_path, processes):
    prefix = _prefix()
    data = _coordinated(redis_node.url, prefix, [_hn("hn-a", "1s"), _hn("hn-b", "1s")], tmp_path,
                        leader_ttl="2s")  # fmt: skip
    path = _write(tmp_path / "config.yaml", data)
    for n in (1, 2):
        processes.append(RoleProcess("coordinator", path, tmp_path / f"coordinator{n}.log"))
    by_pid = {p.pid: p for p in processes}
    lock = LeaderLock(client, f"{prefix}leader", 2)
    queue = CrawlQueue(client, prefix)
    consumed: list[tuple[str, int]] = []  # (entry id, fence), in the order Redis gave them

    def consume(until: Callable[[], bool]) -> None:
        def step() -> bool:
            entry = queue.take("test", claim_idle_ms=600_000, block_ms=200)
            if entry is not None:
                consumed.append((entry.entry_id, entry.fence))
                queue.done(entry)
            return until()
        _wait(step, 240, "jobs from the coordinators")

    first_fence, first_pid = _wait(lambda: _leader_pid(lock), 120, "a leader")
    consume(lambda: sum(f == first_fence for _, f in consumed) >= 4)
    by_pid[first_pid].sigkill()
    survivor = next(p for p in processes if p.pid != first_pid)
    second_fence, second_pid = _wait(
        lambda: (lp := _leader_pid(lock)) and lp[1] != first_pid and lp, 120, "the other leader"
    )
    assert second_pid == survivor.pid and second_fence > first_fence
    consume(lambda: sum(f == second_fence for _, f in consumed) >= 4)
    # never two leaders: in the stream's order the fences never go back
    ids = [tuple(map(int, i.split("-"))) for i, _ in consumed]
    assert ids == sorted(ids)
    fences = [f for _, f in consumed]
    assert fences == sorted(fences) and set(fences) == {first_fence, second_fence}, fences
    # a clean exit gives the lock up at once
    assert survivor.terminate() == 0
    assert lock.current() is None
    assert "leader.released" in survivor.log()


# ------------------------------------------------------------ crawler workers


class GatedSources(SourcesServer):
    """The local sources, holding every request while `gate` is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        base = self.RequestHandlerClass
        server = self

        class Gated(base):  # type: ignore[valid-type,misc]
            def do_GET(self) -> None:
                if not server.gate.is_set():
                    server.entered.set()
                    server.gate.wait(300)
                super().do_GET()

        self.RequestHandlerClass = Gated


def _worker_config(tmp: Path, es_url: str, redis_url: str, prefix: str, base_urls: dict[str, str],
                   index_prefix: str) -> dict[str, Any]:  # fmt: skip
    data = demo_config(es_url, base_urls, "http://127.0.0.1:9", tmp, index_prefix=index_prefix)
    data["sources"] = [s for s in data["sources"] if s["name"] == "hackernews"]
    data["alerts"]["enabled"] = False
    data["daemon"]["state_dir"] = str(tmp / "state")
    data["daemon"]["http_port"] = 0  # two workers on one machine
    data["redis"] = {"url": redis_url, "key_prefix": prefix, "lease_ttl": "2s", "claim_idle": "2s"}
    return data


def _children_of(pid: int) -> list[int]:
    """Live crawl children working for process `pid`: spawned ones (`crawlers.run
    --parent-pid PID`) and those forked by its fork server (`crawlers.forkserver`, a
    child of `pid`; a forked child has the server's command line)."""
    procs: dict[int, tuple[int, list[bytes]]] = {}
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        if proc.name.isdigit() and fields[0] != "Z":
            procs[int(proc.name)] = (int(fields[1]), cmdline)
    servers = {p for p, (ppid, cmd) in procs.items() if ppid == pid and b"crawlers.forkserver" in cmd}
    found = []
    for p, (ppid, cmd) in procs.items():
        spawned = b"--parent-pid" in cmd and cmd[cmd.index(b"--parent-pid") + 1] == str(pid).encode()
        if spawned or ppid in servers:
            found.append(p)
    return found


def _fork_servers_of(pid: int) -> list[int]:
    """Crawl fork servers (`crawlers.forkserver`) started by process `pid`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"crawlers.forkserver" in cmdline:
            found.append(int(proc.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (not gone, not a zombie)."""
    alive = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(p)
    return alive


def _mentions(es, index_prefix: str) -> list[dict[str, Any]]:
    alias = f"{index_prefix}-mentions"
    if not es.indices.exists_alias(name=alias):
        return []
    es.indices.refresh(index=alias)
    return es.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]


def test_a_crawler_killed_mid_job_loses_nothing_and_repeats_nothing(
    es_node, es_client, redis_node, client, tmp_path, processes
):
    prefix, index_prefix = _prefix(), f"ro{uuid.uuid4().hex[:8]}"
    corpus = build_corpus(datetime.now(UTC))
    expected = {p.id for p in corpus.history if p.tone != "noise" and assign_source(p) == "hackernews"}
    with GatedSources() as sources:
        sources.publish(corpus.history)
        data = _worker_config(tmp_path, es_node.url, redis_node.url, prefix, sources.base_urls(),
                              index_prefix)  # fmt: skip
        path = _write(tmp_path / "config.yaml", data)
        config = parse_config(data, env={})
        coordinator = Coordinator(config, redis.Redis.from_url(redis_node.url, decode_responses=True),
                                  clock=Clock())  # fmt: skip
        queue = CrawlQueue(client, prefix)
        assert coordinator.tick(), "the first job is due"

        doomed = RoleProcess("crawler", path, tmp_path / "crawler1.log")
        processes.append(doomed)
        assert sources.entered.wait(240), "the first worker's crawl never reached the source"
        assert f":{doomed.pid}:" in (client.get(f"{prefix}lease:hackernews") or "")
        crawl_children = _children_of(doomed.pid)
        assert crawl_children, "its crawl child is running"
        assert _fork_servers_of(doomed.pid), "forked by its fork server (crawl.child_start: fork)"
        doomed.sigkill()  # mid-job: its crawl child dies with it (parent-death signal)
        _wait(lambda: not _alive(crawl_children), 60, "the orphaned crawl child to die")
        sources.gate.set()

        rescuer = RoleProcess("crawler", path, tmp_path / "crawler2.log")
        processes.append(rescuer)
        _wait(lambda: "crawl.job_done" in rescuer.log(), 600, "the other worker to finish the job")
        assert re.search(r"event=crawl\.taken .*reclaimed=true", rescuer.log()), rescuer.log()[-3000:]
        assert queue.entries() == [] and client.xpending(queue.stream, queue.GROUP)["pending"] == 0
        hits = _mentions(es_client, index_prefix)
        assert len(hits) == len(expected), "every mention once"
        assert all(h["_source"]["source"] == "hackernews" for h in hits)
        assert all(h["_source"].get("sentiment", {}).get("label") for h in hits), "scored"
        assert client.get(f"{prefix}cursor:hackernews"), "the rescuer committed the cursor"
        # another round of the same source: nothing new, nothing doubled
        coordinator.clock.now += 3600  # type: ignore[attr-defined]
        assert coordinator.tick()
        _wait(lambda: rescuer.log().count("crawl.job_done") >= 2, 300, "the second job")
        assert len(_mentions(es_client, index_prefix)) == len(expected)
        assert rescuer.terminate() == 0


def test_two_crawler_workers_never_crawl_one_source_at_once(
    es_node, redis_node, client, tmp_path, processes
):
    prefix = _prefix()
    held = HeldServer()
    threading.Thread(target=held.serve_forever, daemon=True).start()
    try:
        data = {
            "brands": [{"name": "Acme", "query": "acme"}],
            "sources": [{"name": "forum", "type": "discourse", "timeout": "60s",
                         "forum_url": f"http://127.0.0.1:{held.server_port}",
                         "schedule": {"every": "1h", "jitter": "0s"}}],
            "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"ro{uuid.uuid4().hex[:8]}",
                              "spool_dir": str(tmp_path / "spool")},
            "alerts": {"enabled": False},
            "crawl": {"allow_private_addresses": True},
            "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
            "redis": {"url": redis_node.url, "key_prefix": prefix, "lease_ttl": "60s",
                      "claim_idle": "2s"},
        }  # fmt: skip
        paths = []
        for n in (1, 2):  # two workers on one machine: a spool and a state folder each
            data["elasticsearch"]["spool_dir"] = str(tmp_path / f"spool{n}")
            data["daemon"]["state_dir"] = str(tmp_path / f"state{n}")
            paths.append(_write(tmp_path / f"config{n}.yaml", data))
        queue = CrawlQueue(client, prefix)
        queue.ensure_group()
        # Two jobs of one source at once (say, from a coordinator of an older config
        # that queued one before the marker existed): only the lease stands between
        # two crawls of the source now.
        for _ in range(2):
            client.xadd(queue.stream, {"source": "forum", "fence": "1", "job": "{}"})
        one = RoleProcess("crawler", paths[0], tmp_path / "crawler1.log")
        processes.append(one)
        assert held.entered.wait(240), "no worker's crawl reached the source"
        two = RoleProcess("crawler", paths[1], tmp_path / "crawler2.log")
        processes.append(two)
        crawling = one if "crawl.taken" in one.log() else two
        waiting = two if crawling is one else one
        _wait(lambda: "crawl.job_left" in waiting.log() or "crawl.job_left" in crawling.log(),
              240, "the second job to find the source's lease held")  # fmt: skip
        lease = client.get(f"{prefix}lease:forum") or ""
        assert f":{crawling.pid}:" in lease, lease
        log = one.log() + two.log()
        skipped = [line for line in log.splitlines() if "crawl.skipped" in line]
        assert skipped and all(f":{crawling.pid}:" in line for line in skipped), skipped
        assert all("crawl.finished" not in line and "crawl.failed" not in line
                   for line in log.splitlines()), "no crawl ended while the first one was held"  # fmt: skip
        held.release.set()
        # the job left pending is reclaimed and crawled once the lease is free
        _wait(lambda: (one.log() + two.log()).count("crawl.job_done") == 2, 300, "both jobs done")
        assert queue.entries() == [] and client.xpending(queue.stream, queue.GROUP)["pending"] == 0
        assert (one.log() + two.log()).count("crawl.failed") == 2, "each job crawled once (503)"
    finally:
        held.release.set()
        held.shutdown()
        held.server_close()


# ------------------------------------------------------------------ alerters


def _alerter_config(tmp: Path, es_url: str, redis_url: str, prefix: str, index_prefix: str,
                    slack: SlackSandbox, n: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "brands": [{"name": "Acme"}],
        "elasticsearch": {"hosts": [es_url], "index_prefix": index_prefix,
                          "spool_dir": str(tmp / f"spool{n}")},
        "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
        "alerts": {"check_every": "2s"},
        "health": {"enabled": False},
        "daemon": {"state_dir": str(tmp / f"state{n}"), "http_port": 0},
        "redis": {"url": redis_url, "key_prefix": prefix, "leader_ttl": "2s"},
    }  # fmt: skip


def _critics(es, config, tmp: Path, n: int) -> list[str]:
    """Index `n` negative posts by authors who reach millions (each one high-reach alert)
    in the last hour; their mention ids."""
    now = datetime.now(UTC)
    posts = [mention("Acme", now - timedelta(minutes=50 - 10 * k), "negative", f"critic{k}",
                     reach=2_000_000 + k, author=f"critic{k}") for k in range(n)]  # fmt: skip
    setup_elasticsearch(es, config.elasticsearch, now=now)
    with BulkWriter(es, config.elasticsearch, spool_dir=tmp / "seed-spool", refresh=True) as writer:
        assert writer.write(posts).ok
    return [p.id for p in posts]


def _alert_ids(slack: SlackSandbox) -> list[str]:
    """The alert id of every message Slack took, in order (from the message metadata)."""
    return [str(((m.payload.get("metadata") or {}).get("event_payload") or {}).get("alert_id"))
            for m in slack.messages]  # fmt: skip


@pytest.mark.parametrize("posted", [True, False], ids=["slack-took-it", "never-reached-slack"])
def test_a_claim_of_an_older_alerter_leadership_is_taken_over_at_once(
    es_node, es_client, redis_node, client, tmp_path, posted
):
    """The engine under a leadership: a `sending` claim of an older fence is the dead
    leader's, taken over now (not after SEND_LEASE), and the channel is read back first."""
    prefix, index_prefix = _prefix(), f"ra{uuid.uuid4().hex[:8]}"
    with SlackSandbox() as slack:
        config = parse_config(_alerter_config(tmp_path, es_node.url, redis_node.url,
                                              prefix, index_prefix, slack), env={})  # fmt: skip
        _critics(es_client, config, tmp_path, 1)
        key = f"{prefix}alerter"
        dead, heir = LeaderLock(client, key, 30), LeaderLock(client, key, 30)
        dead_fence = dead.acquire()
        assert dead_fence is not None
        notifier = SlackNotifier.from_config(config.slack)
        now = datetime.now(UTC)
        [alert] = AlertEngine(config, es_client, notifier, leadership=dead).dry_run(now)
        store = AlertStateStore(es_client, index_prefix)
        store.install()
        assert store.enqueue(OutboxEntry(alert=alert, status="pending", created_at=now))
        entry = store.get_entry(alert.alert_id)
        assert entry is not None
        store.claim(entry, "doomed", now, now + timedelta(minutes=5), dead_fence)
        if posted:
            notifier.send(alert)  # ...and the leader is SIGKILLed before recording it
        client.delete(key)  # its lock lapses

        # Without a newer leadership the claim holds for its whole send lease.
        assert AlertEngine(config, es_client, notifier).retry_outbox(now) == []
        assert heir.acquire() is not None and heir.fence > dead_fence
        engine = AlertEngine(config, es_client, notifier, leadership=heir)
        engine.retry_outbox(now + timedelta(seconds=1))
        assert _alert_ids(slack) == [alert.alert_id], "once in Slack, either way"
        done = store.get_entry(alert.alert_id)
        assert done is not None and done.status == "delivered" and done.fence == heir.fence
        assert done.delivery is not None and done.delivery.ts == slack.messages[0].ts


def test_an_alerter_that_lost_its_lock_sends_nothing_and_leaves_the_alert_pending(
    es_node, es_client, redis_node, client, tmp_path
):
    prefix, index_prefix = _prefix(), f"ra{uuid.uuid4().hex[:8]}"
    with SlackSandbox() as slack:
        config = parse_config(_alerter_config(tmp_path, es_node.url, redis_node.url,
                                              prefix, index_prefix, slack), env={})  # fmt: skip
        _critics(es_client, config, tmp_path, 1)
        key = f"{prefix}alerter"
        stalled, other = LeaderLock(client, key, 30), LeaderLock(client, key, 30)
        assert stalled.acquire() is not None
        notifier = SlackNotifier.from_config(config.slack)
        engine = AlertEngine(config, es_client, notifier, leadership=stalled)
        store = AlertStateStore(es_client, index_prefix)
        now = datetime.now(UTC)
        # Stalled past its TTL while another took over, and unaware of it so far.
        client.delete(key)
        assert other.acquire() is not None
        assert stalled.fence is not None, "it has not noticed yet"
        assert engine.check(now) == [], "checked, but not sent: the lock is confirmed first"
        assert slack.messages == []
        [entry] = store.entries()
        assert entry.status == "pending" and not entry.maybe_posted, "back to pending, unsent"
        assert stalled.fence is None
        # It notices now: no further check, no send at all.
        assert engine.check(now + timedelta(minutes=1)) == [] and slack.messages == []
        # The leader sends it.
        sent = AlertEngine(config, es_client, notifier, leadership=other).check(now)
        assert [a.alert_id for a in sent] == [entry.alert_id] and len(slack.messages) == 1


def test_an_alerter_runs_the_one_at_a_time_jobs_only_while_leading_and_never_loads_the_model(
    es_node, es_client, redis_node, client, tmp_path
):
    prefix, index_prefix = _prefix(), f"ra{uuid.uuid4().hex[:8]}"
    with SlackSandbox() as slack:
        data = _alerter_config(tmp_path, es_node.url, redis_node.url, prefix, index_prefix, slack)
        data["elasticsearch"]["retention"] = {"keep": "13 months"}
        data["reports"] = {"schedules": [{"period": "week", "day_of_week": "mon"}],
                           "output_dir": str(tmp_path / "reports")}  # fmt: skip
        config = parse_config(data, env={})
        _critics(es_client, config, tmp_path, 1)
        lock = LeaderLock(client, f"{prefix}alerter", 30)
        daemon = Daemon(config, role="alerter", leadership=lock)
        daemon.start()
        try:
            jobs = {job.id for job in daemon.scheduler.get_jobs()}
            assert jobs == {"alerts:check", "housekeeping", "retention", "report:0"}, jobs
            assert not daemon.leading()
            assert daemon.alert_job() == 0
            daemon.report_job(0)  # a standby writes no report
            assert not any((tmp_path / "reports").glob("**/*.html"))
            daemon.housekeeping_job()
            assert slack.messages == [] and AlertStateStore(es_client, index_prefix).entries() == []
            assert lock.acquire() is not None and daemon.leading()
            assert daemon.alert_job() >= 1 and slack.messages, "the leader checks and sends"
            daemon.housekeeping_job()
            assert daemon._pipeline is None, "an alerter never loads the model"
        finally:
            daemon.stop()
            lock.release()


class HeldSlack(SlackSandbox):
    """The Slack sandbox, holding the first `chat.postMessage` until `gate` opens: taken
    first and its answer held (`posted`), or held and then dropped (never reached Slack)."""

    def __init__(self, posted: bool) -> None:
        super().__init__()
        self.posted = posted
        self.gate = threading.Event()
        self.entered = threading.Event()
        self._first = threading.Lock()
        self._held = False

    def handle_api(self, method: str, token: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        if method != "chat.postMessage":
            return super().handle_api(method, token, payload)
        with self._first:
            first, self._held = not self._held, True
        if not first:
            return super().handle_api(method, token, payload)
        answer = super().handle_api(method, token, payload) if self.posted else None
        self.entered.set()
        self.gate.wait(300)  # its sender is killed meanwhile
        return answer or {"ok": False, "error": "internal_error"}


@pytest.mark.parametrize("posted", [True, False], ids=["slack-took-it", "never-reached-slack"])
def test_two_alerters_one_killed_mid_send_each_alert_reaches_slack_once(
    es_node, es_client, redis_node, client, tmp_path, processes, posted
):
    prefix, index_prefix = _prefix(), f"ra{uuid.uuid4().hex[:8]}"
    with HeldSlack(posted) as slack:
        paths = []
        for n in (1, 2):  # two alerters on one machine: a spool and a state folder each
            data = _alerter_config(tmp_path, es_node.url, redis_node.url, prefix, index_prefix,
                                   slack, n)  # fmt: skip
            paths.append(_write(tmp_path / f"config{n}.yaml", data))
        config = parse_config(data, env={})
        critics = _critics(es_client, config, tmp_path, 3)
        for n, path in enumerate(paths, 1):
            processes.append(RoleProcess("alerter", path, tmp_path / f"alerter{n}.log"))
        lock = LeaderLock(client, f"{prefix}alerter", 2)
        assert slack.entered.wait(300), "no alerter got as far as posting"
        first_fence, first_pid = _leader_pid(lock)  # type: ignore[misc]
        leader = next(p for p in processes if p.pid == first_pid)
        standby = next(p for p in processes if p.pid != first_pid)
        # Both were started together, but the leader can reach Slack before the other has
        # finished starting (a loaded machine): the standby must be up before the kill.
        _wait(lambda: "alerter.started" in standby.log(), 300, "the second alerter to start")
        assert "alerter.leading" not in standby.log()
        assert not any(_fork_servers_of(p.pid) for p in processes), "alerters never crawl"
        leader.sigkill()  # between claiming the first alert and recording its delivery
        slack.gate.set()

        store = AlertStateStore(es_client, index_prefix)
        # The leader had queued every alert of its check (the critics' high-reach ones,
        # and the wave they start) before it began to post.
        _wait(lambda: all(e.status == "delivered" for e in store.entries()),
              300, "the standby to deliver every alert")  # fmt: skip
        entries = store.entries()
        assert {e.alert.top_posts[0].id for e in entries if e.alert.kind == "high_reach"} == set(critics)
        ids = _alert_ids(slack)
        assert sorted(ids) == sorted(e.alert_id for e in entries), "each alert once"
        second_fence, second_pid = _leader_pid(lock)  # type: ignore[misc]
        assert second_pid == standby.pid and second_fence > first_fence
        assert "taking it over" in standby.log(), standby.log()[-3000:]
        assert all(e.fence == second_fence for e in store.entries()), "the heir sent them all"
        assert standby.terminate() == 0
        assert lock.current() is None and "alerter.released" in standby.log()
        assert len(slack.messages) == len(entries)


# ------------------------------------------------------------------- scorers


def _unscored(n: int, tag: str) -> list[Any]:
    now = datetime.now(UTC)
    labels = ("negative", "neutral", "positive")
    return [mention("Acme", now - timedelta(minutes=k), labels[k % 3], f"{tag}{k}")
            .model_copy(update={"sentiment": None}) for k in range(n)]  # fmt: skip


def test_score_batches_are_taken_once_reclaimed_from_a_dead_scorer_and_done(client):
    queue = ScoreQueue(client, _prefix())
    mentions = _unscored(ScoreQueue.BATCH + 5, "q")
    assert len(queue.put("reddit", mentions)) == 2, "in batches of BATCH"
    first = queue.take("dead", claim_idle_ms=200, block_ms=100)
    assert first is not None and first.source == "reddit" and not first.reclaimed
    assert [Mention.model_validate(m).id for m in json.loads(first.mentions)] == [m.id for m in mentions[:ScoreQueue.BATCH]]
    second = queue.take("alive", claim_idle_ms=60_000, block_ms=100)
    assert second is not None and second.entry_id != first.entry_id
    assert queue.take("alive", claim_idle_ms=60_000, block_ms=100) is None, "nothing else"
    queue.done(second)
    reclaimed = _wait(lambda: queue.take("alive", claim_idle_ms=200, block_ms=100), 30, "a reclaim")
    assert reclaimed.entry_id == first.entry_id and reclaimed.reclaimed
    queue.done(reclaimed)
    assert queue.entries() == [] and client.xpending(queue.stream, queue.GROUP)["pending"] == 0


def test_a_crawler_with_scorers_hands_its_mentions_over_and_never_loads_the_model(
    es_node, redis_node, client, tmp_path
):
    prefix = _prefix()
    config = parse_config({
        "brands": [{"name": "Acme"}],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"rs{uuid.uuid4().hex[:8]}",
                          "spool_dir": str(tmp_path / "spool")},
        "alerts": {"enabled": False},
        "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
        "redis": {"url": redis_node.url, "key_prefix": prefix, "scoring": "scorer"},
    }, env={})  # fmt: skip
    daemon = Daemon(config, role="crawler")
    assert daemon.handoff is not None and not daemon.scores
    mentions = _unscored(3, "h")
    daemon._hand_off("reddit", mentions)
    daemon.housekeeping_job()
    [(_, fields)] = ScoreQueue(client, prefix).entries()
    assert fields["source"] == "reddit"
    assert [Mention.model_validate(m).id for m in json.loads(fields["mentions"])] == [m.id for m in mentions]
    assert daemon._pipeline is None, "a crawler that hands off never loads the model"
    daemon.stop()
    whole = Daemon(config, role="all")
    assert whole.handoff is None and whole.scores, "--role all always scores itself"
    whole.stop()


class GatedProxy(ThreadingHTTPServer):
    """Forwards HTTP to Elasticsearch, holding every `_bulk` request while `gate` is closed."""

    daemon_threads = True

    def __init__(self, target: str) -> None:
        from urllib.parse import urlsplit

        self.target = urlsplit(target)
        self.gate = threading.Event()
        self.entered = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                import http.client

                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if "_bulk" in self.path and not server.gate.is_set():
                    server.entered.set()
                    server.gate.wait(300)
                conn = http.client.HTTPConnection(server.target.hostname, server.target.port,
                                                  timeout=120)  # fmt: skip
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}  # fmt: skip
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", resp.getheader("Content-Length") or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


def test_a_scorer_killed_mid_batch_loses_nothing_and_repeats_nothing(
    es_node, es_client, redis_node, client, tmp_path, processes
):
    prefix, index_prefix = _prefix(), f"rs{uuid.uuid4().hex[:8]}"
    proxy = GatedProxy(es_node.url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        paths = []
        for n, es_url in ((1, proxy.url), (2, es_node.url)):
            paths.append(_write(tmp_path / f"config{n}.yaml", {
                "brands": [{"name": "Acme"}],
                "elasticsearch": {"hosts": [es_url], "index_prefix": index_prefix,
                                  "spool_dir": str(tmp_path / f"spool{n}")},
                "alerts": {"enabled": False},
                "health": {"enabled": False},
                "daemon": {"state_dir": str(tmp_path / f"state{n}"), "http_port": 0},
                "redis": {"url": redis_node.url, "key_prefix": prefix, "claim_idle": "2s",
                          "scoring": "scorer"},
            }))  # fmt: skip
        queue = ScoreQueue(client, prefix)
        mentions = _unscored(30, "s")
        queue.put("reddit", mentions)
        doomed = RoleProcess("scorer", paths[0], tmp_path / "scorer1.log")
        processes.append(doomed)
        assert proxy.entered.wait(600), "the first scorer never got as far as indexing"
        doomed.sigkill()  # scored, its index write in flight: the batch is not acknowledged
        proxy.gate.set()
        assert client.xpending(queue.stream, queue.GROUP)["pending"] == 1
        rescuer = RoleProcess("scorer", paths[1], tmp_path / "scorer2.log")
        processes.append(rescuer)
        _wait(lambda: "score.batch_done" in rescuer.log(), 600, "the other scorer to finish the batch")
        assert re.search(r"event=score\.taken .*reclaimed=true", rescuer.log()), rescuer.log()[-3000:]
        assert queue.entries() == [] and client.xpending(queue.stream, queue.GROUP)["pending"] == 0
        hits = _mentions(es_client, index_prefix)
        assert sorted(h["_id"] for h in hits) == sorted(m.id for m in mentions), "every mention once"
        assert all(h["_source"].get("sentiment", {}).get("label") for h in hits), "scored"
        assert rescuer.terminate() == 0
    finally:
        proxy.gate.set()
        proxy.shutdown()
        proxy.server_close()


def test_a_crawler_hands_a_real_crawl_to_a_scorer_and_every_mention_is_indexed_once_scored(
    es_node, es_client, redis_node, client, tmp_path, processes
):
    prefix, index_prefix = _prefix(), f"rs{uuid.uuid4().hex[:8]}"
    corpus = build_corpus(datetime.now(UTC))
    expected = {p.id for p in corpus.history if p.tone != "noise" and assign_source(p) == "hackernews"}
    with SourcesServer() as sources:
        sources.publish(corpus.history)
        paths = []
        for n in (1, 2):  # a crawler and a scorer on one machine: a spool and a state folder each
            data = _worker_config(tmp_path, es_node.url, redis_node.url, prefix, sources.base_urls(),
                                  index_prefix)  # fmt: skip
            data["redis"]["scoring"] = "scorer"
            data["elasticsearch"]["spool_dir"] = str(tmp_path / f"spool{n}")
            data["daemon"]["state_dir"] = str(tmp_path / f"state{n}")
            paths.append(_write(tmp_path / f"config{n}.yaml", data))
        config = parse_config(data, env={})
        coordinator = Coordinator(config, redis.Redis.from_url(redis_node.url, decode_responses=True),
                                  clock=Clock())  # fmt: skip
        assert coordinator.tick(), "the first job is due"
        crawler = RoleProcess("crawler", paths[0], tmp_path / "crawler.log")
        processes.append(crawler)
        _wait(lambda: "crawl.job_done" in crawler.log(), 600, "the crawl")
        assert "scoring.handed_off" in crawler.log() and "mentions.ingested" not in crawler.log()
        assert client.get(f"{prefix}cursor:hackernews"), "the cursor moved after the hand-off"
        assert ScoreQueue(client, prefix).entries(), "the mentions wait for a scorer"
        scorer = RoleProcess("scorer", paths[1], tmp_path / "scorer.log")
        processes.append(scorer)
        _wait(lambda: not ScoreQueue(client, prefix).entries(), 600, "the scorer to take every batch")
        hits = _mentions(es_client, index_prefix)
        assert len(hits) == len(expected), "every mention once"
        assert all(h["_source"].get("sentiment", {}).get("label") for h in hits), "scored"
        assert crawler.terminate() == 0 and scorer.terminate() == 0
