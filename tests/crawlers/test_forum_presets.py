"""Forum presets (Discuz! X3, Baidu Tieba, phpBB 3) through the real Scrapy engine.

The fixtures are real pages' markup (each names its source in a header comment),
shortened and with brand posts for text. GBK pages are served as bytes; board times
are read against a fixed clock (`BRANDPULSE_NOW`).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from brandpulse.config import ConfigError, parse_config
from crawlers.spiders.forum_presets import PRESETS
from crawlers.spiders.html_forum import HtmlForumSpider
from tests.crawlers.conftest import Reply, load_fixture
from tests.crawlers.sources_helpers import BRANDS, LOOKBACK, by_id, configure, faults

ROBOTS = Reply.fixture("html_forum", "robots.txt", content_type="text/plain")
# 2026-11-27 12:00 in Beijing.
CLOCK = {"BRANDPULSE_NOW": "2026-11-27T04:00:00+00:00"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def forum(base: str, preset: str, path: str, **extra):
    return {
        "type": "html_forum",
        "preset": preset,
        "start_urls": [f"{base}{path}"],
        "lookback": LOOKBACK,
        **extra,
    }


def test_the_config_offers_exactly_the_presets_the_spider_has():
    from brandpulse.config import HtmlForumSource

    offered = HtmlForumSource.model_fields["preset"].annotation.__args__[0].__args__
    assert sorted(offered) == sorted(PRESETS)


def test_without_a_preset_post_and_text_selectors_are_required():
    with pytest.raises(ConfigError, match=r"selectors.post and selectors.text required"):
        parse_config(
            {"brands": BRANDS, "sources": [{"name": "f", "type": "html_forum",
                                            "start_urls": ["https://f.example/"]}]},
            env={},
        )  # fmt: skip


def test_explicit_selectors_override_single_preset_fields(tmp_path):
    source = forum("https://bbs.example", "discuz_x3", "/forum.php", selectors={"title": "h1"})
    spider = configure(HtmlForumSpider, source, tmp_path)
    assert spider.selectors.title == "h1"
    assert spider.selectors.post == PRESETS["discuz_x3"].selectors["post"]
    assert spider.board_zone == "Asia/Shanghai"
    phpbb = configure(HtmlForumSpider, forum("https://f.example", "phpbb", "/v"), tmp_path)
    assert phpbb.board_zone is None  # phpBB boards: UTC unless `timezone` says otherwise


def test_discuz_thread_page_in_gbk_with_bad_bytes_and_board_times(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    # No charset in the header: the page's meta says gb2312; it holds GBK-only and
    # four-byte GB18030 characters and two undecodable bytes.
    api_server.add(
        "/forum.php",
        Reply.fixture("html_forum", "preset_discuz_viewthread_gbk.html", content_type="text/html"),
    )
    source = forum(base, "discuz_x3", "/forum.php?mod=viewthread&tid=3852692", language="zh")
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    got = by_id(result.mentions)
    assert sorted(got) == ["post_29863697", "post_29863705", "post_29863711"]

    first = got["post_29863697"]
    assert first.author == "数码喆哥"  # 喆: GBK, not GB2312 -- read as GB18030
    assert first.text == (
        # One <br /> (then the source's own newline): one line break.
        "用了三天，阿克米 AX3000 每隔一小时就断网一次\ufffd\ufffd客服电话打不通，差评👎\n"
        "喆哥说换根网线也没用。"
    )
    # "发表于 2026-11-26 21:14:05" on a Beijing board.
    assert first.created_at == utc(2026, 11, 26, 13, 14, 5)
    assert first.language == "zh" and first.brands == ["Acme"]
    # "昨天 10:05" with the exact time in the span's title.
    assert got["post_29863705"].created_at == utc(2026, 11, 26, 2, 5)
    assert got["post_29863705"].text.endswith("回退到 2.0 固件就好了👍")
    assert got["post_29863711"].created_at == utc(2026, 11, 27, 3, 30)
    assert got["post_29863711"].author == "阿克米客服"
    # The guest reply box ("您需要登录后才可以回帖") is not a login wall.
    assert not faults(result)


def test_discuz_recorded_thread_page_gives_its_real_post(api_server, crawl):
    """The recorded discuz.net thread page (discuz_viewthread_recorded.html): the post's
    id, author, text and "发表于" time (Beijing -> UTC) as Discuz! printed them; a brand
    query in Chinese (a phrase with NEAR) on that text."""
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/forum.php", Reply.fixture(
        "html_forum", "discuz_viewthread_recorded.html", content_type="text/html; charset=utf-8"))  # fmt: skip
    source = forum(base, "discuz_x3", "/forum.php?mod=viewthread&tid=3852692", language="zh",
                   lookback="36500d")  # fmt: skip
    brands = [{"name": "排行", "query": '"帅哥" NEAR/1 "排行"'}, {"name": "榜", "query": '"排行榜"'}]
    result = crawl(source, brands=brands, settings=CLOCK)
    assert result.error is None, result.log
    [post] = result.mentions
    assert post.source_id == "post_29863697"
    assert post.author == "MCyiqiehuanying"
    assert post.text == "指帅哥排行和**排行"
    assert post.created_at == utc(2020, 11, 18, 14, 18, 1)
    assert post.brands == ["排行"]  # "排行榜" is only in the thread's title, not the post
    assert not faults(result)


def test_discuz_recorded_forum_list_opens_its_threads_at_their_last_pages(api_server, crawl):
    """The recorded forumdisplay rows (discuz_forumdisplay_recorded.html, the board's
    absolute links pointed at the local server): the thread last replied to inside the
    window and linking 15 pages is opened at page 11 (its last five, max_pages 5) in the
    board's rewritten form, the one without page links at page 1, the one last replied to
    before the window not at all. The threads' own pages are not part of that recording
    (the server answers 404)."""
    base = api_server.base_url
    body = load_fixture("html_forum", "discuz_forumdisplay_recorded.html")
    body = body.replace(b"http://bbs.baobeihuijia.com/", f"{base}/".encode())
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/forum.php", Reply(body=body, content_type="text/html; charset=utf-8"),
                   when={"mod": "forumdisplay"})  # fmt: skip
    source = forum(base, "discuz_x3", "/forum.php?mod=forumdisplay&fid=191",
                   lookback=_lookback_to(utc(2018, 2, 20)))  # fmt: skip
    result = crawl(source, brands=BRANDS, settings={"BRANDPULSE_NOW": "2018-03-03T04:00:00+00:00"})
    assert result.error is None, result.log
    assert [h.path for h in api_server.hits("/thread-22299-11-1.html")] == [
        "/thread-22299-11-1.html"
    ]
    assert len(api_server.hits("/thread-369382-1-1.html")) == 1
    requested = {h.path for h in api_server.requests}
    assert not [path for path in requested if "369658" in path]  # last post 2018-2-5
    assert not [path for path in requested if path.startswith("/thread-22299-") and "-11-" not in path]
    assert result.stats["dropped"].get("thread_outside_window") == 1
    assert result.mentions == []
    assert faults(result) == {"http_404": 2}


def test_discuz_preset_reads_the_search_page_as_the_hand_written_selectors_did(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "discuz_search_gbk.html", content_type="text/html"),
    )
    source = forum(base, "discuz_x3", "/search.php?mod=forum&srchtxt={query:gbk}&searchsubmit=yes")
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    got = by_id(result.mentions)
    assert sorted(got) == ["3345601", "3345678"]
    router = got["3345678"]
    assert router.title == "阿克米路由器升级固件后频繁掉线，求助！"
    assert router.author == "数码喆哥"
    # The preset's zone: 21:14 in Beijing.
    assert router.created_at == utc(2026, 11, 26, 13, 14)
    assert router.url == f"{base}/forum.php?mod=viewthread&tid=3345678"
    # a rewritten author link (space-uid-1002.html), as a live board's search row shows
    assert got["3345601"].author == "碁圣小明"


def test_discuz_thread_pages_are_followed_through_the_pager_to_the_last(api_server, crawl):
    """A thread of three pages: page 2 and 3 through `div.pg a.nxt` (relative links with
    `&amp;`), the last page (no a.nxt) ends the query; each page is read once."""
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    for page in ("2", "3"):
        api_server.add("/forum.php", Reply.fixture(
            "html_forum", f"discuz_viewthread_page{page}.html", content_type="text/html"),
            when={"page": page})  # fmt: skip
    api_server.add("/forum.php", Reply.fixture(
        "html_forum", "discuz_viewthread_page1.html", content_type="text/html"),
        when={"page": None})  # fmt: skip
    source = forum(base, "discuz_x3", "/forum.php?mod=viewthread&tid=3852700", language="zh")
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    hits = api_server.hits("/forum.php")
    assert [h.param("page") for h in hits] == [None, "2", "3"]
    # the pager's link, as Discuz! prints it ($mpurl + page=N), &amp; decoded
    assert [(h.param("tid"), h.param("extra")) for h in hits[1:]] == [("3852700", "page=1")] * 2
    got = by_id(result.mentions)
    assert sorted(got) == ["post_29870001", "post_29870002", "post_29870015", "post_29870031"]
    assert got["post_29870015"].author == "网管老王"  # page 2
    assert got["post_29870015"].created_at == utc(2026, 11, 26, 5, 45)  # 13:45 Beijing
    last = got["post_29870031"]  # page 3: "1 小时前", the exact time in the title
    assert last.author == "阿克米客服" and last.created_at == utc(2026, 11, 27, 2, 12)
    assert last.text == "各位好，3.1.2 修复了阿克米 AX5400 的掉速问题，请升级。"
    assert got["post_29870002"].created_at == utc(2026, 11, 26, 1, 30)  # "昨天 09:30"
    assert not faults(result)


def test_discuz_thread_paging_stops_at_max_pages(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/forum.php", Reply.fixture(
        "html_forum", "discuz_viewthread_page2.html", content_type="text/html"),
        when={"page": "2"})  # fmt: skip
    api_server.add("/forum.php", Reply.fixture(
        "html_forum", "discuz_viewthread_page1.html", content_type="text/html"))  # fmt: skip
    source = forum(base, "discuz_x3", "/forum.php?mod=viewthread&tid=3852700", max_pages=2)
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    assert [h.param("page") for h in api_server.hits("/forum.php")] == [None, "2"]
    assert len(result.mentions) == 3


def test_tieba_thread_floors_with_author_time_and_text_paged_by_pn(api_server, crawl):
    """A thread page /p/<tid>: each floor a mention (its own link as id and URL), the
    time from the tail beside "来自…" and "2楼", page 2 through the pager's `?pn=2`."""
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/p/9012345671", Reply.fixture(
        "html_forum", "tieba_thread_page2.html", content_type="text/html; charset=utf-8"),
        when={"pn": "2"})  # fmt: skip
    api_server.add("/p/9012345671", Reply.fixture(
        "html_forum", "tieba_thread_page1.html", content_type="text/html; charset=utf-8"),
        when={"pn": None})  # fmt: skip
    source = forum(base, "tieba", "/p/9012345671", language="zh")
    result = crawl(source, brands=BRANDS, settings=CLOCK)
    assert result.error is None, result.log
    assert [h.param("pn") for h in api_server.hits("/p/9012345671")] == [None, "2"]
    got = by_id(result.mentions)
    thread = f"{base}/p/9012345671"
    # floor 3 ("蹲一个" and a smiley) names no brand
    floors = [150000000001, 150000000019, 150000000057, 150000000063]
    assert sorted(got) == [f"{thread}?pid={pid}#{pid}" for pid in floors]
    first = got[f"{thread}?pid=150000000001#150000000001"]
    assert first.author == "耳机发烧友"
    assert (
        first.text
        == "看了评测说阿克米二代降噪比一代强很多，有没有吧友实际用过的，续航怎么样\n预算一千左右"
    )
    assert first.created_at == utc(2026, 11, 27, 2, 20)  # "2026-11-27 10:20" in Beijing
    assert first.url == f"{thread}?pid=150000000001#150000000001"
    # the tail "来自Android客户端 | 2楼 | time": the time is found past the other two
    second = got[f"{thread}?pid=150000000019#150000000019"]
    assert second.author == "通勤党小李" and second.created_at == utc(2026, 11, 27, 2, 31)
    late = got[f"{thread}?pid=150000000063#150000000063"]  # page 2
    assert late.author == "数码老张" and late.created_at == utc(2026, 11, 26, 14, 48)
    assert late.text == "别买，我的阿克米二代三个月就充不进电了" and late.brands == ["Acme"]
    assert not faults(result)


