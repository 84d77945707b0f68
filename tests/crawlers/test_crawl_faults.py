"""Faults stay local: each kind is counted, logged once, and the crawl ends.

Run through the Hacker News spider (the simplest request shape); the handling
under test is the base spider's, shared by every source.
"""

from __future__ import annotations

import json
import time

from tests.crawlers.conftest import Reply

SEARCH = "/api/v1/search_by_date"
ACME_ONLY = [{"name": "Acme", "query": "acme"}]
TWO_BRANDS = [{"name": "Acme", "query": "acme"}, {"name": "Globex", "query": "globex"}]


def hits_page(*hits: dict, page: int = 0, pages: int = 1) -> dict:
    return {"hits": list(hits), "hitsPerPage": 100, "nbHits": len(hits), "nbPages": pages, "page": page,
            "params": "", "processingTimeMS": 1, "query": ""}  # fmt: skip


def hit(object_id: str, text: str, created: int = 1704189600, **extra) -> dict:
    return {"objectID": object_id, "created_at_i": created, "created_at": "2024-01-02T10:00:00Z", "author": "someone",
            "comment_text": text, "_tags": ["comment"], "points": None, "story_id": 1, **extra}  # fmt: skip


def query_is(term: str):
    return lambda r: r.param("query") == term


def test_500_stays_with_its_query_and_keeps_its_cursor(api_server, crawl, tmp_path):
    api_server.add(
        SEARCH, Reply.json({"message": "internal error"}, status=500), when=query_is("acme")
    )
    api_server.add(
        SEARCH, Reply.json(hits_page(hit("7", "Globex is fine"))), when=query_is("globex")
    )
    result = crawl({"type": "hackernews"}, brands=TWO_BRANDS)
    assert result.error is None
    assert [m.source_id for m in result.mentions] == ["7"]  # the other query went on
    assert result.stats["failed"] == {"http_500": 1} and result.stats["errors"] == 1
    assert (
        len([h for h in api_server.hits(SEARCH) if h.param("query") == "acme"]) == 2
    )  # one retry, bounded
    assert result.log.count("had faults") == 1
    assert "http_500 x1 (first: GET http://127.0.0.1" in result.log
    cursor = json.loads((tmp_path / "state" / "test-hackernews.cursor.json").read_text())
    assert list(cursor["queries"]) == ["brand:Globex|term:globex"]  # acme is re-fetched next time


def test_429_with_retry_after_is_waited_out(api_server, crawl):
    api_server.add(
        SEARCH,
        Reply.json({"message": "slow down"}, status=429, headers={"Retry-After": "1"}),
        Reply.json(hits_page(hit("8", "acme rocks"))),
    )
    result = crawl({"type": "hackernews"}, brands=ACME_ONLY)
    assert result.error is None and [m.source_id for m in result.mentions] == ["8"]
    assert result.stats["failed"] == {}
    first, second = api_server.hits(SEARCH)
    assert second.at - first.at >= 0.95


def test_429_asking_for_an_hour_abandons_the_source_quickly(api_server, crawl):
    api_server.add(
        SEARCH, Reply.json({"message": "quota"}, status=429, headers={"Retry-After": "3600"})
    )
    started = time.monotonic()
    result = crawl(
        {"type": "hackernews"}, brands=TWO_BRANDS, settings={"BRANDPULSE_MAX_RETRY_AFTER": 5}
    )
    assert result.error is None and result.mentions == []
    # The bound is on the pause it must not take (3600 s), not on how fast this machine is.
    assert time.monotonic() - started < 600
    failed = result.stats["failed"]
    assert failed.get("rate_limited", 0) >= 1
    assert sum(failed.values()) == 2  # both queries accounted for, nothing silently lost
    assert "3600s" in result.stats["fault_examples"]["rate_limited"]


def test_timeout_is_a_fault_and_retries_are_bounded(api_server, crawl):
    api_server.add(SEARCH, Reply.json(hits_page(hit("9", "acme"))), when=None)
    api_server.routes[-1].replies[0].delay = 2.0
    result = crawl({"type": "hackernews"}, brands=ACME_ONLY, settings={"DOWNLOAD_TIMEOUT": 0.5})
    assert result.error is None and result.mentions == []
    assert result.stats["failed"] == {"timeout": 1}
    assert len(api_server.hits(SEARCH)) == 2


def test_malformed_json_and_html_instead_of_json(api_server, crawl):
    api_server.add(SEARCH, Reply(body=b'{"hits": [{"objectID": "1",'), when=query_is("acme"))
    api_server.add(SEARCH, Reply.html(), when=query_is("globex"))
    result = crawl({"type": "hackernews"}, brands=TWO_BRANDS)
    assert result.error is None and result.mentions == []
    assert result.stats["failed"] == {"bad_json": 1, "html_instead_of_json": 1}
    assert "Service unavailable" in result.stats["fault_examples"]["html_instead_of_json"]


