"""Bilibili spider: WBI signing, and real recorded responses replayed through the
real Scrapy engine by a local server that checks every search's signature.

The fixtures are responses published in bilibili-API-collect and other public
repositories (tests/crawlers/fixtures/bilibili/README.md says which, and what
was trimmed): a video search for 少年, the anonymous nav answer with the WBI keys
of the documented signature example, av2's comments, a follower count, and the
site's refusals.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from hashlib import md5
from urllib.parse import quote

import pytest

from brandpulse.query import compile_query, match_brands
from crawlers.spiders.bilibili import BilibiliSpider, mixin_key, wbi_keys, wbi_signed_query
from tests.crawlers.conftest import ApiServer, RecordedRequest, Reply, load_fixture
from tests.crawlers.sources_helpers import by_id, configure, faults, log_lines

SEARCH = "/x/web-interface/wbi/search/type"
NAV = "/x/web-interface/nav"
REPLY = "/x/v2/reply"
STAT = "/x/relation/stat"

# Chinese brand queries on the real texts: a phrase with NOT, a NEAR between two
# phrases (each Chinese character is a word), a NEAR on a comment, a word with an author filter.
BRANDS = [
    {"name": "梦然", "query": '"梦然" NOT 翻唱'},
    {"name": "腾讯", "query": '"充钱" NEAR/3 "少年"'},
    {"name": "巨人", "query": "巨人 NEAR/2 最终季"},
    {"name": "萌宠教主", "query": "填词 author:萌宠教主"},
]
# The keys in nav_anonymous.json (the documented example), as the server knows them.
IMG_KEY, SUB_KEY = "7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45"
TAB = [
    46, 47, 18, 2, 53, 8, 23, 32, 15, 50, 10, 31, 58, 3, 45, 35, 27, 43, 5, 49, 33, 9, 42,
    19, 29, 28, 14, 39, 12, 38, 41, 13, 37, 48, 7, 16, 24, 55, 40, 61, 26, 17, 0, 1, 60,
    51, 30, 4, 22, 25, 54, 21, 56, 59, 6, 63, 57, 62, 11, 36, 20, 34, 44, 52,
]  # fmt: skip
OFFICIAL_MV_AID = "243082173"  # BV1De411p77r: its comments are av2's recorded page


def server_signature_ok(request: RecordedRequest) -> bool:
    """The server's own check, written from the document rather than the spider's
    code: sorted parameters without w_rid, RFC 3986 encoding, md5 with the mixin key."""
    params = {k: v[0] for k, v in request.query.items()}
    w_rid = params.pop("w_rid", None)
    if w_rid is None or "wts" not in params:
        return False
    mixin = "".join((IMG_KEY + SUB_KEY)[i] for i in TAB)[:32]
    query = "&".join(f"{quote(k, safe='')}={quote(params[k], safe='')}" for k in sorted(params))
    return md5((query + mixin).encode()).hexdigest() == w_rid


def source(**extra):
    return {
        "type": "bilibili",
        "sessdata": "test-sessdata-cookie",
        "user_agent": "bp-test/1",
        **extra,
    }


def add_routes(server: ApiServer, *, second_run: bool = False) -> None:
    server.add(
        "/robots.txt", Reply(body="User-agent: *\nDisallow: /x/space/\n", content_type="text/plain")
    )
    server.add(NAV, Reply.fixture("bilibili", "nav_anonymous.json"))
    page1 = "search_run2_page1.json" if second_run else "search_page1.json"
    server.add(
        SEARCH,
        Reply.fixture("bilibili", "search_page2.json"),
        when=lambda r: server_signature_ok(r) and r.param("page") == "2",
    )
    server.add(
        SEARCH,
        Reply.fixture("bilibili", page1),
        when=lambda r: server_signature_ok(r) and r.param("page") == "1",
    )
    # Whatever is not correctly signed gets the documented voucher answer.
    server.add(SEARCH, Reply.fixture("bilibili", "voucher_code0.json"))
    server.add(
        REPLY,
        Reply.fixture("bilibili", "reply_page1.json"),
        when={"oid": OFFICIAL_MV_AID, "pn": "1"},
    )
    server.add(REPLY, Reply.fixture("bilibili", "reply_empty.json"))
    server.add(STAT, Reply.fixture("bilibili", "relation_stat.json"))


# ------------------------------------------------------------------ signing


def test_signature_matches_the_documented_worked_example():
    # bilibili-API-collect docs/misc/sign/wbi.md: keys -> mixin key -> w_rid.
    mixin = mixin_key(IMG_KEY, SUB_KEY)
    assert mixin == "ea1db124af3c7062474693fa704f4ff8"
    signed = wbi_signed_query({"foo": "114", "bar": "514", "zab": 1919810}, mixin, 1702204169)
    assert (
        signed
        == "bar=514&foo=114&wts=1702204169&zab=1919810&w_rid=8f6f2b5b3d485fe1886cec6a0be8c5d4"
    )


def test_signature_encoding_follows_the_document():
    # Upper-case hex for Chinese, %20 for spaces (the document's encoding example),
    # and !'()* removed from values before signing.
    signed = wbi_signed_query({"foo": "one one four", "bar": "五一四", "baz": 1919810}, "k" * 32, 1)
    assert signed.startswith(
        "bar=%E4%BA%94%E4%B8%80%E5%9B%9B&baz=1919810&foo=one%20one%20four&wts=1&"
    )
    assert wbi_signed_query({"q": "a(b)!*'"}, "k" * 32, 1).startswith("q=ab&wts=1&")


def test_keys_come_from_the_recorded_nav_answer():
    nav = json.loads(load_fixture("bilibili", "nav_anonymous.json"))
    assert nav["code"] == -101  # not logged in, and still the keys
    assert wbi_keys(nav) == (IMG_KEY, SUB_KEY)
    with pytest.raises(ValueError):
        mixin_key("short", "keys")


def test_chinese_queries_on_the_recorded_texts():
    comment = json.loads(load_fixture("bilibili", "reply_page1.json"))["data"]["replies"][0]
    text = comment["content"]["message"]  # "...巨人出了最终季..."
    assert match_brands([("b", compile_query("巨人 NEAR/2 最终季"))], text) == ["b"]
    assert match_brands([("b", compile_query("巨人 NEAR/1 最终季"))], text) == []
    video = json.loads(load_fixture("bilibili", "search_page1.json"))["data"]["result"][3]
    assert video["bvid"] == "BV1Hp4y1y7iQ"  # names 梦然 in a cover's credits
    body = video["title"] + "\n" + video["description"]
    assert match_brands([("b", compile_query('"梦然"'))], body) == ["b"]
    assert match_brands([("b", compile_query('"梦然" NOT 翻唱'))], body) == []


def test_sessdata_is_a_cookie_header_and_optional(tmp_path):
    spider = configure(BilibiliSpider, source(), tmp_path, brands=BRANDS)
    assert spider.skip_reason is None
    assert spider.default_headers["Cookie"] == "SESSDATA=test-sessdata-cookie"
    anonymous = configure(BilibiliSpider, {"type": "bilibili"}, tmp_path, brands=BRANDS)
    assert anonymous.skip_reason is None
    assert "Cookie" not in anonymous.default_headers
    smuggled = configure(BilibiliSpider, source(sessdata="abc; buvid3=x"), tmp_path, brands=BRANDS)
    assert smuggled.skip_reason and "bare value" in smuggled.skip_reason


def test_politeness_settings(tmp_path):
    spider = configure(BilibiliSpider, source(requests_per_minute=6), tmp_path, brands=BRANDS)
    settings = spider.crawler.settings
    assert settings.get("USER_AGENT") == "bp-test/1"
    assert settings.getbool("ROBOTSTXT_OBEY")
    # 10 s pace from the rate, plus a random 0.5x-1.5x of half of it.
    assert settings.getfloat("DOWNLOAD_DELAY") == 5.0
    assert settings.getbool("RANDOMIZE_DOWNLOAD_DELAY")
    assert spider.requests_per_minute == 6


# ------------------------------------------------------------------ crawls


def test_search_comments_reach_paging_signature_and_incremental_cursor(api_server, crawl):
    add_routes(api_server)
    first = crawl(source(), brands=BRANDS)
    assert first.error is None, first.log
    assert faults(first) == {}, first.log
    got = by_id(first.mentions)
    assert sorted(got) == [
        "BV1AZ4y1j7t6",  # page 1..2: 梦然 in the description
        "BV1De411p77r",
        "BV1LE411G7F4",
        "BV1Yz411b7A3",  # 充钱那个少年
        "BV1ac411h7BC",
        "BV1xk4y1k7aw",
        "reply:104192624480",  # a comment of BV1De411p77r: 巨人 NEAR/2 最终季
    ]
    mv = got["BV1De411p77r"]
    assert mv.title == "梦然-《少年》官方版"  # <em class="keyword"> highlight removed
    assert mv.text.startswith("https://www.ixigua.com/i6822128361129640462/")
    assert "梦然老师《少年》MV官方版" in mv.text
    assert mv.author == "大橘爱吃猫"
    assert mv.author_reach == 919515  # x/relation/stat follower
    assert mv.created_at == datetime(2020, 5, 2, 8, 10, 50, tzinfo=UTC)
    assert mv.url == "https://www.bilibili.com/video/BV1De411p77r"
    assert mv.engagement.replies == 1265
    assert mv.brands == ["梦然"]
    assert got["BV1AZ4y1j7t6"].text.endswith("求个三连呀φ(>ω<*)")  # entities decoded
    assert "lolo2513&梦然" in got["BV1xk4y1k7aw"].text
    assert got["BV1Yz411b7A3"].brands == ["腾讯"]
    assert got["BV1Yz411b7A3"].title == "【马化腾】我还是充钱那个少年，没有一丝丝改变~"

    comment = got["reply:104192624480"]
    assert comment.author == "小鹿不跑路"
    assert comment.created_at == datetime(2022, 3, 2, 7, 18, 27, tzinfo=UTC)
    assert comment.engagement.likes == 1
    assert comment.text.endswith("我小时候都在干什么啊[大哭]")
    assert comment.url == "https://www.bilibili.com/video/BV1De411p77r#reply104192624480"
    assert comment.brands == ["巨人"]

    # The NOT: BV1Hp4y1y7iQ names 梦然 but is a 翻唱; the others name no brand.
    assert first.stats["dropped"]["no_brand"] >= 4

    searches = api_server.hits(SEARCH)
    # One search per term of the brands (梦然, 充钱, 少年, 巨人, 最终季, 填词), two pages each.
    assert sorted((r.param("keyword"), r.param("page")) for r in searches) == sorted(
        (k, p) for k in ("梦然", "充钱", "少年", "巨人", "最终季", "填词") for p in ("1", "2")
    )
    assert all(server_signature_ok(r) for r in searches)
    assert all(
        r.param("order") == "pubdate" and r.param("search_type") == "video" for r in searches
    )
    assert all(r.headers["cookie"] == "SESSDATA=test-sessdata-cookie" for r in searches)
    assert all(r.headers["user-agent"] == "bp-test/1" for r in searches)
    assert all(r.headers["referer"] == "https://www.bilibili.com/" for r in searches)
    assert len(api_server.hits(NAV)) == 1
    assert len(api_server.hits("/robots.txt")) == 1
    assert "cookie" not in api_server.hits("/robots.txt")[0].headers

    # One follower look-up per uploader of a brand video, cached across the five searches.
    vmids = sorted(r.param("vmid") for r in api_server.hits(STAT))
    assert vmids == sorted(
        ["735734", "178932626", "19071708", "110939266", "485450109", "353230307"]
    )
    # Comments of each brand video once; the recorded page is followed by an empty page 2.
    replies = sorted((r.param("oid"), r.param("pn")) for r in api_server.hits(REPLY))
    assert (OFFICIAL_MV_AID, "2") in replies
    assert len(replies) == 7 and len(set(replies)) == 7
    assert all(r.param("sort") == "0" and r.param("type") == "1" for r in api_server.hits(REPLY))

    # Second crawl: page 1 now starts with a newer video; the seen one and an older
    # one end the paging, nothing is yielded twice.
    api_server.reset()
    add_routes(api_server, second_run=True)
    second = crawl(source(), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == ["BV1EA411i7MD"]
    new = second.mentions[0]
    assert new.brands == ["萌宠教主"] and new.author_reach == 919515
    assert new.created_at == datetime(2020, 6, 13, 4, 0, 5, tzinfo=UTC)
    assert {r.param("page") for r in api_server.hits(SEARCH)} == {"1"}
    assert [r.param("oid") for r in api_server.hits(REPLY)] == ["328601322"]


REFUSALS = [
    ("refused_412.json", 200, "blocked"),
    ("refused_412.json", 412, "blocked"),
    ("refused_352.json", 200, "captcha"),
    ("voucher_code0.json", 200, "captcha"),
    ("refused_101.json", 200, "login_required"),
    ("refused_799.json", 200, "rate_limited"),
]


@pytest.mark.parametrize(("fixture", "status", "kind"), REFUSALS)
def test_a_refused_search_is_a_counted_fault_never_posts(api_server, crawl, fixture, status, kind):
    api_server.add(NAV, Reply.fixture("bilibili", "nav_anonymous.json"))
    api_server.add(SEARCH, Reply.fixture("bilibili", fixture, status=status))
    result = crawl(source(), brands=[{"name": "梦然", "query": '"梦然"'}])
    assert result.error is None, result.log
    assert result.mentions == []
    assert faults(result) == {kind: 1}, result.log
    # Nothing was read: the crawl counts as failed for the source-health alert
    # (daemon.service: faults and no page read -> crawl_failed).
    assert result.read_nothing
    assert result.stats["pages"] == 0
    assert kind in (result.problem() or "")
    lines = log_lines(result.log, "had faults")
    assert len(lines) == 1 and f"{kind} x1" in lines[0], result.log
    message = json.loads(load_fixture("bilibili", fixture)).get("message")
    if message != "0":
        assert message in lines[0]  # the site's own words in the fault line
    assert len(api_server.hits(SEARCH)) == 1
    assert api_server.hits(REPLY) == [] and api_server.hits(STAT) == []


def test_a_blocked_nav_stops_the_source_before_any_search(api_server, crawl):
    api_server.add(NAV, Reply.fixture("bilibili", "refused_412.json", status=412))
    result = crawl(source(), brands=[{"name": "梦然", "query": '"梦然"'}])
    assert faults(result) == {"blocked": 1}, result.log
    assert result.read_nothing
    assert api_server.hits(SEARCH) == []


def test_the_live_robots_txt_forbids_everything_and_the_crawl_says_so(api_server, crawl):
    # api.bilibili.com's robots.txt disallows every agent (see the fixture README):
    # obeyed, the crawl reads nothing, sends no API request, and fails visibly.
    api_server.add(
        "/robots.txt", Reply.fixture("bilibili", "robots_api.txt", content_type="text/plain")
    )
    api_server.add(NAV, Reply.fixture("bilibili", "nav_anonymous.json"))
    result = crawl(source(), brands=[{"name": "梦然", "query": '"梦然"'}])
    assert result.error is None, result.log
    assert [r.path for r in api_server.requests] == ["/robots.txt"]
    assert result.read_nothing
    assert "Forbidden by robots.txt" in (result.problem() or "")


def test_login_wall_on_comments_costs_only_the_comments(api_server, crawl):
    api_server.add(NAV, Reply.fixture("bilibili", "nav_anonymous.json"))
    api_server.add(SEARCH, Reply.fixture("bilibili", "search_page2.json"), when=server_signature_ok)
    api_server.add(REPLY, Reply.fixture("bilibili", "refused_101.json"))
    api_server.add(STAT, Reply.fixture("bilibili", "refused_799.json"))
    result = crawl(source(sessdata=None, max_pages=1), brands=[{"name": "梦然", "query": '"梦然"'}])
    assert result.error is None, result.log
    # Page 2 of the recording holds two 梦然 videos; their comments need a login
    # (-101, counted) and the follower look-up is throttled (-799): the videos
    # still come, without reach.
    got = by_id(result.mentions)
    assert sorted(got) == ["BV1AZ4y1j7t6", "BV1LE411G7F4"]
    assert all(m.author_reach is None for m in got.values())
    assert faults(result)["login_required"] >= 1
    assert faults(result)["rate_limited"] >= 1
    assert not result.read_nothing
    assert all("cookie" not in r.headers for r in api_server.requests)


@pytest.fixture
def other_server():
    """Another host (another port): where a redirect might take the crawler."""
    server = ApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_sessdata_goes_only_to_the_bilibili_origin(api_server, other_server, crawl):
    api_server.add(NAV, Reply.fixture("bilibili", "nav_anonymous.json"))
    api_server.add(
        SEARCH, Reply(status=302, headers={"Location": f"{other_server.base_url}{SEARCH}?page=1"})
    )
    api_server.add(REPLY, Reply.fixture("bilibili", "reply_empty.json"))
    api_server.add(STAT, Reply.fixture("bilibili", "relation_stat.json"))
    other_server.add(SEARCH, Reply.fixture("bilibili", "search_page2.json"))
    result = crawl(
        source(allowed_hosts=["127.0.0.1"], max_pages=1),
        brands=[{"name": "梦然", "query": '"梦然"'}],
        settings={
            "BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS": [api_server.endpoint, other_server.endpoint]
        },
    )
    assert result.error is None, result.log
    # The opted-in host was read (its two 梦然 videos came), without the cookie;
    # the follow-up requests to the origin carry it.
    assert sorted(m.source_id for m in result.mentions) == ["BV1AZ4y1j7t6", "BV1LE411G7F4"]
    assert other_server.hits(SEARCH)
    assert all("cookie" not in r.headers for r in other_server.requests)
    assert "test-sessdata-cookie" not in repr(other_server.requests)
    assert api_server.hits(SEARCH)[0].headers["cookie"] == "SESSDATA=test-sessdata-cookie"
    assert api_server.hits(STAT)[0].headers["cookie"] == "SESSDATA=test-sessdata-cookie"
