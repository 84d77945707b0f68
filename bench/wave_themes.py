"""What a spike alert's "Mostly:" line says on real text, and how long it takes.

    python bench/wave_themes.py

Runs `alerts.themes.wave_themes` (what `NegativeSpikeRule` calls on a wave's newest
2,000 negative posts) on the demo corpus (`sandbox/corpus.py`) and on real negative
texts from the shared data, read in place from ../shared/data/sentiment (or
$BRANDPULSE_SENTIMENT_DATA), then times 2,000-post waves after the one-off imports.
docs/reports.md ("Themes of a spike") has the outputs and how they were judged.
"""

from __future__ import annotations

import csv
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.themes import wave_themes
from brandpulse.config import Config
from brandpulse.mention import Mention
from nlp.data import shared_data_dir
from nlp.enrich import brand_queries
from sandbox.corpus import build_corpus

T = datetime(2026, 11, 20, tzinfo=UTC)


def _mentions(texts: list[str], brand: str, language: str | None) -> list[Mention]:
    return [
        Mention(source="reddit", source_id=f"x{i}", source_name="reddit", url=f"https://x/{i}",
                text=t, created_at=T + timedelta(seconds=i), brands=[brand], language=language)
        for i, t in enumerate(texts)
    ]


def show(name: str, texts: list[str], brand: str, language: str | None = None,
         queries: dict | None = None) -> None:
    mentions = _mentions(texts, brand, language)
    t0 = time.perf_counter()
    themes = wave_themes(mentions, brand, queries=queries or {})
    took = time.perf_counter() - t0
    line = ", ".join(f"{t.label} ({t.share:.0%})" for t in themes) or "(no themes)"
    print(f"{name}: {len(mentions)} posts, {took:.2f} s\n    Mostly: {line}")


def _rows(name: str) -> list[dict[str, str]]:
    with (shared_data_dir() / name).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def main() -> None:
    acme = brand_queries(Config.model_validate(
        {"brands": [{"name": "Acme", "query": "Acme OR 阿克米"}]}).brands)
    apps = brand_queries(Config.model_validate({"brands": [{"name": "Spotify"}]}).brands)
    corpus = build_corpus(T, burst_size=40)
    show("demo burst (first call: imports scikit-learn, loads jieba)",
         [p.text for p in corpus.burst], "Acme", queries=acme)
    show("demo history negatives",
         [p.text for p in corpus.history if p.tone == "negative"], "Acme", queries=acme)
    reviews = _rows("en_app_reviews.csv")
    show("en_app_reviews negatives naming Spotify",
         [r["text"] for r in reviews if r["label"] == "negative" and "spotify" in r["text"].lower()],
         "Spotify", queries=apps)
    shop = _rows("zh_online_shopping_9cats.csv")
    for cat in ("手机", "计算机"):
        texts = [r["review"] for r in shop
                 if r["label"] == "0" and r["cat"] == cat and r["review"].strip()]
        random.Random(1).shuffle(texts)
        show(f"zh_online_shopping {cat} negatives", texts[:200], cat, "zh")
    weibo = [r["text"] for r in _rows("zh_weibo2018_manual.csv") if r["label"] == "negative"]
    random.Random(2).shuffle(weibo)
    show("zh_weibo2018 negatives (no common topic)", weibo[:300], "微博", "zh")

    en = [r["text"] for r in reviews if r["label"] == "negative"]
    zh = [r["review"] for r in shop if r["label"] == "0" and r["review"].strip()]
    random.Random(0).shuffle(en)
    random.Random(0).shuffle(zh)
    show("2,000 EN app reviews", (en * 3)[:2000], "X")
    show("2,000 ZH shopping reviews", zh[:2000], "X", "zh")
    show("1,000 EN + 1,000 ZH", en[:1000] + zh[:1000], "X")


if __name__ == "__main__":
    main()
