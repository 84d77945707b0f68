"""Crawl state several daemons can share: cursors, duplicate state, crawl leases.

One small protocol, `SharedState`, with two implementations:

- `LocalState`: today's files under `daemon.state_dir` (the cursor files of
  `crawlers.cursors`, the `<source>.hashes.json` of `crawlers.pipelines`'
  `DuplicatePipeline`) and an `flock` per source as the lease. Right for one daemon
  on one machine; it is what runs without a `redis:` section.
- `RedisState`: the same contract in Redis (`redis:` in config.yaml), so daemons on
  several machines (and, later, the workers of one role) share it.

The contract, which both keep:

Cursors
    A crawl's new cursor is first saved *pending* (`save_pending_cursor`, which
    returns a token) and becomes the cursor only through `commit_cursor(token)`,
    called after the mentions it covers are indexed or spooled. Commit is atomic
    (a rename of the pending file; one Lua script in Redis that sets the cursor and
    deletes the pending entry), so a crash before it leaves the old cursor and the
    next crawl re-fetches: a re-fetch is an overwrite (deterministic ids), a skipped
    cursor would be a gap. A newer pending cursor of the source supersedes an older
    one (the older token can no longer commit), as `crawlers.runner` does with its
    pending files. Given the crawl's `Lease`, commit refuses unless that lease is
    still held: a daemon that lost its lease (paused past the TTL while another took
    the source over) must not move the cursor under the new holder.

Duplicate state
    Per source, the recent mentions' `(id, exact hash, SimHash, seen)` entries the
    duplicate pipeline matches reposts against. Membership expires: an entry older
    than `max_age` is neither returned nor kept, and at most the newest `keep` are
    kept (Redis: a sorted set scored by `seen`, trimmed with ZREMRANGEBYSCORE and
    ZREMRANGEBYRANK in the same MULTI as the ZADD, and the key itself expiring
    `max_age` after the last write, so a source removed from the config leaves
    nothing behind).

Crawl leases
    `acquire(source, ttl)` returns a `Lease` or None when someone else holds the
    source: two holders never crawl one source at once. Redis: `SET key token NX PX
    ttl`; renewal and release compare the token first in a Lua script (the
    documented Redis lock pattern), so only the holder can extend or free it, and a
    holder that died simply lets it expire after `ttl`. A holder that was only
    stalled past the TTL (a renewing thread starved by a long CPU-bound step in the
    same process) takes its lease again on the next renewal if nobody else took it
    meanwhile; if someone did, its renewal fails and its cursor commit is refused
    (the fencing check above), so a stall costs a re-fetch, never a gap. The TTL
    (`redis.lease_ttl`) should stay well above such stalls. Local: a non-blocking
    `flock`, which the kernel drops when the holder's process dies (the TTL is not
    needed there).

`brandpulse/` (the core) never imports this module; `redis` is imported only when a
`RedisState` is made.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from crawlers.cursors import CursorStore, _safe_name, atomic_write_json

if TYPE_CHECKING:
    import redis

    from brandpulse.config import RedisConfig

logger = logging.getLogger("brandpulse.coord")

# One entry of a source's duplicate state, as `crawlers.pipelines.RecentHashes` keeps it:
# (mention id, exact hash of the normalised text or None, 64-bit SimHash or None, seen at).
DupEntry = tuple[str, str | None, int | None, float]

HASHES_VERSION = 1
# A pending cursor nobody commits (its daemon died) is dropped after this in Redis.
PENDING_TTL_SECONDS = 86400


@dataclass(frozen=True)
class Lease:
    """The right to crawl `source` until `ttl_seconds` after the last renewal."""

    source: str
    token: str
    ttl_seconds: float
    _handle: Any = field(default=None, compare=False, repr=False)


def holder_token() -> str:
    """A lease token that also says who holds it (host:pid:random), for the logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class SharedState(Protocol):
    """Cursors, duplicate state and crawl leases of all sources (see the module doc)."""

    def load_cursor(self, source: str) -> dict[str, Any]: ...

    def save_pending_cursor(self, source: str, data: dict[str, Any]) -> str: ...

    def commit_cursor(self, source: str, token: str, lease: Lease | None = None) -> bool: ...

    def discard_cursor(self, source: str, token: str) -> None: ...

    def recent(self, source: str, max_age: float) -> list[DupEntry]: ...

    def remember(self, source: str, entries: list[DupEntry], max_age: float, keep: int) -> None: ...

    def acquire(self, source: str, ttl_seconds: float) -> Lease | None: ...

    def renew(self, lease: Lease) -> bool: ...

    def release(self, lease: Lease) -> bool: ...

    def holder(self, source: str) -> str | None: ...

    def local_dir(self) -> Path | None:
        """The directory whose files *are* this state (a crawl may work in it directly),
        or None when the state lives elsewhere and a crawl works on a staged copy."""
        ...

    def close(self) -> None: ...


