"""The demo's local sources answer in each API's shape and publish posts on time."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

from sandbox.corpus import build_corpus, publish_burst
from sandbox.sources import SourcesServer


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp), dict(resp.headers)


def test_corpus_is_reproducible_and_mixed():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    a, b = build_corpus(now), build_corpus(now)
    assert a.history == b.history
    assert 150 < len(a.history) < 600
    assert {p.language for p in a.history} == {"en", "zh"}
    assert {p.tone for p in a.history} >= {"negative", "neutral", "positive", "noise"}
    assert all(p.created_at < now for p in a.history)
    assert all(p.tone == "negative" for p in a.burst)


def test_reddit_pages_with_after_and_hides_future_posts():
    now = datetime.now(UTC)
    corpus = build_corpus(now)
    future = publish_burst(corpus.burst, now + timedelta(hours=1), timedelta(minutes=10))
    with SourcesServer() as server:
        server.publish(corpus.history + future)
        base = server.base_urls()["reddit"]
        seen: list[str] = []
        after = ""
        for _ in range(50):
            body, _ = _get(f"{base}/search.json?q=acme&sort=new&limit=25&raw_json=1&after={after}")
            assert body["kind"] == "Listing"
            children = body["data"]["children"]
            seen += [c["data"]["name"] for c in children]
            assert all(c["kind"] == "t3" for c in children)
            after = body["data"]["after"]
            if not after:
                break
        assert len(seen) == len(set(seen))
        visible = sum(1 for p in corpus.history if "acme" in p.text.lower() and p.id % 2)
        assert len(seen) == visible  # every English odd-id post about acme, none of the future
        body, _ = _get(f"{base}/search.json?q=acme&sort=new&limit=100")
        newest = body["data"]["children"][0]["data"]["created_utc"]
        assert newest <= datetime.now(UTC).timestamp()


def test_hackernews_filters_by_created_at_and_mastodon_links_pages():
    now = datetime.now(UTC)
    corpus = build_corpus(now)
    with SourcesServer() as server:
        server.publish(corpus.history)
        urls = server.base_urls()
        since = int((now - timedelta(hours=6)).timestamp())
        body, _ = _get(
            f"{urls['hackernews']}/api/v1/search_by_date?query=acme&tags=comment"
            f"&numericFilters=created_at_i>{since}&hitsPerPage=100"
        )
        assert body["hits"], "expected recent comments"
        assert all(h["created_at_i"] > since for h in body["hits"])
        assert {"objectID", "comment_text", "author", "story_id", "_tags"} <= set(body["hits"][0])
        statuses, headers = _get(f"{urls['mastodon']}/api/v1/timelines/tag/acme?limit=5")
        assert len(statuses) == 5
        assert 'rel="next"' in headers["Link"] and "max_id=" in headers["Link"]
        assert statuses[0]["account"]["followers_count"] >= 0
        assert statuses[0]["content"].startswith("<p>")
        older, _ = _get(
            f"{urls['mastodon']}/api/v1/timelines/tag/acme?limit=5&max_id={statuses[-1]['id']}"
        )
        assert int(older[0]["id"]) < int(statuses[-1]["id"])


def test_post_ids_follow_time_as_on_real_sites():
    corpus = build_corpus(datetime(2026, 11, 27, 12, 0, tzinfo=UTC), per_hour=40)
    ids = [p.id for p in corpus.history]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert min(p.id for p in corpus.burst) > max(ids)
