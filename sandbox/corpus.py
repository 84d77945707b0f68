"""A realistic, reproducible stream of brand mentions for the demo and the benchmarks.

The demo needs a few hundred posts about a sample brand spread over the past days
(so the spike detector has history to learn from) and a burst of negative posts
that appears while the daemon is watching. Posts are written in English and
Chinese, with the kinds of noise real posts carry (HTML entities, emoji, links,
hashtags, an occasional post about an unrelated "acme").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

BRAND = "Acme"
BRAND_ZH = "阿克米"
PRODUCTS = ["Acme Phone X2", "Acme Cloud", "the Acme app", "Acme Buds", "Acme Watch 3"]
PRODUCTS_ZH = ["阿克米X2手机", "阿克米云盘", "阿克米耳机", "阿克米手表"]

POSITIVE_EN = [
    "Honestly {p} is the best purchase I made this year. Battery lasts two days 🔋",
    "Shout-out to {b} support, fixed my issue in 5 minutes. Great team! 🙌",
    "Just upgraded to {p} and I love it — camera is stunning.",
    "{p} keeps getting better, the new update is smooth and fast.",
    "Switched from Globex to {b} last month, zero regrets. Highly recommend.",
    "The {p} design is gorgeous and it feels premium. 10/10 would buy again.",
]
NEUTRAL_EN = [
    "Does anyone know if {p} works with older chargers?",
    "{b} announced a press event for next Tuesday.",
    "Comparing {p} and the Globex equivalent, specs below. Thoughts?",
    "Where can I find the release notes for the latest {p} firmware?",
    "{b} is opening a new store downtown according to the local paper.",
    "Is the {p} on sale anywhere this weekend?",
]
NEGATIVE_EN = [
    "{p} keeps crashing after the update. Really disappointed with {b}.",
    "Waited 2 hours on the phone with {b} support and got nowhere. Awful.",
    "My {p} battery died after 6 months, {b} refuses to replace it. Never again.",
    "{b} charged me twice for the same order & nobody answers emails 😡",
]
BURST_EN = [
    "{b} Cloud is DOWN and my files are gone?! Anyone else? #acmedown",
    "Lost a week of photos after the {b} Cloud outage. This is unacceptable 😡",
    "{b} Cloud deleted my backups. Terrible. Support says 'we are investigating'.",
    "Is {b} Cloud wiping accounts? All my documents disappeared this morning.",
    "Cancelling my {b} subscription today. Data loss is not a 'minor incident'.",
    "{b} just lost customer data and still no statement. Shameful.",
    "Worst service ever: {b} Cloud outage for hours and my data is corrupted.",
    "Dear @Acme, my business files vanished from {b} Cloud. How do I get them back?? Furious.",
]
POSITIVE_ZH = [
    "{p}真的太好用了，续航很给力👍",
    "{b}的客服态度很好，问题很快就解决了。",
    "刚入手{p}，做工精致，拍照效果惊艳！",
]
NEUTRAL_ZH = [
    "请问{p}支持无线充电吗？",
    "{b}下周要开发布会了。",
]
NEGATIVE_ZH = [
    "{p}又死机了，太失望了。",
    "{b}的售后太差了，等了三天都没人回复。",
]
BURST_ZH = [
    "{b}云盘崩了，我的照片全没了！太差劲了😡",
    "{b}云盘数据丢失，客服一直说在处理，非常愤怒。",
    "再也不用{b}云盘了，重要文件全部丢失。",
]
AUTHORS = [
    "jenny_k",
    "tech_tom",
    "maria.lopez",
    "devnull42",
    "sam_reviews",
    "li_wei",
    "王小明",
    "gadgetgirl",
    "ops_oncall",
    "pixelpusher",
    "nguyen_an",
    "hkchan",
    "the_real_ben",
    "carla_codes",
    "zhang_hua",
    "marcus_b",
    "priya_s",
    "old_school_dan",
    "yuki_t",
]
NOISE = [
    "Acme Thread Co. has the nicest embroidery floss, FYI for crafters.",
    "Watching old Road Runner cartoons, ACME rockets never work lol",
]


@dataclass(frozen=True)
class Post:
    """A post as the demo's sources publish it (source-neutral)."""

    id: int
    created_at: datetime
    author: str
    followers: int
    text: str
    language: str
    tone: str  # what the corpus meant: negative / neutral / positive / noise
    score: int
    replies: int


