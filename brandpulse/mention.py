"""The one definition of a brand mention.

Every stage of the pipeline (crawl -> enrich -> index -> detect -> notify) passes
`Mention` objects along; nothing else describes a post. The Elasticsearch
document is `Mention.to_document()`, and `Mention.from_document()` reads it back,
so the index mapping in `store/` and this class must change together.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from brandpulse.timeutil import to_utc

SentimentLabel = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")
# What counts split by: the label of a confident result, or "uncertain".
SentimentBucket = Literal["negative", "neutral", "positive", "uncertain"]
SENTIMENT_BUCKETS: tuple[SentimentBucket, ...] = ("negative", "neutral", "positive", "uncertain")


# Document fields `to_document` derives and `from_document` drops.
DERIVED_FIELDS = ("id", "sentiment_bucket", "brand_sentiment_keys")


def mention_id(source: str, source_id: str) -> str:
    """Deterministic document id: the same post from the same source is one document.

    A re-crawl or a re-score therefore overwrites instead of duplicating. The id is a
    hash (not the raw id) so that ids from any source are safe and equally long.
    """
    if not source or not source_id:
        raise ValueError("mention_id needs a non-empty source and source_id")
    digest = hashlib.sha1(f"{source}\x1f{source_id}".encode()).hexdigest()
    return f"{source}-{digest[:24]}"


class _Verdict(BaseModel):
    """A label, the three probabilities, and how sure the calibrated model is of the label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: SentimentLabel
    negative: float = Field(ge=0.0, le=1.0)
    neutral: float = Field(ge=0.0, le=1.0)
    positive: float = Field(ge=0.0, le=1.0)
    confidence: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="calibrated probability that `label` is right (None: scored before "
        "confidences existed)",
    )
    uncertain: bool = Field(
        default=False,
        description="confidence under nlp.uncertain_below: the label is kept, but counts "
        "of negative/neutral/positive leave it out (it is counted as uncertain)",
    )

    @model_validator(mode="after")
    def _probabilities_sum_to_one(self) -> _Verdict:
        total = self.negative + self.neutral + self.positive
        if not math.isclose(total, 1.0, abs_tol=1e-3):
            raise ValueError(f"sentiment probabilities must sum to 1, got {total:.4f}")
        return self

    @property
    def probabilities(self) -> dict[SentimentLabel, float]:
        return {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}

    @property
    def bucket(self) -> SentimentBucket:
        """What counts count this result as: its label, or 'uncertain'."""
        return "uncertain" if self.uncertain else self.label


class Sentiment(_Verdict):
    """The model's verdict on one text: a label, the three probabilities, the model."""

    model: str = Field(min_length=1, description="id of the model that produced it")


class BrandSentiment(_Verdict):
    """The sentiment of a post towards one of the brands it names.

    `source` says what was scored: "clause" -- the sentences and clauses that concern
    the brand (`nlp.brands`); "post" -- the whole post (the brand's clauses were the
    whole post, or it could not be told apart), i.e. the post's own sentiment.
    """

    brand: str = Field(min_length=1)
    source: Literal["clause", "post"]

    @property
    def key(self) -> str:
        """`brand|bucket`, the flat keyword counts and Kibana aggregate on."""
        return f"{self.brand}|{self.bucket}"


class Engagement(BaseModel):
    """Engagement counts as the source reports them; None where a source has no such count."""

    model_config = ConfigDict(extra="forbid")

    likes: int | None = Field(default=None, ge=0)
    replies: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    score: int | None = None  # Reddit/HN/Stack Exchange scores can be negative.

    def total(self) -> int:
        return sum(max(v or 0, 0) for v in (self.likes, self.replies, self.shares, self.score))


class Mention(BaseModel):
    """One post that mentions at least one configured brand."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    source: str = Field(min_length=1, description="source type, e.g. 'reddit'")
    source_id: str = Field(min_length=1, description="the source's own id of the post")
    source_name: str = Field(min_length=1, description="the configured source that fetched it")
    url: str | None = None
    author: str | None = None
    author_reach: int | None = Field(
        default=None, ge=0, description="followers, karma or similar where the source gives it"
    )
    title: str | None = None
    text: str = ""
    language: str | None = Field(default=None, description="ISO 639-1 code, e.g. 'en', 'zh'")
    created_at: datetime
    collected_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    brands: list[str] = Field(default_factory=list)
    engagement: Engagement = Field(default_factory=Engagement)
    sentiment: Sentiment | None = None
    brand_sentiments: list[BrandSentiment] = Field(
        default_factory=list,
        description="per brand in `brands`, its own sentiment (empty until scored)",
    )
    duplicate_of: str | None = Field(
        default=None, description="id of an earlier mention this one reposts or nearly copies"
    )

    @field_validator("created_at", "collected_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    @field_validator("source_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # APIs hand out numeric ids (HN, Stack Exchange, X); the id is text everywhere else.
        return str(value) if isinstance(value, int) else value

    @property
    def id(self) -> str:
        return mention_id(self.source, self.source_id)

    @property
    def body(self) -> str:
        """Title and text together: what the sentiment model reads."""
        if self.title and self.text:
            return f"{self.title}\n{self.text}"
        return self.title or self.text

    def to_document(self) -> dict[str, Any]:
        """The Elasticsearch document (JSON-ready); the inverse of `from_document`."""
        doc = self.model_dump(mode="json", exclude_none=True)
        doc["id"] = self.id
        # Derived, flat keywords for counts and Kibana (which aggregates nested fields
        # poorly): the post's bucket, and one `brand|bucket` per brand.
        if self.sentiment is not None:
            doc["sentiment_bucket"] = self.sentiment.bucket
        if self.brand_sentiments:
            doc["brand_sentiment_keys"] = [b.key for b in self.brand_sentiments]
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Mention:
        fields = {k: v for k, v in doc.items() if k not in DERIVED_FIELDS}
        return cls.model_validate(fields)
