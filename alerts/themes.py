"""What drives a wave: the themes of its negative posts, for the spike alert's message.

A spike alert says how many negative posts there are; the team's first question is what
they are about. `wave_themes` groups the wave's negative posts with the same theme
finder the weekly report uses (`nlp.themes`: TF-IDF words, jieba for Chinese, NMF) and
keeps the few largest themes, each with its share of the posts read.

Tuned for a wave rather than a week (docs/reports.md, "Themes of a spike"):

* **Bounded**: the rule reads the newest `WAVE_THEME_POSTS` (2,000) negative posts of
  the wave through its `MentionReader`; a wave has tens to a few thousand posts, and
  its newest 2,000 say what it is about as well as all of them would.
* **Few, large themes**: at most 4 per language group, each at least 4 posts and 10 %
  of the posts read; the 3 largest are shown.
* **A word common to most posts is kept** (`max_df` 1.0, not the report's 0.5): in a
  wave, one complaint ("cloud", "outage") can be most of the posts, and that is the
  point of the message.
* **Too few posts, no themes**: under `MIN_POSTS` (8) in a language group that group
  has none; a wave of 5 posts gets no themes line rather than a guess.
* **No topic, no theme**: a theme whose label words are in fewer than half of its posts
  (`MIN_COVERAGE`) is a catch-all of posts sharing no topic (moods, outbursts: "今天 ·
  伤心 · 摊手" over random Weibo complaints covered 20 %), not something to report.

Never in the way of the alert: a failure here is logged and the alert goes out without
themes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from alerts.model import AlertTheme
from brandpulse.mention import Mention
from brandpulse.query import BrandQuery

log = logging.getLogger(__name__)

WAVE_THEME_POSTS = 2000  # the newest negative posts of a wave read for its themes
MIN_POSTS = 8  # fewer posts in a language group: no theme for it
SHOWN = 3  # themes an alert carries
MIN_COVERAGE = 0.5  # of a theme's posts holding one of its label words
_MAX_THEMES = 4  # per language group
_MIN_SHARE = 0.10  # of the group's posts


def wave_themes(
    mentions: Sequence[Mention],
    brand: str,
    *,
    queries: Mapping[str, BrandQuery] | None = None,
    shown: int = SHOWN,
) -> tuple[AlertTheme, ...]:
    """The largest themes of `mentions` (a wave's negative posts about `brand`), largest
    first, with shares of all of `mentions`; () when there are too few to tell.

    `queries`: every configured brand's query by name (`nlp.enrich.brand_queries`): its
    terms are left out of the labels (every post names the brand) and, in a post naming
    several brands, locate the clauses about this one.
    """
    if len(mentions) < MIN_POSTS:
        return ()
    try:
        return _themes(mentions, brand, dict(queries or {}), shown)
    except Exception:  # an alert without themes beats no alert
        log.exception("%s: could not find the wave's themes; alerting without them", brand)
        return ()


def _themes(
    mentions: Sequence[Mention], brand: str, known: dict[str, BrandQuery], shown: int
) -> tuple[AlertTheme, ...]:
    from nlp.themes import ThemePost, is_chinese, post_text, themes_of_posts

    query = known.get(brand)
    posts = []
    for m in mentions:
        text = post_text(brand, m.title, m.text, m.brands, known, query)
        posts.append(
            ThemePost(
                id=m.id,
                text=text,
                chinese=is_chinese(text, m.language),
                author=m.author,
                author_reach=m.author_reach,
                url=m.url,
            )
        )
    stop_terms = [brand, *(query.search_terms() if query else [])]
    themes, _, _ = themes_of_posts(
        posts,
        [],
        stop_terms=stop_terms,
        max_themes=_MAX_THEMES,
        min_share=_MIN_SHARE,
        min_size=MIN_POSTS // 2,
        max_df=1.0,
        examples=0,
    )
    return tuple(
        AlertTheme(label=t.label, share=t.size / len(posts), posts=t.size)
        for t in [t for t in themes if t.coverage >= MIN_COVERAGE][:shown]
    )