@dataclass
class Corpus:
    history: list[Post] = field(default_factory=list)
    burst: list[Post] = field(default_factory=list)


def _fill(template: str, rng: random.Random, zh: bool) -> str:
    product = rng.choice(PRODUCTS_ZH if zh else PRODUCTS)
    return template.format(p=product, b=BRAND_ZH if zh else BRAND)


def _rate_per_hour(at: datetime, mean: float) -> float:
    # Daily rhythm: busiest in the afternoon (UTC), quiet at night.
    hour = at.hour + at.minute / 60
    return mean * (1.0 + 0.6 * math.sin((hour - 9) / 24 * 2 * math.pi))


def build_corpus(
    now: datetime,
    *,
    days: float = 3.0,
    per_hour: float = 4.0,
    negative_share: float = 0.15,
    burst_size: int = 40,
    seed: int = 7,
) -> Corpus:
    """History of ~days*24*per_hour posts before `now`, and a negative burst to publish later."""
    rng = random.Random(seed)
    corpus = Corpus()
    next_id = 1000
    start = now - timedelta(days=days)
    t = start
    while t < now:
        # Posts within each 5-minute slot follow the rate; Poisson by thinning.
        slot_rate = _rate_per_hour(t, per_hour) / 12
        for _ in range(_poisson(rng, slot_rate)):
            at = t + timedelta(seconds=rng.uniform(0, 300))
            if at >= now:
                continue
            zh = rng.random() < 0.25
            roll = rng.random()
            if roll < 0.02 and not zh:
                text, tone = rng.choice(NOISE), "noise"
            elif roll < 0.02 + negative_share:
                text, tone = (
                    _fill(rng.choice(NEGATIVE_ZH if zh else NEGATIVE_EN), rng, zh),
                    "negative",
                )
            elif roll < 0.55:
                text, tone = _fill(rng.choice(NEUTRAL_ZH if zh else NEUTRAL_EN), rng, zh), "neutral"
            else:
                text, tone = (
                    _fill(rng.choice(POSITIVE_ZH if zh else POSITIVE_EN), rng, zh),
                    "positive",
                )
            next_id += rng.randint(1, 9)
            corpus.history.append(_post(rng, next_id, at, text, "zh" if zh else "en", tone))
        t += timedelta(minutes=5)
    # Sites hand out ids in time order (Reddit base-36 ids, Mastodon snowflakes), and
    # paging by id depends on it: number the posts in the order they were written.
    corpus.history.sort(key=lambda p: p.created_at)
    next_id = 1000
    renumbered = []
    for post in corpus.history:
        next_id += rng.randint(1, 9)
        renumbered.append(Post(**{**post.__dict__, "id": next_id}))
    corpus.history = renumbered
    for _ in range(burst_size):
        zh = rng.random() < 0.25
        text = _fill(rng.choice(BURST_ZH if zh else BURST_EN), rng, zh)
        next_id += rng.randint(1, 9)
        # Burst times are assigned when the burst is published (see `publish_burst`).
        corpus.burst.append(_post(rng, next_id, now, text, "zh" if zh else "en", "negative"))
    # One very loud critic, so the high-reach rule has something to say. Chinese posts
    # go to the Mastodon stand-in, whose accounts carry follower counts.
    loud = corpus.burst[len(corpus.burst) // 2]
    corpus.burst[len(corpus.burst) // 2] = Post(
        **{
            **loud.__dict__,
            "author": "techcrunchy",
            "followers": 2_400_000,
            "text": _fill(BURST_ZH[0], rng, True),
            "language": "zh",
        }
    )
    return corpus


def publish_burst(burst: list[Post], at: datetime, spread: timedelta) -> list[Post]:
    """Give the burst's posts creation times spread over `spread` ending at `at`."""
    step = spread / max(len(burst), 1)
    return [
        Post(**{**p.__dict__, "created_at": at - spread + step * (i + 1)})
        for i, p in enumerate(burst)
    ]


def _post(rng: random.Random, post_id: int, at: datetime, text: str, lang: str, tone: str) -> Post:
    followers = int(rng.lognormvariate(5.5, 1.6))
    return Post(
        id=post_id,
        created_at=at.astimezone(UTC),
        author=rng.choice(AUTHORS),
        followers=followers,
        text=text,
        language=lang,
        tone=tone,
        score=max(0, int(rng.gauss(12, 15))),
        replies=rng.randint(0, 30),
    )


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small (a few per slot).
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