def _entry(raw: Any) -> DupEntry | None:
    try:
        mention_id, exact, sim, seen = raw
    except (TypeError, ValueError):
        return None
    if not isinstance(seen, int | float):
        return None
    return (str(mention_id), exact, int(sim) if sim is not None else None, float(seen))


def read_hashes(path: Path) -> list[DupEntry]:
    """The entries of a `DuplicatePipeline` hashes file ([] when absent or unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [e for e in (_entry(r) for r in raw) if e is not None]


def write_hashes(path: Path, entries: list[DupEntry]) -> None:
    """Write entries in the format `DuplicatePipeline` reads at open."""
    atomic_write_json(path, {"version": HASHES_VERSION, "entries": [list(e) for e in entries]})


# --------------------------------------------------------------------- files


class LocalState:
    """`SharedState` in files under one state directory (one daemon, one machine)."""

    def __init__(self, state_dir: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.cursors = CursorStore(self.state_dir)
        self.clock = clock

    def _pending(self, source: str, token: str) -> Path:
        return self.state_dir / f".{_safe_name(source)}.cursor.pending.{token}.json"

    def load_cursor(self, source: str) -> dict[str, Any]:
        return self.cursors.load(source)

    def save_pending_cursor(self, source: str, data: dict[str, Any]) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.state_dir.glob(f".{_safe_name(source)}.cursor.pending.*.json"):
            stale.unlink(missing_ok=True)  # superseded: it can no longer commit
        token = uuid.uuid4().hex[:12]
        self.cursors.save_pending(source, data, self._pending(source, token))
        return token

    def commit_cursor(self, source: str, token: str, lease: Lease | None = None) -> bool:
        if lease is not None and not self.renew(lease):
            return False
        return self.cursors.commit(source, self._pending(source, token))

    def discard_cursor(self, source: str, token: str) -> None:
        self._pending(source, token).unlink(missing_ok=True)

    def _hashes(self, source: str) -> Path:
        # the path DuplicatePipeline uses
        return self.state_dir / f"{source}.hashes.json"

    def recent(self, source: str, max_age: float) -> list[DupEntry]:
        cutoff = self.clock() - max_age
        return [e for e in read_hashes(self._hashes(source)) if e[3] >= cutoff]

    def remember(self, source: str, entries: list[DupEntry], max_age: float, keep: int) -> None:
        merged = {e[:3]: e for e in self.recent(source, max_age)}
        cutoff = self.clock() - max_age
        merged.update({e[:3]: e for e in entries if e[3] >= cutoff})
        kept = sorted(merged.values(), key=lambda e: e[3])[-keep:] if keep > 0 else []
        write_hashes(self._hashes(source), kept)

    def _lease_path(self, source: str) -> Path:
        return self.state_dir / f"{_safe_name(source)}.lease"

    def acquire(self, source: str, ttl_seconds: float) -> Lease | None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fh: IO[str] = self._lease_path(source).open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return None
        token = holder_token()
        fh.seek(0)
        fh.truncate()
        fh.write(token)
        fh.flush()
        return Lease(source, token, ttl_seconds, fh)

    def renew(self, lease: Lease) -> bool:
        fh = lease._handle
        return fh is not None and not fh.closed

    def release(self, lease: Lease) -> bool:
        fh = lease._handle
        if fh is None or fh.closed:
            return False
        fh.close()  # drops the flock
        return True

    def holder(self, source: str) -> str | None:
        # Probing takes a shared lock for an instant: an acquire at that very moment
        # fails as if the source were held (it is tried again on the next run).
        path = self._lease_path(source)
        try:
            with path.open("r", encoding="utf-8") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:
                    return fh.read().strip() or "?"
                return None
        except FileNotFoundError:
            return None

    def local_dir(self) -> Path:
        return self.state_dir

    def close(self) -> None:
        pass


# --------------------------------------------------------------------- Redis

# Renew or release only what we hold: compare the token and act in one step. A lease
# that lapsed while nobody else took it is taken again (its holder was stalled, e.g. a
# long CPU-bound step starved the renewing thread): nobody crawled the source since.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: pending hash, cursor, lease. ARGV: pending token, lease token ('' = no lease).
# -1: the lease is not ours (any more); 0: nothing pending under this token; 1: done.
_COMMIT = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then
  return -1
end
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], redis.call('HGET', KEYS[1], 'data'))
redis.call('DEL', KEYS[1])
return 1
"""
_DISCARD = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def redis_client(config: RedisConfig) -> redis.Redis:
    """A redis-py client for the `redis:` section (imports redis only here)."""
    import redis as redis_py

    from brandpulse.secrets import reveal

    return redis_py.Redis.from_url(
        config.url,
        username=config.username,
        password=reveal(config.password),
        socket_connect_timeout=config.connect_timeout.total_seconds(),
        socket_timeout=config.socket_timeout.total_seconds(),
        decode_responses=True,
        health_check_interval=30,
    )


