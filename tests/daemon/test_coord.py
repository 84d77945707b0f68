"""Shared crawl state (daemon.coord): cursors, duplicate state and crawl leases, in
files and in a real Redis (the session's redis-server), against the one contract."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from daemon.coord import Lease, LocalState, RedisState, SharedState, staged_crawl

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "redis"])
def state(request, tmp_path, clock) -> Iterator[SharedState]:
    if request.param == "local":
        yield LocalState(tmp_path / "state", clock=clock)
        return
    node = request.getfixturevalue("redis_node")
    shared = RedisState(redis.Redis.from_url(node.url, decode_responses=True), _prefix(), clock)
    yield shared
    shared.close()


@pytest.fixture
def redis_pair(redis_node) -> Iterator[tuple[RedisState, RedisState]]:
    """Two holders with their own connections (two daemons), one key space."""
    prefix = _prefix()
    a = RedisState(redis.Redis.from_url(redis_node.url, decode_responses=True), prefix)
    b = RedisState(redis.Redis.from_url(redis_node.url, decode_responses=True), prefix)
    yield a, b
    a.close()
    b.close()


# ------------------------------------------------------------------- cursors


def test_a_cursor_moves_only_when_committed(state):
    assert state.load_cursor("hn") == {}
    token = state.save_pending_cursor("hn", {"source": "hn", "queries": {"acme": 1}})
    assert state.load_cursor("hn") == {}, "pending is not committed"
    assert state.commit_cursor("hn", token) is True
    assert state.load_cursor("hn")["queries"] == {"acme": 1}
    assert state.commit_cursor("hn", token) is False, "a token commits once"


def test_a_newer_pending_cursor_supersedes_an_older_one(state):
    old = state.save_pending_cursor("hn", {"queries": {"acme": 1}})
    new = state.save_pending_cursor("hn", {"queries": {"acme": 2}})
    assert state.commit_cursor("hn", old) is False
    assert state.load_cursor("hn") == {}
    state.discard_cursor("hn", new)
    assert state.commit_cursor("hn", new) is False
    assert state.load_cursor("hn") == {}


_CRASH = """
import os, signal, sys
import redis
from daemon.coord import RedisState
s = RedisState(redis.Redis.from_url(sys.argv[1], decode_responses=True), sys.argv[2])
s.save_pending_cursor("hn", {"queries": {"acme": 2}})
print("pending", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies before the mentions were indexed
s.commit_cursor("hn", "never reached")
"""


def test_a_crawl_that_dies_before_commit_leaves_the_old_cursor_in_redis(redis_node):
    prefix = _prefix()
    shared = RedisState(redis.Redis.from_url(redis_node.url, decode_responses=True), prefix)
    shared.commit_cursor("hn", shared.save_pending_cursor("hn", {"queries": {"acme": 1}}))
    proc = subprocess.run([sys.executable, "-c", _CRASH, redis_node.url, prefix],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == "pending"
    assert shared.client.exists(shared.key("cursor-pending", "hn")) == 1
    assert shared.load_cursor("hn")["queries"] == {"acme": 1}
    shared.close()


def test_a_cursor_does_not_commit_under_a_lease_its_holder_lost(redis_pair):
    a, b = redis_pair
    lease = a.acquire("hn", ttl_seconds=0.2)
    assert lease is not None
    token = a.save_pending_cursor("hn", {"queries": {"acme": 5}})
    while (taken := b.acquire("hn", ttl_seconds=60)) is None:
        time.sleep(0.05)  # a's lease lapses (its daemon paused past the TTL)
    assert a.commit_cursor("hn", token, lease) is False
    assert a.load_cursor("hn") == {}
    token = b.save_pending_cursor("hn", {"queries": {"acme": 6}})
    assert b.commit_cursor("hn", token, taken) is True
    assert a.load_cursor("hn")["queries"] == {"acme": 6}


# -------------------------------------------------------------------- leases


def test_one_holder_at_a_time_and_only_the_holder_renews_or_releases(redis_pair):
    a, b = redis_pair
    lease = a.acquire("reddit", ttl_seconds=30)
    assert lease is not None
    assert b.acquire("reddit", ttl_seconds=30) is None
    assert b.holder("reddit") == lease.token
    assert f":{os.getpid()}:" in lease.token, "the token says who holds it"
    impostor = Lease("reddit", "someone-else", 30)
    assert b.renew(impostor) is False
    assert b.release(impostor) is False
    assert b.acquire("reddit", ttl_seconds=30) is None
    assert a.renew(lease) is True
    assert 0 < a.client.pttl(a.key("lease", "reddit")) <= 30_000
    assert a.acquire("hackernews", ttl_seconds=30) is not None, "leases are per source"
    assert a.release(lease) is True
    assert a.release(lease) is False
    assert b.acquire("reddit", ttl_seconds=30) is not None


def test_renewal_keeps_a_lease_past_its_ttl(redis_pair):
    a, b = redis_pair
    lease = a.acquire("rss", ttl_seconds=0.5)
    assert lease is not None
    for _ in range(6):  # 6 x 0.2 s: well past the 0.5 s TTL, renewed each time
        time.sleep(0.2)
        assert a.renew(lease) is True
    assert b.acquire("rss", ttl_seconds=30) is None


_HOLD = """
import sys, time
import redis
from daemon.coord import LocalState, RedisState
if sys.argv[1] == "redis":
    s = RedisState(redis.Redis.from_url(sys.argv[2], decode_responses=True), sys.argv[3])
else:
    s = LocalState(sys.argv[2])
lease = s.acquire("hn", ttl_seconds=float(sys.argv[4]))
print(lease.token if lease else "none", flush=True)
time.sleep(600)
"""


def _holder(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, *args], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    token = proc.stdout.readline().strip()
    return proc, token


def test_a_killed_holders_redis_lease_expires_after_its_ttl(redis_node):
    prefix = _prefix()
    shared = RedisState(redis.Redis.from_url(redis_node.url, decode_responses=True), prefix)
    proc, token = _holder("redis", redis_node.url, prefix, "1.5")
    try:
        assert token != "none"
        assert shared.acquire("hn", ttl_seconds=30) is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert shared.holder("hn") == token, "a dead holder's lease lasts until its TTL"
        lease = None
        for _ in range(600):
            lease = shared.acquire("hn", ttl_seconds=30)
            if lease is not None:
                break
            time.sleep(0.05)
        assert lease is not None, "the lease of a killed holder never expired"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        shared.close()


def test_a_killed_holders_local_lease_is_free_at_once(tmp_path):
    local = LocalState(tmp_path)
    proc, token = _holder("local", str(tmp_path), "-", "30")
    try:
        assert token != "none"
        assert local.acquire("hn", ttl_seconds=30) is None
        assert local.holder("hn") == token
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert local.holder("hn") is None
        lease = local.acquire("hn", ttl_seconds=30)
        assert lease is not None
        assert LocalState(tmp_path).acquire("hn", ttl_seconds=30) is None
        assert local.release(lease) is True
    finally:
        proc.kill()
        proc.wait(timeout=30)


# ------------------------------------------------------------ duplicate state


def test_duplicate_entries_expire_and_are_trimmed_to_the_newest(state, clock):
    t0 = clock.now
    day = 86400.0
    state.remember("hn", [("a", "h1", 1, t0 - 2 * day), ("b", None, 2**63 + 5, t0)],
                   max_age=7 * day, keep=10)  # fmt: skip
    assert [e[0] for e in state.recent("hn", max_age=7 * day)] == ["a", "b"]
    assert state.recent("hn", max_age=7 * day)[1] == ("b", None, 2**63 + 5, t0)
    clock.now = t0 + 6 * day  # "a" is 8 days old now
    assert [e[0] for e in state.recent("hn", max_age=7 * day)] == ["b"]
    state.remember("hn", [("c", "h3", None, clock.now), ("d", "h4", None, clock.now + 1)],
                   max_age=7 * day, keep=2)  # fmt: skip
    assert [e[0] for e in state.recent("hn", max_age=7 * day)] == ["c", "d"]
    clock.now += 8 * day
    assert state.recent("hn", max_age=7 * day) == []
    assert state.recent("reddit", max_age=7 * day) == []


def test_redis_duplicate_state_expires_as_a_whole(redis_node):
    shared = RedisState(redis.Redis.from_url(redis_node.url, decode_responses=True), _prefix())
    shared.remember("hn", [("a", "h1", 1, time.time())], max_age=0.3, keep=10)
    key = shared.key("recent", "hn")
    assert 0 < shared.client.pttl(key) <= 300
    while shared.client.exists(key):
        time.sleep(0.05)
    assert shared.recent("hn", max_age=3600) == []
    shared.close()


# -------------------------------------------------------------- staged crawl


def test_a_staged_crawl_holds_the_lease_and_publishes_what_it_committed(redis_pair, tmp_path):
    from crawlers.cursors import CursorStore

    a, b = redis_pair
    a.commit_cursor("hn", a.save_pending_cursor("hn", {"source": "hn", "queries": {"q": 1}}))
    a.remember("hn", [("old", "h0", None, time.time())], max_age=3600, keep=100)
    with staged_crawl(a, "hn", ttl_seconds=0.3, work_dir=tmp_path, max_age=3600, keep=100) as crawl:
        assert crawl is not None
        # the crawl child sees the shared state as its files
        staged = CursorStore(crawl.state_dir)
        assert staged.load("hn")["queries"] == {"q": 1}
        assert (crawl.state_dir / "hn.hashes.json").is_file()
        time.sleep(1.0)  # past the TTL: the keeper renews it
        with staged_crawl(b, "hn", ttl_seconds=30, work_dir=tmp_path, max_age=3600, keep=100) as other:
            assert other is None, "a second crawl of the source must not start"
        # the child's pending cursor, committed after the mentions were kept
        staged.commit("hn", staged.save_pending("hn", {"source": "hn", "queries": {"q": 2}}))
        from daemon.coord import read_hashes, write_hashes

        path = crawl.state_dir / "hn.hashes.json"
        write_hashes(path, [*read_hashes(path), ("new", "h1", 7, time.time())])
        assert crawl.publish_cursor() is True
    assert a.load_cursor("hn")["queries"] == {"q": 2}
    assert sorted(e[0] for e in a.recent("hn", max_age=3600)) == ["new", "old"]
    assert a.holder("hn") is None, "released at the end"
    assert not crawl.state_dir.exists()


def test_a_lapsed_lease_nobody_took_is_taken_again_by_its_holder_only(redis_pair):
    a, b = redis_pair
    lease = a.acquire("hn", ttl_seconds=0.2)
    assert lease is not None
    while a.holder("hn") is not None:
        time.sleep(0.05)  # the holder stalled past its TTL
    assert a.renew(lease) is True, "nobody crawled the source meanwhile"
    assert b.acquire("hn", ttl_seconds=30) is None
    token = a.save_pending_cursor("hn", {"queries": {"acme": 1}})
    assert a.commit_cursor("hn", token, lease) is True
