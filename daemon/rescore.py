"""Score stored mentions again: all of them with a new model, or those left unscored.

Reading uses search_after on the mention alias sorted by `_id`-like stable keys, so
a long run is not bound to a scroll context, and writing goes through the bulk
writer, so a re-score overwrites each document (same id, same index).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from elasticsearch import Elasticsearch

from brandpulse.mention import Mention
from store.setup import alias_name
from store.writer import BulkWriter

if TYPE_CHECKING:
    from brandpulse.query import BrandQuery
    from nlp.scorer import SentimentScorer

UNSCORED: dict[str, Any] = {"bool": {"must_not": [{"exists": {"field": "sentiment.label"}}]}}


def iter_mentions(
    client: Elasticsearch, prefix: str, query: dict[str, Any] | None = None, page: int = 500
) -> Iterator[list[Mention]]:
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {
            "size": page,
            "query": query or {"match_all": {}},
            "sort": [{"created_at": "asc"}, {"id": "asc"}],
        }
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=alias_name(prefix), **body)["hits"]["hits"]
        if not hits:
            return
        yield [Mention.from_document(h["_source"]) for h in hits]
        after = hits[-1]["sort"]


def rescore(
    client: Elasticsearch,
    prefix: str,
    scorer: SentimentScorer,
    writer: BulkWriter,
    *,
    only_unscored: bool = False,
    progress: TextIO | None = sys.stderr,
    enrich: Callable[..., list[Mention]] | None = None,
    brands: Mapping[str, BrandQuery] | None = None,
) -> int:
    """Re-score stored mentions; returns how many were written back.

    `brands` (the configured queries) locate each brand for its own sentiment.
    """
    if enrich is None:
        from nlp.enrich import enrich as default_enrich

        enrich = default_enrich
    query = UNSCORED if only_unscored else None
    total = client.count(index=alias_name(prefix), query=query or {"match_all": {}})["count"]
    done = 0
    # Unscored-only pages shrink as we write, so always read the first page again.
    batches = _first_pages(client, prefix, query) if only_unscored else iter_mentions(client, prefix)
    for batch in batches:
        scored = enrich(batch, scorer, brands=brands)
        report = writer.write(scored)
        done += len(batch)
        if progress is not None:
            _bar(progress, done, total)
        if only_unscored and report.spooled:
            break  # Elasticsearch went away; the spool holds them, housekeeping resumes
    if progress is not None and total:
        progress.write("\n")
    return done


def _first_pages(
    client: Elasticsearch, prefix: str, query: dict[str, Any] | None
) -> Iterator[list[Mention]]:
    seen: set[str] = set()
    while True:
        client.indices.refresh(index=alias_name(prefix))
        page = next(iter_mentions(client, prefix, query), [])
        fresh = [m for m in page if m.id not in seen]
        if not fresh:
            return
        seen.update(m.id for m in fresh)
        yield fresh


def _bar(out: TextIO, done: int, total: int, width: int = 30) -> None:
    frac = done / total if total else 1.0
    filled = int(width * min(frac, 1.0))
    out.write(f"\rre-scoring [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    out.flush()
