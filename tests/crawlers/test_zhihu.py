"""Zhihu spider (api/v4 search_v3 + answers' root_comments), through the real Scrapy engine.

The pages are served by the local API server from tests/crawlers/fixtures/zhihu;
its README says which objects are recorded Zhihu answers and which parts (the
search envelope, an excerpt, a follower count) of the two search pages the comment,
paging and cursor tests use are built from the documented schema. Two recorded search
pages are replayed as well: search_recorded_koc.json (a box and an ad) and
search_recorded_answers.json (answers, a searched question, a paper).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from crawlers.spiders.zhihu import ZhihuSpider, zhihu_refusal
from tests.crawlers.conftest import FIXTURES, Reply
from tests.crawlers.sources_helpers import by_id, configure, faults

SEARCH = "/api/v4/search_v3"
ANSWER_ID = "20596524"
COMMENTS = f"/api/v4/answers/{ANSWER_ID}/root_comments"
COOKIE = "z_c0=placeholder-zhihu-session"

BRANDS = [
    {"name": "凤姐", "query": "凤姐"},
    {"name": "内涵段子", "query": '"内涵段子"'},
    {"name": "小米", "query": '"小米" NEAR/3 "路由器"'},  # named only in the recorded comment
]
TERMS = ("凤姐", "内涵段子", "小米", "路由器")


def source(**extra):
    # The recorded objects are from 2013-2018: the first crawl's lookback reaches them.
    return {
        "type": "zhihu",
        "cookie": COOKIE,
        "user_agent": "bp-zhihu-test/1",
        "lookback": "6000d",
        **extra,
    }


def load(name: str):
    return json.loads((FIXTURES / "zhihu" / name).read_text("utf-8"))


def serve(api_server) -> None:
    api_server.add(SEARCH, Reply.fixture("zhihu", "search_page2.json"), when={"offset": "20"})
    api_server.add(SEARCH, Reply.fixture("zhihu", "search_page1.json"), when={"offset": "0"})
    api_server.add(COMMENTS, Reply.fixture("zhihu", "root_comments.json"))


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# ------------------------------------------------------------------ parsing


def test_error_answers_are_refusals_of_their_kind():
    assert zhihu_refusal(load("error_401_no_auth_token.json"), 401)[0] == "login_required"
    assert zhihu_refusal(load("error_401_login_ticket.json"), 401)[0] == "login_required"
    # The same body with HTTP 200 still means "log in".
    assert zhihu_refusal(load("error_401_no_auth_token.json"))[0] == "login_required"
    assert zhihu_refusal(load("error_403_10003.json"), 403)[0] == "blocked"
    # A human check, reported with HTTP 403 and need_login (recorded message).
    kind, said = zhihu_refusal(load("error_403_40352.json"), 403)
    assert kind == "captcha" and "40352" in said and "need_login" in said
    assert zhihu_refusal(load("question_feeds.json")) is None
    assert zhihu_refusal(None, 401)[0] == "login_required"
    assert zhihu_refusal(load("search_page1.json")) is None
    assert zhihu_refusal(load("root_comments.json")) is None


# ------------------------------------------------------------------ crawls


def test_search_answers_questions_comments_paging_and_incremental_cursor(api_server, crawl):
    serve(api_server)
    result = crawl(source(), brands=BRANDS)
    assert result.error is None, result.log
    assert faults(result) == {}, result.log
    got = by_id(result.mentions)
    assert sorted(got) == [
        f"answer:{ANSWER_ID}",
        "comment:100969802",
        "question:21241873",
        "question:271758908",
    ]

    answer = got[f"answer:{ANSWER_ID}"]
    assert answer.source == "zhihu" and answer.source_name == "test-zhihu"
    assert answer.brands == ["凤姐"]
    assert answer.title == "如何评价凤姐的诗？"
    # Bare text, then a <p>: two paragraphs; <em> gone.
    assert answer.text == "（示例，非录制）\n\n怎样评价凤姐的诗，见仁见智。"
    assert answer.author == "Angry Bugs" and answer.author_reach == 1024
    assert answer.created_at == utc(1386236483) == datetime(2013, 12, 5, 9, 41, 23, tzinfo=UTC)
    assert answer.url == f"https://www.zhihu.com/question/21241873/answer/{ANSWER_ID}"

    question = got["question:21241873"]
    assert question.title == "如何评价凤姐的诗？" and question.brands == ["凤姐"]
    assert question.created_at == utc(1371953970)
    assert question.url == "https://www.zhihu.com/question/21241873"
    assert question.author is None and question.author_reach is None

    last_page = got["question:271758908"]
    assert last_page.brands == ["内涵段子"] and last_page.created_at == utc(1523350938)

    comment = got["comment:100969802"]
    assert comment.brands == ["小米"]
    assert comment.text == "你好請問ralink和ramips有什麼區別，刷小米路由器mini時要用哪種"
    assert comment.created_at == utc(1445988512)
    assert comment.url == answer.url
    # The recording shows only the member's id: no name, no follower count (unknown, not 0).
    assert comment.author is None and comment.author_reach is None
    assert comment.engagement.likes == 0

    # One search per term, two pages each: page 2 from paging.next's offset, with our
    # own q (the recorded next link names another term) and on our own host.
    searches = api_server.hits(SEARCH)
    assert sorted((h.param("q"), h.param("offset")) for h in searches) == sorted(
        (t, o) for t in TERMS for o in ("0", "20")
    )
    assert all(h.param("t") == "general" and h.param("limit") == "20" for h in searches)
    # The answer is found by all four searches; its comments are read once.
    [comments] = api_server.hits(COMMENTS)
    assert (comments.param("order"), comments.param("offset"), comments.param("limit")) == (
        "normal", "0", "20",
    )  # fmt: skip
    for hit in [*searches, comments]:
        assert hit.headers["cookie"] == COOKIE
        assert hit.headers["user-agent"] == "bp-zhihu-test/1"
    robots = api_server.hits("/robots.txt")
    assert len(robots) == 1 and "cookie" not in robots[0].headers
    assert "placeholder-zhihu-session" not in result.log

    # Second crawl: the ranked search is read again page by page; everything was seen.
    before = len(api_server.hits(SEARCH))
    again = crawl(source(), brands=BRANDS)
    assert again.error is None and faults(again) == {}
    assert again.mentions == []
    assert len(api_server.hits(SEARCH)) - before == 8
    assert again.stats["dropped"].get("before_cursor", 0) >= 12
    assert len(api_server.hits(COMMENTS)) == 1  # an answer seen before brings no comment read


def test_comments_off(api_server, crawl):
    serve(api_server)
    result = crawl(source(comments=False), brands=BRANDS[:1])
    assert result.error is None and faults(result) == {}
    assert api_server.hits(COMMENTS) == []


def test_recorded_search_page_of_boxes_and_ads_yields_nothing_and_pages_on(api_server, crawl):
    """search_recorded_koc.json is a recorded search_v3 answer (see the fixtures'
    README): a paid-column box (`koc_box`, `"highlight": null`, a numeric item id) and an
    e-book ad (`knowledge_ad`, no `object.type`), no post. Neither is a mention nor a
    fault, and the search goes on to page 2 with the recorded `offset` and
    `search_hash_id` but our own `q` (the recording searched "搜索内容") on our own host
    (the recorded link points at api.zhihu.com)."""
    api_server.add(SEARCH, Reply.fixture("zhihu", "search_page2.json"), when={"offset": "20"})
    api_server.add(SEARCH, Reply.fixture("zhihu", "search_recorded_koc.json"), when={"offset": "0"})
    result = crawl(source(comments=False), brands=BRANDS[1:2])
    assert result.error is None, result.log
    assert faults(result) == {}, result.log
    assert sorted(by_id(result.mentions)) == ["question:271758908"]  # from page 2
    first, second = api_server.hits(SEARCH)
    assert (first.param("q"), first.param("offset")) == ("内涵段子", "0")
    assert (second.param("q"), second.param("offset"), second.param("limit")) == (
        "内涵段子", "20", "20",
    )  # fmt: skip
    assert second.param("search_hash_id") == "f95dc1ab2d6bdae2dd9d96e558fddccd"
    assert second.param("vertical_info") == "0,0,0,0,0,0,0,0,0,2,0,0"
    # what the recorded link adds besides paging is not carried over
    assert second.param("gk_version") is None and second.param("advert_count") is None
    assert [h.path for h in api_server.unmatched] == ["/robots.txt"]  # nothing else asked


RECORDED_BRANDS = [{"name": "百度", "query": "百度"}, {"name": "知乎", "query": "知乎"}]


def test_recorded_search_page_of_answers_a_question_and_a_paper(api_server, crawl):
    """search_recorded_answers.json: seven items of a recorded search_v3 answer (see the
    fixtures' README): answers whose ids and question ids are strings and whose
    question names carry `<em>` highlights, a question found by search, which has no
    `created`/`created_time` (only `updated_time`) and its text in `description`, and
    a paper (`scholar`), which is not a post, an answer holding a table and an article.
    Every answer, the article and the question is a
    mention with its recorded author, reach, counts and UTC time; nothing is a fault."""
    api_server.add(SEARCH, Reply.fixture("zhihu", "search_recorded_answers.json"))
    result = crawl(source(comments=False, max_pages=1), brands=RECORDED_BRANDS)
    assert result.error is None, result.log
    assert faults(result) == {}, result.log
    got = by_id(result.mentions)
    assert sorted(got) == [
        "answer:3458972610", "answer:3606620400", "answer:74216785323", "article:371751409",
        "question:12473062221",
    ]  # fmt: skip
    assert sorted(h.param("q") for h in api_server.hits(SEARCH)) == ["百度", "知乎"]

    google = got["answer:3458972610"]
    assert google.author == "蒋晟" and google.author_reach == 11135
    assert google.created_at == utc(1712584885) == datetime(2024, 4, 8, 14, 1, 25, tzinfo=UTC)
    assert google.title == "为什么互联网给我一种想搜的东西什么都搜不到，屁用没有的信息一大堆的无力感？"
    assert google.url == "https://www.zhihu.com/question/646087842/answer/3458972610"
    assert (google.engagement.likes, google.engagement.replies) == (36, 7)
    lines = [line for line in google.text.split("\n") if line]
    assert lines[0] == "因为搜索引擎默认不给全部结果了"
    assert "我们省略了一些与已显示的 289 个非常相似的条目" in google.text  # the blockquote
    assert "例如site:http://http://cnn.com water外加" in google.text  # a link's text
    assert sorted(google.brands) == ["百度", "知乎"]  # "知乎、quora、百度知道"

    # A table in an answer: one line per row, its cells apart (they ran together before:
    # "filetype:搜索特定格式文件AI filetype:pdf", "文件" + "AI" reading as one phrase).
    table = got["answer:74216785323"]
    assert table.author == "平凡" and table.author_reach == 158553
    assert table.created_at == utc(1736301757)
    assert table.title == "如何看待百度搜索关键词增加 -robin或者 -李彦宏，就出现无广告正常内容？"
    rows = table.text.split("\n")
    assert "符号/语法 功能说明 示例" in rows
    assert "filetype: 搜索特定格式文件 AI filetype:pdf 只显示 PDF 文件" in rows
    assert "site: 限制在特定网站内搜索 site:http://http://baidu.com 人工智能" in rows
    assert "文件AI" not in table.text
    assert table.text.endswith("可以在搜索的时候节省很多时间。")  # the images leave no text

    article = got["article:371751409"]  # "TextSeek界面接近百度"
    assert article.title == "文件内容搜索软件正面PK：TextSeek vs FileLocator Pro"
    assert article.url == "https://zhuanlan.zhihu.com/p/371751409"
    assert article.author == "辛巴" and article.author_reach == 271
    assert article.created_at == utc(1620809815) and article.brands == ["百度"]
    assert (article.engagement.likes, article.engagement.replies) == (65, 36)
    assert article.text.startswith("上回我们横向评测了15款基于索引的文件内容搜索软件，国产软件TextSeek胜出。")

    baidu = got["answer:3606620400"]
    assert baidu.author == "冰臨" and baidu.author_reach == 302
    assert baidu.created_at == utc(1724660864) and baidu.brands == ["百度"]
    assert baidu.title == "为什么百度搜索引擎越做越差？"
    assert baidu.text == (
        "因为没有内容了，搁十年前，你黑猴打不过任何一个boss，你可以上百度查攻略，现在基本上只能"
        "上小破站或者某音了，百度上的内容要不很少，要不都是重复的，有一个人写攻略，其他无数在那搬运"
    )
    assert (baidu.engagement.likes, baidu.engagement.replies) == (4579, 368)

    question = got["question:12473062221"]
    assert question.title == "知乎上搜索内容出现一堆无关内容，请问在知乎上有好的办法精确搜索吗？"
    assert question.text == "知乎上搜索内容出现一堆无关内容，请问在知乎上有好的办法精确搜索吗"
    assert question.url == "https://www.zhihu.com/question/12473062221"
    # no creation time in a searched question: its last update, the only time it has
    assert question.created_at == utc(1739759971)
    assert question.author is None and question.author_reach is None  # 1 follower of the question
    assert question.engagement.replies == 0 and question.brands == ["知乎"]
    # wantsakOIer's "找片用yandex，极其有用" names neither brand
    assert result.stats["dropped"].get("no_brand", 0) >= 1


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply.fixture("zhihu", "error_401_no_auth_token.json", status=401), "login_required"),
        (Reply.fixture("zhihu", "error_401_login_ticket.json", status=401), "login_required"),
        (Reply.fixture("zhihu", "error_401_no_auth_token.json"), "login_required"),  # HTTP 200
        (Reply.fixture("zhihu", "error_403_10003.json", status=403), "blocked"),
        (Reply.fixture("zhihu", "error_403_40352.json", status=403), "captcha"),
        (
            Reply(status=302, body=b"", headers={"Location": "https://www.zhihu.com/signin"}),
            "login_required",
        ),
    ],
)
def test_refusals_end_the_crawl_and_read_nothing(api_server, crawl, reply, kind):
    api_server.add(SEARCH, reply)
    result = crawl(source(), brands=BRANDS)
    sent = len(api_server.hits(SEARCH))
    assert sent <= 2  # one at a time: at most the search already on its way follows
    assert result.mentions == []
    assert faults(result) == {kind: sent}
    assert result.stats["finish_reason"] == "refused"
    assert result.read_nothing
    assert "placeholder-zhihu-session" not in result.log
    assert "/signin" not in str(api_server.unmatched)  # a redirect is never followed


QUESTION = "562083816"
FEEDS = f"/api/v4/questions/{QUESTION}/feeds"
# Chinese brand queries on the recorded answers' texts (none is in the question's title).
FEED_BRANDS = [
    {"name": "内卷", "query": '"内卷" OR "卷题"'},
    {"name": "软肋", "query": '"软肋" NOT "内卷"'},
]


def test_question_feed_answers_recorded_with_authors_reach_times_and_cursor_paging(
    api_server, crawl
):
    """A configured question's answers (question_feeds.json: a recorded page of
    /api/v4/questions/562083816/feeds, four of its five cards): the answer in each card's
    `target`, the anonymous author as no author, follower counts as reach, epoch -> UTC;
    page 2 from paging.next's cursor and session_id, on our host with our field list;
    the brand filter on the texts; the next crawl yields nothing new."""
    from crawlers.spiders.zhihu import FEEDS_INCLUDE

    api_server.add(SEARCH, Reply.fixture("zhihu", "search_page2.json"))  # no brand in it
    api_server.add(FEEDS, Reply.fixture("zhihu", "question_feeds.json"))
    src = source(questions=[f"https://www.zhihu.com/question/{QUESTION}"], comments=False,
                 max_pages=2)  # fmt: skip
    result = crawl(src, brands=FEED_BRANDS)
    assert result.error is None, result.log
    assert faults(result) == {}, result.log
    got = by_id(result.mentions)
    assert sorted(got) == ["answer:2857700763", "answer:2858167883", "answer:2952996574"]

    teacher = got["answer:2952996574"]
    assert teacher.author is None and teacher.author_reach is None  # 匿名用户
    assert teacher.text.startswith("我是省会重点中学实验班班主任，以我的角度来看")
    assert [line for line in teacher.text.split("\n") if line][1:] == [  # paragraphs
        "－－－－－－－",
        "非常有意思的是领导一边PUA暗示我要更拼更卷，一边自己也是人间清醒，一次饭局上某主任"
        "悄悄给我说可惜了他孩子不和我一届不然一定送到我班上，大家都想卷别人孩子，怕自己孩子卷……",
    ]
    assert teacher.title == "为什么现在的年轻人都拒绝生孩子？"
    assert teacher.url == f"https://www.zhihu.com/question/{QUESTION}/answer/2952996574"
    assert teacher.created_at == utc(1679731868) == datetime(2023, 3, 25, 8, 11, 8, tzinfo=UTC)
    assert (teacher.engagement.likes, teacher.engagement.replies) == (2790, 181)
    assert teacher.brands == ["内卷"]  # "卷题"

    life = got["answer:2858167883"]
    assert life.author == "积云层风摇" and life.author_reach == 30
    assert life.created_at == utc(1674541556) and life.brands == ["内卷"]
    assert life.text.split("\n")[0] == "生活的面貌逐渐怪异"

    armour = got["answer:2857700763"]
    assert armour.author == "俄亥俄级核潜艇" and armour.author_reach == 560
    assert armour.text == "因为那一句话“孩子是他的软肋”啊！" and armour.brands == ["软肋"]
    assert armour.created_at == utc(1674507087)
    # 姜伯约's answer names no brand; the search results none either.
    assert result.stats["dropped"].get("no_brand", 0) >= 1

    first, second = api_server.hits(FEEDS)
    assert first.param("include") == FEEDS_INCLUDE
    assert (first.param("limit"), first.param("offset"), first.param("order")) == ("5", "0", "default")
    assert first.param("cursor") is None and first.param("platform") == "desktop"
    # page 2: the recorded next link's cursor and session, our own field list and host
    assert second.param("cursor") == "377cfc0f521fa6e6c400de34cd937fe6"
    assert second.param("session_id") == "1688828905373224118"
    assert second.param("include") == FEEDS_INCLUDE and second.param("offset") == "0"
    for hit in (first, second):
        assert hit.headers["cookie"] == COOKIE

    again = crawl(src, brands=FEED_BRANDS)
    assert again.error is None and faults(again) == {}
    assert again.mentions == []
    assert len(api_server.hits(FEEDS)) == 4  # ranked: read again, everything seen before


def test_question_ids_are_checked_in_the_config():
    from brandpulse.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="not a Zhihu question id"):
        parse_config(
            {"brands": BRANDS, "sources": [{"name": "z", **source(questions=["abc"])}]}, env={}
        )


def test_without_a_cookie_the_source_is_skipped(tmp_path):
    spider = configure(ZhihuSpider, {"type": "zhihu"}, tmp_path)
    assert spider.skip_reason and "cookie" in spider.skip_reason
    spider = configure(ZhihuSpider, source(), tmp_path)
    assert spider.skip_reason is None and spider.base_url == "https://www.zhihu.com"


def test_robots_txt_disallowing_the_api_stops_the_source(api_server, crawl):
    serve(api_server)
    api_server.add(
        "/robots.txt", Reply(body=b"User-agent: *\nDisallow: /api/\n", content_type="text/plain")
    )
    result = crawl(source(), brands=BRANDS[:1])
    assert api_server.hits(SEARCH) == []
    assert faults(result) == {"robots_txt": 1} and result.read_nothing
