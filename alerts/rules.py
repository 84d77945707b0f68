"""Rule contract, the high-reach rule and the registry of rules.

Each rule is a small class in ElastAlert2's spirit: built from `(brand, settings)`,
fed with `observe(item) -> event | None`, explained with `describe(event) -> str`,
and persisted with `to_state()` / `from_state()`. `RULES` maps the name used in
the configuration to the class; the engine (alerts/engine.py) looks rules up there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from alerts.detector import SpikeDetector
from brandpulse.alert_settings import HighReachSettings


@runtime_checkable
class Rule(Protocol):
    """What every rule offers the engine."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]

    def observe(self, item: Any) -> Any | None: ...

    def describe(self, event: Any) -> str: ...

    def to_state(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class HighReachMention:
    """One negative mention by an author who reaches many people."""

    kind: ClassVar[str] = "high_reach"
    brand: str
    at: datetime
    mention_id: str
    author_reach: int
    label: str
    author: str | None = None
    url: str | None = None


def _label_of(mention: Any) -> str | None:
    # Accept brandpulse.mention.Mention (sentiment.label), a plain label string,
    # or anything exposing `sentiment_label`.
    label = getattr(mention, "sentiment_label", None)
    if label is not None:
        return str(label)
    sentiment = getattr(mention, "sentiment", None)
    if sentiment is None:
        return None
    if isinstance(sentiment, str):
        return sentiment
    inner = getattr(sentiment, "label", None)
    return None if inner is None else str(inner)


class HighReachRule:
    """Alert once per mention when a negative mention's author reach >= `min_reach`.

    Needs only `id`, `author_reach` and the sentiment label of what it is fed.
    Ids already alerted are remembered (bounded) so re-crawls do not re-alert.
    """

    name: ClassVar[str] = "high_reach"
    settings_model: ClassVar[type[HighReachSettings]] = HighReachSettings

    def __init__(self, brand: str = "", settings: HighReachSettings | None = None) -> None:
        self.brand = brand
        self.settings = settings or HighReachSettings()
        self._seen: deque[str] = deque(maxlen=self.settings.remember or None)
        self._seen_set: set[str] = set()

    def observe(self, mention: Any) -> HighReachMention | None:
        reach = getattr(mention, "author_reach", None)
        if reach is None or reach < self.settings.min_reach:
            return None
        label = _label_of(mention)
        if label not in self.settings.labels:
            return None
        mid = str(mention.id)
        if mid in self._seen_set:
            return None
        self._remember(mid)
        at = getattr(mention, "created_at", None) or datetime.now(UTC)
        return HighReachMention(
            self.brand,
            at,
            mid,
            int(reach),
            label,
            getattr(mention, "author", None),
            getattr(mention, "url", None),
        )

    def _remember(self, mid: str) -> None:
        if self.settings.remember == 0:
            return
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(mid)
        self._seen_set.add(mid)

    def describe(self, event: HighReachMention) -> str:
        who = event.author or "an author"
        where = f" {event.url}" if event.url else ""
        return (
            f"{event.brand or 'brand'}: {event.label} mention by {who} "
            f"(reach {event.author_reach:,}){where}"
        )

    def to_state(self) -> dict[str, Any]:
        return {"v": 1, "brand": self.brand, "seen": list(self._seen)}

    @classmethod
    def from_state(
        cls, state: dict[str, Any], settings: HighReachSettings | None = None
    ) -> HighReachRule:
        rule = cls(state.get("brand", ""), settings)
        for mid in state.get("seen", []):
            rule._remember(str(mid))
        return rule


RULES: dict[str, type[SpikeDetector] | type[HighReachRule]] = {
    SpikeDetector.name: SpikeDetector,
    HighReachRule.name: HighReachRule,
}