def _tieba(name: str, host: str) -> Reply:
    body = load_fixture("html_forum", name).replace(b"TIEBA_HOST", host.encode())
    return Reply(body=body, content_type="text/html; charset=utf-8")


def _lookback_to(day: datetime) -> str:
    """A lookback whose window starts within the hour before `day`, whenever the test
    runs (the crawl's window is the real clock minus the lookback)."""
    return f"{math.ceil((datetime.now(UTC) - day).total_seconds() / 3600)}h"


def test_tieba_list_opens_its_threads_and_the_floors_are_the_mentions(api_server, crawl, tmp_path):
    """A forum list /f?kw= (paged to ?pn=50) is not a post: each listed thread with a
    last reply inside the window is opened at /p/<tid> and its floors (paged ?pn=2) are
    the mentions. The next crawl opens only threads whose reply count changed: the
    unchanged one is not requested again, the new one is (here it meets the captcha,
    a refusal that keeps its cursor)."""
    base = api_server.base_url
    host = api_server.endpoint
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/f", _tieba("preset_tieba_list_page2.html", host), when={"pn": "50"})
    api_server.add(
        "/f",
        _tieba("preset_tieba_list_page1.html", host),
        _tieba("preset_tieba_list_run2.html", host),
    )
    api_server.add("/p/9012345671", Reply.fixture(
        "html_forum", "tieba_thread_page2.html", content_type="text/html; charset=utf-8"),
        when={"pn": "2"})  # fmt: skip
    api_server.add("/p/9012345671", Reply.fixture(
        "html_forum", "tieba_thread_page1.html", content_type="text/html; charset=utf-8"),
        when={"pn": None})  # fmt: skip
    api_server.add("/p/9012349999", Reply.fixture("html_forum", "tieba_captcha.html"))
    # The window starts just before 2026-11-26 00:00 UTC: the thread last replied to
    # "11:02" today (Beijing) is opened, those last replied to on 11-25, 11-20 and
    # 11-12 are not.
    source = forum(
        base, "tieba", "/f?kw=%E9%98%BF%E5%85%8B%E7%B1%B3&ie=utf-8", language="zh",
        lookback=_lookback_to(utc(2026, 11, 26)),
    )  # fmt: skip

    first = crawl(source, brands=BRANDS, settings=CLOCK)
    assert first.error is None, first.log
    assert sorted(h.param("pn") or "1" for h in api_server.hits("/f")) == ["1", "50"]
    assert [h.param("pn") for h in api_server.hits("/p/9012345671")] == [None, "2"]
    for tid in (9012340007, 9012300008, 9012200009):
        assert not api_server.hits(f"/p/{tid}")
    assert first.stats["dropped"].get("thread_outside_window") == 3
    thread = f"{base}/p/9012345671"
    got = by_id(first.mentions)
    floors = [150000000001, 150000000019, 150000000057, 150000000063]
    assert sorted(got) == [f"{thread}?pid={pid}#{pid}" for pid in floors]
    opener = got[f"{thread}?pid=150000000001#150000000001"]
    assert opener.author == "耳机发烧友" and opener.created_at == utc(2026, 11, 27, 2, 20)
    assert opener.brands == ["Acme"]
    assert not faults(first)
    cursor = json.loads((tmp_path / "state" / "test-html_forum.cursor.json").read_text())
    entry = cursor["queries"][f"thread:{thread}"]
    assert entry["token"]["replies"] == 12
    assert entry["since"] == "2026-11-27T03:05:00+00:00"  # the newest floor, 11:05 Beijing

    second = crawl(source, brands=BRANDS, settings=CLOCK)
    assert second.error is None, second.log
    assert len(api_server.hits("/p/9012345671")) == 2  # 12 replies then and now: not reopened
    assert second.stats["dropped"].get("thread_unchanged") == 1
    assert len(api_server.hits("/p/9012349999")) == 1
    assert second.mentions == []
    assert faults(second) == {"captcha": 1}
    cursor = json.loads((tmp_path / "state" / "test-html_forum.cursor.json").read_text())
    assert f"thread:{thread}" in cursor["queries"]  # still listed
    assert f"thread:{base}/p/9012349999" not in cursor["queries"]  # refused: read again next time

    # A list no longer showing the thread (read cleanly): its entry leaves the cursor file.
    api_server.reset()
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/f", _tieba("preset_tieba_list_page2.html", host))
    third = crawl(source, brands=BRANDS, settings=CLOCK)
    assert third.error is None and not faults(third), third.log
    cursor = json.loads((tmp_path / "state" / "test-html_forum.cursor.json").read_text())
    assert not [key for key in cursor["queries"] if key.startswith("thread:")]


