"""Exports dropped in a folder (`type: export_drop`): CSV or JSON Lines files of posts.

For platforms BrandPulse does not crawl (Xiaohongshu, Douyin: see docs/crawlers.md
for why), a team drops the exports of a licensed data vendor, or of the platform's
own tools, into `path`; each crawl reads the new ones.

Columns (CSV header or JSON keys, case-insensitive): `id`, `text` and `created_at`
(ISO 8601 *with* an offset, e.g. `2026-11-26T21:14:05+08:00`) are required; `url`,
`author`, `reach` (the author's followers, a whole number) and `platform` (becomes
`Mention.source`, e.g. `xiaohongshu`; default the source's `platform`, else
`export`) are optional; other columns are ignored.

Contract:
* A file is read once. It is known by its content (SHA-256), so a re-dropped copy
  is not read again and a changed file under the same name is. The digests are the
  source's cursor: they are committed only once the mentions are indexed or spooled.
* A file is read only when it is stable: unchanged for `settle` (by its
  modification time, against the crawl clock `MentionSpider.now`). Hidden files and
  `.part` / `.tmp` / `.crdownload` / `.partial` names are never read.
* A malformed row (missing id/text, a time without a zone, a bad `reach`, bad
  JSON) is a `bad_row` fault naming `file:line`, and is skipped; the file's good
  rows are kept.
* Encodings: `encoding` when set; otherwise a UTF-8 BOM or valid UTF-8 is UTF-8,
  anything else GB18030 (the superset of GBK, what Chinese spreadsheet tools
  write); undecodable bytes become U+FFFD.
* Each file read counts as a page; a folder that does not exist skips the source.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from brandpulse.config import ExportDropSource
from brandpulse.mention import Engagement, Mention
from brandpulse.timeutil import to_utc
from crawlers.faults import STATS_PREFIX
from crawlers.spiders.base import MentionSpider
from crawlers.text import clean_field, clean_text

_PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download")
_PLATFORM = re.compile(r"^[a-z0-9_-]+$")
_MAX_FILES_REMEMBERED = 20000


class BadRow(ValueError):
    """One row of an export that cannot be a mention."""


def _one_byte(exc: UnicodeError) -> tuple[str, int]:
    # Python's CJK codecs report a bad lead byte together with the bytes after it
    # ("\xff1\n" as one error), which would swallow a digit and the line end; one
    # U+FFFD per bad byte keeps the rest of the row and the row boundaries.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\ufffd", exc.start + 1


codecs.register_error("brandpulse_one_byte", _one_byte)


def decode_export(data: bytes, encoding: str | None) -> str:
    """Export bytes -> text: the configured codec, else UTF-8 (BOM or not), else GB18030;
    each undecodable byte becomes one U+FFFD."""
    if encoding:
        return data.decode(encoding, errors="brandpulse_one_byte").lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="brandpulse_one_byte")


def read_rows(name: str, text: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    """(line number, row with lower-case keys) per record; a BadRow for what cannot be read."""
    if name.lower().endswith((".jsonl", ".ndjson", ".json")):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield number, BadRow(f"not JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield number, BadRow(f"a JSON {type(value).__name__}, not an object")
                continue
            yield number, {str(k).strip().lower(): v for k, v in value.items()}
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    start = 1
    try:
        for fields in reader:
            if header is None:
                header = [h.strip().lower() for h in fields]
                start = reader.line_num + 1
                continue
            if not any(f.strip() for f in fields):
                start = reader.line_num + 1
                continue
            if len(fields) != len(header):
                yield start, BadRow(f"{len(fields)} fields, the header has {len(header)}")
            else:
                yield start, dict(zip(header, fields, strict=True))
            start = reader.line_num + 1
    except csv.Error as exc:
        yield start, BadRow(f"CSV error: {exc}; the rest of the file is not read")


def _text(row: dict[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


class ExportDropSpider(MentionSpider):
    name = "export_drop"
    source_type = "export_drop"
    source_model = ExportDropSource
    expects_json = False
    default_requests_per_minute: ClassVar[float] = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: dict[str, str] = {}  # digest -> file name, read by earlier crawls
        self._read: dict[str, str] = {}  # digest -> file name, read by this crawl

    def egress_urls(self) -> list[str]:
        return []  # no network

    def check_credentials(self) -> str | None:
        folder = Path(self.source.path)
        if not folder.is_dir():
            return f"export folder {folder} does not exist (or is not a folder)"
        return None

    async def start(self) -> AsyncIterator[Any]:
        if self.skip_reason:
            self.crawler.stats.set_value(f"{STATS_PREFIX}/skipped", self.skip_reason)
            return
        self._old_cursor = self.cursor_store.load(self.source.name)
        self._seen = {str(k): str(v) for k, v in (self._old_cursor.get("files") or {}).items()}
        for path in self._ready_files():
            for mention in self._read_file(path):
                yield mention

    def _ready_files(self) -> list[Path]:
        now = self.now().timestamp()
        settle = self.source.settle.total_seconds()
        ready = []
        for path in sorted(Path(self.source.path).iterdir()):
            name = path.name
            if not path.is_file() or name.startswith(".") or name.endswith(_PARTIAL_SUFFIXES):
                continue
            if not any(fnmatch.fnmatch(name.lower(), p.lower()) for p in self.source.patterns):
                continue
            if now - path.stat().st_mtime < settle:
                self.drop("not_settled")  # still being written, perhaps: next crawl
                continue
            ready.append(path)
        return ready

    def _read_file(self, path: Path) -> Iterator[Mention]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.fault("unreadable_file", f"{path}: {exc}")
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest in self._seen or digest in self._read:
            self.drop("file_seen")
            return
        self._read[digest] = path.name
        self.crawler.stats.inc_value(f"{STATS_PREFIX}/pages")
        text = decode_export(data, self.source.encoding)
        for line, row in read_rows(path.name, text):
            try:
                if isinstance(row, BadRow):
                    raise row
                mention = self._row_to_mention(row)
            except BadRow as exc:
                self.fault("bad_row", f"{path.name}:{line}: {exc}")
                self.logger.info(
                    "source %r: %s:%d skipped: %s", self.source.name, path.name, line, exc
                )
                continue
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/posts_seen")
            yield mention

    def _row_to_mention(self, row: dict[str, Any]) -> Mention:
        post_id = _text(row, "id")
        text = _text(row, "text")
        created = _text(row, "created_at")
        missing = [
            k for k, v in (("id", post_id), ("text", text), ("created_at", created)) if not v
        ]
        if missing:
            raise BadRow(f"missing {', '.join(missing)}")
        try:
            when = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            raise BadRow(f"created_at {created!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise BadRow(f"created_at {created!r} has no time zone (write e.g. +08:00)")
        reach_text = _text(row, "reach")
        reach = None
        if reach_text is not None:
            try:
                reach = int(reach_text.replace(",", ""))
            except ValueError:
                raise BadRow(f"reach {reach_text!r} is not a whole number") from None
            if reach < 0:
                raise BadRow(f"reach {reach} is negative")
        platform = (_text(row, "platform") or self.source.platform or "export").lower()
        if not _PLATFORM.match(platform):
            raise BadRow(f"platform {platform!r} is not a lower-case name")
        url = _text(row, "url")
        try:
            return Mention(
                source=platform,
                source_id=clean_field(str(post_id)) or "",
                source_name=self.source.name,
                url=clean_field(url) if url else None,
                author=clean_text(_text(row, "author") or "") or None,
                author_reach=reach,
                text=clean_text(str(text)),
                language=self.source.language,
                created_at=to_utc(when),
                engagement=Engagement(),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise BadRow(str(exc).splitlines()[0]) from None

    def cursor_data(self) -> dict[str, Any] | None:
        """The files read so far (digest -> name), this crawl's added."""
        if self.skip_reason:
            return None
        files = {**self._seen, **self._read}
        if len(files) > _MAX_FILES_REMEMBERED:  # oldest first out (dicts keep order)
            files = dict(list(files.items())[-_MAX_FILES_REMEMBERED:])
        return {
            "source": self.source.name,
            "type": self.source_type,
            "updated_at": datetime.now(UTC).isoformat(),
            "files": files,
        }
