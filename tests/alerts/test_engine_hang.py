"""The alert check against a node that hangs (`esnode.LocalNode.freeze`: alive, port
open, no answer), as in a long GC pause or a frozen VM.

Every brand's first query waits its whole ``request_timeout``; the check used to try
every brand that way (50 brands x 30 s) and end in an exception. Checked here on a
real frozen node with six brands: the check stops after two brands went unanswered
(`alerts.engine.CheckStopped`, whose line names the host and how many brands were
not checked, never the API key), and after the thaw the next check runs every brand:
the alert of a brand the stopped check never reached goes out, once, and the one
sent before the freeze is not repeated.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alerts.engine import UNANSWERED_BRANDS, AlertEngine, CheckStopped
from alerts.notifiers.slack import SlackNotifier
from alerts.state import AlertStateStore
from brandpulse.config import Config
from brandpulse.mention import Mention
from esnode import LocalNode
from sandbox.slack import SlackSandbox
from store.client import make_client
from tests.alerts.test_engine import NOW, index, mention
from tests.hang import InThread, wait_until

BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Tiny"]
API_KEY = "ZW5naW5lLWhhbmc6bm90LWEtcmVhbC1zZWNyZXQtNjc4OTA="  # a node without security ignores it
# seconds, the config's request_timeout: above what a query takes on a busy machine
TIMEOUT = 10


def _config(node: LocalNode, slack: SlackSandbox, prefix: str) -> Config:
    return Config.model_validate({
        "brands": [{"name": b} for b in BRANDS],
        "elasticsearch": {"hosts": [node.url], "index_prefix": prefix,
                          "request_timeout": f"{TIMEOUT}s", "api_key": API_KEY},
        "slack": {"token": slack.token, "channel": slack.channel, "base_url": slack.base_url},
        "alerts": {"history": "3d", "query_delay": "2m"},
    })  # fmt: skip


def _loud(brand: str, at: datetime) -> Mention:
    """A negative post by an author who reaches millions: one high-reach alert."""
    return mention(brand, at, "negative", f"loud-{brand}", reach=2_000_000,
                   author=f"critic-of-{brand}")  # fmt: skip


def test_a_frozen_node_stops_the_check_after_two_brands_and_the_next_check_runs_all(
    hang_node: LocalNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    with SlackSandbox() as slack:
        config = _config(hang_node, slack, f"eh{uuid.uuid4().hex[:8]}")
        es = make_client(config.elasticsearch)
        # the last brand's post comes after what the first check judges (query delay)
        first, last = _loud(BRANDS[0], NOW - timedelta(minutes=50)), _loud(BRANDS[-1], NOW + timedelta(minutes=3))
        patient = es.options(request_timeout=120)  # index creation on a busy machine
        index(patient, config, tmp_path, [first])
        engine = AlertEngine(config, es, SlackNotifier.from_config(config.slack))
        sent = engine.check(NOW)
        assert [a.brand for a in sent] == [BRANDS[0]] and len(slack.messages) == 1
        index(patient, config, tmp_path / "later", [last])

        hang_node.freeze()
        froze = time.monotonic()
        call = InThread(lambda: engine.check(NOW + timedelta(minutes=5)), name="check")
        # a bound on a hang, not a timing: a pass over all six brands would fit in it too
        wait_until(call.done, 4 * len(BRANDS) * TIMEOUT, "the check against the frozen node")
        print(f"\nthe check on the frozen node ended {time.monotonic() - froze:.1f} s after "
              f"the freeze (request_timeout {TIMEOUT} s, {len(BRANDS)} brands)")  # fmt: skip
        with pytest.raises(CheckStopped) as stopped:
            call.result()
        assert hang_node.frozen, "the node was frozen the whole check"
        line = str(stopped.value)
        assert stopped.value.checked == 0 and stopped.value.not_checked == len(BRANDS)
        assert f"{len(BRANDS)} of {len(BRANDS)} brand(s) not checked" in line, line
        assert f"{UNANSWERED_BRANDS} in a row went unanswered" in line
        assert f"127.0.0.1:{hang_node.port}" in line and f"timeout: {TIMEOUT} s" in line, line
        # the first unanswered brand is a warning, the second ends the pass: no more
        per_brand = [r.getMessage() for r in caplog.records
                     if r.name == "alerts.engine" and "alert check for brand" in r.getMessage()]  # fmt: skip
        assert per_brand == [f"alert check for brand {BRANDS[0]} failed: {stopped.value.reason}"]
        assert slack.messages[1:] == []

        hang_node.thaw()
        again = engine.check(NOW + timedelta(minutes=10))
        assert [(a.kind, a.brand) for a in again] == [("high_reach", BRANDS[-1])], "none lost"
        assert engine.check(NOW + timedelta(minutes=15)) == [], "none repeated"
        store = AlertStateStore(es, config.elasticsearch.index_prefix)
        assert sorted(e.alert.brand for e in store.entries()) == [BRANDS[0], BRANDS[-1]]
        assert all(e.status == "delivered" for e in store.entries())
        assert len(slack.messages) == 2
        assert {store.load_brand(b).updated_at for b in BRANDS} == {NOW + timedelta(minutes=15)}
    assert not [r.getMessage() for r in caplog.records if API_KEY in r.getMessage()]
    assert API_KEY not in line
    for name in es.indices.get(index=f"{config.elasticsearch.index_prefix}-*"):
        es.indices.delete(index=name)
    es.close()
