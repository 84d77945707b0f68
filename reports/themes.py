"""Complaint themes: a brand's negative mentions in a period, grouped and labelled.

The grouping itself is `nlp.themes` (shared with the spike alerts, `alerts.themes`);
this module reads the period's posts from the index and sizes the themes against the
previous period. How (docs/reports.md has the measurements and the limits):

1. **Fetch** the mentions negative *for the brand* (its own, confident sentiment: the
   filter alerts count with), reposts left out by default, with `search_after` and only
   the fields needed. A post naming several brands contributes the clauses about this
   brand (`nlp.brands.brand_texts`, the text its sentiment was scored on).
2. **Split by script**: Chinese (language `zh`, or mostly Han characters when the
   language is unknown) and the rest, clustered apart (they share no words).
3. **Vectorise**: English words (lower case; scikit-learn's English stop words, fillers
   and plain displeasure words dropped) and their bigrams; Chinese words from `jieba`
   (its dictionary ships in the package: offline), words of one character and a short
   list of function and displeasure words dropped. The brand's own query terms are
   dropped: every post names the brand. TF-IDF (sublinear tf), words in at least 2
   posts and at most half of them.
4. **Group** with NMF (`max_themes` components, default 10): each post goes to the
   component of largest weight. No k-selection criterion: on the planted-topic sets the
   silhouette grew with k up to 12 for both NMF and k-means (so it only ever picks the
   largest k); instead, components too small to matter are merged (step 6). NMF was
   kept over k-means on LSA because k-means made one catch-all cluster of ~40 % of
   the posts (generic complaints), which NMF spreads by their words (docs/reports.md).
5. **Label** each cluster by its most distinctive terms: class-based TF-IDF (the terms'
   frequency in the cluster against their frequency over all clusters), top 3, a word
   dropped when a chosen bigram holds it.
6. Clusters smaller than `min_share` of the posts (or 5 posts) are merged into
   **other**. **Examples**: among a theme's 10 most central posts (largest weight
   share), those of highest author reach.
7. **Change**: the previous period's negative mentions go to the theme of largest
   weight (same vocabulary and NMF components); a post whose weight share is under what
   95 % of the theme's own posts reach goes to "other".

Why not the sentiment model's encoder: its ONNX export gives only logits (hidden states
would need another export), encoding costs what scoring does (about 436 short texts/s on
this machine: 20,000 posts would take most of a minute before any clustering), and a
sentiment-tuned encoder places texts by how negative they are, which all of these are.
TF-IDF + NMF groups 20,000 posts in about 15 s on the loaded 2-core machine; the whole
call, fetching and jieba included, took 51 s (bench/reports_speed.py, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from brandpulse.query import BrandQuery
from nlp.themes import Theme, ThemePost, is_chinese, post_text, themes_of_posts
from reports.period import Period, iso
from reports.share_of_voice import NOT_DUPLICATE
from store.queries import brand_sentiment_filter

_PAGE = 2000
_FIELDS = ["id", "title", "text", "language", "author", "author_reach", "url", "created_at",
           "brands"]


@dataclass(frozen=True)
class ComplaintThemes:
    """A brand's negative mentions of a period in themes, largest first."""

    brand: str
    period: Period
    total: int  # negative mentions of the brand in the period (the themes' and other's sum)
    previous_total: int
    themes: tuple[Theme, ...]
    other: int  # in no theme: tiny clusters, posts without a known word, tiny languages
    previous_other: int
    exclude_duplicates: bool = True
    truncated: bool = False  # more than `max_mentions`: the newest were left out

    def share(self, theme: Theme) -> float:
        return theme.size / self.total if self.total else 0.0


def _negative_posts(
    client: Any, index: str, brand: str, period: Period, *, query: BrandQuery | None,
    known: Mapping[str, BrandQuery], exclude_duplicates: bool, limit: int,
) -> Iterator[ThemePost]:
    filters: list[dict[str, Any]] = [
        {"range": {"created_at": {"gte": iso(period.start), "lt": iso(period.end),
                                  "format": "strict_date_optional_time"}}},
        {"term": {"brands": brand}},
        brand_sentiment_filter(brand, "negative"),
    ]
    if exclude_duplicates:
        filters.append(NOT_DUPLICATE)
    after: list[Any] | None = None
    seen = 0
    while seen < limit:
        body: dict[str, Any] = {
            "query": {"bool": {"filter": filters}},
            "_source": _FIELDS,
            "sort": [{"created_at": "asc"}, {"id": "asc"}],
            "size": min(_PAGE, limit - seen),
            "track_total_hits": False,
        }
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=index, **body)["hits"]["hits"]
        for h in hits:
            src = h["_source"]
            body_text = post_text(brand, src.get("title"), src.get("text"), src.get("brands"),
                                  known, query)
            yield ThemePost(id=src["id"], text=body_text,
                        chinese=is_chinese(body_text, src.get("language")),
                        author=src.get("author"), author_reach=src.get("author_reach"),
                        url=src.get("url"))
        seen += len(hits)
        if len(hits) < body["size"]:
            return
        after = hits[-1]["sort"]


def complaint_themes(
    client: Any,
    index: str,
    brand: str,
    period: Period,
    *,
    brand_query: BrandQuery | None = None,
    known_queries: Mapping[str, BrandQuery] | None = None,
    exclude_duplicates: bool = True,
    max_themes: int = 10,
    min_share: float = 0.03,
    examples: int = 3,
    max_mentions: int = 50_000,
) -> ComplaintThemes:
    """The themes of ``brand``'s negative mentions in ``period``, with their sizes in the
    previous period of equal length. ``brand_query``: the brand's configured query (its
    terms are left out of the labels and locate its clauses in multi-brand posts);
    ``known_queries``: every configured brand's, by name (`nlp.enrich.brand_queries`).
    """
    known = dict(known_queries or {})
    query = brand_query or known.get(brand)
    fetch = {"query": query, "known": known, "exclude_duplicates": exclude_duplicates,
             "limit": max_mentions + 1}
    posts = list(_negative_posts(client, index, brand, period, **fetch))
    truncated = len(posts) > max_mentions
    posts = posts[:max_mentions]
    previous = list(_negative_posts(client, index, brand, period.previous, **fetch))[:max_mentions]
    stop_terms = [brand, *(query.search_terms() if query else [])]
    themes, other, previous_other = themes_of_posts(
        posts, previous, stop_terms=stop_terms, max_themes=max_themes, min_share=min_share,
        examples=examples,
    )
    return ComplaintThemes(
        brand=brand, period=period, total=len(posts), previous_total=len(previous),
        themes=tuple(themes), other=other, previous_other=previous_other,
        exclude_duplicates=exclude_duplicates, truncated=truncated,
    )

