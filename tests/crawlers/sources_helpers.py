"""Shared bits of the Mastodon/RSS/YouTube/Bluesky/X/HTML-forum spider tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from brandpulse.mention import Mention

# Acme with its Chinese name, and a competitor: the fixtures mention both.
BRANDS: list[dict[str, Any]] = [
    {"name": "Acme", "query": '"acme" OR "阿克米"'},
    {"name": "Globex", "aliases": ["globex corp"], "own": False},
]

# The fixtures' recent posts are from November 2026 and their "old" posts from 2019:
# a lookback reaching back to 2026-11-01 keeps the first and drops the second on a
# first crawl, whenever the tests run.
LOOKBACK = f"{(datetime.now(UTC) - datetime(2026, 11, 1, tzinfo=UTC)).days + 1}d"


def by_id(mentions: list[Mention]) -> dict[str, Mention]:
    ids = [m.source_id for m in mentions]
    assert len(ids) == len(set(ids)), f"duplicated mentions: {sorted(ids)}"
    return {m.source_id: m for m in mentions}


def faults(result: Any) -> dict[str, int]:
    return dict(result.stats.get("failed") or {})


def log_lines(log: str, needle: str) -> list[str]:
    return [line for line in log.splitlines() if needle in line]
