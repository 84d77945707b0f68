"""Health notices: a source that keeps failing, Elasticsearch staying down.

These are operational alerts, not brand alerts. `HealthTracker` is told what happens
(a crawl failed or succeeded, an Elasticsearch call failed or worked) and produces a
`HealthNotice` once an episode passes its threshold (`health.source_failures` failed
crawls in a row, or `health.source_silence` of failing; Elasticsearch unreachable for
`health.elasticsearch_after`) and one more when the episode ends. Nothing below that
threshold is ever reported, so a blip pages nobody. The tracker knows nothing of
Slack: a notifier renders the notice (`Notifier.send_notice`).

Why a local file and not the alert-state index: the notice that matters most is
"Elasticsearch is down", which cannot be written to Elasticsearch. The episode state
and a small outbox live in one JSON file under `daemon.state_dir`, rewritten whole on
every change with the spool's contract (write a temporary file, fsync, rename over,
fsync the directory), so a crash leaves either the old or the new state, never half.
A notice is written to the outbox in the same write that marks its episode as
notified, under a deterministic id (kind, subject, episode start): a restarted daemon
neither repeats a notice nor loses one that was not yet delivered.

A send is recorded as under way before it starts; a notice whose send may have
arrived (the daemon died during it, Slack answered 5xx or the connection broke after
the request went out) is looked for in the channel before it is posted again (Slack
message metadata `brandpulse_health` with the notice id; needs a bot with the history
scope). Where the channel cannot be read back (a webhook) delivery is at least once
(the footer's notice id makes a repeat obvious). Failed sends are retried with a growing pause (Slack's
`Retry-After` when it gave one); notices go out oldest first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from brandpulse.secrets import redact
from brandpulse.timeutil import require_utc

if TYPE_CHECKING:
    from alerts.notifiers.base import Notifier
    from brandpulse.config import HealthConfig

log = logging.getLogger("brandpulse.health")

NoticeKind = Literal["source_down", "source_back", "elasticsearch_down", "elasticsearch_back"]
NOTICE_KINDS: tuple[NoticeKind, ...] = get_args(NoticeKind)
ELASTICSEARCH = "elasticsearch"  # the subject of Elasticsearch notices

STATE_FILE = "health.json"
MAX_ERROR_CHARS = 300
KEEP_DELIVERED = 50  # delivered entries kept for inspection; ids are guarded by the episode
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(minutes=15)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def notice_id_for(kind: NoticeKind, subject: str, since: datetime) -> str:
    """One id per (kind, subject, episode start): the same episode always yields the same id."""
    digest = hashlib.sha1("\x1f".join((kind, subject, require_utc(since, "a health notice's since").isoformat())).encode())
    return f"health-{kind}-" + digest.hexdigest()[:16]


def _clean(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """An error as it may be shown: URLs masked, known secrets removed, one line, bounded."""
    if not text:
        return None
    one = " ".join(redact(text, secrets).split())
    return one if len(one) <= MAX_ERROR_CHARS else one[: MAX_ERROR_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class HealthNotice:
    """One operational notice. `since` is when the episode began (the first failed crawl
    of the streak, the first failed Elasticsearch call), `at` when the notice was made.

    `failures`: failed crawls in a row; `error`: the last error, masked; `spooled`:
    mentions in the spool (so far, or at the end of the outage); `pending`: of those,
    still waiting when Elasticsearch came back.
    """

    kind: NoticeKind
    subject: str
    since: datetime
    at: datetime
    failures: int = 0
    error: str | None = None
    spooled: int | None = None
    pending: int | None = None
    notice_id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in NOTICE_KINDS:
            raise ValueError(f"notice kind {self.kind!r} is not one of {NOTICE_KINDS}")
        object.__setattr__(self, "since", require_utc(self.since, "a health notice's since"))
        object.__setattr__(self, "at", require_utc(self.at, "a health notice's time"))
        object.__setattr__(self, "error", _clean(self.error))
        if not self.notice_id:
            object.__setattr__(self, "notice_id", notice_id_for(self.kind, self.subject, self.since))

    @property
    def recovered(self) -> bool:
        return self.kind in ("source_back", "elasticsearch_back")

    @property
    def duration(self) -> timedelta:
        return self.at - self.since

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "since": self.since.isoformat(),
            "at": self.at.isoformat(),
            "failures": self.failures,
            "error": self.error,
            "spooled": self.spooled,
            "pending": self.pending,
            "notice_id": self.notice_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthNotice:
        return cls(
            kind=data["kind"],
            subject=data["subject"],
            since=datetime.fromisoformat(data["since"]),
            at=datetime.fromisoformat(data["at"]),
            failures=int(data.get("failures") or 0),
            error=data.get("error"),
            spooled=data.get("spooled"),
            pending=data.get("pending"),
            notice_id=data["notice_id"],
        )


def _clock(value: datetime) -> str:
    return f"{value:%H:%M} UTC"


def _duration(value: timedelta) -> str:
    minutes = max(int(value.total_seconds() // 60), 0)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def notice_text(notice: HealthNotice) -> str:
    """The notice as one plain sentence (no markup): the log line, and what a channel
    renders (escaped for its own markup)."""
    if notice.kind == "source_down":
        crawls = "crawl" if notice.failures == 1 else "crawls"
        error = f" (last error: {notice.error})" if notice.error else ""
        return (f"Source '{notice.subject}' has failed {notice.failures} {crawls} in a row "
                f"since {_clock(notice.since)}{error}")  # fmt: skip
    if notice.kind == "source_back":
        return f"Source '{notice.subject}' is crawling again (down {_duration(notice.duration)})"
    if notice.kind == "elasticsearch_down":
        spooled = f"{notice.spooled or 0:,}"
        reason = f": {notice.error}" if notice.error else ""
        return (f"Elasticsearch unreachable since {_clock(notice.since)}; mentions are being "
                f"spooled ({spooled} so far){reason}")  # fmt: skip
    spooled = notice.spooled or 0
    text = f"Elasticsearch is back after {_duration(notice.duration)}"
    if spooled:
        text += f"; {spooled:,} spooled mention{'s' if spooled != 1 else ''}"
        text += f", {notice.pending:,} still replaying" if notice.pending else " replayed"
    return text


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


@dataclass
class _Source:
    failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    notified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"failures": self.failures, "failing_since": _iso(self.failing_since),
                "last_error": self.last_error, "notified": self.notified}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Source:
        return cls(int(d.get("failures") or 0), _dt(d.get("failing_since")),
                   d.get("last_error"), bool(d.get("notified")))  # fmt: skip


@dataclass
class _Elasticsearch:
    down_since: datetime | None = None
    reason: str | None = None
    spooled: int = 0
    notified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"down_since": _iso(self.down_since), "reason": self.reason,
                "spooled": self.spooled, "notified": self.notified}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Elasticsearch:
        return cls(_dt(d.get("down_since")), d.get("reason"), int(d.get("spooled") or 0),
                   bool(d.get("notified")))  # fmt: skip


@dataclass
class OutboxItem:
    """A notice waiting for (or done with) delivery."""

    notice: HealthNotice
    delivered_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    # a send was under way (saved before it starts) or ended with an unknown outcome:
    # the channel is read back before the notice is posted again
    sending: bool = False
    maybe_posted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"notice": self.notice.to_dict(), "delivered_at": _iso(self.delivered_at),
                "attempts": self.attempts, "last_error": self.last_error,
                "next_attempt_at": _iso(self.next_attempt_at), "sending": self.sending,
                "maybe_posted": self.maybe_posted}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutboxItem:
        item = cls(HealthNotice.from_dict(d["notice"]), _dt(d.get("delivered_at")),
                   int(d.get("attempts") or 0), d.get("last_error"),
                   _dt(d.get("next_attempt_at")), bool(d.get("sending")),
                   bool(d.get("maybe_posted")))  # fmt: skip
        if item.sending and item.delivered_at is None:
            # the process died during the send: it may have arrived
            item.sending, item.maybe_posted = False, True
        return item


@dataclass
class _State:
    sources: dict[str, _Source] = field(default_factory=dict)
    elasticsearch: _Elasticsearch = field(default_factory=_Elasticsearch)
    outbox: list[OutboxItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "sources": {name: s.to_dict() for name, s in sorted(self.sources.items())},
            "elasticsearch": self.elasticsearch.to_dict(),
            "outbox": [item.to_dict() for item in self.outbox],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _State:
        return cls(
            {name: _Source.from_dict(s) for name, s in (d.get("sources") or {}).items()},
            _Elasticsearch.from_dict(d.get("elasticsearch") or {}),
            [OutboxItem.from_dict(item) for item in d.get("outbox") or []],
        )


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` by `data` durably: temporary file, fsync, rename, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class DeliveryRound:
    """What one `deliver` call did: the notices delivered, and the error that stopped
    the round (the rest waits for the next round) if one did."""

    delivered: list[HealthNotice]
    error: str | None = None


class HealthTracker:
    """Episode state for every source and for Elasticsearch, with its notice outbox.

    Every method is safe to call from several threads (crawl jobs run in a pool) and
    returns the notices it produced (already in the outbox and on disk); `deliver`
    sends what waits. `clock` is injected so tests can walk through time; `secrets`
    are configured secret values (`brandpulse.secrets.secret_values(config)`), never
    kept or sent even where an error quotes one outside a URL.
    """

    def __init__(
        self,
        settings: HealthConfig,
        state_dir: str | Path,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        secrets: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        # configured secret values, removed from any error text before it is kept
        self._secrets = frozenset(secrets)
        self.path = Path(state_dir) / STATE_FILE
        self.clock = clock
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._state = self._load()

    # ------------------------------------------------------------ persistence

    def _load(self) -> _State:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return _State()
        try:
            return _State.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            # Written atomically, so this is someone's hand edit: keep it aside, start over.
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.warning("health state %s is unreadable (%s); moved to %s, starting afresh",
                        self.path, exc, aside.name)  # fmt: skip
            return _State()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        delivered = [i for i in self._state.outbox if i.delivered_at is not None]
        for old in delivered[: max(len(delivered) - KEEP_DELIVERED, 0)]:
            self._state.outbox.remove(old)
        data = json.dumps(self._state.to_dict(), indent=1, ensure_ascii=False).encode()
        _write_atomic(self.path, data)

    def _enqueue(self, notice: HealthNotice) -> HealthNotice | None:
        if any(i.notice.notice_id == notice.notice_id for i in self._state.outbox):
            return None
        self._state.outbox.append(OutboxItem(notice))
        return notice

    # ---------------------------------------------------------------- sources

    def crawl_failed(self, source: str, error: str | None) -> list[HealthNotice]:
        """A crawl of `source` failed (nothing could be read, or the job crashed)."""
        now = require_utc(self.clock(), "clock()")
        with self._lock:
            s = self._state.sources.setdefault(source, _Source())
            if s.failures == 0 or s.failing_since is None:
                s.failing_since = now
            s.failures += 1
            s.last_error = _clean(error, self._secrets)
            notices = self._check_source(source, s, now)
            self._save()
        return notices

    def crawl_succeeded(self, source: str) -> list[HealthNotice]:
        """A crawl of `source` read pages: the streak ends, with a notice if one was sent."""
        now = require_utc(self.clock(), "clock()")
        with self._lock:
            s = self._state.sources.get(source)
            if s is None or (s.failures == 0 and not s.notified):
                return []
            notices: list[HealthNotice] = []
            if s.notified and s.failing_since is not None:
                back = HealthNotice("source_back", source, since=s.failing_since, at=now,
                                    failures=s.failures)  # fmt: skip
                notices = [n for n in [self._enqueue(back)] if n]
            self._state.sources[source] = _Source()
            self._save()
        return notices

    def _check_source(self, name: str, s: _Source, now: datetime) -> list[HealthNotice]:
        if s.notified or s.failures == 0 or s.failing_since is None:
            return []
        long_enough = now - s.failing_since >= self.settings.source_silence
        if s.failures < self.settings.source_failures and not long_enough:
            return []
        s.notified = True
        down = HealthNotice("source_down", name, since=s.failing_since, at=now,
                            failures=s.failures, error=s.last_error)  # fmt: skip
        return [n for n in [self._enqueue(down)] if n]

    def sources_down(self) -> set[str]:
        """The sources in a reported failing episode: their `source_down` notice is out
        (or queued) and no successful crawl has ended it yet. The alert engine reads it
        so the flatline rule does not report a second time, as a brand alert, the
        silence of a source these notices already report as failing."""
        with self._lock:
            return {name for name, s in self._state.sources.items() if s.notified}

    def forget_sources(self, keep: set[str]) -> None:
        """Drop the state of sources no longer configured (no notice about them)."""
        with self._lock:
            gone = set(self._state.sources) - keep
            for name in gone:
                del self._state.sources[name]
            if gone:
                self._save()

    # ---------------------------------------------------------- Elasticsearch

    def es_failed(self, reason: str, spooled: int | Callable[[], int] = 0) -> list[HealthNotice]:
        """An Elasticsearch call failed; `spooled` is what the spool holds now, or a
        function that counts it (called only when a notice needs the figure: counting
        a large spool is not free)."""
        now = require_utc(self.clock(), "clock()")
        with self._lock:
            es = self._state.elasticsearch
            known = spooled if isinstance(spooled, int) else 0
            clean = _clean(reason, self._secrets)
            changed = es.down_since is None or es.spooled < known or es.reason != clean
            if es.down_since is None:
                es.down_since = now
            es.reason = clean
            es.spooled = max(es.spooled, known)
            notices = self._check_es(now, spooled if callable(spooled) else None)
            if changed or notices:
                self._save()
        return notices

    def es_ok(self, pending: int = 0) -> list[HealthNotice]:
        """An Elasticsearch call worked; `pending` is what the spool still holds."""
        now = require_utc(self.clock(), "clock()")
        with self._lock:
            es = self._state.elasticsearch
            if es.down_since is None:
                return []
            notices: list[HealthNotice] = []
            if es.notified:
                back = HealthNotice("elasticsearch_back", ELASTICSEARCH, since=es.down_since,
                                    at=now, spooled=es.spooled, pending=pending)  # fmt: skip
                notices = [n for n in [self._enqueue(back)] if n]
            self._state.elasticsearch = _Elasticsearch()
            self._save()
        return notices

    @property
    def elasticsearch_down(self) -> bool:
        """Whether an Elasticsearch episode is open (possibly since before a restart)."""
        return self._state.elasticsearch.down_since is not None

    def _check_es(self, now: datetime, count: Callable[[], int] | None = None) -> list[HealthNotice]:
        es = self._state.elasticsearch
        if es.notified or es.down_since is None:
            return []
        if now - es.down_since < self.settings.elasticsearch_after:
            return []
        if count is not None:
            es.spooled = max(es.spooled, count())
        es.notified = True
        down = HealthNotice("elasticsearch_down", ELASTICSEARCH, since=es.down_since, at=now,
                            error=es.reason, spooled=es.spooled)  # fmt: skip
        return [n for n in [self._enqueue(down)] if n]

    # ------------------------------------------------------------------ time

    def tick(self, spooled: Callable[[], int] | None = None) -> list[HealthNotice]:
        """Apply the time thresholds (a source failing for `source_silence`,
        Elasticsearch down for `elasticsearch_after`) without a new event; `spooled`
        counts the spool if an Elasticsearch notice needs the figure."""
        now = require_utc(self.clock(), "clock()")
        with self._lock:
            notices = self._check_es(now, spooled)
            for name, s in self._state.sources.items():
                notices += self._check_source(name, s, now)
            if notices:
                self._save()
        return notices

    # -------------------------------------------------------------- delivery

    def pending(self) -> list[HealthNotice]:
        """Notices not yet delivered, oldest first."""
        with self._lock:
            return [i.notice for i in self._state.outbox if i.delivered_at is None]

    def outbox(self) -> list[OutboxItem]:
        with self._lock:
            return list(self._state.outbox)

    def deliver(self, notifier: Notifier) -> DeliveryRound:
        """Send the waiting notices, oldest first; the first failure ends the round and
        sets when that notice is tried again (what follows it waits until then)."""
        from alerts.notifiers.base import NotifierError

        delivered: list[HealthNotice] = []
        with self._send_lock:  # one sender at a time: a notice is never sent twice at once
            now = require_utc(self.clock(), "clock()")
            with self._lock:
                due = [i for i in self._state.outbox if i.delivered_at is None]
            for item in due:
                if item.next_attempt_at is not None and item.next_attempt_at > now:
                    break  # oldest first: what follows waits for it
                try:
                    if not (item.maybe_posted and self._already_posted(notifier, item)):
                        with self._lock:
                            item.sending = True
                            self._save()
                        notifier.send_notice(item.notice)
                except Exception as exc:  # NotifierError, or a notifier's own bug: kept, retried
                    failure = exc if isinstance(exc, NotifierError) else None
                    with self._lock:
                        item.sending = False
                        item.maybe_posted |= failure.maybe_delivered if failure else True
                        item.attempts += 1
                        item.last_error = _clean(str(exc) if failure else f"{type(exc).__name__}: {exc}")
                        pause = min(FIRST_RETRY * 2 ** (item.attempts - 1), MAX_RETRY)
                        if failure and failure.retry_after is not None:
                            pause = max(pause, timedelta(seconds=failure.retry_after))
                        item.next_attempt_at = now + pause
                        self._save()
                    return DeliveryRound(delivered, item.last_error)
                with self._lock:
                    item.delivered_at = require_utc(self.clock(), "clock()")
                    item.sending = item.maybe_posted = False
                    item.last_error = None
                    self._save()
                delivered.append(item.notice)
        return DeliveryRound(delivered)

    @staticmethod
    def _already_posted(notifier: Notifier, item: OutboxItem) -> bool:
        """Whether a notice whose send may have arrived is in the channel; a channel
        that cannot be read back gets it again (at least once)."""
        from alerts.notifiers.base import CannotTell

        try:
            return notifier.find_notice(item.notice) is not None
        except CannotTell:
            log.warning("health notice %s may have been posted already; the channel cannot "
                        "be read back, so it is sent again", item.notice.notice_id)  # fmt: skip
            return False
