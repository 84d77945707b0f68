from __future__ import annotations

from datetime import UTC, datetime

from brandpulse.mention import Mention
from nlp.enrich import enrich
from nlp.scorer import SentimentScorer


def mention(i: int, text: str, title: str | None = None, language: str | None = None) -> Mention:
    return Mention(source="test", source_id=str(i), source_name="t", text=text, title=title,
                   language=language, created_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_sets_sentiment_and_missing_language(scorer: SentimentScorer) -> None:
    mentions = [
        mention(1, "Absolutely love it, best phone I have ever owned!"),
        mention(2, "质量太差了，用了两天就坏了，非常失望"),
        mention(3, "it is great really", language="pt"),  # the source's language is kept
        mention(4, "", title="Worst support ever, I want a refund"),
        mention(5, ""),
    ]
    out = enrich(mentions, scorer, chunk_size=2)
    assert out is mentions
    assert [m.sentiment.label for m in out[:2]] == ["positive", "negative"]
    assert out[3].sentiment.label == "negative"  # scored from the title (body)
    assert out[4].sentiment.label == "neutral"
    assert all(m.sentiment.model == scorer.model_id for m in out)
    assert [m.language for m in out] == ["en", "zh", "pt", "en", None]


def test_title_and_text_are_scored_together(scorer: SentimentScorer) -> None:
    m = mention(1, "the battery died after one day and support ignored me", title="Awful")
    enrich([m], scorer, detect_language=False)
    expected = scorer.score([m.body])[0]
    assert m.sentiment == expected
    assert m.language is None


def test_empty_list() -> None:
    class Refuses:
        def score(self, texts):
            raise AssertionError("nothing to score")

    assert enrich([], Refuses()) == []
