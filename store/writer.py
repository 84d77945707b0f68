"""Bulk writer: mentions into their monthly (or daily) index, through the durable spool.

``BulkWriter.write(mentions)``:

1. replays whatever an earlier run or outage left in the spool (oldest first);
2. serialises each new mention once (the same JSON bytes go into the spool and
   into the request), cuts them into batches of ``bulk_size`` documents and at
   most ``max_batch_bytes`` of request body and names each batch's spool
   segment, in batch order. Up to ``concurrency`` batches are in flight at once
   (threads, as ``elasticsearch.helpers.parallel_bulk`` does): the flight's
   thread writes the segment (fsynced) and only then sends it with one ``_bulk``
   request, while the calling thread serialises the next batch; each segment is
   deleted by the thread that got its acknowledgement (a per-batch commit).
   Replay follows the names, so it is in batch order whichever write finished
   first. The first request of a
   call goes alone: only once Elasticsearch has acknowledged one does a second
   fly, so a node that is down is retried by one batch, not ``concurrency``.
   Two batches holding the same ``_id`` are never in flight together (the
   later waits), so an older version of a mention cannot land after a newer one;
3. retries what Elasticsearch answered 429 or 5xx for (whole request or single
   items) with exponential backoff and jitter;
4. sends documents Elasticsearch rejects for good (mapping errors, other 4xx)
   to the dead-letter file with the reason, and lists them in the report;
5. deletes a segment only when every document in it is acknowledged or
   dead-lettered. If Elasticsearch stays unreachable, the rest of the call only
   spools: nothing is lost, and the next ``write`` or ``replay`` sends it.

A node that hangs (alive and accepting connections, answering nothing: a long GC
pause, a frozen VM) makes every request wait its whole ``request_timeout``. One call
spends at most one retry budget on it (`BulkWriter.retry_budget`: ``1 + max_retries``
attempts of ``request_timeout`` each, plus the backoffs between them), not one per
batch in flight: the batches in flight when it hung time out together, one of them
retries (the others wait for the retry lock), and once it gives up the others give
up too, without another request, and stay in the spool with the rest of the call.

A mention whose text holds a lone surrogate or control characters is cleaned
(``brandpulse.text.clean_text``: U+FFFD for a surrogate, controls removed) rather
than failing its batch.

Documents are sent with the ``index`` op and ``_id = Mention.id``, so a resend
after an ambiguous failure (a timeout after Elasticsearch applied the write)
overwrites the same document: at-least-once delivery plus idempotent ids gives
exactly one copy of each mention.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch import ConnectionError as EsConnectionError

from brandpulse.config import ElasticsearchConfig, IndexPeriod
from brandpulse.mention import Mention
from brandpulse.text import clean_value, needs_cleaning
from store.errors import describe_es_error
from store.setup import ensure_index, index_for
from store.spool import Segment, Spool, SpoolRecord, dumps, json_text, quote

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# What the writer reads of a _bulk answer: per item its status and, if it failed, the
# error. Without the rest (index, id, version, shards, seq_no: ~200 bytes an item)
# the node builds, and the client parses, a tenth of the answer.
_BULK_ANSWER = "errors,items.*.status,items.*.error"


@dataclass(frozen=True)
class DocFailure:
    """One document Elasticsearch rejected for good."""

    id: str
    index: str
    status: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.id} -> {self.index}: HTTP {self.status}: {self.reason}"


@dataclass
class WriteReport:
    indexed: int = 0  # acknowledged by Elasticsearch in this call (replayed ones included)
    replayed: int = 0  # of `indexed`, how many came from the spool
    dead_lettered: int = 0
    spooled: int = 0  # still in the spool when the call returned (Elasticsearch down)
    retries: int = 0
    failures: list[DocFailure] = field(default_factory=list)
    unavailable: str | None = None  # why the remaining documents stayed in the spool
    # UTC hours of the acknowledged documents' created_at (what `after_write` recomputes)
    hours: set[datetime] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.spooled

    def merge(self, other: WriteReport) -> None:
        """Add the counts of `other` (one batch's report) to this one."""
        self.indexed += other.indexed
        self.replayed += other.replayed
        self.dead_lettered += other.dead_lettered
        self.spooled += other.spooled
        self.retries += other.retries
        self.failures += other.failures
        self.unavailable = other.unavailable or self.unavailable
        self.hours |= other.hours

    def summary(self) -> str:
        parts = [f"indexed {self.indexed}"]
        if self.replayed:
            parts.append(f"{self.replayed} of them from the spool")
        if self.dead_lettered:
            parts.append(f"dead-lettered {self.dead_lettered}")
        if self.spooled:
            parts.append(f"{self.spooled} waiting in the spool ({self.unavailable})")
        return ", ".join(parts)


def _reason(error: Any) -> str:
    """Elasticsearch's per-item error object as one readable line."""
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return text


# What `brandpulse.text.needs_cleaning` looks for, as it shows in the compact JSON of
# a document: lone surrogates, DEL, C1 and U+FFFE/U+FFFF stay literal, C0 controls
# become escapes (\u00XX, \b, \f). A hit only sends the mention down the slow
# path, which cleans exactly what needs it, so a false alarm (a text with a
# literal backslash before a "b") costs time, never a change; a miss cannot
# happen, since every character needs_cleaning finds appears in one of these forms.
# One character class plus substring tests: less than half the time of one regular
# expression with the escapes as alternatives (which tried three branches at every
# character; 10 against 21 us for a document of 790 bytes).
_SUSPECT_CHARS = re.compile(r"[\ud800-\udfff\x7f-\x9f\ufffe\uffff]")


def _suspect(text: str) -> bool:
    """Whether the compact JSON `text` may hold something `needs_cleaning` finds."""
    return (
        _SUSPECT_CHARS.search(text) is not None
        or "\\u000" in text
        or "\\u001" in text
        or "\\b" in text
        or "\\f" in text
    )


def _record(mention: Mention, index_of: Callable[[datetime], str]) -> SpoolRecord:
    """The spool record of a mention, its document serialised once (``raw``), its text
    cleaned first if it must be (`brandpulse.text`); `index_of` names the index of a
    ``created_at`` (`BulkWriter._index_of`).

    A lone surrogate cannot be encoded (neither for the id hash nor for the spool)
    and control characters mean nothing to a reader; neither may cost the post, nor
    the batch it travels in. A clean mention (the usual case) is not copied, and is
    checked on its serialised form (`_suspect`). The id is the one `to_document`
    put in the document (hashed once, not twice).
    """
    try:
        doc = mention.to_document()
        text = json_text(doc)
        if not _suspect(text) or not needs_cleaning(doc):
            return SpoolRecord(doc["id"], index_of(mention.created_at), doc, text.encode())
    except UnicodeEncodeError:  # a lone surrogate in the source id
        pass
    cleaned = Mention.model_validate(clean_value(mention.model_dump()))
    log.warning(
        "mention %s had characters that cannot be stored (lone surrogates or control "
        "characters); replaced", cleaned.id,
    )  # fmt: skip
    doc = cleaned.to_document()
    return SpoolRecord(cleaned.id, index_of(cleaned.created_at), doc, dumps(doc))


def _hour_of(created_at: Any) -> datetime:
    """The UTC hour of a document's ``created_at`` (ISO text, as `Mention.to_document`)."""
    at = datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def _bulk_body(records: list[SpoolRecord]) -> bytes:
    """The NDJSON body of one ``_bulk`` request: ``index`` op + the document's bytes."""
    parts: list[bytes] = []
    for r in records:
        parts.append(b'{"index":{"_index":' + quote(r.index) + b',"_id":' + quote(r.id) + b"}}\n")
        parts.append(r.doc_json())
        parts.append(b"\n")
    return b"".join(parts)


class BulkWriter:
    """Writes mentions to Elasticsearch; one instance owns one spool directory.

    One `write`/`replay` call at a time (the daemon's pipeline serialises them);
    the concurrency is inside a call."""

    def __init__(
        self,
        client: Elasticsearch,
        cfg: ElasticsearchConfig | None = None,
        *,
        spool_dir: Path | str | None = None,
        bulk_size: int | None = None,
        max_batch_bytes: int = 10 * 1024 * 1024,
        max_retries: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        refresh: bool = False,
        concurrency: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        after_write: Callable[[set[datetime]], None] | None = None,
    ) -> None:
        """`concurrency`: ``_bulk`` requests in flight at once (1: one at a time;
        default ``cfg.bulk_concurrency``); `max_retries`: retries of a failed request
        (default ``cfg.bulk_retries``). `sleep` is called from the sending threads
        (tests inject a recorder). `after_write`, when given, is called at the end of
        every `write`/`replay` that indexed something, with the UTC hours of the indexed
        mentions' ``created_at`` (`WriteReport.hours`): what keeps the hourly counts
        (`store.rollup.CountsRollup.after_write`) in step with every write path."""
        cfg = cfg or ElasticsearchConfig()
        if concurrency is None:
            concurrency = cfg.bulk_concurrency
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.prefix = cfg.index_prefix
        self.period: IndexPeriod = cfg.index_period
        # what `make_client` gives the client: the wait of each attempt on a silent node
        self.request_timeout = cfg.request_timeout.total_seconds()
        self.bulk_size = bulk_size or cfg.bulk_size
        self.max_batch_bytes = max_batch_bytes
        self.max_retries = cfg.bulk_retries if max_retries is None else max_retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.refresh = refresh
        self.concurrency = concurrency
        self._sleep = sleep
        # our own retry loop decides; the transport's retries would hide 429s and
        # multiply the wait when the node is down
        self.client = client.options(max_retries=0)
        self.spool = Spool(spool_dir if spool_dir is not None else cfg.spool_dir)
        self._known_indices: set[str] = set()
        self._index_names: dict[tuple[int, int, int], str] = {}
        self._indices_lock = threading.Lock()
        self._retry_lock = threading.Lock()
        self._give_up_lock = threading.Lock()
        # set by a flight that had to retry; `_Flights` then sends one at a time
        self.pushback = threading.Event()
        # Set (to the reason) while Elasticsearch must not be written to yet, e.g.
        # before the daemon could install the index templates: everything spools.
        self.hold: str | None = None
        self._hosts = [cfg.cloud_id] if cfg.cloud_id else list(cfg.hosts)
        self.after_write = after_write

    def close(self) -> None:
        self.spool.close()

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public

    def write(self, mentions: Iterable[Mention]) -> WriteReport:
        """Write mentions (after replaying the spool). Never raises for ES outages."""
        report = WriteReport()
        if self.hold is not None:
            report.spooled = self.pending()
            report.unavailable = self.hold
            for batch in self._batches(mentions):
                self.spool.append(batch)
                report.spooled += len(batch)
            return report
        with _Flights(self, report) as flights:
            self._replay(flights)
            for batch in self._batches(mentions):
                # named here, in batch order (replay order); written by the flight
                # that sends it, or here if Elasticsearch is found down
                flights.send(Segment(self.spool.next_path(), batch, []), replay=False)
        self._after(report)
        if report.failures:
            log.warning(
                "%d mention(s) rejected by Elasticsearch, see %s; first: %s",
                len(report.failures),
                self.spool.dead_letter_path,
                report.failures[0],
            )
        return report

    def replay(self) -> WriteReport:
        """Send what the spool holds (e.g. on startup, or on a timer while ES was down)."""
        report = WriteReport()
        if self.hold is not None:
            report.spooled, report.unavailable = self.pending(), self.hold
            return report
        with _Flights(self, report) as flights:
            self._replay(flights)
        self._after(report)
        return report

    def _after(self, report: WriteReport) -> None:
        if self.after_write is not None and report.hours:
            self.after_write(report.hours)

    def pending(self) -> int:
        return self.spool.pending_count()

    def retry_budget(self) -> float:
        """The longest one `write`/`replay` call waits on an Elasticsearch that does not
        answer, in seconds: ``1 + max_retries`` attempts that each time out after
        ``request_timeout``, plus the longest backoffs between them. Spent once per
        call, whatever the number of batches in flight (module doc); serialising and
        spooling the rest of the call come on top."""
        backoffs = sum(
            min(self.backoff_max, self.backoff_initial * 2**attempt)
            for attempt in range(self.max_retries)
        )
        return (1 + self.max_retries) * self.request_timeout + backoffs

    # ---------------------------------------------------------------- internals

    def _replay(self, flights: _Flights) -> None:
        """Send spooled segments oldest first (several at once, same rules as new ones)."""
        for path in self.spool.segments():
            seg = self.spool.read(path)
            for raw in seg.torn:
                self.spool.dead_letter(None, "unreadable spool line (torn write)", raw=raw)
                flights.report.dead_lettered += 1
            flights.send(seg, replay=True)

    def _batches(self, mentions: Iterable[Mention]) -> Iterator[list[SpoolRecord]]:
        batch: list[SpoolRecord] = []
        size = 0
        for m in mentions:
            rec = _record(m, self._index_of)
            n = len(rec.doc_json()) + len(rec.id) + len(rec.index) + 32  # + the op line
            if batch and (len(batch) >= self.bulk_size or size + n > self.max_batch_bytes):
                yield batch
                batch, size = [], 0
            batch.append(rec)
            size += n
        if batch:
            yield batch

    def _index_of(self, created_at: datetime) -> str:
        """`store.setup.index_for` under this writer's prefix and period, remembered per
        UTC day: formatting a date was a tenth of the cost of a mention's record."""
        if created_at.tzinfo is not UTC:  # Mention keeps UTC; anything else goes the long way
            return index_for(created_at, self.prefix, self.period)
        key = (created_at.year, created_at.month, created_at.day)
        name = self._index_names.get(key)
        if name is None:
            name = self._index_names[key] = index_for(created_at, self.prefix, self.period)
        return name

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_initial * (2**attempt))
        # full jitter: many writers recovering from the same outage spread out
        return random.uniform(delay / 2, delay)

    def _ensure_indices(self, records: list[SpoolRecord]) -> None:
        if not {r.index for r in records} - self._known_indices:
            return
        with self._indices_lock:  # two sending threads must not both create one
            for index in {r.index for r in records} - self._known_indices:
                ensure_index(self.client, index)
                self._known_indices.add(index)

    def _send_segment(
        self, seg: Segment, report: WriteReport, *, replay: bool, given_up: threading.Event
    ) -> bool:
        """Spool a new segment (durably, before any byte of it is sent), then send it.

        A replayed segment is on disk already. Writing the segment here, in the
        flight's thread, lets its fsyncs overlap with the calling thread serialising
        the next batch and with the other flights' requests. `given_up` is the
        call's: set by the first flight that spent its retry budget."""
        if not replay:
            self.spool.append(seg.records, seg.path)
        with contextlib.ExitStack() as retrying:  # holds the retry lock once it is taken
            return self._send_attempts(
                seg, report, replay=replay, retrying=retrying, given_up=given_up
            )

    def _send_attempts(
        self,
        seg: Segment,
        report: WriteReport,
        *,
        replay: bool,
        retrying: contextlib.ExitStack,
        given_up: threading.Event,
    ) -> bool:
        """Send one segment until every record is acked or dead-lettered.

        Returns False if Elasticsearch is unavailable; the segment then keeps the
        records that are still pending. That is after ``max_retries`` retries, or
        at the first failure once another flight of the call gave up (`given_up`):
        the call's retry budget is spent once, not once per flight (module doc).
        """
        pending = list(seg.records)
        attempt = 0
        last_problem = ""
        retry_lock_held = False
        while pending:
            try:
                self._ensure_indices(pending)
                resp = self.client.bulk(
                    operations=_bulk_body(pending),
                    refresh="wait_for" if self.refresh else None,
                    filter_path=_BULK_ANSWER,
                )
            except (EsConnectionError, TransportError) as exc:
                last_problem = describe_es_error(exc, self._hosts)
            except ApiError as exc:
                if exc.status_code not in RETRYABLE_STATUS:
                    # the whole request was refused (e.g. 400 on malformed input,
                    # 401/403 on credentials): retrying the same bytes cannot help
                    # and the spool keeps the segment for after the fix
                    report.spooled += len(pending)
                    report.unavailable = f"bulk request refused: {describe_es_error(exc, self._hosts)}"
                    self.spool.rewrite(seg.path, pending)
                    return False
                last_problem = describe_es_error(exc, self._hosts)
            else:
                acked, retry = self._handle_items(pending, resp["items"], report, replay)
                if retry and len(retry) < len(pending):
                    # progress: persist it, so a crash now does not resend the acked ones
                    self.spool.rewrite(seg.path, retry)
                pending = retry
                if not pending:
                    break
                last_problem = f"{len(pending)} item(s) answered 429/5xx"
                if acked:
                    attempt = 0
            if attempt >= self.max_retries or given_up.is_set():
                self._give_up(seg, pending, report, last_problem, attempt, given_up)
                return False
            if not retry_lock_held:
                # Pushback (429/5xx) or a connection problem: one flight retries at
                # a time, and no new flight starts while the call lasts; parallel
                # retries would only add to what the node already refuses.
                self.pushback.set()
                retrying.enter_context(self._retry_lock)
                retry_lock_held = True
                if given_up.is_set():
                    # the flight that held the lock spent the budget meanwhile
                    self._give_up(seg, pending, report, last_problem, attempt, given_up)
                    return False
            report.retries += 1
            self._sleep(self._backoff(attempt))
            attempt += 1
        self.spool.remove(seg.path)
        return True

    def _give_up(
        self,
        seg: Segment,
        pending: list[SpoolRecord],
        report: WriteReport,
        problem: str,
        attempt: int,
        given_up: threading.Event,
    ) -> None:
        """Leave `pending` in `seg`'s spool segment for a later call. The first flight
        of a call to give up says why (at INFO: the caller reports the outage from
        `WriteReport.unavailable`, and the daemon says it once per outage, not once
        per batch) and makes the call's other flights give up without retrying."""
        report.spooled += len(pending)
        report.unavailable = problem
        self.spool.rewrite(seg.path, pending)
        with self._give_up_lock:
            first = not given_up.is_set()
            given_up.set()
        if first:
            log.info(
                "Elasticsearch unavailable after %d attempt(s) of up to %g s each "
                "(request_timeout) (%s); %d mention(s) stay in %s, and the rest of this "
                "write with them",
                attempt + 1, self.request_timeout, problem, len(pending), self.spool.dir,
            )  # fmt: skip

    def _handle_items(
        self,
        records: list[SpoolRecord],
        items: list[dict[str, Any]],
        report: WriteReport,
        replay: bool,
    ) -> tuple[int, list[SpoolRecord]]:
        if len(items) != len(records):
            raise RuntimeError(f"bulk answered {len(items)} items for {len(records)} operations")
        acked = 0
        retry: list[SpoolRecord] = []
        for rec, item in zip(records, items, strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                acked += 1
                if self.after_write is not None:
                    report.hours.add(_hour_of(rec.doc.get("created_at")))
            elif status in RETRYABLE_STATUS:
                retry.append(rec)
            else:
                reason = _reason(result.get("error"))
                self.spool.dead_letter(rec, reason, status)
                report.dead_lettered += 1
                report.failures.append(DocFailure(rec.id, rec.index, status, reason))
        report.indexed += acked
        if replay:
            report.replayed += acked
        return acked, retry


class _Flights:
    """The ``_bulk`` requests of one `write`/`replay` call, up to ``concurrency`` at once.

    `send` blocks while the limit is reached, while an earlier flight holds one of
    the segment's ids (so the older version lands first), and, until a first
    acknowledgement or once a flight had to retry (429, 5xx, a connection
    problem), while any flight is out: a dead or saturated node sees one batch
    retried, not several. Once a flight found Elasticsearch unavailable, later
    segments are not sent: they stay in the spool and count as spooled. Each
    flight keeps its own `WriteReport`, merged into the call's when it lands.
    """

    def __init__(self, writer: BulkWriter, report: WriteReport) -> None:
        self.writer = writer
        self.report = report
        self.down = False
        self.confirmed = False
        self.given_up = threading.Event()  # a flight spent the call's retry budget
        self._running: dict[Future[bool], tuple[frozenset[str], WriteReport]] = {}
        writer.pushback.clear()
        self._pool = ThreadPoolExecutor(writer.concurrency, thread_name_prefix="bulk-writer")

    def __enter__(self) -> _Flights:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._land(list(self._running))
        finally:
            self._pool.shutdown(wait=True)

    def send(self, seg: Segment, *, replay: bool) -> None:
        """Send `seg` in a flight of its own: a replayed one (on disk already) or a new
        one, which the flight spools before sending (`BulkWriter._send_segment`). A
        segment not sent because Elasticsearch is down is spooled here."""
        if self.down:
            self._keep(seg, replay=replay)
            return
        ids = frozenset(r.id for r in seg.records)
        blocking = [f for f, (held, _) in self._running.items() if not held.isdisjoint(ids)]
        if blocking:
            self._land(blocking)
        while self._running and len(self._running) >= (
            self.writer.concurrency if self.confirmed and not self.writer.pushback.is_set() else 1
        ):
            self._land(wait(self._running, return_when=FIRST_COMPLETED).done)
        if self.down:
            self._keep(seg, replay=replay)
            return
        part = WriteReport()
        future = self._pool.submit(
            self.writer._send_segment, seg, part, replay=replay, given_up=self.given_up
        )
        self._running[future] = (ids, part)

    def _keep(self, seg: Segment, *, replay: bool) -> None:
        """Leave `seg` in the spool for a later call (writing it first if it is new)."""
        if not replay:
            self.writer.spool.append(seg.records, seg.path)
        self.report.spooled += len(seg.records)

    def _land(self, futures: Iterable[Future[bool]]) -> None:
        for future in list(futures):
            _, part = self._running.pop(future)
            ok = future.result()  # a bug in a flight surfaces in the caller
            self.report.merge(part)
            if ok:
                self.confirmed = True
            else:
                self.down = True
