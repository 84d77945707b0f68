"""The daemon in-process: health and metrics endpoints, a failing source, the spool.

Real parts throughout: the local Elasticsearch node, the default model, Scrapy
crawling a port where nothing listens.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml

from brandpulse.config import load_config, parse_config
from brandpulse.mention import Mention
from daemon.service import Daemon
from tests.daemon.test_health_notices import FeedServer


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def daemon(es_node, tmp_path, closed_port):
    config = parse_config(
        {
            "brands": [{"name": "Acme"}],
            "sources": [
                {
                    "name": "broken-forum",
                    "type": "discourse",
                    "forum_url": f"http://127.0.0.1:{closed_port}",
                    "schedule": {"every": "2s", "jitter": "0s"},
                    "timeout": "3s",
                }
            ],
            "elasticsearch": {
                "hosts": [es_node.url],
                "index_prefix": f"svc{uuid.uuid4().hex[:8]}",
                "spool_dir": str(tmp_path / "spool"),
            },
            "alerts": {"enabled": False},
            "daemon": {"state_dir": str(tmp_path / "state"), "http_port": "auto"},
        },
        env={},
    )
    d = Daemon(config)
    yield d
    d.stop()


def test_health_metrics_and_a_failing_source_that_does_not_stop_the_daemon(daemon, caplog):
    caplog.set_level(logging.INFO, logger="brandpulse.daemon")
    daemon.start()
    assert daemon.health_server is not None
    # `http_port: auto`: the port the system picked, bound (no free-port guess to race)
    # and logged for whoever has to scrape it
    port = daemon.health_server.port
    base = daemon.health_server.url
    assert port > 0 and base == f"http://127.0.0.1:{port}"
    (listening,) = [r for r in caplog.records if r.getMessage() == "http.listening"]
    assert listening.event_fields == {"url": base, "port": port}

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and daemon.state.sources["broken-forum"].failures < 2:
        time.sleep(0.5)
    status = daemon.state.sources["broken-forum"]
    assert status.runs >= 2, "the schedule carries on after a failed crawl"
    assert status.failures >= 2 and status.last_success is None
    assert "no page could be read" in (status.last_error or "")

    code, body = _get(f"{base}/healthz")
    report = json.loads(body)
    assert code == 200, body
    assert report["status"] == "ok"
    assert report["elasticsearch"]["reachable"] is True
    assert report["spool_pending"] == 0
    assert report["sources"]["broken-forum"]["runs"] >= 2
    assert report["sources"]["broken-forum"]["last_error"]

    code, metrics = _get(f"{base}/metrics")
    assert code == 200
    assert "brandpulse_crawl_runs_total" in metrics
    assert 'source="broken-forum"' in metrics
    assert 'brandpulse_crawl_runs_total{outcome="failed",source="broken-forum"}' in metrics
    assert 'brandpulse_crawl_errors_total{source="broken-forum"}' in metrics
    assert _get(f"{base}/nope")[0] == 404


def test_mentions_survive_an_elasticsearch_outage_through_the_spool(daemon, es_node, closed_port):
    # The pipeline path the crawl jobs use, with Elasticsearch pointed at a dead port.
    daemon.setup()
    mention = Mention(
        source="discourse", source_id="42", source_name="broken-forum",
        text="Acme support was terrible today", created_at=datetime.now(UTC), brands=["Acme"],
    )  # fmt: skip
    from store.client import make_client

    alive = daemon.writer.client
    dead_cfg = daemon.config.elasticsearch.model_copy(update={"hosts": [f"http://127.0.0.1:{closed_port}"]})
    daemon.writer.client = make_client(dead_cfg).options(max_retries=0, request_timeout=2)
    report = daemon.pipeline.ingest("broken-forum", [mention])
    assert report.write.spooled == 1 and report.write.indexed == 0
    assert report.scored == 1, "scored before it was parked"
    assert daemon.health()["spool_pending"] == 1

    daemon.writer.client = alive
    replay = daemon.pipeline.replay_spool()
    assert replay.indexed == 1
    alias = f"{daemon.config.elasticsearch.index_prefix}-mentions"
    daemon.client.indices.refresh(index=alias)
    hits = daemon.client.search(index=alias, query={"match_all": {}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == [mention.id]
    assert hits[0]["_source"]["sentiment"]["label"] in {"negative", "neutral", "positive"}


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def test_crawls_use_the_config_the_daemon_holds_not_the_file_on_disk(tmp_path, feeds, closed_port):
    """The daemon hands each crawl a job built from its in-memory configuration: an
    edited or deleted config file changes nothing until a restart."""
    path = tmp_path / "config.yaml"
    source = {"name": "news", "type": "rss", "feeds": [feeds.url("a")], "timeout": "5s"}
    data = {
        "brands": [{"name": "Acme"}],
        "sources": [source],
        "elasticsearch": {"hosts": [f"http://127.0.0.1:{closed_port}"],
                          "spool_dir": str(tmp_path / "spool")},
        "alerts": {"enabled": False},
        "health": {"enabled": False},
        "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
        "crawl": {"allowed_private_endpoints": [feeds.endpoint]},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    daemon = Daemon(load_config(path))
    feeds.failing = {"b"}
    path.write_text(yaml.safe_dump({**data, "sources": [{**source, "feeds": [feeds.url("b")]}]}))
    try:
        daemon.crawl_job("news")  # the file now names feed b, which fails
        path.unlink()
        daemon.crawl_job("news")  # no file at all
    finally:
        daemon.stop()
    status = daemon.state.sources["news"]
    assert (status.runs, status.failures, status.last_error) == (2, 0, None)
    assert status.last_success is not None
    assert [name for name in feeds.requested if name != "robots.txt"] == ["a", "a"]
