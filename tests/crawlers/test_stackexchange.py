"""Stack Exchange spider: wrapper fields, paging, backoff, error bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.crawlers.conftest import Reply

SEARCH = "/2.3/search/advanced"


def serve(api_server, page1: Reply | None = None) -> None:
    api_server.add(
        SEARCH,
        page1 or Reply.fixture("stackexchange", "search_page1.json"),
        when={"q": "acme", "page": "1"},
    )
    api_server.add(
        SEARCH, Reply.fixture("stackexchange", "search_page2.json"), when={"q": "acme", "page": "2"}
    )
    api_server.add(SEARCH, Reply.fixture("stackexchange", "empty.json"))


def test_questions_with_html_bodies_and_escaped_titles(api_server, crawl):
    serve(api_server)
    result = crawl({"type": "stackexchange", "site": "superuser", "key": "k3y"})
    assert result.error is None
    got = {m.source_id: m for m in result.mentions}
    assert sorted(m.source_id for m in result.mentions) == [
        "77770001",
        "77770002",
        "77770003",
    ]  # none twice
    sdk = got["77770001"]
    assert sdk.title == 'Acme SDK throws "TokenExpired" after upgrade to 4.2'
    assert (
        sdk.text
        == "Since upgrading the acme-sdk to 4.2 I get:\n\nTokenExpired: token is expired\n\nDowngrading fixes it. What changed?"
    )
    assert sdk.author == "José García"
    assert sdk.author_reach == 1530
    assert sdk.engagement.score == 3 and sdk.engagement.replies == 1
    assert sdk.created_at == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert sdk.url.startswith("https://stackoverflow.com/questions/77770001/")
    assert got["77770002"].text == "The docs don't say how to page through all buckets."
    assert got["77770003"].brands == ["Acme", "Globex"]
    first = api_server.hits(SEARCH)[0]
    assert first.param("site") == "superuser" and first.param("key") == "k3y"
    assert first.param("sort") == "creation" and first.param("order") == "desc"
    assert first.param("filter") == "withbody" and first.param("fromdate").isdigit()


def test_backoff_field_holds_the_next_request(api_server, crawl):
    with_backoff = Reply(
        body=Reply.fixture("stackexchange", "search_page1.json")
        .payload()
        .replace(b'"has_more"', b'"backoff": 2, "has_more"')
    )
    serve(api_server, page1=with_backoff)
    result = crawl({"type": "stackexchange", "brands": ["Acme"], "concurrency": 1})
    assert result.error is None and len(result.mentions) == 3
    page1 = next(
        h for h in api_server.hits(SEARCH) if h.param("q") == "acme" and h.param("page") == "1"
    )
    later = [h for h in api_server.hits(SEARCH) if h.at > page1.at]
    assert later and min(h.at for h in later) - page1.at >= 1.9


def test_error_body_is_reported_with_the_api_words(api_server, crawl):
    api_server.add(SEARCH, Reply.fixture("stackexchange", "error_throttle.json", status=400))
    result = crawl({"type": "stackexchange"})
    assert result.error is None and result.mentions == []
    assert result.stats["failed"] == {"http_400": 4}  # one per term; 400 is not retried
    assert (
        "error 502 throttle_violation: too many requests"
        in result.stats["fault_examples"]["http_400"]
    )
    assert result.log.count("had faults") == 1


def test_recorded_code_review_page_with_a_body_and_no_title(api_server, crawl):
    """A real API 2.x answer (fixtures/README.md): one Code Review question fetched with a
    filter that kept `body` and left `title` and `score` out, `has_more` false."""
    api_server.add(SEARCH, Reply.fixture("stackexchange", "recorded_questions_withbody.json"))
    brands = [{"name": "Interview", "query": '"interview"'}]
    source = {"type": "stackexchange", "site": "codereview", "lookback": "7300d"}
    result = crawl(source, brands=brands)
    assert result.error is None, result.log
    assert [h.param("page") for h in api_server.hits(SEARCH)] == ["1"]  # has_more: false
    (question,) = result.mentions
    assert question.source_id == "86150"
    assert question.title is None  # the filter did not ask for it
    assert question.engagement.score is None  # nor for this
    assert question.engagement.replies == 1  # answer_count
    assert question.author == "Simon Forsberg" and question.author_reach == 38517
    assert question.created_at == datetime(2015, 4, 7, 14, 27, 58, tzinfo=UTC)
    assert question.url == (
        "http://codereview.stackexchange.com/questions/86150/"
        "highest-pit-only-climbing-through-the-pit-once"
    )
    assert question.text.startswith(
        "For a problem description, see other question.\n\n"
        "Imagine I would write this code at an interview. What would you say?\n\n"
        "Time complexity: \\$O(n)\\$\n\n"
    )
    assert "int[] heights = { 0, 9, 6, -2, 7, 8, 0, -3, 2, 3 };" in question.text
    # `<li>...</li>\n<li>`: one line per item.
    assert question.text.endswith(
        "Primary concerns:\n\n"
        "Is the approach clear?\n"
        "Are there any edge cases I did not think about?\n"
        "At an interview, would adding unit tests for this method be a good idea?"
    )
    assert question.brands == ["Interview"]
