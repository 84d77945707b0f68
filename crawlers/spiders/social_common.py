"""Helpers shared by the Mastodon, RSS, YouTube, Bluesky, X and HTML-forum spiders.

They cover what the base (`crawlers.spiders.base`) leaves to each source: the
providers' own rate-limit headers (each spells and dates them differently), the
language codes they send, and fanning brand queries out into per-term searches
for sources whose search has no boolean OR.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from scrapy.http import Response

from brandpulse.query import BrandQuery
from crawlers.text import parse_time

__all__ = [
    "header_text",
    "iso_utc",
    "language_code",
    "seconds_until",
    "unique_terms",
]

_LANG = re.compile(r"^([A-Za-z]{2})(?:[-_].*)?$")


def language_code(value: object) -> str | None:
    """'en', 'en-US', 'zh_Hant' -> 'en'/'zh'; 'und', 'qme', 'zxx', '' and junk -> None.

    Mention.language is an ISO 639-1 code. Sources send BCP 47 tags (Bluesky, RSS),
    region variants (RSS 'en-US') or private codes (X's 'qme' = media only), and a
    wrong language would send the post to the wrong sentiment model.
    """
    if not isinstance(value, str):
        return None
    match = _LANG.match(value.strip())
    return match.group(1).lower() if match else None


def header_text(response: Response, name: str) -> str | None:
    raw = response.headers.get(name)
    if raw is None:
        return None
    text = raw.decode("latin-1").strip()
    return text or None


def seconds_until(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from now until a reset time given as epoch seconds or ISO 8601.

    X and Bluesky send epoch seconds; Mastodon sends an ISO 8601 instant
    ("2026-11-27T12:25:00.019685Z"), which the generic middleware cannot read.
    """
    if not value:
        return None
    try:
        when = parse_time(value).timestamp()
    except ValueError:
        return None
    return max(0.0, when - (time.time() if now is None else now))


def iso_utc(value: datetime) -> str:
    """'2026-11-26T09:30:12Z': the form every API here accepts for a start time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unique_terms(brand_queries: Sequence[tuple[str, BrandQuery]]) -> list[tuple[str, list[str]]]:
    """Every positive search term of the brands, once, with the brands using it.

    Phrases keep their quotes ('"acme cloud"'), single words lose them ('acme').

    For sources whose search engine has no reliable OR (Mastodon full-text search,
    Bluesky, forum search boxes) one search per term is the only way to be sure a
    brand's aliases are all asked for; matches() filters the answers afterwards.
    """
    by_term: dict[str, list[str]] = {}
    for name, query in brand_queries:
        for term in query.search_terms():
            # Quotes matter only around phrases; a quoted single word reads oddly in
            # logs and some search boxes take the quotes literally.
            bare = term.strip('"')
            brands = by_term.setdefault(term if " " in bare else bare, [])
            if name not in brands:
                brands.append(name)
    return list(by_term.items())
