"""Two daemons on one Redis (`redis:` configured): a source is crawled by one at a time,
and the cursor and duplicate state one of them leaves are the other's.

Real parts: the session's redis-server and Elasticsearch node, Scrapy in its child
process against local servers, the default model.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from brandpulse.config import Config, parse_config
from daemon.coord import RedisState, redis_client
from daemon.service import Daemon
from sandbox.corpus import build_corpus
from sandbox.sources import SourcesServer
from tests.daemon.held_server import HeldServer


def _config(es_node, redis_url: str, prefix: str, state: Path, source: dict[str, Any]) -> Config:
    return parse_config(
        {
            "brands": [{"name": "Acme", "query": "acme"}],
            "sources": [source],
            "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"sh{uuid.uuid4().hex[:8]}",
                              "spool_dir": str(state / "spool")},
            "alerts": {"enabled": False},
            "crawl": {"allow_private_addresses": True},
            "daemon": {"state_dir": str(state), "http_port": 0},
            "redis": {"url": redis_url, "key_prefix": prefix, "lease_ttl": "60s"},
        },
        env={},
    )  # fmt: skip


@pytest.fixture
def held() -> Iterator[HeldServer]:
    server = HeldServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_a_source_is_crawled_by_one_daemon_at_a_time(es_node, redis_node, held, tmp_path, caplog):
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    source = {"name": "forum", "type": "discourse", "forum_url": f"http://127.0.0.1:{held.server_port}",
              "timeout": "60s", "schedule": {"every": "1h", "jitter": "0s"}}  # fmt: skip
    first = Daemon(_config(es_node, redis_node.url, prefix, tmp_path / "a", source))
    second = Daemon(_config(es_node, redis_node.url, prefix, tmp_path / "b", source))
    try:
        crawling = threading.Thread(target=first.crawl_job, args=("forum",))
        crawling.start()
        assert held.entered.wait(180), "the first daemon's crawl never reached the source"
        with caplog.at_level(logging.INFO, logger="brandpulse.daemon"):
            assert second.crawl_job("forum") == 0
        [skipped] = [r for r in caplog.records if r.getMessage() == "crawl.skipped"]
        assert skipped.levelno == logging.INFO
        fields = skipped.event_fields  # type: ignore[attr-defined]
        assert fields["source"] == "forum" and "lease" in fields["reason"]
        assert fields["holder"] and fields["holder"].split(":")[1].isdigit(), fields
        assert "forum" not in second.state.sources, "the second daemon must not have crawled"
        requests_while_held = held.requests
        held.release.set()
        crawling.join(300)
        assert not crawling.is_alive()
        assert first.state.sources["forum"].runs == 1
        # the lease went with the first crawl: the second daemon crawls now
        second.crawl_job("forum")
        assert second.state.sources["forum"].runs == 1
        assert held.requests > requests_while_held
        assert second.shared_state is not None and second.shared_state.holder("forum") is None
    finally:
        held.release.set()
        first.stop()
        second.stop()


def test_the_next_daemon_starts_from_the_cursor_and_duplicates_the_first_left(
    es_node, redis_node, tmp_path
):
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    now = datetime.now(UTC)
    with SourcesServer() as sources:
        sources.publish(build_corpus(now).history)
        source = {"name": "hackernews", "type": "hackernews",
                  "base_url": sources.base_urls()["hackernews"], "lookback": "4d",
                  "max_pages": 20, "schedule": {"every": "1h", "jitter": "0s"}}  # fmt: skip
        first = Daemon(_config(es_node, redis_node.url, prefix, tmp_path / "a", source))
        second = Daemon(_config(es_node, redis_node.url, prefix, tmp_path / "b", source))
        try:
            found = first.crawl_job("hackernews")
            assert found > 0
            assert first.state.sources["hackernews"].last_error is None
            shared = RedisState(redis_client(first.config.redis), prefix)  # type: ignore[arg-type]
            cursor = shared.load_cursor("hackernews")
            assert cursor.get("queries"), cursor
            assert len(shared.recent("hackernews", max_age=7 * 86400)) == found
            # nothing of it in the first daemon's own state dir: it lives in Redis
            assert not list((tmp_path / "a").glob("hackernews.cursor.json"))
            # another machine (its own empty state dir) carries on from that cursor
            assert second.crawl_job("hackernews") == 0
            assert second.state.sources["hackernews"].last_error is None
            assert shared.holder("hackernews") is None
            shared.close()
        finally:
            first.stop()
            second.stop()


def test_redis_unreachable_skips_the_crawl_rather_than_crawling_without_a_lease(
    es_node, held, tmp_path, caplog, closed_port
):
    dead = closed_port  # held closed for the test: no other session's Redis can appear there
    source = {"name": "forum", "type": "discourse", "forum_url": f"http://127.0.0.1:{held.server_port}",
              "timeout": "60s", "schedule": {"every": "1h", "jitter": "0s"}}  # fmt: skip
    daemon = Daemon(_config(es_node, f"redis://127.0.0.1:{dead}/0", "t:", tmp_path, source))
    try:
        with caplog.at_level(logging.INFO, logger="brandpulse.daemon"):
            assert daemon.crawl_job("forum") == 0
        [skipped] = [r for r in caplog.records if r.getMessage() == "crawl.skipped"]
        assert skipped.levelno == logging.WARNING
        assert "Redis" in skipped.event_fields["reason"]  # type: ignore[attr-defined]
        assert held.requests == 0, "the source must not be crawled without its lease"
        assert "forum" not in daemon.state.sources
    finally:
        daemon.stop()


def test_without_redis_the_same_path_works_in_place_on_the_state_dir_files(es_node, tmp_path):
    """No `redis:`: `LocalState` on the files the daemon always kept (no staging, no
    migration), and the source's lease is an flock another process on the same
    state dir respects."""
    from daemon.coord import LocalState

    now = datetime.now(UTC)
    state = tmp_path / "state"
    with SourcesServer() as sources:
        sources.publish(build_corpus(now).history)
        source = {"name": "hackernews", "type": "hackernews",
                  "base_url": sources.base_urls()["hackernews"], "lookback": "4d",
                  "max_pages": 20, "schedule": {"every": "1h", "jitter": "0s"}}  # fmt: skip
        config = parse_config(_raw(es_node, state, source), env={})
        assert config.redis is None
        daemon = Daemon(config)
        try:
            assert isinstance(daemon.shared_state, LocalState)
            found = daemon.crawl_job("hackernews")
            assert found > 0 and daemon.state.sources["hackernews"].last_error is None
            # the files of before, where they always were; nothing staged
            assert (state / "hackernews.cursor.json").exists()
            assert (state / "hackernews.hashes.json").exists()
            assert not (state / "staged").exists()
            assert daemon.crawl_job("hackernews") == 0, "the second crawl starts from the cursor"
            # another process holding the source's lock: this run is skipped
            other = LocalState(state)
            lease = other.acquire("hackernews", 60)
            assert lease is not None
            runs = daemon.state.sources["hackernews"].runs
            assert daemon.crawl_source("hackernews") is None
            assert daemon.state.sources["hackernews"].runs == runs
            other.release(lease)
        finally:
            daemon.stop()


def _raw(es_node, state: Path, source: dict[str, Any]) -> dict[str, Any]:
    return {
        "brands": [{"name": "Acme", "query": "acme"}],
        "sources": [source],
        "elasticsearch": {"hosts": [es_node.url], "index_prefix": f"sh{uuid.uuid4().hex[:8]}",
                          "spool_dir": str(state / "spool")},
        "alerts": {"enabled": False},
        "crawl": {"allow_private_addresses": True},
        "daemon": {"state_dir": str(state), "http_port": 0},
    }  # fmt: skip


def test_one_api_credential_serves_one_crawl_at_a_time(es_node, redis_node, tmp_path, caplog):
    from daemon.coord import credential_lease

    prefix = f"t{uuid.uuid4().hex[:8]}:"

    def youtube(name: str, key: str | None) -> dict[str, Any]:
        return {"name": name, "type": "youtube", "api_key": key, "video_ids": ["v1"],
                "base_url": "http://127.0.0.1:9/yt", "schedule": {"every": "1h", "jitter": "0s"}}  # fmt: skip

    data = _raw(es_node, tmp_path, youtube("yt-a", "k-shared"))
    data["sources"] += [youtube("yt-b", "k-shared"), youtube("yt-c", "k-other"), youtube("yt-d", None)]
    data["redis"] = {"url": redis_node.url, "key_prefix": prefix}
    config = parse_config(data, env={})
    a, b, c, d = config.sources
    assert credential_lease(a) == credential_lease(b) != credential_lease(c)
    assert credential_lease(d) is None
    assert "k-shared" not in (credential_lease(a) or "")

    daemon = Daemon(config)
    shared = RedisState(redis_client(config.redis), prefix)  # type: ignore[arg-type]
    try:
        lease = shared.acquire(credential_lease(a) or "", 60)  # yt-a's crawl, elsewhere
        assert lease is not None
        with caplog.at_level(logging.INFO, logger="brandpulse.daemon"):
            assert daemon.crawl_source("yt-b") is None
        [skipped] = [r for r in caplog.records if r.getMessage() == "crawl.skipped"]
        assert "credential" in skipped.event_fields["reason"]  # type: ignore[attr-defined]
        assert "yt-b" not in daemon.state.sources, "not crawled"
        assert shared.holder("yt-b") is None, "the source's own lease was not taken for nothing"
        shared.release(lease)
    finally:
        shared.close()
        daemon.stop()