def test_tieba_recorded_list_page_names_its_threads_inside_the_pagelet_comment(api_server, crawl):
    """The recorded list page (tieba_list_recorded.html) holds its threads in an HTML
    comment of a <code class="pagelet_html">: the preset reads them there. The two
    threads replied to today are requested, the one last replied to on 8-7 is not; the
    pager's protocol-relative "下一页" link is followed (its host, tieba.baidu.com, is
    put to the local server's by the test) and the threads listed again are not
    requested twice. The threads' own pages are not part of that recording: the server
    answers them 404."""
    base = api_server.base_url
    body = load_fixture("html_forum", "tieba_list_recorded.html")
    body = body.replace(b"//tieba.baidu.com/", f"//{api_server.endpoint}/".encode())
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/f", Reply(body=body, content_type="text/html; charset=utf-8"))
    for tid in (9079949995, 6710984997, 1138972019):
        api_server.add(f"/p/{tid}", Reply.html("<html><body></body></html>", status=404))
    source = forum(base, "tieba", "/f?kw=%E7%9B%97%E5%A2%93%E7%AC%94%E8%AE%B0&ie=utf-8",
                   max_pages=2)  # fmt: skip
    result = crawl(source, brands=[{"name": "盗墓笔记", "query": '"盗墓笔记"'}], settings=CLOCK)
    assert result.error is None, result.log
    lists = api_server.hits("/f")
    assert sorted(h.param("pn") or "0" for h in lists) == ["0", "50"]
    assert all(h.param("kw") == "盗墓笔记" for h in lists)
    assert len(api_server.hits("/p/9079949995")) == 1
    assert api_server.hits("/p/9079949995")[0].param("pn") is None  # 18 replies: one page
    assert len(api_server.hits("/p/6710984997")) == 1
    assert not api_server.hits("/p/1138972019")  # last reply "8-7": before the window
    assert result.mentions == []  # list entries are not posts
    assert faults(result) == {"http_404": 2}


