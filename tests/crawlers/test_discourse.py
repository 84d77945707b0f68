"""Discourse spider: posts joined with topics, links on forum_url, paging."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.crawlers.conftest import Reply

SEARCH = "/search.json"


def acme(page: str | None):
    return lambda r: (
        (r.param("q") or "").startswith("acme order:latest after:") and r.param("page") == page
    )


def test_posts_become_mentions_with_forum_links(api_server, crawl):
    api_server.add(SEARCH, Reply.fixture("discourse", "search_page1.json"), when=acme(None))
    api_server.add(SEARCH, Reply.fixture("discourse", "search_page2.json"), when=acme("2"))
    api_server.add(SEARCH, Reply.fixture("discourse", "empty.json"))
    result = crawl({"type": "discourse", "forum_url": "https://forum.example.org/"})
    assert result.error is None
    got = {m.source_id: m for m in result.mentions}
    assert sorted(m.source_id for m in result.mentions) == ["89950", "90007", "90011"]  # none twice
    first = got["90011"]
    assert first.url == "https://forum.example.org/t/leaving-acme-cloud/4501/1"
    assert first.title == "Leaving Acme Cloud"
    assert (
        first.text
        == "Migrating our cluster from Acme Cloud to self-hosted – lessons learned & pitfalls…"
    )
    assert first.author == "maria" and first.engagement.likes == 12
    assert first.created_at == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    reply = got["90007"]
    assert reply.title is None and reply.url.endswith("/t/load-balancer-drops-websockets/4488/7")
    assert reply.created_at == datetime(2024, 1, 2, 9, 15, 30, 123000, tzinfo=UTC)
    assert "Acme’s load balancer" in reply.text


def test_rate_limited_forum_is_waited_out(api_server, crawl):
    api_server.add(
        SEARCH,
        Reply.fixture(
            "discourse", "error_rate_limited.json", status=429, headers={"Retry-After": "1"}
        ),
        Reply.fixture("discourse", "search_page2.json"),
        when=acme(None),
    )
    api_server.add(SEARCH, Reply.fixture("discourse", "empty.json"))
    result = crawl(
        {"type": "discourse", "forum_url": "https://forum.example.org", "brands": ["Acme"]}
    )
    assert result.error is None
    assert [m.source_id for m in result.mentions] == ["89950"]
    assert result.stats["failed"] == {}
    calls = [h for h in api_server.hits(SEARCH) if acme(None)(h)]
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 0.95
