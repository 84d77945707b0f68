"""Sentiment per brand: clauses, their owners, the fallback, and the real model on them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from brandpulse.config import BrandConfig
from brandpulse.mention import Mention, Sentiment
from brandpulse.query import compile_query
from nlp.brands import MAX_SEGMENT_CHARS, brand_texts, queries_for, split_clauses
from nlp.enrich import brand_queries, enrich
from nlp.scorer import SentimentScorer

BRANDS = queries_for(["Acme", "Globex"], {})


def mention(i: int, text: str, brands: list[str], title: str | None = None) -> Mention:
    return Mention(source="test", source_id=str(i), source_name="t", text=text, title=title,
                   brands=brands, created_at=datetime(2026, 1, 1, tzinfo=UTC))


# ------------------------------------------------------------------ segmentation


@pytest.mark.parametrize(("text", "clauses"), [
    ("Acme is great. Globex is not!  Why? Dunno; ok",
     ["Acme is great.", "Globex is not!", "Why?", "Dunno;", "ok"]),
    ("Version 2.0 of acme.com is out", ["Version 2.0 of acme.com is out"]),
    ("I love Acme but hate Globex", ["I love Acme", "but hate Globex"]),
    ("Acme rocks, however Globex, whereas", ["Acme rocks,", "however Globex,", "whereas"]),
    ("Acme很好。Globex很差！真的？", ["Acme很好。", "Globex很差！", "真的？"]),
    ("换了Acme之后好多了，Globex的客服太差了", ["换了Acme之后好多了，", "Globex的客服太差了"]),
    ("Acme很好但是Globex不行", ["Acme很好", "但是Globex不行"]),
    ("Acme很好而Globex很差", ["Acme很好", "而Globex很差"]),
    # 而且 (and also), 不但 (not only) and 然而's 而 are not breaks of their own
    ("Acme不但便宜而且好用", ["Acme不但便宜而且好用"]),
    ("Acme很好然而Globex很差", ["Acme很好", "然而Globex很差"]),
    ("first line\nsecond line…third", ["first line", "second line…", "third"]),
])
def test_split_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


def test_each_brand_gets_its_clauses_and_the_unnamed_ones_after_them() -> None:
    got = brand_texts("Acme is great but Globex is awful. They never answer. Ugh", BRANDS)
    assert got == {"Acme": "Acme is great",
                   "Globex": "but Globex is awful. They never answer. Ugh"}
    # Clauses before the first named brand belong to it.
    got = brand_texts("What a week. Globex lost my data, Acme restored it", BRANDS)
    assert got == {"Acme": "Acme restored it", "Globex": "What a week. Globex lost my data,"}


def test_fallback_to_the_post() -> None:
    # The brand's clauses are the whole post: the post's own result serves.
    assert brand_texts("switched from Globex to Acme, Globex lost my data twice", BRANDS) == {
        "Acme": "switched from Globex to Acme,", "Globex": None}
    # Both in one clause: the same (whole) text.
    assert brand_texts("Acme and Globex are both fine", BRANDS) == {"Acme": None, "Globex": None}
    # Too little besides the name to judge.
    assert brand_texts("Globex. Acme support was great and fast", BRANDS) == {
        "Acme": "Acme support was great and fast", "Globex": None}
    assert brand_texts("but Globex, Acme support was great", BRANDS)["Globex"] is None
    # Not located in the text at all (matched by a site: or author: filter).
    site_only = {"Acme": compile_query("site:acme.com OR acme"), "Globex": BRANDS["Globex"]}
    assert brand_texts("Globex is awful, the rest is fine", site_only) == {
        "Acme": None, "Globex": None}


def test_a_huge_post_is_segmented_on_its_head_and_tail() -> None:
    filler = "filler text, nothing more. " * 1000
    middle = filler + "Acme is named here in the middle and nowhere else. " + filler
    got = brand_texts("Globex lost my data. " + middle + "Globex is awful, truly.", BRANDS)
    assert got == {"Acme": None, "Globex": None}  # Acme is not seen: the post's result
    huge = "Acme is great. " + "filler text, nothing more. " * 20_000 + "Globex is awful!"
    got = brand_texts(huge, BRANDS)
    assert got["Globex"] is not None and got["Globex"].endswith("Globex is awful!")
    assert len(got["Globex"]) <= MAX_SEGMENT_CHARS and got["Acme"].startswith("Acme is great.")


def test_brands_are_found_by_their_configured_query_terms() -> None:
    config = [BrandConfig(name="小米", query='小米 OR xiaomi OR "mi phone" NOT 小米粥'),
              BrandConfig(name="Acme")]
    queries = brand_queries(config)
    got = brand_texts("My Mi-Phone died again, what junk. Acme replaced mine at once", queries)
    assert got == {"小米": "My Mi-Phone died again, what junk.",
                   "Acme": "Acme replaced mine at once"}
    # A brand the config no longer has is located by its name.
    assert set(queries_for(["小米", "Gone"], queries)) == {"小米", "Gone"}
    assert queries_for(["Gone"], queries)["Gone"].term_spans("gone is GONE") == [(0, 4), (8, 12)]


# ------------------------------------------------------------------ with the real model


class Counting:
    """The real scorer, counting its calls and texts."""

    def __init__(self, scorer: SentimentScorer) -> None:
        self.scorer = scorer
        self.calls: list[int] = []

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        self.calls.append(len(texts))
        return self.scorer.score(texts)


def _by_brand(m: Mention) -> dict[str, tuple[str, str]]:
    return {b.brand: (b.label, b.source) for b in m.brand_sentiments}


def test_opposite_sentiments_in_one_post_en_and_zh(scorer: SentimentScorer) -> None:
    posts = [
        mention(1, "Acme support fixed my laptop in a day, fantastic service. "
                   "Globex lost my data twice and never answered, awful.", ["Acme", "Globex"]),
        mention(2, "换了Acme之后好多了，体验很棒，Globex的客服太差了", ["Acme", "Globex"]),
        mention(3, "I love my new Acme phone but Globex is a terrible, useless carrier",
                ["Acme", "Globex"]),
        mention(4, "Globex的手机质量太差，用了两天就坏了。Acme的手机非常好用，很满意！",
                ["Globex", "Acme"]),
    ]
    counting = Counting(scorer)
    enrich(posts, counting, brands=BRANDS, detect_language=False)
    assert counting.calls == [4 + 8]  # the posts and their brands' texts: one call
    for post in posts:
        got = _by_brand(post)
        assert got["Globex"] == ("negative", "clause"), (post.body, got)
        assert got["Acme"][0] != "negative" and got["Acme"][1] == "clause", (post.body, got)
        assert [b.brand for b in post.brand_sentiments] == post.brands
        for b in post.brand_sentiments:
            assert b.confidence is not None
            assert b.uncertain == (scorer.uncertain_below is not None
                                   and b.confidence < scorer.uncertain_below)


def test_the_issues_chinese_example(scorer: SentimentScorer) -> None:
    # Today's model reads "换了Acme之后好多了" (much better since switching to Acme) alone as
    # negative; per brand, Globex is still the one clearly attacked.
    post = mention(1, "换了Acme之后好多了，Globex的客服太差了", ["Acme", "Globex"])
    enrich([post], scorer, brands=BRANDS, detect_language=False)
    acme, globex = post.brand_sentiments
    assert (acme.source, globex.source) == ("clause", "clause")
    assert globex.label == "negative"
    assert acme.negative < globex.negative


def test_single_brand_and_unlocatable_brands_take_the_post_result(scorer: SentimentScorer) -> None:
    posts = [
        mention(1, "Acme lost my parcel and support hung up on me. Never again.", ["Acme"]),
        mention(2, "switched from Globex to Acme, Globex lost my data twice",
                ["Acme", "Globex"]),
        mention(3, "This phone is wonderful!", ["Acme"]),  # matched by site: or author:
        mention(4, "", ["Acme"], title=None),
    ]
    counting = Counting(scorer)
    enrich(posts, counting, brands=BRANDS, detect_language=False)
    assert counting.calls == [4 + 1]  # only Acme's clause in post 2 is scored apart
    one, two, three, four = posts
    assert _by_brand(one) == {"Acme": ("negative", "post")}
    assert one.brand_sentiments[0].negative == one.sentiment.negative
    assert _by_brand(two)["Globex"] == (two.sentiment.label, "post")
    assert two.sentiment.label == "negative"  # the clear case; Acme's own text is milder
    assert _by_brand(two)["Acme"][1] == "clause" and _by_brand(two)["Acme"][0] != "negative"
    assert _by_brand(three) == {"Acme": ("positive", "post")}
    assert _by_brand(four) == {"Acme": ("neutral", "post")}
