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

**Sampling.** A period with more negative mentions than `sample` (default 4,000) is not
read whole: Elasticsearch draws a deterministic random sample of that many (one request,
`function_score` with a seeded `random_score` on the mention id: the same index gives
the same sample, so a report made twice says the same; Elasticsearch salts that hash with
the index name and shard, so a reindexed or restored period draws another sample of the
same size), the themes are found on it, and
each theme's size (and "other") is scaled to the period's exact count of negative
mentions (a `count` request), by largest remainder so that they still add up to it. The
previous period is sampled the same way. A theme of share p found on n sampled posts is
off by about sqrt(p(1-p)/n) of the total: under 0.8 points for n = 4,000. Without this
the cost grew with the negative mentions (a week of 75,000 took minutes: fetching each
post, segmenting it with jieba, vectorising it); with it, a bounded few seconds beyond
the two counts. `ComplaintThemes.sampled` says when the sizes are estimates.

Why not the sentiment model's encoder: its ONNX export gives only logits (hidden states
would need another export), encoding costs what scoring does (about 436 short texts/s on
this machine: 20,000 posts would take most of a minute before any clustering), and a
sentiment-tuned encoder places texts by how negative they are, which all of these are.
TF-IDF + NMF groups 20,000 posts in about 15 s on the loaded 2-core machine; the whole
call, fetching and jieba included, took 51 s unsampled (bench/reports_speed.py,
docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
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
    # the themes were found on a random sample of this many of the period's `total`
    # negative mentions, and their sizes scaled to it (None: on every one)
    sampled: int | None = None
    previous_sampled: int | None = None

    def share(self, theme: Theme) -> float:
        return theme.size / self.total if self.total else 0.0


def _filters(brand: str, period: Period, exclude_duplicates: bool) -> list[dict[str, Any]]:
    """The brand's negative mentions of the period (its own confident sentiment)."""
    filters: list[dict[str, Any]] = [
        {"range": {"created_at": {"gte": iso(period.start), "lt": iso(period.end),
                                  "format": "strict_date_optional_time"}}},
        {"term": {"brands": brand}},
        brand_sentiment_filter(brand, "negative"),
    ]
    if exclude_duplicates:
        filters.append(NOT_DUPLICATE)
    return filters


def _post(hit: Mapping[str, Any], brand: str, known: Mapping[str, BrandQuery],
          query: BrandQuery | None) -> ThemePost:
    src = hit["_source"]
    text = post_text(brand, src.get("title"), src.get("text"), src.get("brands"), known, query)
    return ThemePost(id=src["id"], text=text, chinese=is_chinese(text, src.get("language")),
                     author=src.get("author"), author_reach=src.get("author_reach"),
                     url=src.get("url"))


def _sample_posts(
    client: Any, index: str, brand: str, filters: list[dict[str, Any]], size: int, *,
    query: BrandQuery | None, known: Mapping[str, BrandQuery], seed: int = 0,
) -> list[ThemePost]:
    """A deterministic random sample of `size` of the mentions `filters` match, in one
    request: every match gets a score hashed from its id and the seed, the top `size`
    come back (no mention is read but those)."""
    body: dict[str, Any] = {
        "query": {"function_score": {
            "query": {"bool": {"filter": filters}},
            "functions": [{"random_score": {"seed": seed, "field": "id"}}],
            "boost_mode": "replace",
        }},
        "_source": _FIELDS,
        "sort": [{"_score": "desc"}, {"id": "asc"}],
        "size": size,
        "track_total_hits": False,
    }  # fmt: skip
    hits = client.search(index=index, **body)["hits"]["hits"]
    return [_post(h, brand, known, query) for h in hits]


def _scaled(sizes: Sequence[int], total: int) -> list[int]:
    """`sizes` (counts in a sample that add up to its size) scaled to add up to `total`,
    by largest remainder."""
    n = sum(sizes)
    if not n:
        return [0] * len(sizes)
    exact = [s * total / n for s in sizes]
    out = [int(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (out[i] - exact[i], i))
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def _negative_posts(
    client: Any, index: str, brand: str, period: Period, *, query: BrandQuery | None,
    known: Mapping[str, BrandQuery], exclude_duplicates: bool, limit: int,
) -> Iterator[ThemePost]:
    filters = _filters(brand, period, exclude_duplicates)
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
            yield _post(h, brand, known, query)
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
    sample: int | None = 4_000,
) -> ComplaintThemes:
    """The themes of ``brand``'s negative mentions in ``period``, with their sizes in the
    previous period of equal length. ``brand_query``: the brand's configured query (its
    terms are left out of the labels and locate its clauses in multi-brand posts);
    ``known_queries``: every configured brand's, by name (`nlp.enrich.brand_queries`).
    ``sample``: a period with more negative mentions than this is sampled and the sizes
    scaled (module docstring); None reads every one (up to ``max_mentions``).
    """
    if sample is not None and not 0 < sample <= 10_000:
        # one request returns the sample: Elasticsearch's default result window is 10,000
        raise ValueError(f"sample must be between 1 and 10,000, got {sample}")
    known = dict(known_queries or {})
    query = brand_query or known.get(brand)

    def read(p: Period) -> tuple[list[ThemePost], int, int | None, bool]:
        """The posts of a period, its count, the sample size (None: all read), truncated."""
        filters = _filters(brand, p, exclude_duplicates)
        if sample is not None:
            count = int(client.count(index=index, query={"bool": {"filter": filters}})["count"])
            if count > sample:
                got = _sample_posts(client, index, brand, filters, sample, query=query,
                                    known=known)
                return got, count, len(got), False
        got = list(_negative_posts(client, index, brand, p, query=query, known=known,
                                   exclude_duplicates=exclude_duplicates,
                                   limit=max_mentions + 1))
        return got[:max_mentions], min(len(got), max_mentions), None, len(got) > max_mentions

    posts, total, sampled, truncated = read(period)
    previous, previous_total, previous_sampled, _ = read(period.previous)
    stop_terms = [brand, *(query.search_terms() if query else [])]
    themes, other, previous_other = themes_of_posts(
        posts, previous, stop_terms=stop_terms, max_themes=max_themes, min_share=min_share,
        examples=examples,
    )
    if sampled is not None:
        *sizes, other = _scaled([t.size for t in themes] + [other], total)
        themes = [dataclasses.replace(t, size=n) for t, n in zip(themes, sizes, strict=True)]
    if previous_sampled is not None:
        *sizes, previous_other = _scaled([t.previous_size for t in themes] + [previous_other],
                                         previous_total)
        themes = [dataclasses.replace(t, previous_size=n)
                  for t, n in zip(themes, sizes, strict=True)]
    themes.sort(key=lambda t: (-t.size, t.label))
    return ComplaintThemes(
        brand=brand, period=period, total=total, previous_total=previous_total,
        themes=tuple(themes), other=other, previous_other=previous_other,
        exclude_duplicates=exclude_duplicates, truncated=truncated, sampled=sampled,
        previous_sampled=previous_sampled,
    )

