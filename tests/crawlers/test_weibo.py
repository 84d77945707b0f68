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
from crawlers.spiders.weibo import ZONE, open_platform_refusal, parse_count, weibo_html
from crawlers.text import html_to_text
from tests.crawlers.conftest import FIXTURES, Reply
from tests.crawlers.sources_helpers import by_id, configure, faults, log_lines

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


HOTFLOW = "/comments/hotflow"
DAO_MID = "4414941093988009"  # the 大器晚成 post: its comments are the recorded page
COMMENT_ID = "4173725157145983"  # "@玩游戏要用台式机", 132 followers
# A brand named only in the recorded comment.
DESKTOP = {"name": "台式机", "query": "台式机"}


def serve_comments(api_server) -> None:
    api_server.add(
        HOTFLOW,
        Reply.fixture("weibo", "comments_hotflow_page1.json"),
        when=lambda r: r.param("id") == DAO_MID and r.param("max_id") is None,
    )
    api_server.add(HOTFLOW, Reply.fixture("weibo", "comments_none.json"))


def serve_search(api_server) -> None:
    api_server.add(INDEX, Reply.fixture("weibo", "search_page1.json"), when=page(None))
    api_server.add(INDEX, Reply.fixture("weibo", "search_page2.json"), when=page("2"))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"), when=page("3"))
    serve_comments(api_server)  # the matched posts' comments (comments: true by default)


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
    serve_comments(api_server)
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


def test_a_recorded_hot_feed_answer_with_counts_in_wan(api_server, crawl):
    # A real getIndex answer of the hot feed (containerid 102803, 2022-11-04; four of
    # its ten cards, see weibo/README.md): the same envelope and card 9 mblogs as a
    # search answer, with what the other recordings lack: follower counts as strings
    # in 万 ("11万", "138.5万", "20万"), full "Wed Oct 19 ... +0800 2022" times, topic
    # and video links, an emoji character, a long post cut at "全文" and an alt-less
    # video icon. Ranked (search_type all), so every card is read.
    api_server.add(INDEX, Reply.fixture("weibo", "hot_feed_recorded.json"), when=page(None))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"), when=page("2"))
    serve_comments(api_server)
    brands = [
        {"name": "浣熊", "query": '"浣熊宝宝"'},
        {"name": "理想型", "query": "理想型"},
        {"name": "影视剪辑", "query": '"影视剪辑"'},
    ]
    result = crawl({"type": "weibo", "search_type": "all", "lookback": "2000d"}, brands=brands, settings=SETTINGS)
    assert faults(result) == {}
    mentions = by_id(result.mentions)
    assert sorted(mentions) == ["4824470906473755", "4826311288423595", "4828884317504144"]

    raccoon = mentions["4826311288423595"]
    assert raccoon.brands == ["浣熊"]
    assert raccoon.text == (
        "撸🦝浣熊宝宝的时候，原来baby会发出“克拉克拉”这种满足的声音呢……\n\n#宝藏二创榜# // 一碗冷掉的粥的微博视频"
    )
    assert raccoon.author == "一碗冷掉的粥" and raccoon.author_reach == 110_000  # "11万"
    assert raccoon.created_at == datetime(2022, 10, 19, 7, 49, 2, tzinfo=UTC)  # +0800
    assert (raccoon.engagement.shares, raccoon.engagement.replies, raccoon.engagement.likes) == (1614, 325, 14334)
    assert raccoon.url == "https://m.weibo.cn/status/Mb2tyzlmr"

    clip = mentions["4828884317504144"]  # two topic links back to back
    assert clip.brands == ["影视剪辑"] and clip.author_reach == 1_385_000  # "138.5万"
    assert clip.text.endswith("#电影二创榜##影视剪辑# 网红柒点半的微博视频")

    ideal = mentions["4824470906473755"]  # the emoji image's unquoted alt is its text
    assert ideal.brands == ["理想型"] and ideal.text == "我的理想型 以及朋友们的评价[嘘]"
    assert ideal.author == "沈浩楠" and ideal.author_reach == 200_000
    assert ideal.created_at == datetime(2022, 10, 14, 5, 56, 1, tzinfo=UTC)
    # The long post names no brand; its "全文" link is not part of any text.
    assert all("全文" not in m.text for m in result.mentions)
    assert [h.param("containerid") for h in api_server.hits(INDEX) if h.param("page") is None] == [
        "100103type=1&q=浣熊宝宝",
        "100103type=1&q=理想型",
        "100103type=1&q=影视剪辑",
    ]


