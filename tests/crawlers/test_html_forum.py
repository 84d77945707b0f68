"""Generic HTML forum spider (phpBB, Discuz! in GBK), through the real Scrapy engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs

from crawlers.spiders.html_forum import HtmlForumSpider
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

PHPBB_SELECTORS = {
    "post": "div.search.post",
    "text": "div.content",
    "url": "h3 a::attr(href)",
    "title": "h3 a",
    "author": "dt.author a.username::text",
    "time": "dd.search-result-date::text",
    "next_page": "li.arrow.next a::attr(href)",
}
PHPBB_TIME = "%a %b %d, %Y %I:%M %p"
DISCUZ_SELECTORS = {
    "post": "li.pbw",
    "id": "::attr(id)",
    "text": "p.xg1 + p",
    "url": "h3 a::attr(href)",
    "title": "h3 a",
    "author": "p.xg1 + p + p a[href*='uid']::text",  # uid=N or space-uid-N.html
    "time": "p.xg1 + p + p > span::text",
}
ROBOTS = Reply.fixture("html_forum", "robots.txt", content_type="text/plain")


def phpbb(base: str, **extra):
    return {
        "type": "html_forum",
        "start_urls": [
            f"{base}/search.php?keywords={{query}}&sr=posts",
            f"{base}/private/search.php?keywords={{query}}",
        ],
        "selectors": PHPBB_SELECTORS,
        "time_format": PHPBB_TIME,
        "language": "en",
        "lookback": LOOKBACK,
        **extra,
    }


def discuz(base: str, **extra):
    return {
        "type": "html_forum",
        "start_urls": [f"{base}/search.php?mod=forum&srchtxt={{query:gbk}}&searchsubmit=yes"],
        "selectors": DISCUZ_SELECTORS,
        "time_format": "%Y-%m-%d %H:%M",
        "language": "zh",
        "lookback": LOOKBACK,
        **extra,
    }


def post_url(base: str, post_id: int) -> str:
    # The session id (sid=...) is gone: it changes on every visit.
    return f"{base}/viewtopic.php?p={post_id}#p{post_id}"


def test_phpbb_search_paging_robots_and_incremental_cursor(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "phpbb_search_page2.html"),
        when={"keywords": "acme", "start": "25"},
    )
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "phpbb_search_page1.html"),
        Reply.fixture("html_forum", "phpbb_search_run2.html"),
        when={"keywords": "acme"},
    )
    api_server.add("/search.php", Reply.fixture("html_forum", "phpbb_search_empty.html"))

    first = crawl(phpbb(base), brands=BRANDS)
    assert first.error is None, first.log
    got = by_id(first.mentions)
    assert sorted(got) == [post_url(base, 58004), post_url(base, 58190), post_url(base, 58211)]

    dropping = got[post_url(base, 58211)]
    assert dropping.title == "Acme Rocket 3 keeps dropping Wi‑Fi"
    assert dropping.text == (
        "Since the Acme firmware 2.1 update my Rocket 3 drops Wi‑Fi every hour. "
        "Anyone else? <frustrated>\nTried a factory reset already."
    )
    assert dropping.author == "netnerd"
    assert dropping.created_at == datetime(2026, 11, 26, 15, 14, tzinfo=UTC)
    assert dropping.url == post_url(base, 58211)
    assert dropping.language == "en"
    assert dropping.brands == ["Acme"]
    assert got[post_url(base, 58190)].created_at == datetime(2026, 11, 26, 9, 2, tzinfo=UTC)
    assert got[post_url(base, 58004)].brands == ["Globex"]

    acme = api_server.hits("/search.php")
    acme = [h for h in acme if h.param("keywords") == "acme"]
    # Page 2's "next" points at itself: read once, then the query ends.
    assert [h.param("start") for h in acme] == [None, "25"]
    assert sorted(h.param("keywords") for h in api_server.hits("/search.php")) == [
        '"globex corp"',
        "Globex",
        "acme",
        "acme",
        "阿克米",
    ]
    # robots.txt was read and its Disallow: /private/ honoured.
    assert len(api_server.hits("/robots.txt")) == 1
    assert not [r for r in api_server.requests if r.path.startswith("/private/")]
    assert "Forbidden by robots.txt" in first.stats["fault_examples"]["ignored"]

    api_server.requests.clear()
    second = crawl(phpbb(base), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == [post_url(base, 58240)]


def test_discuz_gbk_page_with_gbk_encoded_query(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    # Served without a charset: only <meta ... charset=gbk> tells the encoding.
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "discuz_search_gbk.html", content_type="text/html"),
    )
    result = crawl(discuz(base), brands=BRANDS[:1])
    assert result.error is None, result.log
    got = by_id(result.mentions)
    assert sorted(got) == ["3345601", "3345678"]

    router = got["3345678"]
    assert router.title == "阿克米路由器升级固件后频繁掉线，求助！"
    assert (
        router.text
        == "用了三天，阿克米 AX3000 每隔一小时就断网一次 >_< 客服电话打不通，喆哥说换根网线也没用。"
    )
    assert router.author == "数码喆哥"  # 喆 exists in GBK only, not GB2312
    assert router.created_at == datetime(2026, 11, 26, 21, 14, tzinfo=UTC)
    # The highlight parameter (it depends on the search term) is not part of the URL.
    assert router.url == f"{base}/forum.php?mod=viewthread&tid=3345678"
    assert router.language == "zh" and router.brands == ["Acme"]
    speaker = got["3345601"]
    assert speaker.author == "碁圣小明"
    assert "做工不错👍" in speaker.text  # a numeric character reference outside GBK
    assert result.stats["dropped"].get("no_brand") == 2  # the page answers both terms

    # The Chinese term went out GBK-encoded (%B0%A2%BF%CB%C3%D7), as a GBK board expects.
    sent = sorted(h.param("srchtxt") for h in api_server.hits("/search.php"))
    as_server_reads_gbk = parse_qs("srchtxt=%B0%A2%BF%CB%C3%D7")["srchtxt"][0]
    assert sent == sorted(["acme", as_server_reads_gbk])


def test_missing_time_selector_is_skipped_with_one_warning(caplog, tmp_path):
    selectors = {k: v for k, v in PHPBB_SELECTORS.items() if k != "time"}
    with caplog.at_level(logging.INFO):
        spider = configure(
            HtmlForumSpider, phpbb("http://forum.example", selectors=selectors), tmp_path
        )
    assert spider.skip_reason.startswith("selectors.time is not set")
    assert warnings_of(caplog) == [f"source 's' (html_forum) skipped: {spider.skip_reason}"]


def test_bad_times_server_errors_and_non_html_are_faults(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/search.php", Reply.fixture("html_forum", "phpbb_search_page1.html"))
    api_server.add(
        "/down.php", Reply(status=500, body=b"Internal error", content_type="text/plain")
    )
    api_server.add("/feed.php", Reply.json({"posts": []}))
    selectors = {k: v for k, v in PHPBB_SELECTORS.items() if k != "next_page"}
    source = phpbb(
        base,
        time_format="%d.%m.%Y %H:%M",
        selectors=selectors,
        start_urls=[f"{base}/search.php?keywords=acme", f"{base}/down.php", f"{base}/feed.php"],
    )
    result = crawl(source, brands=BRANDS, settings={"LOG_LEVEL": "WARNING"})
    assert result.error is None
    assert result.mentions == []
    failed = faults(result)
    assert failed.get("bad_item") == 3  # every post's time misses the format
    assert failed.get("http_500") == 1
    assert failed.get("not_html") == 1
    line = log_lines(result.log, "had faults")
    assert len(line) == 1
    assert "does not match time_format '%d.%m.%Y %H:%M'" in line[0]


def test_session_parameters_are_not_part_of_a_post_url():
    from crawlers.spiders.html_forum import canonical_url, fill_query

    assert canonical_url("https://f.example/viewtopic.php?p=5&sid=0123abcd#p5") == (
        "https://f.example/viewtopic.php?p=5#p5"
    )
    assert canonical_url(
        "https://f.example/showthread.php?t=9&s=0123456789abcdef0123456789abcdef"
    ) == ("https://f.example/showthread.php?t=9")
    assert (
        canonical_url("https://f.example/search.php?s=acme")
        == "https://f.example/search.php?s=acme"
    )
    assert fill_query("/s?q={query}&x=1", '"acme cloud"') == "/s?q=%22acme+cloud%22&x=1"
    assert fill_query("/s?q={query:gbk}", "阿克米") == "/s?q=%B0%A2%BF%CB%C3%D7"


def test_board_local_times_are_read_in_the_configured_zone(api_server, crawl):
    # A Chinese board shows Beijing time without saying so; `timezone` says it.
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "discuz_search_gbk.html", content_type="text/html"),
    )
    result = crawl(discuz(base, timezone="Asia/Shanghai"), brands=BRANDS[:1])
    assert result.error is None, result.log
    # 21:14 on the board is 13:14 UTC.
    assert by_id(result.mentions)["3345678"].created_at == datetime(2026, 11, 26, 13, 14, tzinfo=UTC)
