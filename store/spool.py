"""Durable local spool for mentions on their way to Elasticsearch.

Every batch is written here (and fsynced) *before* it is sent, as one
append-only JSONL segment; a segment is deleted only once Elasticsearch has
acknowledged every document in it (or rejected it for good, in which case the
document is in the dead-letter file with the reason). A crash, a kill or an
Elasticsearch outage therefore never loses a mention: the next writer replays
the segments in order. Replaying is safe because each line carries the
mention's deterministic ``_id`` and its target index, so a document that did
reach Elasticsearch before the failure is overwritten, not duplicated.

Segment names sort in creation order (a nanosecond timestamp first), so replay
is FIFO: an older version of a mention never overwrites a newer one that was
spooled after it (the writer may send several segments at once, but never two
that hold the same ``_id``: see ``store.writer``).

A document is serialised to JSON once (``SpoolRecord.raw``): the same bytes go
into the segment line and into the ``_bulk`` request body, and a segment read
back hands its documents' bytes on unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any

SEGMENT_SUFFIX = ".jsonl"
PARTIAL_SUFFIX = ".jsonl.partial"
DEAD_LETTER = "dead-letter.jsonl"
LOCK = ".lock"
# <20-digit ns timestamp>-<pid>-<seq>: sorts in creation order, and keeps the
# dead-letter file (also .jsonl) out of the segments
_SEGMENT_NAME = re.compile(r"^\d{20}-\d+-\d+\.")


class SpoolLockedError(RuntimeError):
    """Another writer owns this spool directory."""


# one encoder for every call: `json.dumps` with these arguments builds a new one each
# time, which is a measurable share of serialising a small value (an id, an index)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: Any) -> str:
    """Compact JSON, non-ASCII kept: the one JSON form of the spool lines and bulk bodies
    (exactly ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``)."""
    return _ENCODER.encode(value)


def dumps(value: Any) -> bytes:
    """`json_text` as UTF-8 bytes."""
    return _ENCODER.encode(value).encode()


def quote(text: str) -> bytes:
    """`dumps` of a string, without the encoder's dispatch: the same bytes, since
    ``JSONEncoder.encode`` of a str with ``ensure_ascii=False`` is exactly this call."""
    return encode_basestring(text).encode()


@dataclass(frozen=True)
class SpoolRecord:
    """One pending write: the document, its ``_id`` and the index it goes to.

    ``raw``, when given, is ``dumps(doc)`` already made (the writer serialises each
    document once); it must be exactly that."""

    id: str
    index: str
    doc: dict[str, Any]
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def doc_json(self) -> bytes:
        return self.raw if self.raw is not None else dumps(self.doc)

    def _head(self) -> bytes:
        return b'{"id":' + quote(self.id) + b',"index":' + quote(self.index) + b',"doc":'

    def to_line(self) -> bytes:
        # byte for byte json.dumps({"id", "index", "doc"}) of earlier versions
        return self._head() + self.doc_json() + b"}\n"


@dataclass(frozen=True)
class Segment:
    path: Path
    records: list[SpoolRecord]
    # lines that could not be parsed: a write torn by a crash before its fsync
    torn: list[str]


def _fsync_dir(path: Path) -> None:
    # a rename or unlink is durable only once the directory entry is synced
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A directory of JSONL segments plus a dead-letter file. One owner at a time."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh: IO[str] | None = open(self.dir / LOCK, "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            # two writers replaying the same segments would each resend them, and
            # an older segment could overwrite a newer version of a mention
            raise SpoolLockedError(
                f"spool {self.dir} is in use by another writer (lock {self.dir / LOCK})"
            ) from None
        self._seq = 0
        # the writer's send threads dead-letter concurrently: one appender at a time
        self._dead_letter_lock = threading.Lock()

    @property
    def dead_letter_path(self) -> Path:
        return self.dir / DEAD_LETTER

    def close(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_path(self) -> Path:
        """The path of a new segment, sorting after every segment named before it.

        Naming and writing are apart so that the writer can name segments in the
        order of its batches (one thread) and write each one from the thread that
        then sends it: replay order is the naming order, whichever write finished
        first. Not thread-safe: one thread names."""
        self._seq += 1
        return self.dir / f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{SEGMENT_SUFFIX}"

    def append(self, records: list[SpoolRecord], path: Path | None = None) -> Path:
        """Write a new segment durably (at `path`, from `next_path`, or a new one) and
        return its path: once this returns, the records survive a crash or power loss."""
        final = path if path is not None else self.next_path()
        partial = final.with_name(final.name.removesuffix(SEGMENT_SUFFIX) + PARTIAL_SUFFIX)
        with open(partial, "wb") as fh:
            fh.write(b"".join(r.to_line() for r in records))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, final)
        _fsync_dir(self.dir)
        return final

    def rewrite(self, segment: Path, records: list[SpoolRecord]) -> None:
        """Replace a segment by the records of it that are still pending (atomic)."""
        if not records:
            self.remove(segment)
            return
        tmp = segment.with_name(segment.name + ".rewrite")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(r.to_line() for r in records))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, segment)
        _fsync_dir(self.dir)

    def remove(self, segment: Path) -> None:
        segment.unlink(missing_ok=True)
        _fsync_dir(self.dir)

    def segments(self) -> list[Path]:
        """Pending segments, oldest first (completed ones and ones a crash left partial)."""
        paths = [
            p
            for p in self.dir.iterdir()
            if _SEGMENT_NAME.match(p.name)
            and (p.name.endswith(SEGMENT_SUFFIX) or p.name.endswith(PARTIAL_SUFFIX))
        ]
        return sorted(paths, key=lambda p: p.name)

    def pending_count(self) -> int:
        return sum(len(self.read(p).records) for p in self.segments())

    def read(self, segment: Path) -> Segment:
        records: list[SpoolRecord] = []
        torn: list[str] = []
        with open(segment, "rb") as fh:
            for raw in fh:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                    rec = SpoolRecord(id=obj["id"], index=obj["index"], doc=obj["doc"])
                except (ValueError, KeyError, TypeError):
                    torn.append(line)
                    continue
                # A line this spool wrote is head + the document's bytes + "}": hand
                # those bytes on instead of serialising the document again.
                body = raw.rstrip(b"\r\n")
                head = rec._head()
                if body.startswith(head) and body.endswith(b"}") and "\ufffd" not in line:
                    rec = SpoolRecord(rec.id, rec.index, rec.doc, body[len(head) : -1])
                records.append(rec)
        return Segment(segment, records, torn)

    def dead_letter(
        self,
        record: SpoolRecord | None,
        reason: str,
        status: int | None = None,
        raw: str | None = None,
    ) -> None:
        """Append a document Elasticsearch will never accept, with the reason."""
        entry: dict[str, Any] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "reason": reason,
            "status": status,
        }
        if record is not None:
            entry.update(id=record.id, index=record.index, doc=record.doc)
        if raw is not None:
            entry["raw"] = raw
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        with self._dead_letter_lock, open(self.dead_letter_path, "ab") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def dead_letters(self) -> Iterator[dict[str, Any]]:
        if not self.dead_letter_path.is_file():
            return
        with open(self.dead_letter_path, encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):
                    yield json.loads(line)