# Chinese brand queries, checked on the recorded floors' texts: a NEAR that holds (two
# characters between 黄毛 and 医院), the same NEAR one character shorter, a NOT that
# excludes, a phrase.
RECORDED_THREAD_BRANDS = [
    {"name": "近", "query": '"黄毛" NEAR/2 "医院"'},
    {"name": "太近", "query": '"黄毛" NEAR/1 "医院"'},
    {"name": "非", "query": '"她爹" NOT "三套房"'},
    {"name": "句", "query": '"可怜之人"'},
]


def test_tieba_recorded_thread_floors_and_chinese_brand_queries(api_server, crawl):
    """Two floors of a recorded thread page (tieba_thread_recorded.html): the author's
    shown name, the text without the fold notice, the time past "来自Android客户端" and
    "4楼" in the tail (Beijing -> UTC), the floor's own link as id; the brands matched
    by NEAR, NOT and a phrase on those texts."""
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/p/9117905169", Reply.fixture(
        "html_forum", "tieba_thread_recorded.html", content_type="text/html; charset=utf-8"))  # fmt: skip
    source = forum(base, "tieba", "/p/9117905169", language="zh", lookback="36500d")
    result = crawl(source, brands=RECORDED_THREAD_BRANDS, settings=CLOCK)
    assert result.error is None, result.log
    thread = f"{base}/p/9117905169"
    got = by_id(result.mentions)
    assert sorted(got) == [f"{thread}?pid={pid}#{pid}" for pid in (150719258551, 150719564162)]
    fourth = got[f"{thread}?pid=150719258551#150719258551"]
    assert fourth.author == "我只是个薯条"
    assert fourth.text == (
        "这女的晚上不回家她爹去找她，被黄毛打进医院，也没来医院看过，最后和黄毛结婚也不来往。"
        "想起三套房想爆她爹金币，结果找不到求助平台。幸好她爹跑得快。"
    )
    assert fourth.created_at == utc(2024, 8, 5, 9, 38)  # "2024-08-05 17:38" in Beijing
    assert fourth.url == f"{thread}?pid=150719258551#150719258551"
    assert fourth.brands == ["近"]  # not 太近 (two characters between), not 非 (三套房)
    seventh = got[f"{thread}?pid=150719564162#150719564162"]
    assert seventh.author == "森歌の友" and seventh.text == "我知道，可怜之人，必有（）"
    assert seventh.created_at == utc(2024, 8, 5, 10, 38)
    assert seventh.brands == ["句"]
    assert not faults(result)


