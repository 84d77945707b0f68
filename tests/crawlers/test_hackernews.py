"""Hacker News (Algolia) spider against the local server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.crawlers.conftest import Reply, load_fixture

SEARCH = "/api/v1/search_by_date"


def serve(api_server) -> None:
    api_server.add(
        SEARCH,
        Reply.fixture("hackernews", "search_page0.json"),
        when={"query": "acme", "page": "0"},
    )
    api_server.add(
        SEARCH,
        Reply.fixture("hackernews", "search_page1.json"),
        when={"query": "acme", "page": "1"},
    )
    api_server.add(SEARCH, Reply.fixture("hackernews", "empty.json"))


def test_stories_and_comments_across_pages(api_server, crawl):
    serve(api_server)
    result = crawl({"type": "hackernews"})
    assert result.error is None
    got = {m.source_id: m for m in result.mentions}
    assert sorted(m.source_id for m in result.mentions) == [
        "38866001",
        "38866950",
        "38867001",
    ]  # none twice

    story = got["38867001"]
    assert story.title == "Show HN: We moved off Acme Cloud"
    assert story.text == "After 3 years on Acme Cloud we moved to bare metal.\n\nCosts dropped 60%."
    assert story.url == "https://news.ycombinator.com/item?id=38867001"
    assert story.author == "dang"
    assert story.engagement.score == 312 and story.engagement.replies == 187
    assert story.created_at == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)

    comment = got["38866950"]
    assert comment.title is None  # a comment's story title is not its text
    assert comment.text.startswith('The Acme "zero trust" story is mostly marketing')
    assert "https://example.com/acme" in comment.text  # link text kept, entities decoded
    assert got["38866001"].text == "Acme's pricing page is a masterclass."
    assert all(m.brands == ["Acme"] for m in result.mentions)

    # One search per term (Algolia has no OR), phrases quoted, all filtered by time.
    terms = sorted({h.param("query") for h in api_server.hits(SEARCH)})
    assert terms == ['"acme cloud"', '"globex corp"', "Globex", "acme"]
    first = api_server.hits(SEARCH)[0]
    assert first.param("tags") == "(story,comment)"
    assert first.param("numericFilters").startswith("created_at_i>=")
    assert first.param("hitsPerPage") == "100"


def test_second_run_asks_from_the_cursor_and_yields_nothing_old(api_server, crawl):
    serve(api_server)
    assert len(crawl({"type": "hackernews"}).mentions) == 3
    before = len(api_server.hits(SEARCH))
    again = crawl({"type": "hackernews"})
    assert again.error is None and again.mentions == []
    acme_calls = [h for h in api_server.hits(SEARCH)[before:] if h.param("query") == "acme"]
    # Newest post seen: created_at_i 1704189600; the next crawl starts 5 minutes
    # (the overlap for index lag) earlier and stops paging at the first post older
    # than that (page 0's second hit, 10 minutes older), so page 1 is not fetched.
    assert [h.param("numericFilters") for h in acme_calls] == ["created_at_i>=1704189300"]
    assert again.stats["dropped"]["before_cursor"] == 2


def test_a_late_indexed_post_inside_the_overlap_is_still_found(api_server, crawl):
    serve(api_server)
    assert len(crawl({"type": "hackernews"}).mentions) == 3
    api_server.reset()
    page = json.loads(load_fixture("hackernews", "search_page0.json"))
    late = dict(
        page["hits"][1],
        objectID="38867000",
        created_at_i=1704189600 - 120,
        comment_text="acme, indexed late",
    )
    page["hits"].insert(1, late)  # newer than the 09:50 post seen, older than the cursor
    page["nbPages"] = 1
    api_server.add(SEARCH, Reply.json(page), when={"query": "acme"})
    api_server.add(SEARCH, Reply.fixture("hackernews", "empty.json"))
    again = crawl({"type": "hackernews"})
    assert [m.source_id for m in again.mentions] == ["38867000"]
    third = crawl({"type": "hackernews"})
    assert third.mentions == []  # and it is remembered


def test_only_stories_when_configured(api_server, crawl):
    api_server.add(SEARCH, Reply.fixture("hackernews", "empty.json"))
    crawl({"type": "hackernews", "tags": ["story"]})
    assert {h.param("tags") for h in api_server.hits(SEARCH)} == {"story"}


def test_recorded_algolia_answers_paragraphs_paging_and_cursor(api_server, crawl):
    """Two real Algolia answers for query=apple, tags=comment (fixtures/README.md): the
    search_by_date one as page 0, the relevance one (an older comment) as page 1. Both
    comments open with a bare paragraph followed by `<p>`, as HN writes them."""
    api_server.add(
        SEARCH,
        Reply.fixture("hackernews", "recorded_by_date_comment_apple.json"),
        when={"page": "0"},
    )
    api_server.add(
        SEARCH,
        Reply.fixture("hackernews", "recorded_search_comment_apple.json"),
        when={"page": "1"},
    )
    brands = [{"name": "Apple", "query": '"apple"'}]
    # hitsPerPage=1 answers that say nbPages 1000: two pages are all this crawl may read.
    source = {"type": "hackernews", "tags": ["comment"], "lookback": "7300d", "max_pages": 2}
    result = crawl(source, brands=brands)
    assert result.error is None, result.log
    hits = api_server.hits(SEARCH)
    assert [(h.param("query"), h.param("tags"), h.param("page")) for h in hits] == [
        ("apple", "comment", "0"),
        ("apple", "comment", "1"),
    ]
    assert result.stats["queries_truncated"] == 1

    # Algolia matched "appe"-ar in page 0's comment; the brand filter does not.
    assert result.stats["dropped"]["no_brand"] == 1
    (comment,) = result.mentions
    assert comment.source_id == "6651926"
    assert comment.text == (
        "It's a little early to say for sure, but I predict this will do more to hurt "
        "Apple's reputation in the tech community than anything they've done before. And "
        "that is not a good community to alienate. I would not be surprised if they look "
        "back on this move one day and feel that they ended up net worse off as a result."
        "\n\nApple used to be careful not to alienate hackers. And Microsoft has been "
        "gradually digging itself out of a hole in that respect for several years. Now in "
        "my mind they are both the enemy."
    )
    assert comment.title is None  # the story's title is not the comment's
    assert comment.author == "pg"
    assert comment.created_at == datetime(2013, 11, 1, 5, 18, 12, tzinfo=UTC)
    assert comment.url == "https://news.ycombinator.com/item?id=6651926"
    assert comment.engagement.score == 293
    assert comment.engagement.replies is None  # num_comments is null on a comment
    assert comment.brands == ["Apple"]

    # Newest post seen: page 0's, created_at_i 1403132717; the next crawl starts 5
    # minutes earlier, passes that post by id and stops at page 1's older one.
    again = crawl(source, brands=brands)
    assert again.error is None and again.mentions == []
    later = api_server.hits(SEARCH)[len(hits) :]
    assert {h.param("numericFilters") for h in later} == {"created_at_i>=1403132417"}
    assert again.stats["dropped"]["before_cursor"] == 2