def test_a_recorded_keyword_search_answer_holding_a_card_group(api_server, crawl):
    # A real realtime keyword search for "iPhone" (containerid 100103type=2, the
    # realtime container of 2018; page 10, six of its ten posts, see weibo/README.md):
    # the posts sit in a card_type 11 card's card_group, every time is "1小时前",
    # and cardlistInfo.page names the next page (11). The clock is the answer's own
    # cardlistInfo.starttime, so "1小时前" is an hour before it.
    recorded_at = datetime.fromtimestamp(1516705171, UTC)  # 2018-01-23 18:59:31 in Shanghai

    def iphone_search(request_page: str | None):
        return lambda r: r.param("page") == request_page and r.param("containerid").endswith("&q=iPhone")

    api_server.add(INDEX, Reply.fixture("weibo", "search_recorded_iphone.json"), when=iphone_search(None))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"))  # page 11, and the 触宝 search
    api_server.add(HOTFLOW, Reply.fixture("weibo", "comments_none.json"))
    brands = [{"name": "iPhone", "query": "iPhone"}, {"name": "触宝", "query": "触宝"}]
    settings = {"BRANDPULSE_NOW": recorded_at.isoformat()}
    result = crawl({"type": "weibo"}, brands=brands, settings=settings)
    assert result.error is None and faults(result) == {}
    mentions = by_id(result.mentions)
    assert sorted(mentions) == [
        "4199406368313332",
        "4199406427298228",
        "4199407433459175",
        "4199407937220046",
        "4199408176055727",
        "4199408960166799",
    ]
    assert {m.created_at for m in result.mentions} == {datetime(2018, 1, 23, 9, 59, 31, tzinfo=UTC)}

    battery = mentions["4199407433459175"]
    assert battery.brands == ["iPhone"]
    assert battery.text == "张近东，99元人民币换iPhone电池，赚不了几个钱，换iPhone电池的人一定会挤爆门店，谁出的馊主意？"
    assert battery.author == "在浅川香樟树下的胜哥哥" and battery.author_reach == 597
    assert (battery.engagement.shares, battery.engagement.replies, battery.engagement.likes) == (1, 0, 0)
    assert battery.url == "https://m.weibo.cn/status/FFI2zevT9"

    # A lower-case "iphone" and a video link whose markup is broken (a stray </i>,
    # an unclosed span) as Weibo sends it; a location link likewise.
    assert mentions["4199407937220046"].text == "iphone se 2018 LANGER探科技的秒拍视频"
    vpn = mentions["4199406427298228"]
    assert vpn.text == "谁有好有的VPN推荐[允悲]iPhone可以用 厦门·新圩镇"
    assert vpn.author == "佳敏a-" and vpn.engagement.replies == 15
    # Emoji images read as their alt text, line breaks kept, the "全文" link gone.
    vote = mentions["4199408960166799"]
    assert vote.text.startswith("亲爱的罐妈，\n《最爱偶像》投票现在告急[拳头][拳头][拳头]这是很重要的奖")
    assert vote.text.endswith("真的很简单[可怜]可以投成员，也 ...")
    assert vote.author == "LHHH_WNW" and vote.author_reach == 280
    assert mentions["4199408176055727"].author_reach == 30552
    forbes = mentions["4199406368313332"]  # names both brands
    assert forbes.brands == ["iPhone", "触宝"] and forbes.author == "福布斯中国"
    assert forbes.text.endswith("触宝是首家获得 ...") and "全文" not in forbes.text

    # One realtime search per term; the page's own next page (11) is followed.
    assert [(h.param("containerid"), h.param("page")) for h in api_server.hits(INDEX)] == [
        ("100103type=61&q=iPhone", None),
        ("100103type=61&q=触宝", None),
        ("100103type=61&q=iPhone", "11"),
    ]
    # Every post names a brand, so each one's comments are read (none here).
    assert len(api_server.hits(HOTFLOW)) == 6

    # The next crawl gets the same page: all at or below the newest id seen.
    before = len(api_server.hits(INDEX))
    again = crawl({"type": "weibo"}, brands=brands, settings=settings)
    assert again.error is None and again.mentions == []
    assert [h.param("page") for h in api_server.hits(INDEX)[before:]] == [None, None]
    assert again.stats["dropped"].get("before_cursor") == 6


