"""The daemon's jobs while its Elasticsearch node hangs (`esnode.LocalNode.freeze`:
alive, port open, no answer), in-process, with real parts: Scrapy crawling the local
server that answers as Hacker News (`sandbox.sources`, the demo's corpus), the
default model, the local Slack, the frozen node.

Checked: a crawl during the freeze returns, its mentions are in the spool when the
cursor moves (nothing lost, and the next crawl does not fetch them again); the
outage is said once; the alert check during the freeze ends as an outage (one line,
no traceback, no crash); after the thaw housekeeping replays the spool, the next
alert check runs normally, and every crawled mention is in the index once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from brandpulse.config import parse_config
from daemon.demo import demo_config
from daemon.service import Daemon
from esnode import LocalNode
from sandbox.corpus import build_corpus
from sandbox.slack import SlackSandbox
from sandbox.sources import SourcesServer
from store.setup import alias_name
from tests.hang import InThread, wait_until

SOURCE = "hackernews"


@pytest.fixture
def daemon(hang_node: LocalNode, tmp_path: Path) -> Iterator[Daemon]:
    now = datetime.now(UTC)
    corpus = build_corpus(now, days=1.0)
    with SlackSandbox() as slack, SourcesServer() as sources:
        sources.publish(corpus.history)
        data: dict[str, Any] = demo_config(hang_node.url, sources.base_urls(), slack.base_url,
                                           tmp_path, index_prefix=f"dh{uuid.uuid4().hex[:8]}")  # fmt: skip
        # each request waits this long on the frozen node; a write's budget is two of
        # them (one retry) plus a backoff of at most 0.5 s
        data["elasticsearch"].update(request_timeout="5s", bulk_retries=1)
        d = Daemon(parse_config(data, env={}))
        try:
            yield d
        finally:
            d.stop()


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


def test_a_crawl_and_an_alert_check_on_a_frozen_node_spool_and_end_as_one_outage(
    daemon: Daemon, hang_node: LocalNode, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    daemon.setup()
    daemon.pipeline  # noqa: B018 -- loads the model before the freeze
    cursor_before = daemon.shared_state.load_cursor(SOURCE)

    hang_node.freeze()
    froze = time.monotonic()
    crawl = InThread(lambda: daemon.crawl_job(SOURCE), name="crawl")
    # bounds on a hang, not timings: a crawl (child process, scoring) and one retry budget
    wait_until(crawl.done, 600, "the crawl on the frozen node")
    crawled = crawl.result()
    print(f"\ncrawl of {crawled} mentions on the frozen node: {time.monotonic() - froze:.1f} s "
          f"(write budget {daemon.writer.retry_budget():.1f} s)")  # fmt: skip
    assert crawled > 0, "the crawl found the corpus's posts"
    assert daemon.writer.pending() == crawled, "every crawled mention waits in the spool"
    cursor_after = daemon.shared_state.load_cursor(SOURCE)
    assert cursor_after and cursor_after != cursor_before, "the cursor moved: they are safe"
    [unavailable] = _events(caplog, "elasticsearch.unavailable")
    assert f"127.0.0.1:{hang_node.port}" in unavailable.event_fields["reason"]
    assert "timeout: 5 s" in unavailable.event_fields["reason"]

    started = time.monotonic()
    check = InThread(daemon.alert_job, name="alert check")
    wait_until(check.done, 300, "the alert check on the frozen node")
    print(f"alert check on the frozen node: {time.monotonic() - started:.1f} s")
    assert check.result() == 0
    [stopped] = _events(caplog, "alerts.check_stopped")
    assert stopped.levelno == logging.WARNING and stopped.event_fields["not_checked"] == 1
    assert f"127.0.0.1:{hang_node.port}" in stopped.event_fields["reason"]
    assert len(_events(caplog, "elasticsearch.unavailable")) == 1, "the outage is said once"
    assert daemon.state.last_alert_check is None
    assert hang_node.frozen, "the node was frozen all along"

    hang_node.thaw()
    daemon.housekeeping_job()  # replays the spool: the outage ends
    assert daemon.writer.pending() == 0
    assert len(_events(caplog, "elasticsearch.recovered")) == 1
    before_check = datetime.now(UTC)
    daemon.alert_job()  # the next check runs normally
    assert daemon.state.last_alert_check is not None
    assert daemon.state.last_alert_check >= before_check - timedelta(seconds=1)
    assert daemon.crawl_job(SOURCE) == 0, "nothing fetched again: the cursor had moved"

    es = daemon.client
    alias = alias_name(daemon.config.elasticsearch.index_prefix)
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=1000, source=False)["hits"]["hits"]
    assert len(hits) == crawled and len({h["_id"] for h in hits}) == crawled, "each once"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no crash, no traceback"
