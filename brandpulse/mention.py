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

SentimentLabel = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")


def mention_id(source: str, source_id: str) -> str:
    """Deterministic document id: the same post from the same source is one document.

    A re-crawl or a re-score therefore overwrites instead of duplicating. The id is a
    hash (not the raw id) so that ids from any source are safe and equally long.
    """
    if not source or not source_id:
        raise ValueError("mention_id needs a non-empty source and source_id")
    digest = hashlib.sha1(f"{source}\x1f{source_id}".encode()).hexdigest()
    return f"{source}-{digest[:24]}"


def _as_utc(value: datetime) -> datetime:
    # Naive datetimes from sources are taken as UTC: every API we crawl documents
    # its timestamps as UTC, and a silent local-time shift would misplace mentions
    # in the alert windows.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Sentiment(BaseModel):
    """The model's verdict on one text: a label, the three probabilities, the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: SentimentLabel
    negative: float = Field(ge=0.0, le=1.0)
    neutral: float = Field(ge=0.0, le=1.0)
    positive: float = Field(ge=0.0, le=1.0)
    model: str = Field(min_length=1, description="id of the model that produced it")

    @model_validator(mode="after")
    def _probabilities_sum_to_one(self) -> Sentiment:
        total = self.negative + self.neutral + self.positive
        if not math.isclose(total, 1.0, abs_tol=1e-3):
            raise ValueError(f"sentiment probabilities must sum to 1, got {total:.4f}")
        return self

    @property
    def probabilities(self) -> dict[SentimentLabel, float]:
        return {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}


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
    duplicate_of: str | None = Field(
        default=None, description="id of an earlier mention this one reposts or nearly copies"
    )

    @field_validator("created_at", "collected_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

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
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Mention:
        fields = {k: v for k, v in doc.items() if k != "id"}
        return cls.model_validate(fields)
