"""The enrichment stage: sentiment (per post and per brand) and language on mentions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from brandpulse.mention import BrandSentiment, Mention, Sentiment
from nlp.brands import brand_texts, queries_for
from nlp.language import detect_languages

if TYPE_CHECKING:
    from brandpulse.config import BrandConfig
    from brandpulse.query import BrandQuery


class Scorer(Protocol):
    def score(self, texts: Sequence[str]) -> list[Sentiment]: ...


def brand_queries(brands: Sequence[BrandConfig]) -> dict[str, BrandQuery]:
    """The configured brands' compiled queries, by name: what `enrich` locates them by."""
    from brandpulse.query import compile_query

    return {b.name: compile_query(b.effective_query()) for b in brands}


def _of(brand: str, sentiment: Sentiment, source: str) -> BrandSentiment:
    fields = sentiment.model_dump(exclude={"model"})
    return BrandSentiment(brand=brand, source=source, **fields)  # type: ignore[arg-type]


def enrich(mentions: list[Mention], scorer: Scorer, *, detect_language: bool = True,
           chunk_size: int = 512, brands: Mapping[str, BrandQuery] | None = None) -> list[Mention]:
    """Set `sentiment` (from `mention.body`), `brand_sentiments` and, if missing,
    `language` on every mention.

    Each brand of `mention.brands` gets its own sentiment, scored on the clauses of the
    body that concern it (`nlp.brands.brand_texts`), or the post's when those clauses
    are the whole post or cannot be told apart. `brands` gives the configured queries
    the brands are located by; a brand it lacks is located by its name.

    The mentions are updated in place and returned. They are processed `chunk_size` at a
    time so that a large crawl does not hold every token tensor at once; the posts and
    their brands' texts of one chunk go to the scorer in one call, so they share its
    length-sorted batches.
    """
    known = brands or {}
    for start in range(0, len(mentions), chunk_size):
        chunk = mentions[start : start + chunk_size]
        texts = [m.body for m in chunk]
        # Per mention: (brand, index into texts, or None for the post's own result).
        plans: list[list[tuple[str, int | None]]] = []
        for mention in chunk:
            plan: list[tuple[str, int | None]] = []
            if mention.brands and mention.body.strip():
                wanted = brand_texts(mention.body, queries_for(mention.brands, known))
                for brand, text in wanted.items():
                    if text is None:
                        plan.append((brand, None))
                    else:
                        plan.append((brand, len(texts)))
                        texts.append(text)
            else:
                plan = [(brand, None) for brand in mention.brands]
            plans.append(plan)
        sentiments = scorer.score(texts)
        if len(sentiments) != len(texts):
            raise RuntimeError(f"scorer returned {len(sentiments)} results for {len(texts)} texts")
        for i, (mention, plan) in enumerate(zip(chunk, plans, strict=True)):
            post = sentiments[i]
            mention.sentiment = post
            mention.brand_sentiments = [
                _of(brand, post, "post") if at is None else _of(brand, sentiments[at], "clause")
                for brand, at in plan
            ]
        if detect_language:
            missing = [m for m in chunk if not m.language]
            if missing:
                for mention, code in zip(missing, detect_languages([m.body for m in missing]),
                                         strict=True):
                    if code is not None:
                        mention.language = code
    return mentions
