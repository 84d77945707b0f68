"""Hostile posts through the real Scrapy engine: every legitimate post arrives.

Lone surrogates, control characters, a 500 KB post built to make the brand
matcher work hard, and feeds with junk before `<?xml`: none of them may cost a
post (or the post next to it), and the cursor only moves past what arrived.
"""

from __future__ import annotations

import json
import time

from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import faults

SEARCH = "/api/v1/search_by_date"
NOW = int(time.time()) - 600
BRANDS = [
    {"name": "Acme", "query": '"acme" OR (acme NEAR/5 router)'},
    {"name": "AT&T", "query": '"AT&T"'},
]


def hit(object_id: str, text: str, *, author: str = "someone", title: str | None = None) -> dict:
    story = title is not None
    return {
        "objectID": object_id,
        "author": author,
        "created_at_i": NOW + int(object_id),
        "comment_text": None if story else text,
        "story_text": text if story else None,
        "title": title,
        "_tags": ["story" if story else "comment"],
        "num_comments": None,
        "points": 1,
    }


def raw_json(data: dict) -> bytes:
    # json.dumps would refuse nothing here, but a lone surrogate must travel as the
    # escape real APIs send ("\ud800"), which json.dumps writes with ensure_ascii.
    return json.dumps(data, ensure_ascii=True).encode("ascii")


def test_bad_characters_and_a_huge_post_never_cost_a_post(api_server, crawl):
    huge = ("acme " * 45_000 + "router " * 45_000)[:500_000]  # NEAR's worst case
    hits = [
        hit("1", "acme router with a lone surrogate \ud800 inside", author="bob\ud83d"),
        hit("2", "acme\x00 with NUL \x07 bell and \x1b escape", title="t\x00itle acme"),
        hit("3", "<p>acme in HTML with a NUL\x00 and \udfff</p>"),
        hit("4", huge),
        hit("5", "a plain acme post"),
    ]
    api_server.add(
        SEARCH,
        Reply(body=raw_json({"hits": hits, "page": 0, "nbPages": 1})),
        Reply(body=raw_json({"hits": [], "page": 0, "nbPages": 1})),
    )
    first = crawl({"type": "hackernews", "name": "hn"}, brands=BRANDS)
    assert first.error is None, first.log
    got = {m.source_id: m for m in first.mentions}
    assert sorted(got) == ["1", "2", "3", "4", "5"], first.stats
    assert faults(first) == {}
    assert got["1"].text == "acme router with a lone surrogate \ufffd inside"
    assert got["1"].author == "bob\ufffd"
    assert got["2"].text == "acme with NUL bell and escape" and got["2"].title == "title acme"
    assert "\x00" not in got["3"].text and got["3"].text.startswith("acme in HTML")
    assert len(got["4"].text) > 400_000 and got["4"].brands == ["Acme"]
    # The cursor moved past them because they arrived: the next crawl finds nothing new.
    second = crawl({"type": "hackernews", "name": "hn"}, brands=BRANDS)
    assert second.mentions == [] and faults(second) == {}


def feed(prefix: bytes) -> bytes:
    return prefix + (
        b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>n</title>'
        b"<item><title>AT&amp;T &lt;3 Acme</title><guid>a1</guid>"
        b"<pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate>"
        b"<description>Fees at AT&amp;T rose; Acme &amp; friends</description></item>"
        b"</channel></rss>"
    )


def test_feeds_with_whitespace_or_a_bom_before_the_declaration_parse_strictly(api_server, crawl):
    prefixes = {"/ws.xml": b"\n\n   ", "/bom.xml": b"\xef\xbb\xbf", "/both.xml": b"\xef\xbb\xbf\r\n \t"}
    for path, prefix in prefixes.items():
        api_server.add(path, Reply(body=feed(prefix), content_type="application/rss+xml"))
    result = crawl(
        {"type": "rss", "name": "news", "feeds": list(prefixes), "lookback": "3650d"},
        brands=BRANDS,
    )
    assert result.error is None, result.log
    assert faults(result) == {}  # no bad_xml: the strict parser read them
    assert len(result.mentions) == 1  # the same guid in three feeds is one post
    mention = result.mentions[0]
    assert mention.title == "AT&T <3 Acme"
    assert mention.text == "Fees at AT&T rose; Acme & friends"
    assert mention.brands == ["Acme", "AT&T"]
