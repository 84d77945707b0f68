"""The bulk writer against a node that hangs: alive, its port open, no answer (a long GC
pause, a frozen VM), as `esnode.LocalNode.freeze` makes it (SIGSTOP to the JVM).

A stopped node refuses connections at once; a hung one lets every request wait its
whole ``request_timeout``. With several batches in flight, the writer used to spend
its whole retry budget once per batch in flight, one after another (they queue for
the retry lock). Checked here, on a real node frozen in the middle of a write of
1,000 mentions with four batches in flight: the call returns (a bounded wait, far
above one budget), having retried no more than one batch's budget allows; what was
not acknowledged is in the spool; the log names the host and the timeout, never the
API key; after the thaw the spool replays and each mention is in the index once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import Mention
from esnode import LocalNode
from store.client import make_client
from store.setup import alias_name, ensure_index, install_templates
from store.synthetic import mentions
from store.writer import BulkWriter, WriteReport
from tests.hang import InThread, wait_until
from tests.store.test_writer import _all_ids

# one monthly index, created before the freeze
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, tzinfo=UTC)
API_KEY = "aGFuZy10ZXN0LWtleTpub3QtYS1yZWFsLXNlY3JldC0xMjM0NQ=="  # a node without security ignores it


def test_a_node_frozen_mid_write_costs_one_retry_budget_and_loses_nothing(
    hang_node: LocalNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    cfg = ElasticsearchConfig.model_validate({
        "hosts": [hang_node.url], "index_prefix": f"hang{uuid.uuid4().hex[:8]}",
        "spool_dir": str(tmp_path / "spool"), "bulk_size": 50, "bulk_concurrency": 4,
        "request_timeout": "8s", "bulk_retries": 1, "api_key": API_KEY,
    })  # fmt: skip
    es = make_client(cfg)
    # templates and the month's index made beforehand, patiently: on a busy machine
    # creating an index can take longer than the request timeout of the test
    patient = es.options(request_timeout=120)
    install_templates(patient, cfg)
    ensure_index(patient, f"{cfg.index_prefix}-mentions-2026.10")
    batch = list(mentions(1000, START, END, seed=13, id_prefix="h"))
    frozen_at = 300
    froze: list[float] = []

    def feed() -> Iterator[Mention]:
        for i, mention in enumerate(batch):
            if i == frozen_at:  # batches of the first 300 are in flight or acknowledged
                hang_node.freeze()
                froze.append(time.monotonic())
            yield mention

    writer = BulkWriter(es, cfg, backoff_initial=0.1, backoff_max=0.5)
    try:
        assert (writer.concurrency, writer.max_retries) == (4, 1)  # as configured
        budget = writer.retry_budget()  # 2 attempts of 8 s, plus a backoff: about 16 s
        call = InThread(lambda: writer.write(feed()), name="write")
        # a bound on a hang, not a timing: four budgets spent in a row would pass it too
        wait_until(call.done, 10 * budget, "write() against the frozen node to return")
        took = time.monotonic() - froze[0]
        during: WriteReport = call.result()
        print(f"\nfrozen after {frozen_at}: write() returned {took:.1f} s after the freeze "
              f"(budget {budget:.1f} s): {during.summary()}, {during.retries} retries")  # fmt: skip
        assert hang_node.frozen, "the node was frozen the whole call"
        # one batch spent the budget; the others in flight gave up with it
        assert during.retries <= writer.max_retries, during.summary()
        assert during.spooled > 0 and during.indexed + during.spooled == len(batch), during.summary()
        assert writer.pending() == during.spooled
        reason = during.unavailable or ""
        assert f"127.0.0.1:{hang_node.port}" in reason and "timeout" in reason, reason

        hang_node.thaw()
        replayed = writer.replay()
        assert writer.pending() == 0, replayed.summary()
        assert replayed.replayed == during.spooled
    finally:
        writer.close()
    ids = _all_ids(es, alias_name(cfg.index_prefix))
    assert len(ids) == len(batch) and set(ids) == {m.id for m in batch}, "each mention once"
    gave_up = [r for r in caplog.records if r.name == "store.writer" and "unavailable" in r.getMessage()]
    assert gave_up and all(f"127.0.0.1:{hang_node.port}" in r.getMessage() for r in gave_up)
    assert all("timeout: 8 s" in r.getMessage() for r in gave_up), gave_up
    assert not [r.getMessage() for r in caplog.records if API_KEY in r.getMessage()]
    es.options(ignore_status=404).indices.delete(index=f"{cfg.index_prefix}-mentions-2026.10")
    es.close()
