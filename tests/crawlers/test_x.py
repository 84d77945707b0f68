"""X API v2 recent search spider, crawled through the real Scrapy engine."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import BRANDS, LOOKBACK, by_id, faults, log_lines

PATH = "/2/tweets/search/recent"


def source(**extra):
    return {"type": "x", "bearer_token": "AAAA-test-token", "lookback": LOOKBACK, **extra}


def acme_only(request) -> bool:
    return "acme" in (request.param("query") or "")


def test_pages_users_and_incremental_cursor(api_server, crawl):
    api_server.add(
        PATH,
        Reply.fixture("x", "search_run2.json"),
        when=lambda r: r.param("since_id") == "1861500000000000005",
    )
    api_server.add(
        PATH,
        Reply.fixture("x", "search_page2.json"),
        when={"next_token": "b26v89c19zqg8o3fpzhm6iuo9uyu7x2rpfzhxdq0lvw1p"},
    )
    api_server.add(PATH, Reply.fixture("x", "search_page1.json"), when=acme_only)
    api_server.add(PATH, Reply.fixture("x", "search_empty.json"))  # Globex: nothing

    first = crawl(source(), brands=BRANDS)
    assert first.error is None, first.log
    got = by_id(first.mentions)
    # The retweet (…0002) repeats …0001, which is kept on its own.
    assert sorted(got) == [
        "1861100000000000001",
        "1861300000000000003",
        "1861400000000000004",
        "1861500000000000005",
    ]

    recall = got["1861500000000000005"]
    assert (
        recall.text
        == "Acme Rocket 3 chargers recalled & replaced for free >> https://t.co/abc123 🔌🔥"
    )
    assert recall.created_at == datetime(2026, 11, 26, 15, 4, 5, tzinfo=UTC)
    assert recall.author == "acme_watch"
    assert recall.author_reach == 48213
    assert recall.url == "https://x.com/acme_watch/status/1861500000000000005"
    assert recall.language == "en"
    assert (recall.engagement.likes, recall.engagement.replies, recall.engagement.shares) == (
        812,
        57,
        233 + 19,
    )
    assert recall.brands == ["Acme"]

    chinese = got["1861400000000000004"]
    assert chinese.brands == ["Acme"] and chinese.language == "zh"
    assert chinese.author == "xiaoli_tech" and chinese.author_reach == 915
    # A long post's full text comes from note_tweet, not the truncated `text`.
    assert got["1861300000000000003"].text.endswith("Full details: acme.example/recall")
    assert "&amp;" not in got["1861300000000000003"].text

    hits = api_server.hits(PATH)
    acme_hits = [h for h in hits if "acme" in h.param("query")]
    assert [h.param("next_token") for h in acme_hits] == [
        None,
        "b26v89c19zqg8o3fpzhm6iuo9uyu7x2rpfzhxdq0lvw1p",
    ]
    assert acme_hits[0].param("query") == '("acme" OR "阿克米") -is:retweet'
    assert acme_hits[0].param("since_id") is None
    assert acme_hits[0].param("start_time")  # first crawl: a time window (clamped to 7 days)
    assert acme_hits[0].param("expansions") == "author_id"
    assert acme_hits[0].headers["authorization"] == "Bearer AAAA-test-token"

    api_server.requests.clear()
    second = crawl(source(), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == ["1861600000000000006"]
    acme_hits = [h for h in api_server.hits(PATH) if "acme" in h.param("query")]
    assert [h.param("since_id") for h in acme_hits] == ["1861500000000000005"]
    assert acme_hits[0].param("start_time") is None


def test_missing_token_skips_the_source_with_one_line(api_server, crawl):
    # WARNING level: the harness keeps only the log's tail, and INFO stats would push
    # the skip line out of it.
    result = crawl(source(bearer_token=None), brands=BRANDS, settings={"LOG_LEVEL": "WARNING"})
    assert result.error is None
    assert result.mentions == []
    assert "bearer_token is not set" in result.stats["skipped"]
    assert (
        len(log_lines(result.log, "WARNING: source 'test-x' (x) skipped: bearer_token is not set"))
        == 1
    )
    assert api_server.requests == []


def test_429_with_a_far_reset_gives_up_without_hammering(api_server, crawl):
    reset = str(int(time.time()) + 3600)
    api_server.add(
        PATH,
        Reply.fixture(
            "x",
            "error_429.json",
            status=429,
            headers={
                "x-rate-limit-limit": "60",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": reset,
            },
        ),
    )
    result = crawl(source(), brands=BRANDS[:1])
    assert result.error is None
    assert result.mentions == []
    assert len(api_server.hits(PATH)) == 1  # no retry into a closed window
    assert "rate_limited" in faults(result)
    assert "x-rate-limit-reset" not in result.log.lower() or "giving up" in result.log


def test_429_with_a_near_reset_waits_and_retries(api_server, crawl):
    reset = str(int(time.time()) + 2)
    api_server.add(
        PATH,
        Reply.fixture(
            "x",
            "error_429.json",
            status=429,
            headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset},
        ),
        Reply.fixture("x", "search_page2.json"),
    )
    started = time.monotonic()
    result = crawl(source(), brands=BRANDS[:1])
    assert result.error is None, result.log
    assert len(api_server.hits(PATH)) == 2
    assert time.monotonic() - started >= 0.9  # it waited for the window, not just retried
    assert "1861100000000000001" in by_id(result.mentions)


def test_error_bodies_and_html_are_faults_named_in_the_log(api_server, crawl):
    brands = [*BRANDS, {"name": "Initech", "query": "initech"}]
    api_server.add(PATH, Reply.fixture("x", "error_401.json", status=401), when=acme_only)
    api_server.add(
        PATH,
        Reply.fixture("x", "error_400_query.json", status=400),
        when=lambda r: "globex" in r.param("query"),
    )
    api_server.add(PATH, Reply.html(status=200))
    result = crawl(source(), brands=brands, settings={"LOG_LEVEL": "WARNING"})
    assert result.error is None
    assert result.mentions == []
    failed = faults(result)
    assert {"http_401", "http_400", "html_instead_of_json"} <= set(failed)
    fault_lines = log_lines(result.log, "had faults")
    assert len(fault_lines) == 1
    assert "Unauthorized" in fault_lines[0]
    assert "missing closing parenthesis" in fault_lines[0]


def test_language_codes_and_reset_times():
    from crawlers.spiders.social_common import language_code, seconds_until

    assert [language_code(v) for v in ("en", "zh-Hant", "pt_BR", "und", "qme", "", None, 3)] == [
        "en",
        "zh",
        "pt",
        None,
        None,
        None,
        None,
        None,
    ]
    now = 1_800_000_000.0
    assert seconds_until("1800000030", now=now) == 30.0  # X, Bluesky: epoch seconds
    assert seconds_until("2027-01-15T08:00:30.5Z", now=now) == 30.5  # Mastodon: ISO 8601
    assert seconds_until("1799999000", now=now) == 0.0  # already past: no negative pause
    assert seconds_until("soon", now=now) is None


BITCOIN = [{"name": "Bitcoin", "query": "bitcoin OR btc"}]


def test_recorded_search_answer_with_users_metrics_and_no_next_token(api_server, crawl):
    """x/recorded_search_bitcoin.json: a recorded recent-search answer (2021-04-09, ten
    tweets, nine users in `includes`: one user wrote two; `meta` without `next_token`;
    no `lang`, which that request did not ask for; see the fixtures' README). Every tweet
    is a mention with its recorded author, follower count, metrics and UTC time; the
    crawl ends on the page without a next token."""
    api_server.add(PATH, Reply.fixture("x", "recorded_search_bitcoin.json"))
    result = crawl(source(lookback="2500d"), brands=BITCOIN)
    assert result.error is None, result.log
    assert faults(result) == {}, result.log
    got = by_id(result.mentions)
    assert len(got) == 10 and len(api_server.hits(PATH)) == 1

    advice = got["1380581922200424449"]
    assert advice.text.startswith("NOT FINANCIAL ADVICE:\n\nIf you’re already 100% invested in #Bitcoin")
    assert advice.created_at == datetime(2021, 4, 9, 18, 2, 34, tzinfo=UTC)
    assert advice.author == "jeitoapp" and advice.author_reach == 1838
    assert advice.url == "https://x.com/jeitoapp/status/1380581922200424449"
    assert (advice.engagement.likes, advice.engagement.replies, advice.engagement.shares) == (0, 2, 0)
    assert advice.language is None

    cycles = got["1380581024585945099"]
    assert cycles.author == "rBryer23" and cycles.author_reach == 12530
    assert (cycles.engagement.likes, cycles.engagement.replies, cycles.engagement.shares) == (16, 1, 3)

    blocks = [m for m in result.mentions if m.author == "BCypher1"]  # one user, two tweets
    assert sorted(m.source_id for m in blocks) == ["1380579558693330945", "1380581538824249345"]
    assert {m.author_reach for m in blocks} == {2}

    api_server.requests.clear()
    again = crawl(source(lookback="2500d"), brands=BITCOIN)
    assert again.error is None, again.log
    # The newest tweet is years older than recent search's 7 days, so its id cannot be a
    # since_id (X refuses one that old): the window start is asked for instead.
    (hit,) = api_server.hits(PATH)
    assert hit.param("since_id") is None and hit.param("start_time")
    assert again.mentions == []  # the same answer again: all seen
