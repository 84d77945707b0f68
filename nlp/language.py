"""Offline language detection: text -> ISO 639-1 code, or None when it cannot be told.

lingua (Apache-2.0, models inside the wheel) restricted to the languages brand
mentions realistically come in: fewer candidates make it faster and, on short posts, more
accurate than choosing among all 75. The detector is built once per process; its
per-language models load lazily on first use.

None is returned for text with fewer than `MIN_LETTERS` letters once URLs, @handles,
#hashtags and e-mail addresses are removed (they are language-neutral and mislead on
short posts), and when lingua's top two candidates are too close to call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

LANGUAGES: tuple[Language, ...] = (
    Language.ENGLISH, Language.CHINESE, Language.JAPANESE, Language.KOREAN,
    Language.SPANISH, Language.FRENCH, Language.GERMAN, Language.PORTUGUESE,
    Language.RUSSIAN, Language.ITALIAN, Language.DUTCH, Language.POLISH,
    Language.TURKISH, Language.ARABIC, Language.HINDI, Language.INDONESIAN,
    Language.VIETNAMESE, Language.THAI, Language.SWEDISH, Language.UKRAINIAN,
)
MIN_LETTERS = 3
# Han, kana and Hangul carry much more per character than Latin letters.
MIN_CJK_LETTERS = 2
MIN_RELATIVE_DISTANCE = 0.1

_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\S+|[@#][\w.]+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@lru_cache(maxsize=1)
def detector() -> LanguageDetector:
    return (LanguageDetectorBuilder.from_languages(*LANGUAGES)
            .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
            .build())


def _decidable(text: str) -> str | None:
    cleaned = _NOISE.sub(" ", text)
    letters = sum(1 for c in cleaned if c.isalpha())
    cjk = len(_CJK.findall(cleaned))
    if letters < MIN_LETTERS and cjk < MIN_CJK_LETTERS:
        return None
    return cleaned


def detect_language(text: str) -> str | None:
    """ISO 639-1 code (e.g. 'en', 'zh') of `text`, or None if too short or undecidable."""
    cleaned = _decidable(text)
    if cleaned is None:
        return None
    language = detector().detect_language_of(cleaned)
    return language.iso_code_639_1.name.lower() if language is not None else None


def detect_languages(texts: Sequence[str]) -> list[str | None]:
    """Batch form of `detect_language` (lingua runs the batch on several threads)."""
    cleaned = [_decidable(t) for t in texts]
    todo = [i for i, c in enumerate(cleaned) if c is not None]
    out: list[str | None] = [None] * len(texts)
    if todo:
        found = detector().detect_languages_in_parallel_of([cleaned[i] for i in todo])
        for i, language in zip(todo, found, strict=True):
            out[i] = language.iso_code_639_1.name.lower() if language is not None else None
    return out