class RedisState:
    """`SharedState` in Redis, every key under `prefix` (see the module doc).

    Keys: `<prefix>cursor:<source>` (JSON), `<prefix>cursor-pending:<source>` (hash of
    token and data, expiring after a day), `<prefix>recent:<source>` (sorted set of
    JSON `[id, exact, sim]` scored by seen time), `<prefix>lease:<source>` (the
    holder's token, with the lease's TTL).
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "brandpulse:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._commit = client.register_script(_COMMIT)
        self._discard = client.register_script(_DISCARD)

    @classmethod
    def from_config(cls, config: RedisConfig, clock: Callable[[], float] = time.time) -> RedisState:
        return cls(redis_client(config), config.key_prefix, clock)

    def key(self, kind: str, source: str) -> str:
        return f"{self.prefix}{kind}:{source}"

    def load_cursor(self, source: str) -> dict[str, Any]:
        raw = self.client.get(self.key("cursor", source))
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            logger.warning("cursor of %r in Redis is unreadable; crawling from lookback", source)
            return {}
        return data if isinstance(data, dict) else {}

    def save_pending_cursor(self, source: str, data: dict[str, Any]) -> str:
        token = uuid.uuid4().hex[:12]
        key = self.key("cursor-pending", source)
        text = json.dumps(data, ensure_ascii=False, sort_keys=True)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)  # supersedes an older pending cursor
            pipe.hset(key, mapping={"token": token, "data": text})
            pipe.expire(key, PENDING_TTL_SECONDS)
            pipe.execute()
        return token

    def commit_cursor(self, source: str, token: str, lease: Lease | None = None) -> bool:
        keys = [self.key("cursor-pending", source), self.key("cursor", source),
                self.key("lease", source)]  # fmt: skip
        done = int(self._commit(keys=keys, args=[token, lease.token if lease else ""]))
        if done == -1:
            logger.warning(
                "cursor of %r not committed: this daemon no longer holds the source's lease "
                "(the next crawl fetches the same posts again)", source,
            )  # fmt: skip
        return done == 1

    def discard_cursor(self, source: str, token: str) -> None:
        self._discard(keys=[self.key("cursor-pending", source)], args=[token])

    def recent(self, source: str, max_age: float) -> list[DupEntry]:
        cutoff = self.clock() - max_age
        rows = self.client.zrangebyscore(self.key("recent", source), cutoff, "+inf", withscores=True)
        out: list[DupEntry] = []
        for member, seen in rows:
            try:
                mention_id, exact, sim = json.loads(member)
            except (ValueError, TypeError):
                continue
            out.append((str(mention_id), exact, int(sim) if sim is not None else None, float(seen)))
        return out

    def remember(self, source: str, entries: list[DupEntry], max_age: float, keep: int) -> None:
        key = self.key("recent", source)
        cutoff = self.clock() - max_age
        members = {
            json.dumps([e[0], e[1], e[2]], separators=(",", ":")): e[3]
            for e in entries
            if e[3] >= cutoff
        }
        with self.client.pipeline(transaction=True) as pipe:
            if members:
                pipe.zadd(key, members)
            pipe.zremrangebyscore(key, "-inf", f"({cutoff}")
            pipe.zremrangebyrank(key, 0, -(keep + 1))
            pipe.pexpire(key, max(1, int(max_age * 1000)))
            pipe.execute()

    def acquire(self, source: str, ttl_seconds: float) -> Lease | None:
        token = holder_token()
        ok = self.client.set(self.key("lease", source), token, nx=True,
                             px=max(1, int(ttl_seconds * 1000)))  # fmt: skip
        return Lease(source, token, ttl_seconds) if ok else None

    def renew(self, lease: Lease) -> bool:
        ms = max(1, int(lease.ttl_seconds * 1000))
        return bool(self._renew(keys=[self.key("lease", lease.source)], args=[lease.token, ms]))

    def release(self, lease: Lease) -> bool:
        return bool(self._release(keys=[self.key("lease", lease.source)], args=[lease.token]))

    def holder(self, source: str) -> str | None:
        value = self.client.get(self.key("lease", source))
        return str(value) if value is not None else None

    def local_dir(self) -> None:
        return None

    def close(self) -> None:
        self.client.close()


# ------------------------------------------------------- the daemon's crawl


class LeaseKeeper:
    """Renews a lease every third of its TTL on a thread until stopped.

    A renewal that fails (someone else holds the key now, or Redis is unreachable
    for longer than the TTL) is logged once and sets `lost`; the crawl's cursor then
    does not commit (`commit_cursor` checks the lease itself).
    """

    def __init__(self, state: SharedState, lease: Lease) -> None:
        self.state = state
        self.lease = lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{lease.source}", daemon=True
        )

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = max(self.lease.ttl_seconds / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                ok = self.state.renew(self.lease)
            except Exception as exc:  # Redis away for a moment: the next try may work
                logger.warning("lease of %r not renewed: %s", self.lease.source, exc)
                continue
            if not ok:
                self.lost = True
                logger.warning("lease of source %r was lost: another holder may crawl it now",
                               self.lease.source)  # fmt: skip
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


@dataclass
class StagedCrawl:
    """One crawl of `source` under its lease, on a local copy of the shared state.

    The crawl child (`crawlers.runner`) works on files in a state directory; with
    shared state that directory is `state_dir`, a private folder filled from the
    shared store before the crawl (`stage`). After the mentions are indexed or
    spooled and the crawl committed its cursor there, `publish_cursor` moves the
    committed cursor to the shared store (pending, then an atomic commit that
    checks the lease); `publish_hashes` adds the crawl's duplicate entries, whether
    or not the crawl succeeded (as the local file is written at every close).

    `direct`: the state *is* the files of `state_dir` (`LocalState`, no `redis:`),
    so the crawl works on them in place, exactly as the daemon always did: nothing
    is staged, and the cursor and duplicate entries the crawl commits there are
    already the shared ones (the publish steps have nothing to do).
    """

    state: SharedState
    lease: Lease
    state_dir: Path
    max_age: float
    keep: int
    direct: bool = False
    _known: set[tuple[str, str | None, int | None]] = field(default_factory=set, repr=False)

    def stage(self) -> None:
        if self.direct:
            return
        cursor = self.state.load_cursor(self.lease.source)
        if cursor:
            CursorStore(self.state_dir).save(self.lease.source, cursor)
        entries = self.state.recent(self.lease.source, self.max_age)
        self._known = {e[:3] for e in entries}
        write_hashes(self.state_dir / f"{self.lease.source}.hashes.json", entries)

    def publish_cursor(self) -> bool:
        """Commit the crawl's (locally committed) cursor to the shared store.

        The lease is renewed first (the renewing thread may have been starved), and
        the commit itself checks it: a lease someone else holds now means no commit."""
        if self.direct:
            return True  # committed in place by the crawl (`CrawlResult.commit_cursor`)
        data = CursorStore(self.state_dir).load(self.lease.source)
        if not data:
            return False
        self.state.renew(self.lease)
        token = self.state.save_pending_cursor(self.lease.source, data)
        return self.state.commit_cursor(self.lease.source, token, self.lease)

    def publish_hashes(self) -> int:
        if self.direct:
            return 0  # written in place by the duplicate pipeline
        entries = read_hashes(self.state_dir / f"{self.lease.source}.hashes.json")
        new = [e for e in entries if e[:3] not in self._known]
        if new:
            self.state.remember(self.lease.source, new, self.max_age, self.keep)
        return len(new)


def credential_lease(source: Any) -> str | None:
    """The lease name of the API credential `source` (a `SourceConfig`) crawls with,
    or None for a source without one.

    Sources whose secret fields (API key, token, client id and secret, cookie) are
    all the same share the name, so one credential is used by one crawl at a time
    (its rate limit is per credential, not per source). The name is a hash: the
    secret never appears in Redis or in a file name."""
    import hashlib

    from pydantic import SecretStr

    secrets = sorted(
        (name, value.get_secret_value())
        for name in type(source).model_fields
        if isinstance(value := getattr(source, name), SecretStr) and value.get_secret_value()
    )
    if not secrets:
        return None
    digest = hashlib.sha256(json.dumps([source.type, secrets]).encode("utf-8")).hexdigest()
    return f"credential-{digest[:24]}"


@contextlib.contextmanager
def leased(state: SharedState, name: str | None, ttl_seconds: float) -> Iterator[bool]:
    """Hold the lease `name` (renewed while the block runs, released at its end):
    True, or False when someone else holds it. `name` None: nothing to hold, True."""
    if name is None:
        yield True
        return
    lease = state.acquire(name, ttl_seconds)
    if lease is None:
        yield False
        return
    keeper = LeaseKeeper(state, lease).start()
    try:
        yield True
    finally:
        keeper.stop()
        with contextlib.suppress(Exception):
            state.release(lease)


@contextlib.contextmanager
def staged_crawl(
    state: SharedState,
    source: str,
    *,
    ttl_seconds: float,
    work_dir: Path,
    max_age: float,
    keep: int,
) -> Iterator[StagedCrawl | None]:
    """Take `source`'s lease and stage its state; None when another holder has it.

    The lease is renewed while the block runs and released at its end; the staged
    folder (under `work_dir`) is removed. The duplicate entries are published at
    the end in every case; the cursor only by `StagedCrawl.publish_cursor`. A state
    with a `local_dir` (`LocalState`) is not staged: the crawl works in that
    directory (`StagedCrawl.direct`) and `work_dir` is not used.
    """
    lease = state.acquire(source, ttl_seconds)
    if lease is None:
        yield None
        return
    keeper = LeaseKeeper(state, lease).start()
    direct = state.local_dir()
    if direct is None:
        work_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{_safe_name(source)}.", dir=work_dir))
    else:
        folder = direct
    try:
        crawl = StagedCrawl(state, lease, folder, max_age, keep, direct=direct is not None)
        crawl.stage()
        try:
            yield crawl
        finally:
            try:
                crawl.publish_hashes()
            except Exception as exc:  # losing some repost memory is not worth a failed crawl
                logger.warning("duplicate state of %r not saved: %s", source, exc)
    finally:
        keeper.stop()
        with contextlib.suppress(Exception):
            state.release(lease)
        if direct is None:
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------ the leader lock

# KEYS: lock, fence counter. ARGV: holder token, ttl ms. The lock's value is
# "<fence>/<token>": the fence (a counter that only grows) numbers the leaderships.
_LEADER_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence .. '/' .. ARGV[1], 'PX', ARGV[2])
return fence
"""
# Unlike a crawl lease, a lapsed leadership is never taken back by a renewal: the
# holder must acquire again and gets a new fence, so the old one is dead for good.
_LEADER_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class LeaderLock:
    """One leader among the processes that contend for `key` (the coordinators).

    `acquire` is `SET NX PX` done in a Lua script that also takes the next *fencing
    token* from a counter that only grows (INCR), so every leadership has its own
    number; `renew` extends the lock only while its value is still this holder's
    "<fence>/<token>" (compare-and-set), and `release` (clean exit) deletes it only
    then. A leader that dies stops renewing and the lock expires after `ttl_seconds`;
    the next `acquire` by another process gets a higher fence. A leader that was
    only stalled past the TTL finds its renewal refused and is no longer leader
    (`value` is None): what it does as leader (`CrawlQueue.enqueue_due`) is checked
    against the lock's current value inside Redis, so even a stalled ex-leader that
    has not noticed yet cannot act. Two leaders never act at once.
    """

    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float) -> None:
        self.client = client
        self.key = key
        self.fence_key = f"{key}:fence"
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = holder_token()
        self.fence: int | None = None
        self._acquire = client.register_script(_LEADER_ACQUIRE)
        self._renew = client.register_script(_LEADER_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def value(self) -> str | None:
        """The lock's value while this process is leader ("<fence>/<token>"), else None."""
        return f"{self.fence}/{self.token}" if self.fence is not None else None

    def acquire(self) -> int | None:
        """Become leader if nobody is: the new fence, else None."""
        fence = int(self._acquire(keys=[self.key, self.fence_key], args=[self.token, self.ttl_ms]))
        self.fence = fence or None
        return self.fence

    def renew(self) -> bool:
        """Stay leader for another TTL; False (and no longer leader) when the lock
        expired or is someone else's."""
        if self.value is None:
            return False
        if not int(self._renew(keys=[self.key], args=[self.value, self.ttl_ms])):
            self.fence = None
        return self.fence is not None

    def hold(self) -> int | None:
        """Renew when leader, else try to become leader: the fence held now, or None."""
        if self.fence is not None and self.renew():
            return self.fence
        return self.acquire()

    def release(self) -> bool:
        """Give the leadership up (clean exit), so a successor need not wait the TTL."""
        value, self.fence = self.value, None
        if value is None:
            return False
        return bool(self._release(keys=[self.key], args=[value]))

    def current(self) -> str | None:
        """Whoever leads now ("<fence>/<host>:<pid>:<random>"), None when nobody does."""
        value = self.client.get(self.key)
        return str(value) if value is not None else None


# ---------------------------------------------------------- the crawl queue

# KEYS: leader lock, schedule hash, stream, queued marker of the source.
# ARGV: leader value, source, now ms, next due ms, job JSON, fence, marker ttl ms.
# -1: not the leader (any more); 0: not due, or the source's last job is still
# queued or being crawled (coalesced, as the daemon's schedule does); else the id.
_ENQUEUE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local due = redis.call('HGET', KEYS[2], ARGV[2])
if due and tonumber(due) > tonumber(ARGV[3]) then
  return 0
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
local id = redis.call('XADD', KEYS[3], '*', 'source', ARGV[2], 'fence', ARGV[6], 'job', ARGV[5])
redis.call('SET', KEYS[4], id, 'PX', ARGV[7])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
return id
"""
# KEYS: stream, queued marker. ARGV: group, entry id.
_DONE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1
"""
# A job nobody finishes (every worker gone for good) stops blocking its source's
# next one after this long; a live worker touches it far more often.
QUEUED_TTL_SECONDS = 6 * 3600


@dataclass(frozen=True)
class QueuedCrawl:
    """One crawl job as a worker took it from the stream."""

    entry_id: str
    source: str
    fence: int
    job: str  # the `CrawlJob` JSON, secrets masked
    reclaimed: bool = False  # taken over from a worker that stopped touching it


class CrawlQueue:
    """Crawl jobs on a Redis stream with one consumer group (`crawlers`).

    The coordinator (leader only) puts due jobs on it with `enqueue_due`; crawler
    workers `take` one at a time (XREADGROUP), `touch` it while they crawl (XCLAIM
    to themselves, which resets its idle time) and `done` it (XACK and XDEL) once
    the crawl's mentions are indexed or spooled and its cursor committed. A job
    whose worker died is no longer touched: after `claim_idle_ms` another worker's
    `take` reclaims it (XAUTOCLAIM), so it is crawled again from the same cursor
    (the dead worker's cursor never committed) and every mention it had fetched is
    fetched again and written under the same deterministic id.

    Keys: `<prefix>crawl-jobs` (the stream), `<prefix>crawl-schedule` (hash: source ->
    next due time in ms), `<prefix>crawl-queued:<source>` (the entry id of the
    source's unfinished job: one job per source in flight).
    """

    GROUP = "crawlers"

    def __init__(self, client: redis.Redis, prefix: str = "brandpulse:") -> None:
        self.client = client
        self.prefix = prefix
        self.stream = f"{prefix}crawl-jobs"
        self.schedule = f"{prefix}crawl-schedule"
        self._enqueue = client.register_script(_ENQUEUE)
        self._done = client.register_script(_DONE)
        self._group_ready = False

    def queued_key(self, source: str) -> str:
        return f"{self.prefix}crawl-queued:{source}"

    def ensure_group(self) -> None:
        """Create the stream and its group if missing (any role may start first)."""
        if not self._group_ready:
            _ensure_group(self.client, self.stream, self.GROUP)
            self._group_ready = True

    def enqueue_due(
        self, lock: LeaderLock, source: str, job_json: str, now: float, next_due: float
    ) -> str | None:
        """Enqueue `source`'s job if it is due at `now` and this process still leads;
        its next due time becomes `next_due`. The entry id, or None (not due, still in
        flight, or not the leader: the check is made inside Redis, atomically)."""
        if lock.value is None:
            return None
        self.ensure_group()
        keys = [lock.key, self.schedule, self.stream, self.queued_key(source)]
        args = [lock.value, source, int(now * 1000), int(next_due * 1000), job_json, lock.fence,
                QUEUED_TTL_SECONDS * 1000]  # fmt: skip
        result = self._enqueue(keys=keys, args=args)
        if isinstance(result, int):
            if result == -1:
                lock.fence = None  # someone else leads now
            return None
        return str(result)

    def take(self, consumer: str, claim_idle_ms: int, block_ms: int) -> QueuedCrawl | None:
        """The next job for `consumer`: first one a dead worker left (idle longer than
        `claim_idle_ms`), else a new one (waiting up to `block_ms`); None if neither."""
        self.ensure_group()
        taken = _take(self.client, self.stream, self.GROUP, consumer, claim_idle_ms, block_ms)
        return _queued(*taken) if taken is not None else None

    def touch(self, consumer: str, entry_id: str) -> bool:
        """Reset the job's idle time (it is being worked on); False if it is gone."""
        return _touch(self.client, self.stream, self.GROUP, consumer, entry_id)

    def done(self, entry: QueuedCrawl) -> None:
        """The job is finished: acknowledged, removed, and its source free to queue."""
        self._done(keys=[self.stream, self.queued_key(entry.source)], args=[self.GROUP, entry.entry_id])

    def entries(self) -> list[tuple[str, dict[str, str]]]:
        """Every job still on the stream (not done), oldest first."""
        return [(str(i), dict(f)) for i, f in self.client.xrange(self.stream)]


def _ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create `stream` and its consumer `group` unless they exist."""
    from redis.exceptions import ResponseError

    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _take(
    client: redis.Redis, stream: str, group: str, consumer: str, claim_idle_ms: int, block_ms: int
) -> tuple[Any, dict[str, Any], bool] | None:
    """(entry id, fields, reclaimed) of the next entry of `group` for `consumer`: first
    one a dead consumer left (idle longer than `claim_idle_ms`: XAUTOCLAIM), else a new
    one (XREADGROUP, waiting up to `block_ms`); None if neither."""
    claimed = client.xautoclaim(stream, group, consumer, min_idle_time=claim_idle_ms,
                                start_id="0-0", count=1)  # fmt: skip
    if claimed[1]:
        entry_id, fields = claimed[1][0]
        return entry_id, fields, True
    read = client.xreadgroup(group, consumer, {stream: ">"}, count=1, block=block_ms)
    for _stream, entries in read or []:
        for entry_id, fields in entries:
            return entry_id, fields, False
    return None


def _touch(client: redis.Redis, stream: str, group: str, consumer: str, entry_id: str) -> bool:
    """Reset a pending entry's idle time (XCLAIM to `consumer`); False if it is gone."""
    return bool(client.xclaim(stream, group, consumer, min_idle_time=0, message_ids=[entry_id],
                              idle=0, justid=True))  # fmt: skip


def _queued(entry_id: Any, fields: dict[str, Any], reclaimed: bool) -> QueuedCrawl:
    return QueuedCrawl(str(entry_id), str(fields.get("source", "")), int(fields.get("fence", 0)),
                       str(fields.get("job", "")), reclaimed)  # fmt: skip


# ------------------------------------------------------- the scoring queue


@dataclass(frozen=True)
class QueuedBatch:
    """Unscored mentions of one crawl as a scorer worker took them from the stream."""

    entry_id: str
    source: str
    mentions: str  # JSON list of `Mention` dicts
    reclaimed: bool = False  # taken over from a scorer that stopped touching it


class ScoreQueue:
    """Unscored mentions from crawler workers to scorer workers (`redis.scoring: scorer`):
    a Redis stream `<prefix>score-batches` with one consumer group (`scorers`).

    A crawler `put`s what a crawl found (in batches of `BATCH` mentions) before it
    commits the source's cursor: once XADD answered, the mentions are Redis's to keep
    (with Redis persistence on, as the cursors need anyway). A scorer `take`s one batch
    (XREADGROUP), `touch`es it while it scores, and calls `done` (XACK, then XDEL) only
    after the batch is indexed or in its spool. A scorer that dies (even SIGKILL)
    stops touching its batch; after `claim_idle_ms` another scorer's `take` reclaims it
    (XAUTOCLAIM) and scores and indexes it again: same deterministic ids, so each
    mention is in Elasticsearch once. A scorer killed between its index write and its
    XACK costs one more scoring of that batch, an overwrite.
    """

    GROUP = "scorers"
    BATCH = 200

    def __init__(self, client: redis.Redis, prefix: str = "brandpulse:") -> None:
        self.client = client
        self.stream = f"{prefix}score-batches"
        self._group_ready = False

    def ensure_group(self) -> None:
        if not self._group_ready:
            _ensure_group(self.client, self.stream, self.GROUP)
            self._group_ready = True

    def put(self, source: str, mentions: list[Any]) -> list[str]:
        """Queue `mentions` (`Mention`s) of `source` for scoring; the entry ids."""
        self.ensure_group()
        ids = []
        for start in range(0, len(mentions), self.BATCH):
            chunk = [m.model_dump(mode="json") for m in mentions[start:start + self.BATCH]]
            text = json.dumps(chunk, ensure_ascii=False)
            ids.append(str(self.client.xadd(self.stream, {"source": source, "mentions": text})))
        return ids

    def take(self, consumer: str, claim_idle_ms: int, block_ms: int) -> QueuedBatch | None:
        """The next batch for `consumer` (a reclaimed one first), or None."""
        self.ensure_group()
        taken = _take(self.client, self.stream, self.GROUP, consumer, claim_idle_ms, block_ms)
        if taken is None:
            return None
        entry_id, fields, reclaimed = taken
        return QueuedBatch(str(entry_id), str(fields.get("source", "")),
                           str(fields.get("mentions", "[]")), reclaimed)  # fmt: skip

    def touch(self, consumer: str, entry_id: str) -> bool:
        return _touch(self.client, self.stream, self.GROUP, consumer, entry_id)

    def done(self, batch: QueuedBatch) -> None:
        """The batch is indexed (or spooled): acknowledged and removed."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.GROUP, batch.entry_id)
            pipe.xdel(self.stream, batch.entry_id)
            pipe.execute()

    def entries(self) -> list[tuple[str, dict[str, str]]]:
        """Every batch still on the stream (not done), oldest first."""
        return [(str(i), dict(f)) for i, f in self.client.xrange(self.stream)]
