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
