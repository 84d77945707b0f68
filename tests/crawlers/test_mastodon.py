"""Mastodon spider (hashtag timelines + full-text search), through the real Scrapy engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from crawlers.spiders.mastodon import MastodonSpider
from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import (
    BRANDS,
    LOOKBACK,
    by_id,
    configure,
    faults,
    log_lines,
    warnings_of,
)

TAG = "/api/v1/timelines/tag/acme"
SEARCH = "/api/v2/search"


def source(**extra):
    return {
        "type": "mastodon",
        "instance_url": "https://mastodon.example",
        "tags": ["acme"],
        "lookback": LOOKBACK,
        **extra,
    }


def link(base: str, path: str, newer: str, older: str) -> str:
    return f'<{base}{path}?max_id={older}>; rel="next", <{base}{path}?min_id={newer}>; rel="prev"'


def uri(account: str, status_id: str) -> str:
    return f"{account}/statuses/{status_id}"


ALICE = "https://fosstodon.org/users/alice"
WANG = "https://mastodon.example/users/wangwei"
BOB = "https://hachyderm.io/users/bob"
CAROL = "https://mastodon.example/users/carol"


def test_tag_timeline_search_paging_and_incremental_cursor(api_server, crawl):
    base = api_server.base_url
    api_server.add(
        TAG,
        Reply.fixture("mastodon", "tag_acme_run2.json"),
        when={"since_id": "113560900000000005"},
    )
    api_server.add(
        TAG,
        Reply.fixture(
            "mastodon",
            "tag_acme_page2.json",
            headers={"Link": link(base, TAG, "113560600000000002", "103000000000000001")},
        ),
        when={"max_id": "113560700000000003"},
    )
    api_server.add(
        TAG, Reply.fixture("mastodon", "empty.json"), when={"max_id": "103000000000000001"}
    )
    api_server.add(
        TAG,
        Reply.fixture(
            "mastodon",
            "tag_acme_page1.json",
            headers={
                "Link": link(base, TAG, "113560900000000005", "113560700000000003"),
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "297",
                "X-RateLimit-Reset": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
            },
        ),
    )
    api_server.add(
        SEARCH,
        Reply.fixture("mastodon", "search_acme_page1.json"),
        when={"q": "acme", "min_id": None},
    )
    api_server.add(SEARCH, Reply.fixture("mastodon", "search_acme_page2.json"))

    first = crawl(source(access_token="tok-123"), brands=BRANDS)
    assert first.error is None, first.log
    got = by_id(first.mentions)
    assert sorted(got) == sorted(
        [
            uri(ALICE, "113560900000000005"),
            uri(WANG, "113560800000000004"),
            uri(BOB, "113560700000000003"),
            uri(CAROL, "113560950000000012"),
            uri(BOB, "113560650000000011"),
        ]
    )

    rocket = got[uri(ALICE, "113560900000000005")]
    assert (
        rocket.text
        == "Just got the new #Acme Rocket 3 & it's amazing 🚀🔥 <3\n\nBattery lasts two days."
    )
    assert rocket.created_at == datetime(2026, 11, 26, 9, 30, 12, 345000, tzinfo=UTC)
    assert rocket.author == "alice@fosstodon.org"
    assert rocket.author_reach == 1520
    assert rocket.url == "https://fosstodon.org/@alice/113560900000000005"
    assert rocket.language == "en"
    assert (rocket.engagement.likes, rocket.engagement.replies, rocket.engagement.shares) == (
        12,
        3,
        5,
    )
    assert rocket.brands == ["Acme"]

    chinese = got[uri(WANG, "113560800000000004")]
    assert chinese.text.startswith("阿克米的新路由器又掉线了😡")
    assert chinese.language == "zh" and chinese.brands == ["Acme"]

    rant = got[uri(BOB, "113560700000000003")]
    assert rant.title == "product rant"  # the content warning
    assert rant.language is None
    assert rant.brands == ["Acme", "Globex"]
    assert '"fine"' in rant.text and "@acmesupport" in rant.text

    german = got[uri(BOB, "113560650000000011")]
    assert german.language == "de" and german.author_reach == 40210

    tag_hits = api_server.hits(TAG)
    # Paging follows the Link header and stops at the first post older than the lookback.
    assert [(h.param("max_id"), h.param("since_id")) for h in tag_hits] == [
        (None, None),
        ("113560700000000003", None),
    ]
    assert tag_hits[0].param("limit") == "40"
    assert tag_hits[0].headers["authorization"] == "Bearer tok-123"
    searched = sorted(h.param("q") for h in api_server.hits(SEARCH))
    assert searched == ['"globex corp"', "Globex", "acme", "阿克米"]
    assert all(h.param("type") == "statuses" for h in api_server.hits(SEARCH))
    assert first.stats["dropped"].get("no_brand") == 1  # the sunset post tagged #acme

    api_server.requests.clear()
    second = crawl(source(access_token="tok-123"), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == [uri(CAROL, "113561000000000006")]
    assert [h.param("since_id") for h in api_server.hits(TAG)] == ["113560900000000005"]
    acme_search = [h for h in api_server.hits(SEARCH) if h.param("q") == "acme"]
    assert [h.param("min_id") for h in acme_search] == ["113560950000000012"]


def test_no_tags_and_no_token_is_skipped_with_one_warning(caplog, tmp_path):
    with caplog.at_level(logging.INFO):
        spider = configure(MastodonSpider, source(tags=[]), tmp_path)
    assert spider.skip_reason.startswith("no tags configured and no access_token set")
    assert warnings_of(caplog) == [f"source 's' (mastodon) skipped: {spider.skip_reason}"]
    # With tags but no token the source runs, anonymously, tag timelines only.
    anonymous = configure(MastodonSpider, source(), tmp_path)
    assert anonymous.skip_reason is None and "Authorization" not in anonymous.default_headers


def test_bad_token_html_and_wrong_shape_are_faults(api_server, crawl):
    api_server.add(TAG, Reply.fixture("mastodon", "maintenance.html"))
    api_server.add("/api/v1/timelines/tag/globex", Reply.fixture("mastodon", "error_404.json"))
    api_server.add(SEARCH, Reply.fixture("mastodon", "error_401.json", status=401))
    result = crawl(
        source(tags=["acme", "globex"], access_token="expired"),
        brands=BRANDS[:1],
        settings={"LOG_LEVEL": "WARNING"},
    )
    assert result.error is None
    assert result.mentions == []
    failed = faults(result)
    assert failed.get("html_instead_of_json") == 1
    assert failed.get("parse_error") == 1  # an object where a list of statuses belongs
    assert failed.get("http_401") == 2  # both search terms of Acme
    line = log_lines(result.log, "had faults")
    assert len(line) == 1 and "The access token is invalid" in line[0]


def test_429_with_an_iso_reset_far_away_gives_up(api_server, crawl):
    # Mastodon dates X-RateLimit-Reset as ISO 8601, not seconds; an hour away is
    # longer than a crawl may wait, so no retry is sent into the closed window.
    reset = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    api_server.add(
        TAG,
        Reply.fixture(
            "mastodon",
            "error_429.json",
            status=429,
            headers={
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset,
            },
        ),
    )
    result = crawl(source(), brands=BRANDS)
    assert result.error is None
    assert len(api_server.hits(TAG)) == 1
    assert "rate_limited" in faults(result)
    # Without a token only the tag timeline is read, anonymously.
    assert api_server.hits(SEARCH) == []
    assert "authorization" not in api_server.hits(TAG)[0].headers


def test_link_header_next_url():
    from scrapy.http import Response

    from crawlers.spiders.mastodon import next_link

    both = Response(
        "https://m.example/x",
        headers={
            "Link": (
                '<https://m.example/api/v1/timelines/tag/acme?max_id=7>; rel="next", '
                '<https://m.example/api/v1/timelines/tag/acme?min_id=9>; rel="prev"'
            )
        },
    )
    assert next_link(both) == "https://m.example/api/v1/timelines/tag/acme?max_id=7"
    prev_only = Response(
        "https://m.example/x",
        headers={"Link": '<https://m.example/api/v1/timelines/tag/acme?min_id=9>; rel="prev"'},
    )
    assert next_link(prev_only) is None
    assert next_link(Response("https://m.example/x")) is None


# Two hashtag-timeline pages a real Mastodon server answered to Mastodon.py's test suite
# (fixtures/README.md), and the Link header recorded with the first of them.
RECORDED_TAG = "fgiztsshwiaqqiztpmmjbtvmescsculuvmgjgopwoeidbcrixp"
RECORDED_PATH = f"/api/v1/timelines/tag/{RECORDED_TAG}"
RECORDED_LINK = (
    f"<http://localhost:3000{RECORDED_PATH}?limit=10&max_id=109440145720029201>;\n"
    f' rel="next", <http://localhost:3000{RECORDED_PATH}?limit=10&min_id=109440145747544201>;\n'
    ' rel="prev"'
).replace("\n", "")


def test_recorded_tag_timeline_follows_the_servers_link_and_resumes_with_since_id(
    api_server, crawl
):
    # The recorded Link points at the recording server; here it points at this one.
    link = RECORDED_LINK.replace("http://localhost:3000", api_server.base_url)
    api_server.add(
        RECORDED_PATH,
        Reply.fixture("mastodon", "recorded_tag_timeline_page2.json"),
        when={"max_id": "109440145720029201"},
    )
    api_server.add(
        RECORDED_PATH,
        Reply.fixture("mastodon", "recorded_tag_timeline_page1.json", headers={"Link": link}),
        when={"max_id": None},
    )
    brands = [{"name": "Toot", "query": '"toot number"'}]
    recorded = source(tags=[RECORDED_TAG], instance_url="http://localhost:3000", lookback="7300d")
    result = crawl(recorded, brands=brands)
    assert result.error is None, result.log
    first, second = api_server.hits(RECORDED_PATH)
    assert (first.param("limit"), first.param("since_id")) == ("40", None)
    # The next page is the server's own URL, parameters and all.
    assert (second.param("limit"), second.param("max_id")) == ("10", "109440145720029201")

    got = by_id(result.mentions)
    ids = ["109440145747544201", "109440145744480214", "109440145716918977", "109440145713924575"]
    assert sorted(got) == sorted(uri("http://localhost:3000/users/mastodonpy_test", i) for i in ids)
    toot = got[uri("http://localhost:3000/users/mastodonpy_test", ids[0])]
    assert toot.text == f"Toot number 19! #{RECORDED_TAG}"
    assert toot.title is None  # spoiler_text is ""
    assert toot.created_at == datetime(2022, 12, 1, 19, 48, 18, 933000, tzinfo=UTC)
    assert toot.url == f"http://localhost:3000/@mastodonpy_test/{ids[0]}"
    assert toot.author == "mastodonpy_test" and toot.author_reach == 0
    assert toot.language == "ja"
    assert (toot.engagement.likes, toot.engagement.replies, toot.engagement.shares) == (0, 0, 0)
    assert toot.brands == ["Toot"]

    # The next crawl asks only for what is newer than the newest status seen.
    again = crawl(recorded, brands=brands)
    assert again.error is None and again.mentions == []
    assert api_server.hits(RECORDED_PATH)[2].param("since_id") == ids[0]
