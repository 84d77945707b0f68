"""Zhihu spider (api/v4 search_v3 + answers' root_comments), through the real Scrapy engine.

The pages are served by the local API server from tests/crawlers/fixtures/zhihu;
its README says which objects are recorded Zhihu answers and which parts (the
search envelope, an excerpt, a follower count) are built from the documented
schema because no recorded search page was found.
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
    assert answer.text == "（示例，非录制）\n怎样评价凤姐的诗，见仁见智。"  # <p> a line, <em> gone
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


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply.fixture("zhihu", "error_401_no_auth_token.json", status=401), "login_required"),
        (Reply.fixture("zhihu", "error_401_login_ticket.json", status=401), "login_required"),
        (Reply.fixture("zhihu", "error_401_no_auth_token.json"), "login_required"),  # HTTP 200
        (Reply.fixture("zhihu", "error_403_10003.json", status=403), "blocked"),
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