def test_an_old_promoted_post_neither_ends_the_paging_nor_is_yielded(api_server, crawl):
    # The first page as Weibo mixes it: a "推荐内容" (promoted) post of June on top
    # of yesterday's posts. Composed from the recorded cards of both fixture pages.
    promoted = json.loads((FIXTURES / "weibo" / "search_page2.json").read_text("utf-8"))
    recent = json.loads((FIXTURES / "weibo" / "search_page1.json").read_text("utf-8"))
    mixed = {"ok": 1, "data": {"cards": [promoted["data"]["cards"][2], *recent["data"]["cards"]]}}
    api_server.add(INDEX, Reply.json(mixed), when=page(None))
    api_server.add(INDEX, Reply.fixture("weibo", "empty.json"), when=page("2"))
    serve_comments(api_server)
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


# ------------------------------------------------------------------ comments

def test_comment_parsing_reuses_the_weibo_time_and_count_readers():
    page = json.loads((FIXTURES / "weibo" / "comments_hotflow_page1.json").read_text("utf-8"))
    [comment] = page["data"]["data"]
    got = parse_board_time(comment["created_at"], ZONE, NOW)
    assert got == datetime(2017, 11, 13, 12, 44, 44, tzinfo=UTC)
    assert parse_count(comment["user"]["followers_count"]) == 132
    # A bare {"ok": 0} on hotflow is a post without comments, not a refusal.
    url = "https://m.weibo.cn/comments/hotflow?id=1&mid=1&max_id_type=0"
    none = json.loads((FIXTURES / "weibo" / "comments_none.json").read_text("utf-8"))
    assert none == {"ok": 0} and refusal(url, data=none) is None


def test_comments_of_matched_posts_reach_paging_and_the_watch_list(api_server, crawl, tmp_path):
    serve_search(api_server)
    brands = [*BRANDS, DESKTOP]
    result = crawl({"type": "weibo"}, brands=brands, settings=SETTINGS)
    assert result.error is None, result.log
    assert faults(result) == {}
    got = by_id(result.mentions)
    comment = got[f"comment:{COMMENT_ID}"]
    assert comment.brands == ["台式机"]
    assert comment.text == "@玩游戏要用台式机"
    assert comment.author == "shortener" and comment.author_reach == 132
    assert comment.created_at == datetime(2017, 11, 13, 12, 44, 44, tzinfo=UTC)  # +0800
    assert comment.url == f"https://m.weibo.cn/detail/{DAO_MID}"
    # The posts are still there; comments of all four matched posts were asked for.
    assert {"4414941093988009", "4414949763467195", "4414937776062677", "4383180406740606"} <= set(got)
    first_pages = [h for h in api_server.hits(HOTFLOW) if h.param("max_id") is None]
    assert sorted(h.param("id") for h in first_pages) == sorted(
        ["4414941093988009", "4414949763467195", "4414937776062677", "4383180406740606"]
    )
    for hit in first_pages:
        assert hit.param("mid") == hit.param("id") and hit.param("max_id_type") == "0"
        assert hit.headers["referer"].endswith(f"/detail/{hit.param('id')}")
    # The recorded page's max_id asks for the next page, which has no comments.
    [second] = [h for h in api_server.hits(HOTFLOW) if h.param("max_id") is not None]
    assert (second.param("id"), second.param("max_id"), second.param("max_id_type")) == (
        DAO_MID, "109983044374075", "0",
    )  # fmt: skip

    # The cursor watches the posts of the last comments_window (3 days before the
    # crawl's clock): the June post is not watched any more.
    cursor = json.loads((tmp_path / "state" / "test-weibo.cursor.json").read_text("utf-8"))
    assert sorted(cursor["watch"]) == ["4414937776062677", "4414941093988009", "4414949763467195"]
    assert cursor["watch"][DAO_MID]["brand"] == "道德经"
    assert f"comments:{DAO_MID}" in cursor["queries"]

    # Second crawl: no new post, but the watched posts' comments are read again; the
    # recorded comment was seen, so nothing is yielded.
    before = len(api_server.hits(HOTFLOW))
    again = crawl({"type": "weibo"}, brands=brands, settings=SETTINGS)
    assert again.error is None and faults(again) == {}
    assert again.mentions == []
    hits = api_server.hits(HOTFLOW)[before:]
    assert sorted(h.param("id") for h in hits if h.param("max_id") is None) == sorted(cursor["watch"])
    assert again.stats["dropped"].get("before_cursor", 0) >= 5  # 4 posts + the comment


