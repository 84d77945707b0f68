"""The egress policy through the real Scrapy engine, against hostile local servers.

Every crawl here runs with private addresses refused except the source's own
server (`crawl.allowed_private_endpoints: [127.0.0.1:<its port>]`, set by the
`crawl` fixture), so `other_server` -- another port on the same machine -- stands
for an internal service or another host. The servers record what they receive:
the assertions are about requests that never arrived.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brandpulse.config import ConfigError, parse_config
from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import BRANDS, faults

NOW = datetime.now(UTC)
TOKEN = "s3cr3t-mastodon-token"


def forum_page(posts: list[tuple[int, str]], next_href: str | None) -> str:
    items = "".join(
        f'<div class="post" id="p{pid}"><a class="link" href="/t/{pid}">t</a>'
        f'<span class="time">{(NOW - timedelta(minutes=pid)).isoformat()}</span>'
        f'<div class="text">{text}</div></div>'
        for pid, text in posts
    )
    nxt = f'<a class="next" href="{next_href}">next</a>' if next_href else ""
    return f"<html><body>{items}{nxt}</body></html>"


def forum(base: str, **extra):
    return {
        "type": "html_forum",
        "start_urls": [f"{base}/list"],
        "selectors": {
            "post": "div.post",
            "id": "::attr(id)",
            "text": "div.text",
            "url": "a.link::attr(href)",
            "time": "span.time::text",
            "next_page": "a.next::attr(href)",
        },
        "lookback": "1d",
        **extra,
    }


ROBOTS = Reply(body="User-agent: *\nAllow: /\n", content_type="text/plain")


@pytest.mark.parametrize(
    "hostile",
    [
        "file:///etc/passwd",
        "data:text/html,<div class=post>x</div>",
        "ftp://127.0.0.1/secret",
        "OTHER/internal/_search",  # another local port (an Elasticsearch-like service)
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:OTHERPORT/mapped",
    ],
)
def test_forum_next_link_outside_the_policy_is_never_fetched(
    api_server, other_server, crawl, hostile
):
    hostile = hostile.replace("OTHERPORT", str(other_server.port)).replace(
        "OTHER", other_server.base_url
    )
    api_server.add("/robots.txt", ROBOTS)
    api_server.add(
        "/list", Reply.html(forum_page([(1, "Acme router review"), (2, "acme again")], hostile))
    )
    result = crawl(forum(api_server.base_url), brands=BRANDS)
    assert result.error is None, result.log
    # Every legitimate post arrived; the hostile link was refused and counted.
    assert sorted(m.source_id for m in result.mentions) == ["p1", "p2"]
    assert other_server.requests == []
    assert [r.path for r in api_server.requests if r.path not in ("/robots.txt", "/list")] == []
    assert faults(result).get("egress_refused") == 1, result.stats
    assert "/etc/passwd" not in "".join(m.text for m in result.mentions)


def test_file_start_url_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "brands": BRANDS,
                "sources": [
                    {
                        "type": "html_forum",
                        "name": "f",
                        "start_urls": ["file:///etc/passwd"],
                        "selectors": {"post": "p", "text": "p", "time": "p"},
                    },
                    {"type": "rss", "name": "r", "feeds": ["ftp://example.org/feed.xml"]},
                    {"type": "hackernews", "name": "h", "base_url": "file:///tmp"},
                ],
            },
            env={},
        )
    problems = err.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("sources.0.html_forum.start_urls")
    assert "'file:///etc/passwd' is not an http(s) URL" in problems[0]
    assert problems[1].startswith("sources.1.rss.feeds") and "ftp://" in problems[1]
    assert problems[2].startswith("sources.2.hackernews.base_url")


def mastodon(base: str, **extra):
    return {
        "type": "mastodon",
        "instance_url": base,
        "tags": ["acme"],
        "access_token": TOKEN,
        "lookback": "1d",
        **extra,
    }


def status(sid: int, text: str) -> dict:
    return {
        "id": str(sid),
        "uri": f"https://mastodon.example/users/a/statuses/{sid}",
        "created_at": (NOW - timedelta(minutes=sid)).isoformat(),
        "content": f"<p>{text}</p>",
        "account": {"acct": "a", "followers_count": 3},
    }


TAG = "/api/v1/timelines/tag/acme"
SEARCH = "/api/v2/search"


def no_search_results(server) -> None:
    # With a token the spider also runs full-text searches; they find nothing here.
    server.add(SEARCH, Reply.json({"statuses": []}))


def test_mastodon_link_to_another_host_is_refused_and_gets_no_token(
    api_server, other_server, crawl
):
    api_server.add(
        TAG,
        Reply.json(
            [status(1, "acme one"), status(2, "acme two")],
            headers={"Link": f'<{other_server.base_url}{TAG}?max_id=2>; rel="next"'},
        ),
    )
    other_server.add(TAG, Reply.json([status(3, "acme from elsewhere")]))
    no_search_results(api_server)
    result = crawl(mastodon(api_server.base_url), brands=BRANDS)
    assert result.error is None, result.log
    assert sorted(m.source_id.rsplit("/", 1)[1] for m in result.mentions) == ["1", "2"]
    assert other_server.requests == []
    assert faults(result) == {"egress_refused": 1}
    # The token did go to the instance itself.
    assert api_server.hits(TAG)[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_an_opted_in_other_host_is_followed_without_the_token(api_server, other_server, crawl):
    api_server.add(
        TAG,
        Reply.json(
            [status(1, "acme one")],
            headers={"Link": f'<{other_server.base_url}{TAG}?max_id=1>; rel="next"'},
        ),
    )
    other_server.add(TAG, Reply.json([status(3, "acme from elsewhere")]))
    no_search_results(api_server)
    result = crawl(
        mastodon(api_server.base_url, allowed_hosts=["127.0.0.1"]),
        brands=BRANDS,
        settings={
            "BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS": [api_server.endpoint, other_server.endpoint]
        },
    )
    assert result.error is None, result.log
    assert sorted(m.source_id.rsplit("/", 1)[1] for m in result.mentions) == ["1", "3"]
    assert len(other_server.requests) == 1
    assert "authorization" not in other_server.requests[0].headers
    assert TOKEN not in repr(other_server.requests[0])


def test_redirects_pass_through_the_policy(api_server, other_server, crawl):
    api_server.add(
        TAG,
        Reply(status=302, headers={"Location": f"{other_server.base_url}/steal"}),
        when={"since_id": None},
    )
    api_server.add(SEARCH, Reply(status=301, headers={"Location": "file:///etc/passwd"}))
    result = crawl(mastodon(api_server.base_url), brands=BRANDS)
    assert result.error is None, result.log
    assert other_server.requests == []
    assert result.mentions == []
    found = faults(result)
    # The redirect to the other port was a new request, refused by the policy;
    # the one to file:// was not followed at all (the 301 stays an error).
    assert found["egress_refused"] == 1, result.stats
    assert "/steal" in result.stats["fault_examples"]["egress_refused"]
    assert found["http_301"] >= 1


def test_a_name_resolving_to_a_refused_address_is_refused_after_dns(
    api_server, other_server, crawl
):
    # `localhost` is a host name, not an address: only the resolver can tell
    # that it points at a loopback port the policy does not allow.
    api_server.add(
        TAG,
        Reply.json(
            [status(1, "acme one")],
            headers={"Link": f'<http://localhost:{other_server.port}{TAG}?max_id=1>; rel="next"'},
        ),
    )
    no_search_results(api_server)
    result = crawl(mastodon(api_server.base_url, allowed_hosts=["localhost"]), brands=BRANDS)
    assert result.error is None, result.log
    assert other_server.requests == []
    assert [m.source_id.rsplit("/", 1)[1] for m in result.mentions] == ["1"]
    assert faults(result) == {"egress_refused": 1}, result.stats
    assert "loopback" in result.stats["fault_examples"]["egress_refused"]