def test_tieba_thread_is_opened_at_its_first_unread_page_or_its_last_pages(tmp_path):
    spider = configure(HtmlForumSpider, forum("https://tieba.example", "tieba", "/f?kw=a"),
                       tmp_path)  # fmt: skip
    assert spider.source.max_pages == 5
    assert spider._start_page(12, None, 30, None) == 1
    # 1001 floors: pages 1-34; a new thread is read from its last five pages
    assert spider._start_page(1000, None, 30, None) == 30
    # 40 replies read before: floor 42 is the first new one, on page 2
    assert spider._start_page(100, 40, 30, None) == 2
    # but never more than max_pages before the last page
    assert spider._start_page(1000, 40, 30, None) == 30
    assert spider._start_page(None, 3, 30, None) == 1
    # a Discuz! row links its thread's pages (15): no posts-per-page needed
    assert spider._start_page(437, None, None, 15) == 11
    assert spider._start_page(4, 3, None, None) == 1
    # page N of a thread
    tieba, discuz = PRESETS["tieba"].threads, PRESETS["discuz_x3"].threads
    assert tieba.page_url("https://tieba.example/p/9", 30) == "https://tieba.example/p/9?pn=30"
    assert tieba.page_url("https://tieba.example/p/9", 1) == "https://tieba.example/p/9"
    assert discuz.page_url("https://bbs.example/thread-22299-1-1.html", 11) == (
        "https://bbs.example/thread-22299-11-1.html"
    )
    assert discuz.page_url("https://bbs.example/forum.php?mod=viewthread&tid=7", 3) == (
        "https://bbs.example/forum.php?mod=viewthread&tid=7&page=3"
    )
    # a last reply shown as a date is the end of that day; as a year and month, its end
    since = utc(2026, 11, 1)
    spider._now = utc(2026, 11, 27, 4)  # the crawl's clock, as BRANDPULSE_NOW sets it
    assert spider._before_window("2026-10-31 23:59", since)  # 15:59 UTC
    assert spider._before_window("10-31", since)  # until 11-01 00:00 Beijing, 10-31 16:00 UTC
    assert not spider._before_window("11-1", since)  # until 11-01 16:00 UTC
    assert spider._before_window("2026-09", since) and not spider._before_window("2026-11", since)
    assert not spider._before_window("yesterday-ish", since)  # unreadable: opened
    # one key per thread whichever list page linked it
    assert discuz.canonical("https://bbs.example/thread-22299-1-2.html") == (
        "https://bbs.example/thread-22299-1-1.html"
    )
    assert discuz.canonical(
        "https://bbs.example/forum.php?mod=viewthread&tid=7&extra=page%3D2&page=1"
    ) == "https://bbs.example/forum.php?mod=viewthread&tid=7"


