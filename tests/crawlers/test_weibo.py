"""Weibo spider (m.weibo.cn keyword search), through the real Scrapy engine.

The pages served are recorded m.weibo.cn answers (tests/crawlers/fixtures/weibo,
README there names where each comes from). The crawl's clock is pinned with
`BRANDPULSE_NOW`, because Weibo's times ("昨天 12:25", "06-14") only mean
something against a "now".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from brandpulse.query import compile_query
from brandpulse.timeutil import parse_board_time
from crawlers.faults import refusal
from crawlers.spiders.weibo import ZONE, parse_count, weibo_html
from crawlers.text import html_to_text
from tests.crawlers.conftest import FIXTURES, Reply
from tests.crawlers.sources_helpers import by_id, faults, log_lines

INDEX = "/api/container/getIndex"
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SETTINGS = {"BRANDPULSE_NOW": NOW.isoformat()}

# Brand queries in Chinese, on the recorded texts: a phrase, NOT, NEAR.
BRANDS = [
    {"name": "道德经", "query": '"大器晚成"'},
    {"name": "善良", "query": "善良 NOT 令人发指"},
    {"name": "秦明", "query": '"秦明" NEAR/5 电影'},
]


def page(request_page: str | None):
    return lambda r: r.param("page") == request_page


def serve_search(api_server) -> None:
    api_server.add(INDEX, Reply.fixture("weibo", "search_page1.json"), when=page(None))
    api_server.add(INDEX, Reply.fixture("weibo", "search_page2.json"), when=page("2"))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"), when=page("3"))


def fixture_texts() -> dict[str, str]:
    texts = {}
    for name in ("search_page1.json", "search_page2.json"):
        for card in json.loads((FIXTURES / "weibo" / name).read_text("utf-8"))["data"]["cards"]:
            texts[card["mblog"]["mid"]] = html_to_text(weibo_html(card["mblog"]["text"]))
    return texts


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("shown", "utc"),
    [
        ("刚刚", "2026-11-30T04:00:00"),
        ("5分钟前", "2026-11-30T03:55:00"),
        ("3小时前", "2026-11-30T01:00:00"),
        ("今天 12:30", "2026-11-30T04:30:00"),
        ("昨天 08:15", "2026-11-29T00:15:00"),
        ("昨天 12:25", "2026-11-29T04:25:00"),
        ("03-15", "2026-03-14T16:00:00"),  # midnight in Shanghai
        ("12-31", "2025-12-30T16:00:00"),  # read before 12-31 this year: last year's
        ("2023-03-15", "2023-03-14T16:00:00"),
        ("2023-03-15 10:20", "2023-03-15T02:20:00"),
        ("Sat Mar 15 10:00:00 +0800 2025", "2025-03-15T02:00:00"),
    ],
)
def test_weibo_times_are_shanghai_local_and_read_against_the_clock(shown, utc):
    got = parse_board_time(shown, ZONE, NOW)
    assert got.tzinfo is UTC
    assert got == datetime.fromisoformat(utc).replace(tzinfo=UTC)


def test_a_relative_time_moves_with_the_clock_and_nonsense_is_refused():
    assert parse_board_time("今天 00:05", ZONE, datetime(2026, 11, 29, 16, 30, tzinfo=UTC)) == datetime(
        2026, 11, 29, 16, 5, tzinfo=UTC
    )  # 00:30 on the 30th in Shanghai is still the 29th in UTC
    for bad in ("前天", "13-45", "昨天 25:99", "", None):
        with pytest.raises(ValueError, match="not a board time"):
            parse_board_time(bad, ZONE, NOW)  # type: ignore[arg-type]


def test_follower_counts_as_weibo_writes_them():
    # Values as recorded in public m.weibo.cn answers: int, "105.9万" (a repost's
    # author), "178.2万" (a profile), "1.51亿" (人民日报's fans).
    assert parse_count(293997) == 293997
    assert parse_count("105.9万") == 1_059_000
    assert parse_count("178.2万") == 1_782_000
    assert parse_count("1.51亿") == 151_000_000
    assert parse_count("3亿") == 300_000_000
    assert parse_count("100万+") == 1_000_000
    assert [parse_count(v) for v in (None, "", "很多", -1, True)] == [None] * 5


def test_post_html_keeps_emoji_alt_text_and_drops_the_full_text_link():
    texts = fixture_texts()
    assert texts["4414949763467195"] == "[摊手]//@真不想做七字狗:不笑不足以为道"
    assert texts["4383183661430868"] == "搬完这块砖，就可以吃好吃的了[偷笑][偷笑][偷笑]"
    assert texts["4414937776062677"].endswith("否则你就会 ...")  # no "全文"
    assert "全文" not in texts["4414937776062677"]
    assert texts["4382054705416396"] == "#不潮不出街#悠闲下午时光～ Dear-迪丽热巴的秒拍视频"


def test_chinese_brand_queries_on_the_recorded_texts():
    texts = fixture_texts()
    queries = {b["name"]: compile_query(b["query"]) for b in BRANDS}

    def hits(name: str) -> set[str]:
        return {mid for mid, text in texts.items() if queries[name].matches(text=text)}

    assert hits("道德经") == {"4414941093988009"}  # the phrase, in the original only
    # NOT: both posts speak of 善良, the repost also of 令人发指
    assert hits("善良") == {"4414937776062677"}
    assert hits("秦明") == set()  # the repost's own words say "电影院" but not 秦明


def test_a_quoted_emoji_alt_as_in_comments():
    # A comment's text as recorded (youyangliu/Sina_WebCrawler README): alt in quotes.
    recorded = (
        '<br/><span class="url-icon"><img alt="[话筒]" '
        'src="//h5.sinaimg.cn/m/emoticon/icon/others/o_huatong-9f86617336.png" '
        'style="width:1em; height:1em;"/></span>'
    )
    assert html_to_text(weibo_html(recorded)) == "[话筒]"


def test_refusals_are_told_apart_from_an_empty_result():
    url = "https://m.weibo.cn/api/container/getIndex?page=1"
    login = json.loads((FIXTURES / "weibo" / "login_required.json").read_text("utf-8"))
    kind, detail = refusal(url, data=login)
    assert kind == "login_required" and detail.startswith(f"{url}: ok=-100")
    assert refusal(url, data=json.loads((FIXTURES / "weibo" / "empty.json").read_text("utf-8"))) is None
    assert refusal(url, data={"ok": 1, "data": {"cards": []}}) is None
    said = {"验证码": "captcha", "请求过于频繁，请稍后再试": "rate_limited", "请先登录": "login_required"}
    for msg, kind in said.items():
        assert refusal(url, data={"ok": 0, "msg": msg}) == (kind, f"{url}: ok=0; {msg}")
    assert refusal(url, data={"ok": 0, "msg": "something else"}) is None


# ------------------------------------------------------------------ crawls


def test_search_paging_mentions_and_incremental_cursor(api_server, crawl):
    serve_search(api_server)
    result = crawl({"type": "weibo"}, brands=BRANDS, settings=SETTINGS)
    assert result.error is None, result.log
    assert faults(result) == {}
    got = by_id(result.mentions)
    # The repost quoting 明道若昧 names 大器晚成 too; 秦明 is in a repost's quoted text.
    assert set(got) == {"4414941093988009", "4414949763467195", "4414937776062677", "4383180406740606"}

    dao = got["4414941093988009"]
    assert dao.source == "weibo" and dao.source_name == "test-weibo"
    assert dao.brands == ["道德经"]
    assert dao.author == "eprom" and dao.author_reach == 293997
    assert dao.url == "https://m.weibo.cn/status/I6gGxgJsJ"
    assert dao.created_at == datetime(2026, 11, 29, 3, 50, tzinfo=UTC)  # 昨天 11:50 CST
    assert (dao.engagement.shares, dao.engagement.replies, dao.engagement.likes) == (21, 8, 73)
    assert dao.text.startswith("明道若昧；进道若退")

    repost = got["4414949763467195"]
    assert repost.text.startswith("[摊手]//@真不想做七字狗:不笑不足以为道\n\n//@eprom: 明道若昧")
    assert repost.created_at == datetime(2026, 11, 29, 4, 25, tzinfo=UTC)

    long_post = got["4414937776062677"]
    assert long_post.brands == ["善良"] and "全文" not in long_post.text

    film = got["4383180406740606"]
    assert film.brands == ["秦明"]
    assert film.author == "Dear-迪丽热巴" and film.author_reach == 63356825
    assert film.created_at == datetime(2026, 6, 13, 16, 0, tzinfo=UTC)  # "06-14", Shanghai
    assert "//@代斯daisy: 写在《秦明·生死语者》上映这一天" in film.text

    # Each term is searched (Weibo has no OR) in the realtime container, page by page.
    first = [h for h in api_server.hits(INDEX) if h.param("page") is None]
    containers = sorted(h.param("containerid") for h in first)
    assert containers == sorted(f"100103type=61&q={t}" for t in ("大器晚成", "善良", "秦明", "电影"))
    assert all(h.param("page_type") == "searchall" for h in api_server.hits(INDEX))
    assert sorted({h.param("page") for h in api_server.hits(INDEX)} - {None}) == ["2", "3"]

    # Second crawl: the same first page comes back; everything on it is at or below
    # the newest id seen, so paging stops there and nothing is yielded again.
    before = len(api_server.hits(INDEX))
    again = crawl({"type": "weibo"}, brands=BRANDS, settings=SETTINGS)
    assert again.error is None and again.mentions == []
    second = api_server.hits(INDEX)[before:]
    assert len(second) == 4 and all(h.param("page") is None for h in second)
    assert again.stats["dropped"].get("before_cursor", 0) >= 4


def test_ranked_search_reads_every_page_and_skips_what_it_saw(api_server, crawl):
    serve_search(api_server)
    first = crawl({"type": "weibo", "search_type": "all"}, brands=BRANDS[:1], settings=SETTINGS)
    assert sorted(m.source_id for m in first.mentions) == ["4414941093988009", "4414949763467195"]
    assert {h.param("containerid") for h in api_server.hits(INDEX)} == {"100103type=1&q=大器晚成"}
    before = len(api_server.hits(INDEX))
    again = crawl({"type": "weibo", "search_type": "all"}, brands=BRANDS[:1], settings=SETTINGS)
    # Ranked results are not in time order: every page is read again, nothing re-yielded.
    assert again.mentions == [] and faults(again) == {}
    assert sorted(str(h.param("page")) for h in api_server.hits(INDEX)[before:]) == ["2", "3", "None"]


def test_a_recorded_brand_search_result(api_server, crawl):
    # A real search result for 爱他美 (Aptamil), from 2013: the lookback reaches it.
    api_server.add(INDEX, Reply.fixture("weibo", "search_aptamil.json"), when=page(None))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"), when=page("2"))
    brands = [{"name": "Aptamil", "query": '(爱他美 OR aptamil) NOT "招代理"', "own": False}]
    result = crawl({"type": "weibo", "lookback": "6000d"}, brands=brands, settings=SETTINGS)
    assert faults(result) == {}
    [post] = result.mentions
    assert post.source_id == "3565971237113805" and post.brands == ["Aptamil"]
    assert post.text == (
        "#德国限购爱他美最新发展# 大家都看过这张告示了吗！！！从两盒降到一盒！！！！"
        "下一步是不是规定只能２人拼１单，一人买半盒啊！！！！（转自@李于子都 ）"
    )  # the trailing zero-width space is gone
    assert post.author == "德国师爷" and post.author_reach == 43032
    assert (post.engagement.shares, post.engagement.replies, post.engagement.likes) == (12, 1, 0)
    assert post.created_at == datetime(2013, 4, 10, 16, 0, tzinfo=UTC)  # 2013-04-11 in Shanghai
    assert post.url == "https://m.weibo.cn/status/zrGddtQCN"
    # Two terms, two searches (no OR on Weibo), in the realtime container.
    first = {h.param("containerid") for h in api_server.hits(INDEX) if h.param("page") is None}
    assert first == {"100103type=61&q=爱他美", "100103type=61&q=aptamil"}


def test_an_old_promoted_post_neither_ends_the_paging_nor_is_yielded(api_server, crawl):
    # The first page as Weibo mixes it: a "推荐内容" (promoted) post of June on top
    # of yesterday's posts. Composed from the recorded cards of both fixture pages.
    promoted = json.loads((FIXTURES / "weibo" / "search_page2.json").read_text("utf-8"))
    recent = json.loads((FIXTURES / "weibo" / "search_page1.json").read_text("utf-8"))
    mixed = {"ok": 1, "data": {"cards": [promoted["data"]["cards"][2], *recent["data"]["cards"]]}}
    api_server.add(INDEX, Reply.json(mixed), when=page(None))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"), when=page("2"))
    since_july = f"{(datetime.now(UTC) - datetime(2026, 7, 1, tzinfo=UTC)).days}d"
    result = crawl(
        {"type": "weibo", "lookback": since_july}, brands=BRANDS[:1], settings=SETTINGS
    )
    assert faults(result) == {}
    assert sorted(m.source_id for m in result.mentions) == ["4414941093988009", "4414949763467195"]
    assert result.stats["dropped"].get("promoted_old") == 1
    assert [h.param("page") for h in api_server.hits(INDEX)] == [None, "2"]


def test_login_wall_is_a_fault_of_its_own_and_reads_nothing(api_server, crawl):
    api_server.add(INDEX, Reply.fixture("weibo", "login_required.json"))
    result = crawl({"type": "weibo"}, brands=BRANDS[:1], settings=SETTINGS)
    assert result.mentions == []
    assert faults(result) == {"login_required": 1}
    assert "passport.weibo.cn" in result.stats["fault_examples"]["login_required"]
    # Not a page read: the daemon counts the crawl as failed, which feeds the
    # source-health alert.
    assert result.read_nothing and "login_required x1" in result.problem()
    assert result.stats["pages"] == 0 and result.stats["errors"] == 1  # what the daemon reads
    assert len(log_lines(result.log, "had faults")) == 1
    assert "WARNING" in log_lines(result.log, "had faults")[0]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(status=418, body=b""), "rate_limited"),
        (Reply(status=403, body=b""), "rate_limited"),
        (Reply(status=412, body=b""), "blocked"),  # as for Bilibili and the forums
        (
            Reply(
                status=302,
                body=b"",
                headers={"Location": "https://passport.weibo.cn/signin/welcome?entry=mweibo"},
            ),
            "login_required",
        ),
    ],
)
def test_refusing_statuses_and_a_redirect_to_the_login_page(api_server, crawl, reply, kind):
    api_server.add(INDEX, reply)
    # Three brands, four searches: the first refusal ends the crawl. With
    # concurrency 1 at most the search already on its way follows it; nothing is
    # retried or followed (a redirect would have asked the server for /signin).
    result = crawl({"type": "weibo", "concurrency": 1}, brands=BRANDS, settings=SETTINGS)
    sent = len(api_server.hits(INDEX))
    assert sent <= 2
    assert result.mentions == [] and faults(result) == {kind: sent}
    assert result.stats["finish_reason"] == "refused"
    assert result.read_nothing
    assert "passport" not in str(api_server.unmatched)


def test_cookie_user_agent_and_robots_txt(api_server, crawl):
    serve_search(api_server)
    api_server.add("/robots.txt", Reply(body=b"User-agent: *\nAllow: /\n", content_type="text/plain"))
    result = crawl(
        {"type": "weibo", "cookie": "SUB=placeholder-session", "user_agent": "brandpulse-test/1.0"},
        brands=BRANDS[:1],
        settings=SETTINGS,
    )
    assert result.error is None and faults(result) == {}
    assert len(api_server.hits("/robots.txt")) == 1
    for hit in api_server.hits(INDEX):
        assert hit.headers["cookie"] == "SUB=placeholder-session"
        assert hit.headers["user-agent"] == "brandpulse-test/1.0"
    assert "placeholder-session" not in result.log


def test_robots_txt_disallowing_the_api_stops_the_source(api_server, crawl):
    serve_search(api_server)
    api_server.add(
        "/robots.txt", Reply(body=b"User-agent: *\nDisallow: /api/\n", content_type="text/plain")
    )
    result = crawl({"type": "weibo"}, brands=BRANDS[:1], settings=SETTINGS)
    assert api_server.hits(INDEX) == []
    assert faults(result) == {"robots_txt": 1} and result.read_nothing
