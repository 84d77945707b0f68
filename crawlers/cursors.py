"""Durable crawl cursors: one JSON file per source in the state directory.

A crawl reads the committed cursor (`<source>.cursor.json`), works out where to
start, and at its end writes what it would advance to into a *pending* file. The
pending file becomes the cursor (an atomic rename) only once the mentions it covers
are safe: `crawlers.runner` commits after the parent process has received them, and
the parent calls `CrawlResult.commit_cursor()` after indexing/spooling. A crash
anywhere before that leaves the old cursor in place, so the next crawl re-fetches
rather than skips; the deterministic mention id makes a re-fetch an overwrite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CURSOR_VERSION = 1


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _safe_name(source: str) -> str:
    # Source names are validated as [A-Za-z0-9_.-]+, but a cursor path must never
    # escape the state dir even if called with something else.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", source).lstrip(".") or "_"


class CursorStore:
    """Cursor files of all sources under one state directory."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def path(self, source: str) -> Path:
        return self.state_dir / f"{_safe_name(source)}.cursor.json"

    def pending_path(self, source: str) -> Path:
        return self.state_dir / f"{_safe_name(source)}.cursor.pending.json"

    def load(self, source: str) -> dict[str, Any]:
        """The committed cursor of `source`; {} when there is none (first crawl).

        A corrupt file is moved aside (kept for inspection) and treated as absent:
        re-fetching the lookback window is safe, refusing to crawl is not.
        """
        path = self.path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            aside = path.with_suffix(".corrupt")
            logger.warning(
                "cursor file %s is unreadable (%s); moved to %s, crawling from lookback",
                path,
                exc,
                aside,
            )
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            return {}
        if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
            logger.warning("cursor file %s has an unknown format; ignoring it", path)
            return {}
        return data

    def save_pending(self, source: str, data: dict[str, Any], path: Path | None = None) -> Path:
        """Write the cursor this crawl would advance to, without committing it."""
        target = path or self.pending_path(source)
        atomic_write_json(target, {**data, "version": CURSOR_VERSION})
        return target

    def commit(self, source: str, pending: Path | None = None) -> bool:
        """Make the pending cursor the cursor (atomic). False if there is nothing pending."""
        src = pending or self.pending_path(source)
        try:
            os.replace(src, self.path(source))
        except FileNotFoundError:
            return False
        _fsync_dir(self.state_dir)
        return True

    def save(self, source: str, data: dict[str, Any]) -> None:
        """Write and commit at once (used when nobody downstream needs to confirm)."""
        atomic_write_json(self.path(source), {**data, "version": CURSOR_VERSION})
