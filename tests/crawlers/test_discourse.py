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


def test_recorded_answers_from_discourse_front_end_fixtures(api_server, crawl):
    """Two answers kept in Discourse's own front-end test fixtures (fixtures/README.md):
    a new site's `/search.json` for "discourse" and a meta.discourse.org search for
    "dev" (2015). Neither says there is another page; blurbs are cut by Discourse with
    "..." at either end; topic titles only on a topic's first post."""

    def term(word: str):
        return lambda r: (r.param("q") or "").startswith(f"{word} order:latest after:")

    api_server.add(SEARCH, Reply.fixture("discourse", "recorded_search_welcome.json"), when=term("discourse"))  # fmt: skip
    api_server.add(SEARCH, Reply.fixture("discourse", "recorded_query_meta_dev.json"), when=term("dev"))  # fmt: skip
    source = {
        "type": "discourse",
        "forum_url": "https://meta.discourse.org",
        "lookback": "7300d",
    }
    brands = [{"name": "Discourse", "query": "discourse OR dev"}]
    result = crawl(source, brands=brands)
    assert result.error is None, result.log
    assert sorted(h.param("q").split(" ")[0] for h in api_server.hits(SEARCH)) == [
        "dev",
        "discourse",
    ]  # one page each: no more_full_page_results
    assert all(h.param("page") is None for h in api_server.hits(SEARCH))

    got = {m.source_id: m for m in result.mentions}
    assert sorted(got) == ["10", "38398", "4782", "48887", "53437"]
    # "Development mode super slow" names neither "discourse" nor "dev" as a word.
    assert result.stats["dropped"].get("no_brand") == 1

    welcome = got["10"]
    assert welcome.title == "Welcome to Discourse"
    assert welcome.url == "https://meta.discourse.org/t/welcome-to-discourse/7/1"
    assert welcome.author == "system" and welcome.engagement.likes == 0
    assert welcome.engagement.replies == 0
    assert welcome.created_at == datetime(2020, 12, 22, 5, 50, 15, 898000, tzinfo=UTC)
    assert welcome.text.startswith("The first paragraph of this pinned topic")
    assert "It\u2019s important!" in welcome.text

    guide = got["48887"]
    assert guide.title == "Beginners Guide to Install Discourse on Ubuntu for Development"
    assert guide.url == (
        "https://meta.discourse.org/t/"
        "beginners-guide-to-install-discourse-on-ubuntu-for-development/14727/1"
    )
    assert guide.author == "techAPJ"
    assert (guide.engagement.likes, guide.engagement.replies) == (15, 35)  # topic's replies
    assert guide.created_at == datetime(2014, 4, 12, 22, 22, 7, 930000, tzinfo=UTC)
    assert guide.text.startswith("So you want to set up Discourse on Ubuntu")

    middle = got["38398"]  # a blurb cut on both sides
    assert middle.text.startswith("...ed to do is go to /admin/docker , refresh once")
    assert middle.text.endswith("as recommended in Discourse as Your F...")
    email = got["4782"]
    assert email.title == "Getting dev instance to send email?" and email.author == "hamburglar"
    assert email.created_at == datetime(2013, 2, 8, 23, 14, 40, 18000, tzinfo=UTC)
