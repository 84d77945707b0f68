"""The one definition of a mention: ids, time zones, and the document round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from brandpulse.mention import Engagement, Mention, Sentiment, mention_id


def make(**overrides):
    fields = {
        "source": "reddit",
        "source_id": "t3_abc",
        "source_name": "reddit-main",
        "text": "Acme support is 😡",
        "created_at": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        "brands": ["Acme"],
    }
    return Mention(**(fields | overrides))


def test_id_is_deterministic_per_source_and_source_id():
    a, b = make(), make(source_name="reddit-other", text="edited")
    assert a.id == b.id == mention_id("reddit", "t3_abc")
    assert make(source="hackernews").id != a.id
    assert make(source_id="t3_abd").id != a.id


def test_numeric_source_ids_become_text():
    assert make(source_id=12345).source_id == "12345"


def test_times_are_utc_whatever_the_source_said():
    shanghai = timezone(timedelta(hours=8))
    m = make(created_at=datetime(2026, 11, 1, 20, 0, tzinfo=shanghai))
    assert m.created_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert m.created_at.utcoffset() == timedelta(0)
    naive = make(created_at=datetime(2026, 11, 1, 12, 0))
    assert naive.created_at.tzinfo is not None


def test_document_round_trip_keeps_everything():
    m = make(
        author="jane",
        author_reach=1200,
        title="Acme",
        language="en",
        engagement=Engagement(likes=3, replies=1, score=-2),
        sentiment=Sentiment(label="negative", negative=0.9, neutral=0.07, positive=0.03, model="m"),
    )
    doc = m.to_document()
    assert doc["id"] == m.id
    assert doc["created_at"].endswith("Z")
    assert "duplicate_of" not in doc  # None fields stay out of the index
    assert Mention.from_document(doc) == m


def test_sentiment_probabilities_must_sum_to_one():
    with pytest.raises(ValidationError, match="sum to 1"):
        Sentiment(label="positive", negative=0.5, neutral=0.5, positive=0.5, model="m")


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="extra"):
        make(colour="red")


def test_body_joins_title_and_text():
    assert make(title="T", text="x").body == "T\nx"
    assert make(title=None, text="x").body == "x"
    assert make(title="T", text="").body == "T"


def test_confidence_and_per_brand_sentiment_round_trip_with_derived_keys():
    from brandpulse.mention import BrandSentiment

    post = Sentiment(label="negative", negative=0.5, neutral=0.2, positive=0.3, model="m",
                     confidence=0.46, uncertain=True)
    m = make(
        brands=["Acme", "Globex"],
        sentiment=post,
        brand_sentiments=[
            BrandSentiment(brand="Acme", label="positive", negative=0.1, neutral=0.1,
                           positive=0.8, confidence=0.81, source="clause"),
            BrandSentiment(brand="Globex", source="post", **post.model_dump(exclude={"model"})),
        ],
    )
    doc = m.to_document()
    assert doc["sentiment_bucket"] == "uncertain"
    assert doc["brand_sentiment_keys"] == ["Acme|positive", "Globex|uncertain"]
    assert doc["brand_sentiments"][0] == {
        "brand": "Acme", "label": "positive", "negative": 0.1, "neutral": 0.1, "positive": 0.8,
        "confidence": 0.81, "uncertain": False, "source": "clause",
    }  # fmt: skip
    assert Mention.from_document(doc) == m
    assert post.bucket == "uncertain" and m.brand_sentiments[0].bucket == "positive"


def test_documents_scored_before_confidences_still_read():
    old = make(sentiment=Sentiment(label="negative", negative=0.9, neutral=0.05, positive=0.05,
                                   model="m")).to_document()
    del old["sentiment"]["uncertain"], old["sentiment_bucket"]
    m = Mention.from_document(old)
    assert m.sentiment.confidence is None and not m.sentiment.uncertain
    assert m.brand_sentiments == []
    assert "brand_sentiment_keys" not in m.to_document()
