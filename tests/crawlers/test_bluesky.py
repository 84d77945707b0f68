"""Bluesky searchPosts spider (app-password session), through the real Scrapy engine."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from crawlers.spiders.bluesky import BlueskySpider
from tests.crawlers.conftest import Reply, load_fixture
from tests.crawlers.sources_helpers import (
    BRANDS,
    LOOKBACK,
    by_id,
    configure,
    faults,
    log_lines,
    warnings_of,
)

SESSION = "/xrpc/com.atproto.server.createSession"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
ACCESS_JWT = json.loads(load_fixture("bluesky", "session.json"))["accessJwt"]


def source(**extra):
    return {
        "type": "bluesky",
        "handle": "brandpulse.bsky.social",
        "app_password": "abcd-efgh-ijkl-mnop",
        "lookback": LOOKBACK,
        **extra,
    }


def at(did: str, rkey: str) -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey}"


def test_login_search_paging_and_incremental_cursor(api_server, crawl):
    api_server.add(SESSION, Reply.fixture("bluesky", "session.json"), method="POST")
    api_server.add(
        SEARCH, Reply.fixture("bluesky", "search_page2.json"), when={"q": "acme", "cursor": "25"}
    )
    api_server.add(
        SEARCH,
        Reply.fixture("bluesky", "search_page1.json"),
        Reply.fixture("bluesky", "search_run2.json"),
        when={"q": "acme"},
    )
    api_server.add(SEARCH, Reply.fixture("bluesky", "search_empty.json"))

    first = crawl(source(), brands=BRANDS)
    assert first.error is None, first.log
    got = by_id(first.mentions)
    assert sorted(got) == sorted(
        [
            at("did:plc:z72i7hdynmk6r22z27h6tvur", "3lbxyzacme001"),
            at("did:plc:chinese0000000000000000", "3lbxyzacme002"),
            at("did:plc:bobbobbobbobbobbobbobbob", "3lbxyzacme003"),
        ]
    )
    review = got[at("did:plc:z72i7hdynmk6r22z27h6tvur", "3lbxyzacme001")]
    assert review.text == "Acme Rocket 3 review is up! Spoiler: I love it. acme.example/recall"
    assert review.created_at == datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    assert review.url == "https://bsky.app/profile/rocketfan.bsky.social/post/3lbxyzacme001"
    assert review.author == "rocketfan.bsky.social"
    assert review.author_reach is None
    assert review.language == "en"
    assert (review.engagement.likes, review.engagement.replies, review.engagement.shares) == (
        52,
        4,
        10,
    )
    assert review.brands == ["Acme"]

    chinese = got[at("did:plc:chinese0000000000000000", "3lbxyzacme002")]
    # createdAt "2026-11-26T10:20:30.000+08:00" is 02:20:30 UTC.
    assert chinese.created_at == datetime(2026, 11, 26, 2, 20, 30, tzinfo=UTC)
    assert chinese.language == "zh" and chinese.brands == ["Acme"]
    both = got[at("did:plc:bobbobbobbobbobbobbobbob", "3lbxyzacme003")]
    assert both.brands == ["Acme", "Globex"] and both.language is None
    assert first.stats["dropped"].get("no_brand") == 1  # "acmeister" is not Acme

    login = api_server.hits(SESSION)
    assert len(login) == 1
    assert json.loads(login[0].body) == {
        "identifier": "brandpulse.bsky.social",
        "password": "abcd-efgh-ijkl-mnop",
    }
    acme = [h for h in api_server.hits(SEARCH) if h.param("q") == "acme"]
    # Page 2 reaches a post older than the window: its cursor "50" is not followed.
    assert [h.param("cursor") for h in acme] == [None, "25"]
    assert acme[0].param("sort") == "latest" and acme[0].param("limit") == "100"
    assert acme[0].headers["authorization"] == f"Bearer {ACCESS_JWT}"
    assert sorted({h.param("q") for h in api_server.hits(SEARCH)}) == [
        '"globex corp"',
        "Globex",
        "acme",
        "阿克米",
    ]

    api_server.requests.clear()
    second = crawl(source(), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == [
        at("did:plc:run2run2run2run2run2run2", "3lbxyzacme006")
    ]
    acme = [h for h in api_server.hits(SEARCH) if h.param("q") == "acme"]
    assert acme[0].param("since") == "2026-11-26T16:00:00Z"


def test_missing_credentials_are_skipped_with_one_warning(caplog, tmp_path):
    with caplog.at_level(logging.INFO):
        spider = configure(BlueskySpider, source(app_password=None), tmp_path)
    assert (
        spider.skip_reason == "app_password not set (Bluesky post search needs a logged-in session)"
    )
    assert warnings_of(caplog) == [f"source 's' (bluesky) skipped: {spider.skip_reason}"]
    neither = configure(BlueskySpider, source(app_password=" ", handle=None), tmp_path)
    assert neither.skip_reason.startswith("handle and app_password not set")


def test_wrong_password_fails_the_source_without_searching(api_server, crawl):
    api_server.add(SESSION, Reply.fixture("bluesky", "error_auth.json", status=401), method="POST")
    result = crawl(source(), brands=BRANDS, settings={"LOG_LEVEL": "WARNING"})
    assert result.error is None and result.mentions == []
    assert faults(result) == {"http_401": 1}
    assert (
        "AuthenticationRequired: Invalid identifier or password"
        in log_lines(result.log, "had faults")[0]
    )
    assert api_server.hits(SEARCH) == []


def test_expired_token_html_and_wrong_shape_are_faults(api_server, crawl):
    api_server.add(SESSION, Reply.fixture("bluesky", "session.json"), method="POST")
    api_server.add(
        SEARCH, Reply.fixture("bluesky", "error_expired.json", status=400), when={"q": "acme"}
    )
    api_server.add(SEARCH, Reply.html(), when={"q": "阿克米"})
    api_server.add(SEARCH, Reply.json({"posts": None, "cursor": "x"}))
    result = crawl(source(), brands=BRANDS, settings={"LOG_LEVEL": "WARNING"})
    assert result.error is None and result.mentions == []
    failed = faults(result)
    assert failed.get("http_400") == 1
    assert failed.get("html_instead_of_json") == 1
    assert failed.get("parse_error") == 2  # both Globex terms
    assert "ExpiredToken: Token has expired" in log_lines(result.log, "had faults")[0]


def test_rate_limited_login_gives_up_until_the_reset(api_server, crawl):
    reset = str(int(time.time()) + 3600)
    api_server.add(
        SESSION,
        Reply.fixture(
            "bluesky",
            "error_429.json",
            status=429,
            headers={
                "ratelimit-limit": "30",
                "ratelimit-remaining": "0",
                "ratelimit-reset": reset,
                "ratelimit-policy": "30;w=300",
            },
        ),
        method="POST",
    )
    result = crawl(source(), brands=BRANDS, settings={"LOG_LEVEL": "WARNING"})
    assert result.error is None and result.mentions == []
    assert len(api_server.hits(SESSION)) == 1
    assert "rate_limited" in faults(result)
    assert api_server.hits(SEARCH) == []


def test_post_urls():
    from crawlers.spiders.bluesky import post_url

    uri = "at://did:plc:abc/app.bsky.feed.post/3lbx"
    assert (
        post_url(uri, "a.bsky.social", "did:plc:abc")
        == "https://bsky.app/profile/a.bsky.social/post/3lbx"
    )
    assert (
        post_url(uri, "handle.invalid", "did:plc:abc")
        == "https://bsky.app/profile/did:plc:abc/post/3lbx"
    )
    assert post_url("at://did:plc:abc/app.bsky.feed.like/3lbx", "a", None) is None


def test_recorded_search_posts_pages(api_server, crawl):
    """A searchPosts answer bsky.social sent to bskyr's test suite (fixtures/README.md),
    split over two pages: the recorded `cursor` "25" is followed, the second page has
    none and ends the search; 2023 post views carry no `quoteCount`."""
    api_server.add(SESSION, Reply.fixture("bluesky", "session.json"), method="POST")
    api_server.add(
        SEARCH,
        Reply.fixture("bluesky", "recorded_search_page2.json"),
        when={"q": "redistricting", "cursor": "25"},
    )
    api_server.add(SEARCH, Reply.fixture("bluesky", "recorded_search_page1.json"))
    brands = [{"name": "Redistricting", "query": "redistricting"}]
    result = crawl(source(lookback="7300d"), brands=brands)
    assert result.error is None, result.log
    assert [h.param("cursor") for h in api_server.hits(SEARCH)] == [None, "25"]

    got = by_id(result.mentions)
    assert sorted(got) == sorted(
        [
            at("did:plc:xrs7uicyfcp5qbnhnqy7kucb", "3kghpycppiw2n"),
            at("did:plc:tb6kdi6xp44xmafqow5wqqd7", "3kgho46gd7q2h"),
            at("did:plc:qvcro2x63rhyll7npfzbulex", "3kghnlgjhwg2e"),
            at("did:plc:7powrkr5qduea3kd3yzx54lp", "3kgfu43c2bp2w"),
            at("did:plc:tb6kdi6xp44xmafqow5wqqd7", "3kgfr3hhued2z"),
        ]
    )
    reply = got[at("did:plc:xrs7uicyfcp5qbnhnqy7kucb", "3kghpycppiw2n")]
    assert reply.text.startswith("I was upset last year when redistricting meant")
    assert reply.author == "planetcarnival.bsky.social" and reply.author_reach is None
    assert reply.url == "https://bsky.app/profile/planetcarnival.bsky.social/post/3kghpycppiw2n"
    assert reply.created_at == datetime(2023, 12, 14, 0, 37, 20, 615000, tzinfo=UTC)
    assert reply.language == "en" and reply.brands == ["Redistricting"]
    assert (reply.engagement.likes, reply.engagement.replies, reply.engagement.shares) == (1, 0, 0)

    link = got[at("did:plc:tb6kdi6xp44xmafqow5wqqd7", "3kgho46gd7q2h")]
    # The record's text as typed, the link shortened by the client; curly quotes kept.
    assert link.text.endswith("Sietse Goffard, Asian Law Caucus\nmissionlocal.org/2023/12/redi...")
    assert "\u201cWe really see this" in link.text
    # An author labelled "!no-unauthenticated" is still a logged-in search's result.
    labelled = got[at("did:plc:qvcro2x63rhyll7npfzbulex", "3kghnlgjhwg2e")]
    assert labelled.author == "jonnypants.bsky.social"
    assert labelled.engagement.likes == 3
    last = got[at("did:plc:tb6kdi6xp44xmafqow5wqqd7", "3kgfr3hhued2z")]
    assert last.created_at == datetime(2023, 12, 13, 5, 51, 38, 668000, tzinfo=UTC)
    assert last.text.startswith("Great news!\U0001f389 The San Francisco Elections Commission")
    assert (last.engagement.likes, last.engagement.shares) == (1, 1)  # repostCount only
    news = got[at("did:plc:7powrkr5qduea3kd3yzx54lp", "3kgfu43c2bp2w")]
    assert "Independent Redistricting Commission" in news.text
