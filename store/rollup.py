"""The hourly counts index: per (brand, hour), what `store.queries.IntervalCounts` and
`SourceCounts` hold, kept up to date after every indexing batch.

Why: an alert check asks every rule's counts over `alerts.history` (weeks) for every
brand, every minute; aggregating raw mentions for that is most of a check's cost.
The rollup index ``<prefix>-counts-hourly`` holds one document per (brand, UTC hour)
with the hour's counts per minute, so the readers sum a few hundred small documents
instead (`store.reader.RollupMentionReader`).

How it is kept (`CountsRollup.recompute`): after a batch is indexed, the hours its
mentions' `created_at` fall in are recomputed from the raw mentions -- one aggregation
over those hours only, counted exactly as the raw counts are
(`store.queries.sentiment_aggs`) -- and each (brand, hour) document is overwritten
under the deterministic id ``brand|hour``, with `rolled_at` (when it was recomputed).
An hour is never incremented, only recomputed: a late mention, a re-score or a resend
of the same batch just recomputes its hour, and the result is the same whatever the
order.

Two writers recomputing one hour at once (scorer workers on several hosts) cannot leave
an answer that misses a mention, whatever their clocks say: the recompute first reads
the `_seq_no`/`_primary_term` of the hour's documents, then refreshes and aggregates,
then writes each document only if it is unchanged since that read (`if_seq_no` /
`if_primary_term`; one that did not exist with `op_type: create`). A write succeeds
only if nobody wrote the document since this recompute read it, and this recompute
aggregated after that read, so the last successful write's aggregation saw every
mention acknowledged before the document's previous write; a mention acknowledged
later triggers its own recompute, which reads a later seq_no (and, if an older
recompute lands first, conflicts and redoes). On a conflict (HTTP 409) the hours of
the conflicting documents are recomputed again (read, refresh, aggregate, write), at
most `_ROUNDS` times; hours still conflicting after that are kept pending and retried
with the next batch (one WARNING). No clock decides who wins: a recompute whose clock
is behind another's but that ran later lands.

`rolled_at` is still the writer's clock when the round started: the incremental reader
(`store.reader.RollupMentionReader`) re-reads the documents rolled at or after the
newest `rolled_at` it has seen less `store.reader.LOOK_BACK` (1 h). A document written
by a writer whose clock is behind the one that wrote that newest `rolled_at` by more
than the look-back less the recompute's duration (seconds) is missed by a reader that
keeps documents until it restarts: writers' clocks must agree within about an hour
for the incremental reader (the counts written are right whatever the clocks).

The same recompute -- the same aggregation, under the same (brand, hour) buckets --
also counts, per (brand, hour), what a report reads: the brand's mentions and
sentiment buckets with near-duplicates excluded (`store.queries.NOT_DUPLICATE`), in all
(`report_counts`) and split by `source` and by `language` (a missing one as "unknown";
`report_splits`, nested), as numbers the node sums (`report_sums`), so
`reports.share_of_voice` can read whole hours from here instead of aggregating raw
mentions. Rollup version 3 (`ROLLUP_VERSION`); version 2 kept the same counts as one
JSON string per hour, which Python had to decode (a warm week report slower than the raw
aggregation). Documents written before (no `rollup_version`, or 2) are not read for
reports: those read raw, saying why, until ``python scheduler.py rebuild-counts``
rewrites them.

An hour whose recompute failed (Elasticsearch down) is kept and retried with the next
batch; `rebuild` recomputes every hour that holds a mention (or a given span), e.g.
for a counts index that missed writes (``python scheduler.py rebuild-counts``); a
daemon starting with `rollup` (the default) and no counts index builds it itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from brandpulse.timeutil import require_utc
from store.queries import (
    NOT_DUPLICATE,
    UNKNOWN_LANGUAGE,
    IntervalCounts,
    interval_counts_of,
    sentiment_aggs,
)

if TYPE_CHECKING:
    from brandpulse.config import Config
    from store.writer import BulkWriter

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# One aggregation covers at most this many hours (a batch touches one or two; a
# rebuild goes through history this many at a time).
_HOURS_PER_QUERY = 24
# Composite pages of hour keys: bounded whatever the number of hours.
_PAGE = 1000
# (brand, hour) buckets per page of the recompute's aggregation: each holds up to 60
# minute buckets with a few sub-buckets (sentiment keys, sources) and the report's
# (sources, languages), so a page holds about as many buckets as 1,000 (brand, minute)
# ones did, well under search.max_buckets.
_HOURS_PAGE = 20
_MAX_SOURCES = 1000
_MAX_KEYS = 6000
# Counted fields of a minute and of the hour, in `IntervalCounts`' order.
COUNT_FIELDS: tuple[str, ...] = ("total", "negative", "neutral", "positive", "unscored", "uncertain")
# The report counts of a (brand, hour), as `reports.share_of_voice.SentimentCounts` holds them.
REPORT_FIELDS: tuple[str, ...] = ("mentions", "negative", "neutral", "positive", "uncertain")
# 1: minutes and sources only (no `rollup_version` field); 2: + `report` (a JSON string);
# 3: `report_counts` + `report_splits` (numbers the node sums) instead of `report`.
ROLLUP_VERSION = 3
_MAX_LANGUAGES = 1000
# Version 2's `report` strings longer than this were not kept (Lucene keeps a doc value
# of at most 32,766 bytes); its mapping is kept so old and new indices agree.
_MAX_REPORT_CHARS = 8_000
# Rounds of a recompute whose writes conflicted (another writer wrote the hour's document
# between this one's read and its write) before its hours are left pending.
_ROUNDS = 5
# Existing (brand, hour) documents read per request before a recompute.
_IDS_PAGE = 10_000


def counts_index_name(prefix: str = "brandpulse") -> str:
    return f"{prefix}-counts-hourly"


def floor_hour(at: datetime) -> datetime:
    return at - ((at - _EPOCH) % HOUR)


def ceil_hour(at: datetime) -> datetime:
    floor = floor_hour(at)
    return floor if floor == at else floor + HOUR


def doc_id(brand: str, hour: datetime) -> str:
    """The deterministic id of (brand, hour): ``Acme|2026-03-01T13:00:00Z``."""
    return f"{brand}|{_iso(hour)}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def mappings() -> dict[str, Any]:
    """One document per (brand, hour): the hour's totals (searchable, for Kibana and
    reports) and, kept in `_source` only, its non-empty minutes and per-source minutes."""
    long_ = {"type": "long"}
    return {
        "dynamic": "strict",
        "properties": {
            "brand": {"type": "keyword"},
            "hour": {"type": "date"},
            "rolled_at": {"type": "date"},
            **{name: long_ for name in COUNT_FIELDS},
            # [{"m": minute of the hour, "total": .., "negative": .., ...}], non-empty only
            "minutes": {"type": "object", "enabled": False},
            # [{"m": minute, "source": source_name, "total": n}], non-empty only
            "sources": {"type": "object", "enabled": False},
            **_REPORT_MAPPINGS,
        },
    }


_REPORT_COUNTS: dict[str, Any] = {f: {"type": "long"} for f in REPORT_FIELDS}

# Added by rollup versions 2 and 3 (also put on a counts index created before,
# `ensure_counts_index`: adding fields is all a mapping update may do).
_REPORT_MAPPINGS: dict[str, Any] = {
    "rollup_version": {"type": "short"},
    # version 2 only (no longer written): compact JSON of the same counts as below, a
    # doc-values-only string read as aggregation keys and decoded in Python
    "report": {"type": "keyword", "index": False, "doc_values": True,
               "ignore_above": _MAX_REPORT_CHARS},
    # version 3: the hour's report counts (REPORT_FIELDS, duplicates excluded), summed on
    # the node by a report (`report_sums`)
    "report_counts": {"type": "object", "properties": _REPORT_COUNTS},
    # version 3: the same per source and per language, one nested document per non-empty
    # (split, value): a report sums them per value with a `nested` aggregation. Nested
    # rather than one field per source/language name: the names are open-ended (a
    # mapping field per name would grow without bound and a report would have to list
    # the fields first); nested keeps the mapping fixed and the sums exact.
    "report_splits": {
        "type": "nested",
        "properties": {"split": {"type": "keyword"}, "value": {"type": "keyword"},
                       **_REPORT_COUNTS},
    },
}  # fmt: skip


def install_counts_template(client: Elasticsearch, prefix: str, meta: dict[str, Any]) -> str:
    """The index template of the counts index (one index, no alias). Idempotent."""
    name = counts_index_name(prefix)
    client.indices.put_index_template(
        name=name,
        index_patterns=[name],
        template={
            "settings": {
                "index": {
                    "number_of_shards": 1,
                    "auto_expand_replicas": "0-1",
                    "refresh_interval": "1s",
                }
            },
            "mappings": mappings(),
        },
        priority=500,
        meta=meta,
    )
    return name


def ensure_counts_index(client: Elasticsearch, prefix: str, *, update_mapping: bool = False) -> bool:
    """Create the counts index from its template if missing; True if it was created.

    With `update_mapping`, an existing index also gets the fields rollup version 2 added
    (its mapping is strict: an index created before would refuse the new documents);
    adding fields is idempotent, so this is safe on every start."""
    name = counts_index_name(prefix)
    try:
        client.indices.create(index=name)
        return True
    except ApiError as exc:
        if exc.error != "resource_already_exists_exception":
            raise
    if update_mapping:
        client.indices.put_mapping(index=name, properties=_REPORT_MAPPINGS)
    return False


@dataclass(frozen=True)
class HourCounts:
    """One (brand, hour) document of the counts index, read back."""

    brand: str
    hour: datetime
    rolled_at: datetime
    # minute of the hour -> counts in COUNT_FIELDS order
    minutes: dict[int, tuple[int, ...]]
    # (minute, source) -> mentions
    sources: dict[tuple[int, str], int]

    @classmethod
    def from_source(cls, src: dict[str, Any], shared: dict[Any, Any] | None = None) -> HourCounts:
        """The document read back. `shared`, when given, is a table of the values read so
        far (a reader that keeps documents passes its own, `store.reader`): a minute's
        counts, a ``(minute, source)`` key, a source name, the brand and ``rolled_at``
        equal to one already in it are stored as that one, once for all documents,
        instead of once per document. A busy brand's hour holds dozens of each, and the
        same few recur from hour to hour (counts of a minute are small numbers, there
        are 60 minutes and a few sources): at 60 mentions an hour a kept document
        takes 3.7 KiB instead of 13.2 KiB (bench/reader_memory.py, 50 brands x 14
        days). The values are immutable, so sharing changes nothing a reader computes."""
        one = shared.setdefault if shared is not None else _itself
        return cls(
            brand=one(src["brand"], src["brand"]),
            hour=_parse(src["hour"]),
            rolled_at=_shared_time(src["rolled_at"], shared),
            minutes={
                int(m["m"]): _one(one, tuple(int(m.get(f, 0)) for f in COUNT_FIELDS))
                for m in src.get("minutes") or ()
            },
            sources={
                _one(one, (int(s["m"]), _one(one, str(s["source"])))): int(s["total"])
                for s in src.get("sources") or ()
            },
        )


def _itself(value: Any, default: Any) -> Any:
    return value


def _one(one: Callable[[Any, Any], Any], value: Any) -> Any:
    return one(value, value)


def _shared_time(text: str, shared: dict[Any, Any] | None) -> datetime:
    """`text` parsed, or the datetime parsed from the same text before (`shared`): one
    recompute gives every (brand, hour) it writes the same ``rolled_at``."""
    if shared is None:
        return _parse(text)
    key = ("rolled_at", text)
    found = shared.get(key)
    if found is None:
        found = shared[key] = _parse(text)
    return found


def hours_of(created: Iterable[datetime]) -> set[datetime]:
    """The UTC hours holding these `created_at` times."""
    return {floor_hour(require_utc(at, "created_at")) for at in created}


class CountsRollup:
    """Keeps ``<prefix>-counts-hourly`` in step with the mentions index (`recompute`).

    Thread-safe; one instance per writer process is enough, and any number of writer
    processes may keep one index (concurrent writes are resolved by `_seq_no`, not by
    clocks: module docstring). `clock` gives `rolled_at` only (tests inject theirs).
    `before_write`, for tests only, is called with the hours of a round between its
    aggregation and its write (to interleave another writer there)."""

    def __init__(
        self,
        es: Elasticsearch,
        prefix: str,
        *,
        mentions_index: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        before_write: Callable[[list[datetime]], None] | None = None,
    ) -> None:
        self.es = es
        self.prefix = prefix
        self.mentions_index = mentions_index or f"{prefix}-mentions"
        self.index = counts_index_name(prefix)
        self.clock = clock
        self.before_write = before_write
        self._lock = threading.Lock()
        self._pending: set[datetime] = set()  # hours whose recompute failed
        self._mapped = False  # the existing index's mapping has the version-2 fields

    def pending(self) -> int:
        """Hours still to recompute (their last attempt failed)."""
        return len(self._pending)

    def after_write(self, hours: Iterable[datetime]) -> None:
        """Recompute `hours` (and any left over from a failed attempt); never raises for an
        Elasticsearch problem: the hours are kept and retried with the next batch, as are
        hours whose writes still conflicted after `_ROUNDS` rounds."""
        with self._lock:
            todo = self._pending | set(hours)
            if not todo:
                return
            try:
                _, left = self._recompute_all(todo)
            except Exception as exc:
                self._pending = todo
                log.warning("counts rollup: %d hour(s) not recomputed (%s: %s); retried with the "
                            "next batch", len(todo), type(exc).__name__, exc)  # fmt: skip
            else:
                self._pending = left
                _warn_conflicts(left)

    def recompute(self, hours: Iterable[datetime]) -> int:
        """Recompute the (brand, hour) documents of `hours` from the raw mentions and
        overwrite them (a brand no longer in an hour gets zeros: never a delete, so an
        incremental reader sees the change); how many brand-hours have mentions.

        Hours whose writes still conflicted after `_ROUNDS` rounds (other writers kept
        writing them) are left pending, recomputed with the next `after_write`."""
        written, left = self._recompute_all(hours)
        if left:
            with self._lock:
                self._pending |= left
            _warn_conflicts(left)
        return written

    def _recompute_all(self, hours: Iterable[datetime]) -> tuple[int, set[datetime]]:
        """(brand-hours with mentions written, hours left conflicting)."""
        wanted = sorted({floor_hour(require_utc(h, "hour")) for h in hours})
        written = 0
        left: set[datetime] = set()
        for i in range(0, len(wanted), _HOURS_PER_QUERY):
            todo = wanted[i : i + _HOURS_PER_QUERY]
            for _ in range(_ROUNDS):
                n, conflicted = self._recompute(todo)
                written += n
                if not conflicted:
                    break
                todo = sorted(conflicted)
            else:
                left |= set(todo)
        return written, left

    def rebuild(self, start: datetime | None = None, end: datetime | None = None) -> int:
        """Recompute every hour of ``[start, end)`` that holds a mention (all of them by
        default), plus those the counts index has there; documents written."""
        with contextlib.suppress(NotFoundError):
            self.es.indices.refresh(index=self.mentions_index)  # hours just written count too
        hours = set(self._mention_hours(start, end))
        hours |= set(self._rolled_hours(start, end))
        return self.recompute(hours)

    # ---------------------------------------------------------------- internals

    def _recompute(self, hours: list[datetime]) -> tuple[int, set[datetime]]:
        """One round: read the hours' documents' seq_no, refresh, aggregate, write each
        document only if unchanged since the read. (Brand-hours with mentions written,
        hours of the documents whose write conflicted: another writer wrote them.)"""
        ensure_counts_index(self.es, self.prefix, update_mapping=not self._mapped)
        self._mapped = True
        started = require_utc(self.clock(), "clock()")
        # read before the refresh and the aggregation: what this round writes must have
        # been aggregated after the state it replaces was read (module docstring)
        existing = self._existing_ids(hours)
        with contextlib.suppress(NotFoundError):
            # what the aggregation reads must include the batch just acknowledged
            self.es.indices.refresh(index=self.mentions_index)
        docs: dict[tuple[str, datetime], dict[str, Any]] = {}
        for brand, hour, bucket in self._buckets(hours):
            doc = docs[(brand, hour)] = _empty(brand, hour, started)
            for mb in bucket["minute"]["buckets"]:
                minute = datetime.fromtimestamp(mb["key"] / 1000, tz=UTC)
                c = interval_counts_of(brand, minute, mb)
                row = {"m": int((minute - hour) // MINUTE)}
                for f in COUNT_FIELDS:
                    row[f] = getattr(c, f)
                    doc[f] += getattr(c, f)
                doc["minutes"].append(row)
                for sb in mb["source"]["buckets"]:
                    doc["sources"].append({"m": row["m"], "source": str(sb["key"]),
                                           "total": int(sb["doc_count"])})  # fmt: skip
            report = bucket["report"]
            if report["doc_count"]:  # else zeros: only near-duplicates this hour
                doc["report_counts"], doc["report_splits"] = _report(brand, hour, report)
        by_id = {doc_id(brand, hour): doc for (brand, hour), doc in docs.items()}
        for stale_id in existing.keys() - by_id.keys():
            # zeros, not a delete: an incremental reader sees the change (rolled_at)
            brand, _, hour = stale_id.rpartition("|")
            by_id[stale_id] = _empty(brand, _parse(hour), started)
        ops: list[dict[str, Any]] = []
        for id_, doc in by_id.items():
            if id_ in existing:
                seq_no, primary_term = existing[id_]
                ops.append({"index": {"_index": self.index, "_id": id_, "if_seq_no": seq_no,
                                      "if_primary_term": primary_term}})  # fmt: skip
            else:
                ops.append({"create": {"_index": self.index, "_id": id_}})
            ops.append(doc)
        if not ops:
            return 0, set()
        if self.before_write is not None:
            self.before_write(hours)
        resp = self.es.bulk(operations=ops, refresh=True)
        if not resp.get("errors"):
            return len(docs), set()
        conflicted: set[datetime] = set()
        for item in resp["items"]:
            result = next(iter(item.values()))
            status = int(result.get("status", 0))
            if status == 409:  # written by another since our read: this hour again
                conflicted.add(_parse(str(result.get("_id")).rpartition("|")[2]))
            elif status >= 300:
                raise RuntimeError(f"counts rollup write of {result.get('_id')} failed: "
                                   f"HTTP {status}: {result.get('error')}")  # fmt: skip
        # those with mentions that landed (the conflicting ones are counted when redone)
        return sum(1 for b, h in docs if h not in conflicted), conflicted

    def _buckets(self, hours: list[datetime]) -> Iterable[tuple[str, datetime, dict[str, Any]]]:
        """(brand, hour, bucket) for every (brand, hour) of `hours` holding a mention, from
        **one** paged composite aggregation whose buckets hold both what a document keeps:

        - ``minute``: per minute holding a mention, `sentiment_aggs` and the mentions per
          `source_name` (the alerts' counts);
        - ``report``: the mentions that are not near-duplicates (`NOT_DUPLICATE`, a
          `filter` sub-aggregation), with the same sentiment counting (`sentiment_aggs`,
          what `brand_sentiment_filter` selects) in all and split by `source` and by
          `language` (a missing one as "unknown"): the counts `reports.share_of_voice`
          makes with `exclude_duplicates`.

        One pass over the hours' mentions: rollup version 2 first made the report counts
        with a second composite aggregation, which cost a warm hour's recompute +33-58 %
        (docs/benchmarks.md)."""
        counted = sentiment_aggs({"field": "brand_sentiment_keys", "size": _MAX_KEYS})
        sources = [
            {"brand": {"terms": {"field": "brands"}}},
            {"hour": {"date_histogram": {"field": "created_at", "fixed_interval": "3600s"}}},
        ]
        aggs = {
            "minute": {
                "date_histogram": {"field": "created_at", "fixed_interval": "60s",
                                   "min_doc_count": 1},
                "aggs": {**counted,
                         "source": {"terms": {"field": "source_name", "size": _MAX_SOURCES}}},
            },
            "report": {
                "filter": NOT_DUPLICATE,
                "aggs": {
                    **counted,
                    "by_source": {"terms": {"field": "source", "size": _MAX_SOURCES},
                                  "aggs": counted},
                    "by_language": {"terms": {"field": "language", "size": _MAX_LANGUAGES,
                                              "missing": UNKNOWN_LANGUAGE}, "aggs": counted},
                },
            },
        }  # fmt: skip
        for b in self._composite(self.mentions_index, _in_hours(hours), sources, aggs, _HOURS_PAGE):
            hour = datetime.fromtimestamp(b["key"]["hour"] / 1000, tz=UTC)
            yield str(b["key"]["brand"]), hour, b

    def _composite(
        self,
        index: str,
        query: dict[str, Any],
        sources: list[dict[str, Any]],
        aggs: dict[str, Any] | None,
        size: int,
    ) -> Iterable[dict[str, Any]]:
        """Every bucket of a composite aggregation of `sources` (with sub-aggregations
        `aggs`) over the documents of `index` matching `query`, page by page; nothing
        when the index does not exist."""
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": size, "sources": sources}
            if after is not None:
                composite["after"] = after
            try:
                resp = self.es.search(index=index, size=0, query=query, aggs={
                    "c": {"composite": composite, **({"aggs": aggs} if aggs else {})}})  # fmt: skip
            except NotFoundError:
                return
            agg = resp["aggregations"]["c"]
            yield from agg["buckets"]
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                return

    def _existing_ids(self, hours: list[datetime]) -> dict[str, tuple[int, int]]:
        """The ids of the documents of `hours` -> their (`_seq_no`, `_primary_term`), as
        last refreshed (every write here refreshes; one not yet visible makes the write
        conflict, and the hour is redone). Paged: every document must be found, or its
        write (`create`) would conflict every round."""
        out: dict[str, tuple[int, int]] = {}
        after: list[Any] | None = None
        while True:
            try:
                resp = self.es.search(
                    index=self.index,
                    size=_IDS_PAGE,
                    query={"terms": {"hour": [_iso(h) for h in hours]}},
                    sort=[{"hour": "asc"}, {"brand": "asc"}],
                    search_after=after,
                    source=False,
                    seq_no_primary_term=True,
                    track_total_hits=False,
                )
            except NotFoundError:
                return out
            hits = resp["hits"]["hits"]
            out.update((h["_id"], (int(h["_seq_no"]), int(h["_primary_term"]))) for h in hits)
            if len(hits) < _IDS_PAGE:
                return out
            after = hits[-1]["sort"]

    def _span_query(self, field: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        bounds: dict[str, Any] = {"format": "strict_date_optional_time"}
        if start is not None:
            bounds["gte"] = _iso(start)
        if end is not None:
            bounds["lt"] = _iso(end)
        return {"range": {field: bounds}} if len(bounds) > 1 else {"match_all": {}}

    def _hour_keys(self, index: str, field: str, start: datetime | None, end: datetime | None) -> list[datetime]:
        sources = [{"h": {"date_histogram": {"field": field, "fixed_interval": "3600s"}}}]
        buckets = self._composite(index, self._span_query(field, start, end), sources, None, _PAGE)
        return [datetime.fromtimestamp(b["key"]["h"] / 1000, tz=UTC) for b in buckets]

    def _mention_hours(self, start: datetime | None, end: datetime | None) -> list[datetime]:
        return self._hour_keys(self.mentions_index, "created_at", start, end)

    def _rolled_hours(self, start: datetime | None, end: datetime | None) -> list[datetime]:
        return self._hour_keys(self.index, "hour", start, end)


def _in_hours(hours: list[datetime]) -> dict[str, Any]:
    """A query for the mentions created in any of `hours` (a fresh dict: callers add to it)."""
    ranges = [
        {"range": {"created_at": {"gte": _iso(h), "lt": _iso(h + HOUR),
                                  "format": "strict_date_optional_time"}}}
        for h in hours
    ]  # fmt: skip
    return {"bool": {"should": ranges, "minimum_should_match": 1}}


def _warn_conflicts(hours: set[datetime]) -> None:
    if hours:
        log.warning("counts rollup: %d hour(s) still written by another writer after %d rounds "
                    "(%s); kept and retried with the next batch", len(hours), _ROUNDS,
                    ", ".join(_iso(h) for h in sorted(hours)[:5]))  # fmt: skip


def counts_rollup(config: Config, client: Elasticsearch, writer: BulkWriter) -> CountsRollup | None:
    """With `alerts.counts_source: rollup`, a `CountsRollup` hooked to `writer` (every
    batch it indexes recomputes its hours); None (and the writer untouched) with `raw`."""
    if config.alerts.counts_source != "rollup":
        return None
    rollup = CountsRollup(client, config.elasticsearch.index_prefix)
    writer.after_write = rollup.after_write
    return rollup


def _empty(brand: str, hour: datetime, rolled_at: datetime) -> dict[str, Any]:
    return {
        "brand": brand,
        "hour": _iso(hour),
        "rolled_at": _iso(rolled_at),
        "rollup_version": ROLLUP_VERSION,
        **{f: 0 for f in COUNT_FIELDS},
        "minutes": [],
        "sources": [],
        # no mention but near-duplicates
        "report_counts": {f: 0 for f in REPORT_FIELDS},
        "report_splits": [],
    }


def _report(
    brand: str, hour: datetime, bucket: dict[str, Any]
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """`report_counts` and `report_splits` of `brand`'s hour from its ``report`` bucket
    (`CountsRollup._buckets`)."""
    splits = [
        {"split": split, "value": str(sb["key"]), **_report_counts(brand, hour, sb)}
        for split in ("source", "language")
        for sb in bucket[f"by_{split}"]["buckets"]
    ]
    return _report_counts(brand, hour, bucket), splits


def _report_counts(brand: str, hour: datetime, bucket: dict[str, Any]) -> dict[str, int]:
    """`brand`'s REPORT_FIELDS from a bucket aggregated with `sentiment_aggs`."""
    c = interval_counts_of(brand, hour, bucket)
    return {"mentions": c.total, "negative": c.negative, "neutral": c.neutral,
            "positive": c.positive, "uncertain": c.uncertain}  # fmt: skip


@dataclass(frozen=True)
class ReportHour:
    """The report counts of one (brand, hour) document, read back from its `_source`;
    counts in REPORT_FIELDS order. `version` < ROLLUP_VERSION: written before the
    report counts were numbers (version 2: decoded from its `report` string; 1: empty,
    not zero). Reports do not read documents one by one (`report_sums` sums them on
    the node); this is for tests and inspection."""

    brand: str
    hour: datetime
    version: int
    counts: tuple[int, ...]
    sources: dict[str, tuple[int, ...]]
    languages: dict[str, tuple[int, ...]]

    @classmethod
    def from_source(cls, src: dict[str, Any]) -> ReportHour:
        version = int(src.get("rollup_version") or 1)

        def row(d: dict[str, Any]) -> tuple[int, ...]:
            return tuple(int(d.get(f, 0)) for f in REPORT_FIELDS)

        if version >= 3:
            counts, splits = src.get("report_counts") or {}, src.get("report_splits") or ()
            by = {split: {str(s["value"]): row(s) for s in splits if s["split"] == split}
                  for split in ("source", "language")}  # fmt: skip
            return cls(src["brand"], _parse(src["hour"]), version, row(counts),
                       by["source"], by["language"])  # fmt: skip
        parsed = json.loads(src["report"]) if src.get("report") else {}
        return cls(
            brand=src["brand"],
            hour=_parse(src["hour"]),
            version=version,
            counts=row(parsed.get("all") or {}),
            sources={str(s["source"]): row(s) for s in parsed.get("sources") or ()},
            languages={str(s["language"]): row(s) for s in parsed.get("languages") or ()},
        )


@dataclass(frozen=True)
class ReportSums:
    """What `report_sums` read: per brand, counts in REPORT_FIELDS order. A brand or a
    value without a document is absent (zeros)."""

    # documents of the span that have no (numeric) report counts: written before rollup
    # version 3; when there is any, the sums below are incomplete and must not be used
    old: int
    first_old: datetime | None
    now: dict[str, tuple[int, ...]]
    before: dict[str, tuple[int, ...]]
    # brand -> source / language -> counts, the `top` values by mentions then by value
    sources: dict[str, dict[str, tuple[int, ...]]]
    languages: dict[str, dict[str, tuple[int, ...]]]
    # brand -> trend step start (UTC) -> counts, steps holding a document only
    trend: dict[str, dict[datetime, tuple[int, ...]]]


def report_sums(
    es: Elasticsearch,
    counts_index: str,
    brands: Iterable[str],
    previous_start: datetime,
    start: datetime,
    end: datetime,
    *,
    trend_interval: str,
    time_zone: str,
    top: int,
) -> ReportSums:
    """The report counts of `brands` summed **on the node** (one request, `size: 0`):
    over the hours of ``[previous_start, start)`` (`before`) and of ``[start, end)``
    (`now`, per source and language through a `nested` aggregation, and per trend step
    of a `date_histogram` on `hour` with `trend_interval` ("hour" or "day") and
    `time_zone`, as the raw report's histogram; exact when every step starts on a whole
    UTC hour, which the caller checks). Whole hours; raises `NotFoundError` without a
    counts index. A (brand, hour) without a mention has no document: zeros.

    Sums rather than the documents: a week of three brands is ~1,000 documents, and
    reading them (version 2: as aggregation keys, one JSON string each, decoded in
    Python) cost more wall time than the raw aggregation it replaces; sums of `long`
    fields are exact (doubles, up to 2^53). The splits keep the `top` values by
    mentions (ties by value), as the raw report's `terms` do: exact on the counts
    index's one shard."""
    sums = {f: {"sum": {"field": f"report_counts.{f}"}} for f in REPORT_FIELDS}
    nested_sums = {f: {"sum": {"field": f"report_splits.{f}"}} for f in REPORT_FIELDS}
    brands = list(brands)

    def hours(lo: datetime, hi: datetime) -> dict[str, Any]:
        return {"range": {"hour": {"gte": _iso(lo), "lt": _iso(hi),
                                   "format": "strict_date_optional_time"}}}  # fmt: skip

    split_aggs = {
        split: {
            "filter": {"term": {"report_splits.split": split}},
            "aggs": {"v": {"terms": {"field": "report_splits.value", "size": top,
                                     "order": [{"mentions": "desc"}, {"_key": "asc"}]},
                           "aggs": nested_sums}},
        }
        for split in ("source", "language")
    }  # fmt: skip
    aggs = {
        "old": {"filter": {"bool": {"must_not": [{"range": {"rollup_version": {"gte": ROLLUP_VERSION}}}]}},
                "aggs": {"first": {"min": {"field": "hour"}}}},
        "brand": {
            "terms": {"field": "brand", "size": max(len(brands), 1)},
            "aggs": {
                "before": {"filter": hours(previous_start, start), "aggs": sums},
                "now": {"filter": hours(start, end), "aggs": {
                    **sums,
                    "trend": {"date_histogram": {"field": "hour", "min_doc_count": 1,
                                                 "calendar_interval": f"1{trend_interval[0]}",
                                                 "time_zone": time_zone},
                              "aggs": sums},
                    "splits": {"nested": {"path": "report_splits"}, "aggs": split_aggs},
                }},
            },
        },
    }  # fmt: skip
    query = {"bool": {"filter": [{"terms": {"brand": brands}}, hours(previous_start, end)]}}
    resp = es.search(index=counts_index, size=0, track_total_hits=False, query=query, aggs=aggs)
    found = resp["aggregations"]

    def row(b: dict[str, Any]) -> tuple[int, ...]:
        return tuple(int(b[f]["value"]) for f in REPORT_FIELDS)

    old, first = int(found["old"]["doc_count"]), found["old"]["first"]["value"]
    out = ReportSums(old=old, first_old=datetime.fromtimestamp(first / 1000, tz=UTC) if old else None,
                     now={}, before={}, sources={}, languages={}, trend={})  # fmt: skip
    for b in found["brand"]["buckets"]:
        brand, now = str(b["key"]), b["now"]
        out.before[brand] = row(b["before"])
        out.now[brand] = row(now)
        out.trend[brand] = {datetime.fromtimestamp(t["key"] / 1000, tz=UTC): row(t)
                            for t in now["trend"]["buckets"]}  # fmt: skip
        for split, into in (("source", out.sources), ("language", out.languages)):
            into[brand] = {str(v["key"]): row(v) for v in now["splits"][split]["v"]["buckets"]}
    return out


def sum_minutes(
    brand: str, docs: Iterable[HourCounts], start: datetime, end: datetime, step: timedelta
) -> dict[datetime, list[int]]:
    """Per interval of `step` (aligned to the epoch), the counts (COUNT_FIELDS order) of
    the minutes of `docs` within ``[start, end)``; intervals without one are absent."""
    out: dict[datetime, list[int]] = {}
    for doc in docs:
        for m, counts in doc.minutes.items():
            at = doc.hour + m * MINUTE
            if not start <= at < end:
                continue
            key = at - ((at - _EPOCH) % step)
            acc = out.setdefault(key, [0] * len(COUNT_FIELDS))
            for i, n in enumerate(counts):
                acc[i] += n
    return out


def as_interval_counts(brand: str, at: datetime, counts: list[int]) -> IntervalCounts:
    return IntervalCounts(brand, at, *counts)


__all__ = [
    "COUNT_FIELDS",
    "REPORT_FIELDS",
    "ROLLUP_VERSION",
    "CountsRollup",
    "HourCounts",
    "ReportHour",
    "ReportSums",
    "counts_index_name",
    "counts_rollup",
    "doc_id",
    "ensure_counts_index",
    "hours_of",
    "install_counts_template",
    "report_sums",
]
