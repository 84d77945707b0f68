"""RSS/Atom spider, through the real Scrapy engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from crawlers.spiders.rss import RssSpider
from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import (
    BRANDS,
    LOOKBACK,
    by_id,
    configure,
    faults,
    log_lines,
    warnings_of,
)

NEWS = "/rss/search"
VERGE = "CBMiWGh0dHBzOi8vd3d3LnRoZXZlcmdlLmNvbS9hY21lLXJlY2FsbA"
SINA = "CBMiQmh0dHBzOi8vdGVjaC5zaW5hLmNvbS5jbi9hY21lLXJvdXRlcg"
REUTERS = "CBMiPmh0dHBzOi8vd3d3LnJldXRlcnMuY29tL2FjbWUtZ2xvYmV4LXBhdGVudA"
AP = "CBMiNmh0dHBzOi8vYXBuZXdzLmNvbS9nbG9iZXgtb2hpbw"
BBC = "CBMiNGh0dHBzOi8vd3d3LmJiYy5jby51ay9hY21lLXJlY2FsbC0y"


def source(feeds, **extra):
    return {"type": "rss", "feeds": feeds, "lookback": LOOKBACK, **extra}


def test_news_search_atom_and_cp1252_feeds_with_incremental_cursor(api_server, crawl):
    base = api_server.base_url
    feeds = [
        f"{base}{NEWS}?q={{query}}+when:1d&hl=en-US&gl=US&ceid=US:en",
        "/blog/feed.atom",  # relative to base_url
        f"{base}/fr/feed.xml",
    ]
    api_server.add(
        NEWS,
        Reply.fixture("rss", "news_search_acme.xml"),
        Reply.fixture("rss", "news_search_acme_run2.xml"),
        when=lambda r: "acme" in r.param("q"),
    )
    api_server.add(NEWS, Reply.fixture("rss", "empty_search.xml"))
    api_server.add(
        "/blog/feed.atom",
        Reply.fixture("rss", "atom_blog.xml", content_type="application/atom+xml"),
    )
    # Served with no charset at all: only the XML declaration says windows-1252.
    api_server.add(
        "/fr/feed.xml", Reply.fixture("rss", "latin_cp1252.xml", content_type="text/xml")
    )

    first = crawl(source(feeds), brands=BRANDS)
    assert first.error is None, first.log
    got = by_id(first.mentions)
    assert sorted(got) == sorted(
        [
            VERGE,
            SINA,
            REUTERS,
            AP,
            "tag:gadgets.example,2026:post-4411",
            "https://gadgets.example/2026/11/router-shootout",
            "tag:gadgets.example,2026:post-4409",
            "https://journal.example/?p=90210",
        ]
    )

    verge = got[VERGE]
    assert verge.title == "Acme recalls Rocket 3 chargers after overheating reports - The Verge"
    assert verge.created_at == datetime(2026, 11, 26, 14, 3, tzinfo=UTC)
    assert verge.url == f"https://news.example/rss/articles/{VERGE}?oc=5"
    assert verge.author == "The Verge"  # the publisher, from <source>
    assert verge.brands == ["Acme"]
    # "+0800" and "EST" in pubDate are honoured.
    assert got[SINA].created_at == datetime(2026, 11, 26, 17, 30, tzinfo=UTC)
    assert got[SINA].brands == ["Acme"]
    reuters = got[REUTERS]
    assert reuters.created_at == datetime(2026, 11, 25, 14, 15, tzinfo=UTC)
    assert reuters.title == 'Why Acme & Globex are fighting over the "smart anvil" patent - Reuters'
    assert reuters.author == "Jane Roe" and reuters.brands == ["Acme", "Globex"]
    assert got[AP].brands == ["Globex"]

    review = got["tag:gadgets.example,2026:post-4411"]
    assert review.title == "Review: Acme Rocket 3 – one week later"
    assert (
        review.text
        == "The Acme Rocket 3 is fast, but the charger gets hot — 52 °C after an hour.\n\nVerdict: 7/10."
    )
    assert review.created_at == datetime(2026, 11, 26, 19, 0, tzinfo=UTC)  # published, not updated
    assert review.author == "Jürgen Müller"
    assert review.url == "https://gadgets.example/2026/11/acme-rocket-3-review"
    shootout = got["https://gadgets.example/2026/11/router-shootout"]
    assert shootout.text == "Both routers work; Acme’s app is nicer & Globex is cheaper."
    assert shootout.brands == ["Acme", "Globex"]
    chinese = got["tag:gadgets.example,2026:post-4409"]
    assert chinese.created_at == datetime(2026, 11, 24, 15, 30, 0, 250000, tzinfo=UTC)
    assert chinese.url == f"{base}/2026/11/acme-support-zh"  # relative link, resolved
    assert chinese.language is None  # the feed's xml:lang="en" does not describe this entry

    french = got["https://journal.example/?p=90210"]
    assert french.title == "Le nouveau téléphone d’Acme coûte 499 € – trop cher ?"
    assert french.text == "« Acme » annonce son téléphone à 499 €. Les précommandes ouvrent lundi."
    assert french.author == "Élodie Mercier"
    assert french.created_at == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    # The dateless item is a counted bad item; the 2019 one is outside the window.
    assert faults(first) == {"bad_item": 1}
    assert "has no date" in first.stats["fault_examples"]["bad_item"]
    assert first.stats["dropped"].get("no_brand") == 1  # "Weekly links"

    searched = sorted(h.param("q") for h in api_server.hits(NEWS))
    assert searched == ['"Globex" OR "globex corp" when:1d', '"acme" OR "阿克米" when:1d']
    assert "application/rss+xml" in api_server.hits(NEWS)[0].headers["accept"]

    second = crawl(source(feeds), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == [BBC]


def test_no_feeds_is_skipped_with_one_warning(caplog, tmp_path):
    with caplog.at_level(logging.INFO):
        spider = configure(RssSpider, source([]), tmp_path)
    assert spider.skip_reason == "no feeds configured"
    assert warnings_of(caplog) == ["source 's' (rss) skipped: no feeds configured"]


def test_malformed_feed_html_page_and_server_error(api_server, crawl):
    base = api_server.base_url
    api_server.add("/deals.xml", Reply.fixture("rss", "malformed.xml"))
    api_server.add("/consent.xml", Reply.fixture("rss", "not_a_feed.html"))
    api_server.add("/down.xml", Reply(status=503, body=b"upstream down", content_type="text/plain"))
    result = crawl(
        source([f"{base}/deals.xml", f"{base}/consent.xml", f"{base}/down.xml"]),
        brands=BRANDS,
        settings={"LOG_LEVEL": "WARNING"},
    )
    assert result.error is None
    # The malformed feed still yields the items before the damage.
    assert sorted(m.source_id for m in result.mentions) == [
        "https://deals.example/acme-anvil",
        "https://deals.example/acme-rocket-3",
    ]
    failed = faults(result)
    assert failed.get("bad_xml") == 1
    assert failed.get("not_a_feed") == 1
    assert failed.get("http_503") == 1
    line = log_lines(result.log, "had faults")
    assert len(line) == 1
    assert "deals.xml is not well-formed XML" in line[0]
    assert "answered an HTML page ('Sorry...')" in line[0]
