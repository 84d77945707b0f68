"""Health notices from the real daemon to the local Slack, and crawl faults at WARNING.

Real parts: the daemon's jobs, the Scrapy RSS spider in its crawl child against a
local feed server that fails on demand, the session's Elasticsearch node behind a
TCP proxy that is not listening (down) and then started (up), slack-sdk against
`sandbox.slack`. The thresholds are set low (`health.elasticsearch_after: 1s`,
`health.source_failures: 2`); the test waits past them, never for an upper bound.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from brandpulse.config import Config, parse_config
from brandpulse.mention import Mention
from daemon.service import Daemon
from sandbox.slack import SlackSandbox
from tests.security.tls_proxy import TcpProxy

EMPTY_FEED = (
    b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>News</title>'
    b"<link>http://news.example/</link><description>nothing about anyone</description>"
    b"</channel></rss>"
)


class FeedServer:
    """Serves `/feed-<name>.xml`: an empty RSS feed, or HTTP 500 for the names in `failing`.
    `requested` lists the names asked for, in order."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.requested: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1].removeprefix("feed-").removesuffix(".xml")
                owner.requested.append(name)
                status, body = (500, b"internal error") if name in owner.failing else (200, EMPTY_FEED)
                self.send_response(status)
                self.send_header("Content-Type", "application/rss+xml" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://{self.endpoint}/feed-{name}.xml"

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:<port>`: the one loopback endpoint the crawl's egress policy allows."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        yield sandbox


def _config(tmp_path: Path, slack: SlackSandbox, es_url: str, **extra: object) -> Config:
    data = {
        "brands": [{"name": "Acme"}],
        "elasticsearch": {"hosts": [es_url], "index_prefix": f"hn{uuid.uuid4().hex[:8]}",
                          "spool_dir": str(tmp_path / "spool"), "request_timeout": "60s"},
        "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
        "alerts": {"enabled": False},
        "health": {"elasticsearch_after": "1s", "source_failures": 2},
        "daemon": {"state_dir": str(tmp_path / "state"), "http_port": 0},
        **extra,
    }  # fmt: skip
    return parse_config(data, env={})


def _texts(slack: SlackSandbox) -> list[str]:
    return [m.text for m in slack.messages]


def test_elasticsearch_down_and_back_reach_slack_once_each_across_a_restart(
    es_node, tmp_path, slack, closed_port
):
    port = closed_port  # the proxy to the real node listens here only in the "up" phase
    config = _config(tmp_path, slack, f"http://127.0.0.1:{port}")
    daemon = Daemon(config)
    try:
        daemon.start()  # set-up fails: the outage begins, below the threshold
        mention = Mention(source="hackernews", source_id="1", source_name="hn", brands=["Acme"],
                          text="Acme lost my order", created_at=datetime.now(UTC))  # fmt: skip
        assert daemon.pipeline.ingest("hn", [mention]).write.spooled == 1
        assert slack.messages == []  # a blip pages nobody
        time.sleep(1.5)  # past health.elasticsearch_after
        for _ in range(3):
            daemon.housekeeping_job()
        [down] = _texts(slack)
        assert down.startswith("Elasticsearch unreachable since ")
        assert "mentions are being spooled (1 so far)" in down
        assert f"127.0.0.1:{port} refused the connection" in down
    finally:
        daemon.stop()

    restarted = Daemon(config)  # still down: the notice is not repeated
    try:
        restarted.start()
        restarted.housekeeping_job()
        assert len(slack.messages) == 1
        with TcpProxy(es_node.url.split("//", 1)[1], port=port):
            restarted.housekeeping_job()  # set-up finishes, the spool is replayed
            assert restarted.writer.pending() == 0
            restarted.housekeeping_job()
            restarted.housekeeping_job()
        assert len(slack.messages) == 2, _texts(slack)
        back = _texts(slack)[1]
        assert back.startswith("Elasticsearch is back after ")
        assert back.endswith("; 1 spooled mention replayed")
        assert restarted.notices is not None and restarted.notices.pending() == []
    finally:
        restarted.stop()
    assert [m.thread_ts for m in slack.messages] == [None, None]
    assert "Elasticsearch down" in slack.render() and "Elasticsearch back" in slack.render()


def test_a_failing_source_is_reported_once_and_its_recovery_once(
    tmp_path, slack, feeds, caplog, closed_port
):
    caplog.set_level(logging.INFO, logger="brandpulse")
    source = {"name": "news-acme", "type": "rss", "feeds": [feeds.url("a")], "timeout": "5s",
              "schedule": {"every": "1h", "jitter": "0s"}}  # fmt: skip
    config = _config(tmp_path, slack, f"http://127.0.0.1:{closed_port}", sources=[source],
                     crawl={"allowed_private_endpoints": [feeds.endpoint]},
                     alerts={"enabled": True})  # fmt: skip
    daemon = Daemon(config)  # not started: the test runs the crawl job itself
    feeds.failing = {"a"}
    daemon.crawl_job("news-acme")
    assert slack.messages == []  # one failed crawl is not yet an episode
    daemon.crawl_job("news-acme")
    [down] = _texts(slack)
    assert down.startswith("Source 'news-acme' has failed 2 crawls in a row since ")
    assert "last error: " in down
    daemon.crawl_job("news-acme")
    assert len(slack.messages) == 1, "no repeat while it keeps failing"
    daemon.stop()

    again = Daemon(config)  # a restart in the middle of the episode
    try:
        again.crawl_job("news-acme")
        assert len(slack.messages) == 1
        # The alert engine knows it as failing: the flatline rule leaves it to this notice.
        assert again.engine is not None and again.engine.failing_sources() == {"news-acme"}
        feeds.failing = set()
        assert again.crawl_job("news-acme") == 0
        assert again.engine.failing_sources() == set()
        [_, back] = _texts(slack)
        assert back.startswith("Source 'news-acme' is crawling again (down ")
        again.crawl_job("news-acme")
        assert len(slack.messages) == 2
    finally:
        again.stop()
    failed = [r for r in caplog.records if r.getMessage() == "crawl.failed"]
    assert len(failed) == 4 and all(r.levelno == logging.WARNING for r in failed)


def test_crawl_fault_summaries_are_logged_at_warning(tmp_path, slack, feeds, caplog, closed_port):
    """Some requests failed although pages were read: the crawl succeeds, and its fault
    summary is a WARNING in the daemon's log (it used to be INFO)."""
    caplog.set_level(logging.INFO, logger="brandpulse")
    source = {"name": "news-mixed", "type": "rss", "feeds": [feeds.url("ok"), feeds.url("bad")],
              "timeout": "5s"}  # fmt: skip
    daemon = Daemon(_config(tmp_path, slack, f"http://127.0.0.1:{closed_port}", sources=[source],
                            crawl={"allowed_private_endpoints": [feeds.endpoint]}))
    feeds.failing = {"bad"}
    try:
        daemon.crawl_job("news-mixed")
    finally:
        daemon.stop()
    [finished] = [r for r in caplog.records if r.getMessage() == "crawl.finished"]
    assert finished.levelno == logging.WARNING
    assert finished.event_fields["faults"] == {"http_500": 1}
    assert daemon.state.sources["news-mixed"].last_success is not None
    assert slack.messages == []  # a partly failing crawl is not a failing source


def test_an_outage_seen_by_the_alert_check_ends_with_one_notice_when_housekeeping_finds_it_back(
    es_node, tmp_path, slack, closed_port
):
    # Nothing spooled, so no replay notices the return: housekeeping asks Elasticsearch.
    port = closed_port
    target = es_node.url.split("//", 1)[1]
    config = _config(tmp_path, slack, f"http://127.0.0.1:{port}", alerts={"enabled": True})
    daemon = Daemon(config)
    try:
        with TcpProxy(target, port=port):
            daemon.start()  # set-up done while it is up
            assert daemon.alert_job() == 0
        daemon.alert_job()  # down now
        time.sleep(1.5)  # past health.elasticsearch_after
        daemon.housekeeping_job()
        [down] = _texts(slack)
        assert down.startswith("Elasticsearch unreachable since ") and "(0 so far)" in down
        with TcpProxy(target, port=port):
            daemon.housekeeping_job()
            assert len(slack.messages) == 2, _texts(slack)
            assert _texts(slack)[1].startswith("Elasticsearch is back after ")
            daemon.alert_job()
            daemon.housekeeping_job()
            assert daemon.health()["health_notices_waiting"] == 0
        assert len(slack.messages) == 2, _texts(slack)
    finally:
        daemon.stop()
