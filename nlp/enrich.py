"""The enrichment stage: sentiment (and language, where the source gave none) on mentions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from brandpulse.mention import Mention, Sentiment
from nlp.language import detect_languages


class Scorer(Protocol):
    def score(self, texts: Sequence[str]) -> list[Sentiment]: ...


def enrich(mentions: list[Mention], scorer: Scorer, *, detect_language: bool = True,
           chunk_size: int = 512) -> list[Mention]:
    """Set `sentiment` (from `mention.body`) and, if missing, `language` on every mention.

    The mentions are updated in place and returned. They are processed `chunk_size` at a
    time so that a large crawl does not hold every token tensor at once; the scorer
    batches within each chunk.
    """
    for start in range(0, len(mentions), chunk_size):
        chunk = mentions[start : start + chunk_size]
        bodies = [m.body for m in chunk]
        sentiments = scorer.score(bodies)
        if len(sentiments) != len(chunk):
            raise RuntimeError(f"scorer returned {len(sentiments)} results for {len(chunk)} texts")
        for mention, sentiment in zip(chunk, sentiments, strict=True):
            mention.sentiment = sentiment
        if detect_language:
            missing = [m for m in chunk if not m.language]
            if missing:
                for mention, code in zip(missing, detect_languages([m.body for m in missing]),
                                         strict=True):
                    if code is not None:
                        mention.language = code
    return mentions
