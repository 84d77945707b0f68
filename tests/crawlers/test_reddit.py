"""Reddit spider against the local server: paging, OAuth, cursor, rate-limit headers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from brandpulse.mention import mention_id
from tests.crawlers.conftest import Reply

SEARCH = "/search.json"
ACME_Q = '"acme" OR "acme cloud"'


def serve_acme(api_server, *, page1: Reply | None = None) -> None:
    api_server.add(
        SEARCH,
        page1 or Reply.fixture("reddit", "search_page1.json"),
        when={"q": ACME_Q, "after": None},
    )
    api_server.add(
        SEARCH,
        Reply.fixture("reddit", "search_page2.json"),
        when={"q": ACME_Q, "after": "t3_18x0c3a"},
    )
    api_server.add(SEARCH, Reply.fixture("reddit", "empty.json"))  # Globex's query


def test_anonymous_crawl_pages_and_turns_posts_into_mentions(api_server, crawl):
    serve_acme(api_server)
    result = crawl({"type": "reddit", "user_agent": "brandpulse-test/1.0 (by u/tester)"})
    assert result.error is None
    got = {m.source_id: m for m in result.mentions}
    assert sorted(m.source_id for m in result.mentions) == [
        "t3_18wzy77",
        "t3_18wzz01",
        "t3_18x1d2b",
        "t3_18x2f9k",
    ]  # none twice

    outage = got["t3_18x2f9k"]
    assert outage.id == mention_id("reddit", "t3_18x2f9k")
    assert outage.source == "reddit" and outage.source_name == "test-reddit"
    assert outage.title == "Acme Cloud outage again?"
    assert outage.text.endswith("all green 🙃")  # emoji kept
    assert outage.created_at == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert outage.author == "ops_jane"
    assert (
        outage.url
        == "https://www.reddit.com/r/technology/comments/18x2f9k/acme_cloud_outage_again?/"
    )
    assert outage.engagement.score == 42 and outage.engagement.replies == 17
    assert outage.brands == ["Acme"]

    both = got["t3_18x1d2b"]
    assert both.brands == ["Acme", "Globex"]
    assert "cheaper & Acme" in both.text and "\n\n\n" not in both.text

    assert got["t3_18wzz01"].author is None  # [deleted]
    assert got["t3_18wzz01"].duplicate_of == outage.id  # a repost of the outage post
    assert got["t3_18wzy77"].engagement.score == -2
    assert got["t3_18wzy77"].author == "cafe_ñandú"

    assert result.stats["dropped"]["no_brand"] == 1  # the AutoModerator thread
    assert result.stats["failed"] == {}
    first = api_server.hits(SEARCH)[0]
    assert first.param("sort") == "new" and first.param("raw_json") == "1"
    assert first.param("limit") == "100" and first.param("type") == "link"
    assert first.headers["user-agent"] == "brandpulse-test/1.0 (by u/tester)"
    assert not api_server.unmatched


def test_second_run_yields_nothing_new_and_stops_at_the_cursor(api_server, crawl):
    serve_acme(api_server)
    first = crawl({"type": "reddit"})
    assert len(first.mentions) == 4
    calls_after_first = len(api_server.hits(SEARCH))
    second = crawl({"type": "reddit"})
    assert second.error is None
    assert second.mentions == []
    # Page 1 already reaches posts at/before the cursor, so page 2 is not fetched.
    second_calls = api_server.hits(SEARCH)[calls_after_first:]
    assert [c.param("after") for c in second_calls if c.param("q") == ACME_Q] == [None]


def test_subreddits_restrict_the_search_path(api_server, crawl):
    api_server.add("/r/python+devops/search.json", Reply.fixture("reddit", "empty.json"))
    result = crawl({"type": "reddit", "subreddits": ["python", "devops"]})
    assert result.error is None
    hits = api_server.hits("/r/python+devops/search.json")
    assert len(hits) == 2 and all(h.param("restrict_sr") == "1" for h in hits)


def test_oauth_client_credentials_token_then_bearer_searches(api_server, crawl):
    api_server.add("/api/v1/access_token", Reply.fixture("reddit", "token.json"), method="POST")
    serve_acme(api_server)
    result = crawl({"type": "reddit", "client_id": "cid", "client_secret": "s3cret"})
    assert result.error is None and len(result.mentions) == 4
    (token_call,) = api_server.hits("/api/v1/access_token")
    assert (
        token_call.headers["authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    )
    assert token_call.body == b"grant_type=client_credentials"
    searches = api_server.hits(SEARCH)
    assert searches and all(s.headers["authorization"].startswith("bearer eyJ") for s in searches)


def test_rejected_token_request_is_an_auth_fault_not_a_crash(api_server, crawl):
    api_server.add(
        "/api/v1/access_token",
        Reply.json({"message": "Unauthorized", "error": 401}, status=401),
        method="POST",
    )
    result = crawl({"type": "reddit", "client_id": "cid", "client_secret": "wrong"})
    assert result.error is None
    assert result.mentions == []
    assert result.stats["failed"] == {"http_401": 1}
    assert "Unauthorized" in result.stats["fault_examples"]["http_401"]
    assert api_server.hits(SEARCH) == []


def test_half_configured_credentials_skip_the_source_with_one_line(api_server, crawl):
    result = crawl({"type": "reddit", "client_id": "only-the-id"})
    assert result.error is None and result.mentions == []
    assert result.stats["skipped"].startswith("client_secret is not set")
    assert result.log.count("skipped: client_secret is not set") == 1
    assert api_server.requests == []


def test_ratelimit_headers_pause_the_next_request(api_server, crawl):
    exhausted = Reply.fixture(
        "reddit",
        "search_page1.json",
        headers={
            "X-Ratelimit-Remaining": "0.0",
            "X-Ratelimit-Reset": "1",
            "X-Ratelimit-Used": "100",
        },
    )
    serve_acme(api_server, page1=exhausted)
    result = crawl({"type": "reddit", "brands": ["Acme"]})
    assert result.error is None and len(result.mentions) == 4
    page1, page2 = api_server.hits(SEARCH)
    assert page2.at - page1.at >= 0.95


def test_recorded_praw_token_and_search_listing(api_server, crawl):
    """A token answer and a search Listing reddit.com sent to PRAW's test suite
    (fixtures/README.md): two self posts, `after` null, no `num_crossposts` then."""
    api_server.add(
        "/api/v1/access_token", Reply.fixture("reddit", "recorded_token.json"), method="POST"
    )
    api_server.add(SEARCH, Reply.fixture("reddit", "recorded_search_listing.json"))
    brands = [{"name": "PRAW", "query": '"praw"'}]
    source = {"type": "reddit", "client_id": "cid", "client_secret": "s3cret", "lookback": "7300d"}
    result = crawl(source, brands=brands)
    assert result.error is None, result.log
    (search,) = api_server.hits(SEARCH)  # after: null, one page
    assert search.headers["authorization"] == "bearer rhyKqO9iSsQ6uxZQANhF1NMRE8w"
    assert search.param("q") == '"praw"'  # the brand query as written

    got = {m.source_id: m for m in result.mentions}
    assert sorted(got) == ["t3_1qvzkd", "t3_3qc02b"]
    bug = got["t3_3qc02b"]
    assert bug.title == (
        "Pagination of subreddit contributor list does not return a complete list of users."
    )
    assert bug.author == "Doomhammer458"
    assert bug.created_at == datetime(2015, 10, 26, 21, 20, 38, tzinfo=UTC)
    assert bug.url == (
        "https://www.reddit.com/r/bugs/comments/3qc02b/"
        "pagination_of_subreddit_contributor_list_does_not/?ref=search_posts"
    )
    assert (bug.engagement.score, bug.engagement.replies) == (2, 2)
    assert bug.engagement.shares is None  # no num_crossposts in a 2016 answer
    assert bug.text.startswith(
        "I have confirmed this with PRAW, toolbox and API requests.\n\n"
        "when I try to get a full list of all the contributors to /r/armyofscience"
    )
    # raw_json text: quotes and ">>>" arrive as typed (\" and \u003E in the JSON).
    assert '{"User-Agent":"flair finder v1.0 by /u/Doomhammer458"' in bug.text
    assert ">>> 'po8' in user_list" in bug.text
    assert bug.brands == ["PRAW"]

    user_page = got["t3_1qvzkd"]
    assert user_page.title == "Praw, opening a user page."
    assert user_page.created_at == datetime(2013, 11, 18, 10, 25, 49, tzinfo=UTC)
    assert user_page.author == "DAsSNipez" and user_page.author_reach is None
    assert user_page.brands == ["PRAW"]