def test_phpbb_topic_page_and_search_pages_with_the_preset(api_server, crawl):
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/viewtopic.php", Reply.fixture("html_forum", "preset_phpbb_viewtopic.html"))
    source = forum(base, "phpbb", "/viewtopic.php?f=3&t=9001", timezone="Europe/Berlin")
    result = crawl(source, brands=BRANDS[:1], settings=CLOCK)
    assert result.error is None, result.log
    got = by_id(result.mentions)
    topic = f"{base}/viewtopic.php?f=3&t=9001"
    assert sorted(got) == [f"{topic}#p7038", f"{topic}#p7039"]
    fixed = got[f"{topic}#p7038"]
    assert fixed.title == "Acme Rocket 3 firmware 2.1"
    assert fixed.author == "wifiwizard"
    assert fixed.text == (
        "The Acme 2.1 firmware fixed the 5 GHz drops on my Rocket 3.\n\n"
        "Throughput is back to 600 Mbit/s."
    )
    assert fixed.created_at == utc(2026, 11, 24, 13, 22)  # 2:22 pm in Berlin
    bricked = got[f"{topic}#p7039"]
    assert bricked.author == "nitt"
    assert bricked.created_at == utc(2026, 11, 25, 17, 21)  # "25 Nov 2026 18:21" in Berlin

    # The search results page, paged through its "next" arrow, with no selectors written.
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "phpbb_search_page2.html"),
        when={"keywords": "acme", "start": "25"},
    )
    api_server.add(
        "/search.php",
        Reply.fixture("html_forum", "phpbb_search_page1.html"),
        when={"keywords": "acme"},
    )
    api_server.add("/search.php", Reply.fixture("html_forum", "phpbb_search_empty.html"))
    search = forum(base, "phpbb", "/search.php?keywords={query}&sr=posts")
    found = crawl(search, brands=BRANDS, settings=CLOCK)
    assert found.error is None, found.log
    posts = by_id(found.mentions)
    assert sorted(posts) == [f"{base}/viewtopic.php?p={p}#p{p}" for p in (58004, 58190, 58211)]
    assert posts[f"{base}/viewtopic.php?p=58211#p58211"].created_at == utc(2026, 11, 26, 15, 14)