def test_comments_of_at_most_comments_max_posts_per_crawl(api_server, crawl, tmp_path):
    serve_search(api_server)
    result = crawl({"type": "weibo", "comments_max_posts": 2}, brands=BRANDS, settings=SETTINGS)
    assert result.error is None and faults(result) == {}
    first_pages = [h for h in api_server.hits(HOTFLOW) if h.param("max_id") is None]
    assert len(first_pages) == 2
    assert result.stats["dropped"]["comments_deferred"] == 2
    # The watch keeps the two newest matched posts (昨天 12:25 and 昨天 11:50).
    cursor = json.loads((tmp_path / "state" / "test-weibo.cursor.json").read_text("utf-8"))
    assert sorted(cursor["watch"]) == ["4414941093988009", "4414949763467195"]


def test_comments_off_reads_no_comments(api_server, crawl):
    serve_search(api_server)
    result = crawl({"type": "weibo", "comments": False}, brands=BRANDS, settings=SETTINGS)
    assert result.error is None and faults(result) == {}
    assert api_server.hits(HOTFLOW) == []


def test_a_login_wall_on_comments_is_a_refusal_that_ends_the_crawl(api_server, crawl):
    api_server.add(HOTFLOW, Reply.fixture("weibo", "login_required.json"))
    serve_search(api_server)
    result = crawl({"type": "weibo"}, brands=BRANDS[:1], settings=SETTINGS)
    assert faults(result) == {"login_required": 1}
    assert "/comments/hotflow" in result.stats["fault_examples"]["login_required"]
    assert result.stats["finish_reason"] == "refused"
    assert len(api_server.hits(HOTFLOW)) == 1  # nothing after the wall
    assert not any(m.source_id.startswith("comment:") for m in result.mentions)


# ------------------------------------------------------------------ Open Platform

TOPICS = "/2/search/topics.json"
COMMENTS_SHOW = "/2/comments/show.json"
TOKEN = "2.00test-open-platform-token"
STUDENT_MID = "4199141540161192"  # "一个大学生竟然在大马路上…"
OPEN_BRANDS = [{"name": "校园", "query": "大学生"}, DESKTOP]


def open_source(**extra):
    return {"type": "weibo", "api": "open_platform", "access_token": TOKEN, **extra}


def serve_open_platform(api_server) -> None:
    api_server.add(TOPICS, Reply.fixture("weibo", "open_search_topics.json"), when={"page": "1"})
    api_server.add(TOPICS, Reply.fixture("weibo", "open_search_empty.json"))
    api_server.add(
        COMMENTS_SHOW, Reply.fixture("weibo", "open_comments_page1.json"), when={"page": "1"}
    )
    api_server.add(
        COMMENTS_SHOW, Reply.fixture("weibo", "open_comments_page2.json"), when={"page": "2"}
    )