def test_html_error_page_with_error_status(api_server, crawl):
    api_server.add(SEARCH, Reply.html("<html><body>Bad gateway</body></html>", status=502))
    result = crawl({"type": "hackernews"}, brands=ACME_ONLY, settings={"RETRY_TIMES": 0})
    assert result.stats["failed"] == {"http_502": 1}
    assert "Bad gateway" in result.stats["fault_examples"]["http_502"]


def test_a_bad_item_costs_only_itself(api_server, crawl):
    page = hits_page(
        {"created_at_i": 1704189600, "comment_text": "acme without an id"},
        hit("11", "acme with a broken time", created=None, created_at="yesterday-ish"),
        hit("12", "acme is fine"),
    )
    api_server.add(SEARCH, Reply.json(page))
    result = crawl({"type": "hackernews"}, brands=ACME_ONLY)
    assert [m.source_id for m in result.mentions] == ["12"]
    assert result.stats["failed"] == {"bad_item": 2}
    assert "objectID" in result.stats["fault_examples"]["bad_item"]  # names what is wrong


def test_odd_encodings_are_decoded_not_dropped(api_server, crawl):
    good = json.dumps(
        hits_page(hit("21", "Acme in a CafÃ© â€” itâ€™s fine 😀"), hit("22", "PLACEHOLDER"))
    )
    body = good.encode("utf-8").replace(
        b"PLACEHOLDER", b"acme caf\xe9 cr\xe8me"
    )  # invalid UTF-8 bytes
    api_server.add(SEARCH, Reply(body=body))
    result = crawl({"type": "hackernews"}, brands=ACME_ONLY)
    got = {m.source_id: m.text for m in result.mentions}
    assert got == {"21": "Acme in a Café — it’s fine 😀", "22": "acme café crème"}
    assert result.stats["failed"] == {}


def endless(delay: float = 0.0) -> list[Reply]:
    # The same post on every page: a source that keeps saying "there is more".
    return [
        Reply(body=json.dumps(hits_page(hit("31", "acme again"), page=i, pages=1000)), delay=delay)
        for i in range(60)
    ]


def test_paging_is_bounded_by_max_pages(api_server, crawl):
    api_server.add(SEARCH, *endless())
    result = crawl({"type": "hackernews", "max_pages": 3}, brands=ACME_ONLY)
    assert result.error is None
    assert len(api_server.hits(SEARCH)) == 3
    assert result.stats["queries_truncated"] == 1
    assert [m.source_id for m in result.mentions] == ["31"]  # same post on every page: once


def test_a_slow_endless_source_is_stopped_by_the_crawl_timeout(api_server, crawl):
    api_server.add(SEARCH, *endless(delay=0.5))
    result = crawl({"type": "hackernews", "max_pages": 1000}, brands=ACME_ONLY, timeout=2)
    assert result.error is None
    assert result.stats["finish_reason"] == "closespider_timeout"  # ended by the timeout
    assert [m.source_id for m in result.mentions] == ["31"]
    assert len(api_server.hits(SEARCH)) < 10


def test_redirects_do_not_leak_the_concurrency_gate(api_server, crawl):
    # Every search answers with a redirect (RedirectMiddleware re-issues the
    # request before our middleware sees the response); with concurrency 1 a leak
    # would stall the crawl after the first query until the crawl timeout.
    api_server.add(SEARCH, Reply(status=302, headers={"Location": "/moved"}, body=b""))
    api_server.add("/moved", Reply.json(hits_page(hit("51", "acme and globex"))))
    result = crawl({"type": "hackernews", "concurrency": 1}, brands=TWO_BRANDS, timeout=30)
    assert result.error is None and result.stats["finish_reason"] == "finished"
    assert len(api_server.hits(SEARCH)) == 2
    assert [m.source_id for m in result.mentions] == ["51"]  # "finished": no stall to the timeout


def test_a_pause_past_the_crawl_timeout_is_not_slept(api_server, crawl):
    api_server.add(
        SEARCH, Reply.json({"message": "slow down"}, status=429, headers={"Retry-After": "60"})
    )
    started = time.monotonic()
    result = crawl({"type": "hackernews"}, brands=ACME_ONLY, timeout=5)
    assert result.error is None  # ended by itself, not killed by the runner
    assert time.monotonic() - started < 60  # the 60 s pause was not slept
    assert "CLOSESPIDER_TIMEOUT" in result.stats["fault_examples"]["rate_limited"]