def test_tieba_recorded_pager_is_followed_and_an_image_only_floor_is_no_mention(api_server, crawl):
    """Page 1 of 12 of a recorded thread page with its pager (tieba_thread_pager_recorded
    .html): "下一页" after the current page's span.tP is `?pn=2`, which is asked for
    (page 2 was not recorded: the test server has no route for it, one fault); floor 2
    is a mention (the shown name, not the data-field user_name; the text before its
    image; the tail time past "来自Android客户端" and "2楼", not its in-floor reply's
    lzl_time); floor 1, an image alone, has no text and names no brand."""
    base = api_server.base_url
    api_server.add("/robots.txt", ROBOTS)
    api_server.add("/p/9117905169", Reply.fixture(
        "html_forum", "tieba_thread_pager_recorded.html", content_type="text/html; charset=utf-8"),
        when={"pn": None})  # fmt: skip
    source = forum(base, "tieba", "/p/9117905169", language="zh", lookback="36500d", max_pages=2)
    brands = [{"name": "父亲", "query": "父亲"}]
    result = crawl(source, brands=brands, settings={**CLOCK, "LOG_LEVEL": "WARNING"})
    assert result.error is None, result.log
    assert [h.param("pn") for h in api_server.hits("/p/9117905169")] == [None, "2"]
    assert faults(result) == {"http_404": 1}
    thread = f"{base}/p/9117905169"
    got = by_id(result.mentions)
    assert sorted(got) == [f"{thread}?pid=150719088158#150719088158"]
    second = got[f"{thread}?pid=150719088158#150719088158"]
    assert second.author == "杜草莓"  # a.p_author_name's text; data-field says jkl028
    assert second.text == (
        "本来觉得就凭14岁的这点叛逆父亲不再理她觉得这个这个父亲是有点问题的，"
        "后来看到母亲也不理了，我就知道这女的肯定隐藏了很多自己干得垃圾事没说，她活该"
    )
    assert second.created_at == utc(2024, 8, 5, 9, 7)  # "2024-08-05 17:07" in Beijing
    assert second.brands == ["父亲"]
    # both floors read; floor 1 (an image alone, no text) is dropped as naming no brand
    assert result.stats["posts_seen"] == 2 and result.stats["dropped"] == {"no_brand": 1}