def test_open_platform_search_comments_token_and_since_id(api_server, crawl):
    serve_open_platform(api_server)
    source = open_source(comments_window="4000d")  # the recorded post is from 2018
    result = crawl(source, brands=OPEN_BRANDS, settings=SETTINGS)
    assert result.error is None, result.log
    assert faults(result) == {}
    got = by_id(result.mentions)
    assert sorted(got) == [STUDENT_MID, f"comment:{COMMENT_ID}"]  # "你搞的？" names no brand
    post = got[STUDENT_MID]
    assert post.brands == ["校园"]
    assert post.author == "勿忘初心神探_006" and post.author_reach == 63
    assert post.created_at == datetime(2018, 1, 22, 16, 0, 21, tzinfo=UTC)
    assert post.url == f"https://m.weibo.cn/status/{STUDENT_MID}"
    assert post.text.startswith("一个大学生竟然在大马路上问女生要联系方式")
    assert (post.engagement.replies, post.engagement.likes) == (2, 2)
    comment = got[f"comment:{COMMENT_ID}"]
    assert comment.brands == ["台式机"] and comment.author_reach == 132
    assert comment.url == f"https://m.weibo.cn/detail/{STUDENT_MID}"

    # One search per term, paged until an empty page; comments of the matched post
    # paged until next_cursor 0.
    searches = api_server.hits(TOPICS)
    assert sorted((h.param("q"), h.param("page")) for h in searches) == [
        ("台式机", "1"), ("台式机", "2"), ("大学生", "1"), ("大学生", "2"),
    ]  # fmt: skip
    assert all(h.param("count") == "50" for h in searches)
    shows = api_server.hits(COMMENTS_SHOW)
    assert [(h.param("id"), h.param("page"), h.param("since_id")) for h in shows] == [
        (STUDENT_MID, "1", None), (STUDENT_MID, "2", None),
    ]  # fmt: skip
    # The token: an Authorization header on every request, never a URL, never logged;
    # a documented API, so no robots.txt.
    for hit in api_server.requests:
        assert hit.headers["authorization"] == f"OAuth2 {TOKEN}"
        assert TOKEN not in hit.path and "access_token" not in hit.query
    assert api_server.hits("/robots.txt") == []
    assert TOKEN not in result.log

    # Next crawl: the watched post's comments are asked for since the newest id seen.
    again = crawl(source, brands=OPEN_BRANDS, settings=SETTINGS)
    assert again.error is None and again.mentions == []
    since = [h.param("since_id") for h in api_server.hits(COMMENTS_SHOW)[len(shows) :]]
    assert since and set(since) == {COMMENT_ID}


@pytest.mark.parametrize("status", [200, 400])
def test_open_platform_expired_token_is_login_required(api_server, crawl, status):
    api_server.add(TOPICS, Reply.fixture("weibo", "open_error_expired_token.json", status=status))
    result = crawl(open_source(concurrency=1), brands=OPEN_BRANDS, settings=SETTINGS)
    assert result.mentions == []
    assert set(faults(result)) == {"login_required"}
    assert "21327" in result.stats["fault_examples"]["login_required"]
    assert result.stats["finish_reason"] == "refused"
    assert result.read_nothing
    assert TOKEN not in result.log


def test_open_platform_refusal_codes():
    expired = json.loads((FIXTURES / "weibo" / "open_error_expired_token.json").read_text("utf-8"))
    assert open_platform_refusal(expired)[0] == "login_required"
    assert open_platform_refusal({"error": "User requests out of rate limit!", "error_code": 10023})[0] == "rate_limited"
    assert open_platform_refusal({"error": "miss required parameter (id)", "error_code": 10016})[0] == "api_error"
    assert open_platform_refusal({"statuses": []}) is None


def test_open_platform_without_a_token_is_skipped_and_a_stray_token_is_refused(tmp_path):
    from brandpulse.config import ConfigError, parse_config
    from crawlers.spiders.weibo import WeiboSpider

    spider = configure(WeiboSpider, {"type": "weibo", "api": "open_platform"}, tmp_path)
    assert "access_token" in spider.skip_reason
    spider = configure(WeiboSpider, open_source(), tmp_path)
    assert spider.skip_reason is None and spider.base_url == "https://api.weibo.com"
    with pytest.raises(ConfigError, match="access_token is only used with api: open_platform"):
        parse_config(
            {"brands": BRANDS, "sources": [{"name": "w", "type": "weibo", "access_token": "x"}]},
            env={},
        )
