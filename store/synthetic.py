"""Deterministic, realistic-looking mentions for the store's tests and benchmark.

Sizes and shapes follow what the crawlers produce (titles on some sources,
bodies of a few hundred characters, English and Chinese, engagement counts,
sentiment from the model), so index and bulk figures mean something.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from brandpulse.mention import Engagement, Mention, Sentiment

BRANDS = ("Acme", "Globex", "Initech", "小米")
SOURCES = (
    ("reddit", "reddit-r-gadgets"),
    ("hackernews", "hn-front"),
    ("x", "x-search"),
    ("mastodon", "mastodon-social"),
    ("weibo", "weibo-search"),
)
_EN = (
    "battery life is {adj} and the screen {verb} after the update",
    "support never answered my ticket about the {thing}, {adj} experience",
    "just switched from a competitor, the {thing} feels {adj}",
    "shipping took three weeks and the {thing} arrived {adj}",
    "their new {thing} launch event was {adj}, prices are reasonable",
)
_ZH = (
    "{brand}的新手机电池很耐用，拍照效果也不错",
    "客服一直不回复，{brand}的售后太差了",
    "刚买的{brand}耳机音质一般，但是价格便宜",
    "{brand}这次发布会的产品很有诚意",
)
_ADJ = ("great", "terrible", "fine", "disappointing", "amazing", "broken", "okay")
_VERB = ("flickers", "works", "freezes", "shines", "lags")
_THING = ("phone", "laptop", "router", "app", "watch", "earbuds")


def mentions(
    n: int,
    start: datetime,
    end: datetime,
    seed: int = 7,
    id_prefix: str = "p",
    brands: tuple[str, ...] = BRANDS,
) -> Iterator[Mention]:
    """``n`` mentions with ``created_at`` spread over ``[start, end)``."""
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    labels = ("negative", "neutral", "positive")
    for i in range(n):
        source, source_name = SOURCES[i % len(SOURCES)]
        brand = rng.choice(brands)
        zh = source == "weibo" or brand == "小米"
        if zh:
            text = rng.choice(_ZH).format(brand=brand) * rng.randint(1, 4)
        else:
            sentences = [
                rng.choice(_EN).format(
                    adj=rng.choice(_ADJ), verb=rng.choice(_VERB), thing=rng.choice(_THING)
                )
                for _ in range(rng.randint(2, 8))
            ]
            text = f"{brand}: " + ". ".join(sentences)
        raw = [rng.random() + 0.05 for _ in labels]
        total = sum(raw)
        probs = [r / total for r in raw]
        probs[2] = 1.0 - probs[0] - probs[1]
        label = labels[max(range(3), key=lambda k: probs[k])]
        created_at = start + timedelta(seconds=rng.random() * span)
        yield Mention(
            source=source,
            source_id=f"{id_prefix}{i}",
            source_name=source_name,
            url=f"https://example.org/{source}/{id_prefix}{i}",
            author=f"user{rng.randint(1, 2000)}",
            author_reach=int(rng.lognormvariate(5, 2)),
            title=f"About {brand} #{i}" if source in ("reddit", "hackernews") else None,
            text=text,
            language="zh" if zh else "en",
            created_at=created_at,
            collected_at=created_at + timedelta(minutes=rng.randint(1, 90)),
            brands=[brand],
            engagement=Engagement(likes=rng.randint(0, 500), replies=rng.randint(0, 50)),
            sentiment=Sentiment(
                label=label,  # type: ignore[arg-type]
                negative=probs[0],
                neutral=probs[1],
                positive=probs[2],
                model="synthetic",
            ),
        )
