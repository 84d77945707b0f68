from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import Mention
from esnode import LocalNode
from store.setup import alias_name, install_templates
from store.spool import Spool, SpoolLockedError
from store.synthetic import mentions
from store.writer import BulkWriter

START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 11, 27, tzinfo=UTC)  # three monthly indices


def _count(es: Elasticsearch, cfg: ElasticsearchConfig) -> int:
    alias = alias_name(cfg.index_prefix)
    es.indices.refresh(index=alias)
    return int(es.count(index=alias)["count"])


def _all_ids(es: Elasticsearch, index: str) -> list[str]:
    """Every document _id (with repeats, if any), exactly: cardinality is approximate."""
    es.indices.refresh(index=index)
    ids: list[str] = []
    after = None
    while True:
        page = es.search(
            index=index, size=5000, source=False, sort=[{"id": "asc"}], search_after=after
        )["hits"]["hits"]
        if not page:
            return ids
        ids += [h["_id"] for h in page]
        after = page[-1]["sort"]


def test_writing_ten_thousand_mentions_twice_leaves_ten_thousand(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    install_templates(es_client, es_cfg)
    batch = list(mentions(10_000, START, END))
    with BulkWriter(es_client, es_cfg) as writer:
        first = writer.write(batch)
        second = writer.write(batch)
        assert writer.pending() == 0
    assert first.ok and second.ok, (first.summary(), second.summary())
    assert first.indexed == second.indexed == 10_000
    ids = _all_ids(es_client, alias_name(es_cfg.index_prefix))
    assert len(ids) == 10_000
    assert set(ids) == {m.id for m in batch}
    indices = es_client.indices.get_alias(name=alias_name(es_cfg.index_prefix))
    assert sorted(indices) == [
        f"{es_cfg.index_prefix}-mentions-2026.{m}" for m in ("09", "10", "11")
    ]


def test_daily_period_writes_one_index_per_day_read_through_the_alias(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    daily = es_cfg.model_copy(update={"index_period": "day"})
    install_templates(es_client, daily)
    day1 = list(mentions(30, datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)))
    day2 = list(mentions(20, datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)))
    with BulkWriter(es_client, daily) as writer:
        report = writer.write([*day1, *day2])
    assert report.ok and report.indexed == 50, report.summary()
    alias = alias_name(es_cfg.index_prefix)
    assert sorted(es_client.indices.get_alias(name=alias)) == [
        f"{es_cfg.index_prefix}-mentions-2026.11.03", f"{es_cfg.index_prefix}-mentions-2026.11.04"
    ]
    assert sorted(_all_ids(es_client, alias)) == sorted(m.id for m in [*day1, *day2])
    es_client.indices.refresh(index=alias)
    assert es_client.count(index=f"{es_cfg.index_prefix}-mentions-2026.11.04")["count"] == 20


def test_switching_period_on_a_live_cluster_can_duplicate_a_rewritten_mention(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    """The documented truth (docs/elasticsearch.md): the writer does not look for a
    mention in the other naming, so a re-crawl after a switch writes a second copy."""
    install_templates(es_client, es_cfg)
    (m,) = mentions(1, START, END)
    with BulkWriter(es_client, es_cfg) as writer:
        writer.write([m])
    with BulkWriter(es_client, es_cfg.model_copy(update={"index_period": "day"})) as writer:
        writer.write([m])
    ids = _all_ids(es_client, alias_name(es_cfg.index_prefix))
    assert ids == [m.id, m.id]


def test_a_rescore_overwrites_in_place(es_client: Elasticsearch, es_cfg: ElasticsearchConfig):
    install_templates(es_client, es_cfg)
    (m,) = mentions(1, START, END)
    assert m.sentiment is not None
    flipped = m.sentiment.model_copy(update={"model": "v2"})
    with BulkWriter(es_client, es_cfg) as writer:
        writer.write([m])
        writer.write([m.model_copy(update={"sentiment": flipped})])
    assert _count(es_client, es_cfg) == 1
    got = es_client.get(index=alias_name(es_cfg.index_prefix), id=m.id)["_source"]
    assert got["sentiment"]["model"] == "v2"


def test_poison_documents_go_to_the_dead_letter_file_with_the_reason(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    install_templates(es_client, es_cfg)
    good = list(mentions(20, START, END))
    bad = good[3].model_copy(update={"source_id": "poison"})

    class Drifted(Mention):
        # a Mention that grew a field the index mapping does not know
        def to_document(self) -> dict:
            return {**super().to_document(), "toxicity": 0.9}

    poison = Drifted.model_validate(bad.model_dump())
    with BulkWriter(es_client, es_cfg) as writer:
        report = writer.write([*good, poison])
        assert writer.pending() == 0
        dead = list(writer.spool.dead_letters())
    assert report.indexed == 20
    assert report.dead_lettered == 1
    (failure,) = report.failures
    assert failure.id == poison.id
    assert failure.status == 400
    assert "strict_dynamic_mapping_exception" in failure.reason
    assert "toxicity" in failure.reason
    assert [d["id"] for d in dead] == [poison.id]
    assert "toxicity" in dead[0]["reason"]
    assert dead[0]["doc"]["toxicity"] == 0.9
    assert _count(es_client, es_cfg) == 20


def test_bad_characters_in_one_post_cost_neither_the_post_nor_the_batch(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    install_templates(es_client, es_cfg)
    good = list(mentions(10, START, END))
    surrogate = good[0].model_copy(update={"source_id": "lone\ud83d", "text": "Acme \ud83d down"})
    controls = good[1].model_copy(update={"source_id": "ctl", "text": "Acme\x00 is\x07 \x1b[31mred",
                                          "author": "bad\x08guy"})  # fmt: skip
    with BulkWriter(es_client, es_cfg) as writer:
        report = writer.write([*good, surrogate, controls])
        assert writer.pending() == 0
        assert list(writer.spool.dead_letters()) == []
    assert report.ok and report.indexed == 12, report.summary()
    alias = alias_name(es_cfg.index_prefix)
    assert _count(es_client, es_cfg) == 12
    hits = es_client.search(index=alias, query={"terms": {"source_id": ["lone\ufffd", "ctl"]}})
    texts = sorted(h["_source"]["text"] for h in hits["hits"]["hits"])
    assert texts == ["Acme is [31mred", "Acme \ufffd down"]


def test_an_unreachable_node_spools_and_a_later_write_replays(tmp_path: Path, closed_port: int):
    dead_url = f"http://127.0.0.1:{closed_port}"  # nothing listens there
    cfg = ElasticsearchConfig(index_prefix="offline", spool_dir=tmp_path / "spool", bulk_size=100)
    batch = list(mentions(250, START, END))
    es = Elasticsearch(dead_url, request_timeout=2)
    sleeps: list[float] = []
    with BulkWriter(es, cfg, max_retries=3, sleep=sleeps.append) as writer:
        report = writer.write(batch)
        assert report.indexed == 0
        assert report.spooled == 250
        assert writer.pending() == 250
        assert "refused the connection" in (report.unavailable or "")  # one readable line
    # three retries with growing backoff on the first batch, then spool-only
    assert len(sleeps) == 3
    assert sleeps[0] < 0.5 + 1e-9 < sleeps[2]
    segments = sorted((tmp_path / "spool").glob("*.jsonl"))
    assert len(segments) == 3
    lines = [json.loads(x) for s in segments for x in s.read_text().splitlines()]
    assert [x["id"] for x in lines] == [m.id for m in batch]


def test_the_spool_has_a_single_owner(tmp_path: Path):
    with Spool(tmp_path), pytest.raises(SpoolLockedError, match="in use by another writer"):
        Spool(tmp_path)


def test_torn_spool_lines_are_dead_lettered_not_lost_silently(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    install_templates(es_client, es_cfg)
    ms = list(mentions(3, START, END))
    with BulkWriter(es_client, es_cfg) as writer:
        spool_dir = writer.spool.dir
    # what a crash in the middle of writing a segment leaves behind
    lines = [
        json.dumps(
            {"id": m.id, "index": f"{es_cfg.index_prefix}-mentions-2026.10", "doc": m.to_document()}
        )
        for m in ms
    ]
    (spool_dir / "00000000000000000001-1-000001.jsonl.partial").write_text(
        "\n".join(lines) + '\n{"id": "half-writ'
    )
    with BulkWriter(es_client, es_cfg) as writer:
        report = writer.replay()
        assert writer.pending() == 0
        dead = list(writer.spool.dead_letters())
    assert report.replayed == 3
    assert report.dead_lettered == 1
    assert "torn write" in dead[0]["reason"]
    assert _count(es_client, es_cfg) == 3


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_stopping_the_node_mid_write_then_restarting_keeps_every_mention_once(
    tmp_path: Path, how: str
):
    node = LocalNode(port=0, data_dir=tmp_path / "node", heap="384m")
    cfg = ElasticsearchConfig(index_prefix="crash", spool_dir=tmp_path / "spool", bulk_size=250)
    batch = list(mentions(6_000, START, END, seed=11))
    node.start()
    try:
        es = node.client(request_timeout=10)
        install_templates(es, cfg)
        acked_before_stop = 0

        def stop_when_some_are_in() -> None:
            nonlocal acked_before_stop
            while True:
                time.sleep(0.05)
                try:
                    es.indices.refresh(index="crash-mentions-*")
                    acked_before_stop = int(es.count(index="crash-mentions-*")["count"])
                except Exception:
                    continue
                if acked_before_stop >= 1_000:
                    if how == "sigkill":
                        # a crash: no flush, no clean close; acked writes must
                        # survive through the translog
                        assert node.pid is not None
                        os.kill(node.pid, signal.SIGKILL)
                    node.stop()
                    return

        stopper = threading.Thread(target=stop_when_some_are_in)
        stopper.start()
        with BulkWriter(es, cfg, max_retries=2, backoff_initial=0.05) as writer:
            during = writer.write(batch)
        stopper.join(timeout=120)
        assert not stopper.is_alive()
        # the outage really happened in the middle of the write
        assert 1_000 <= acked_before_stop < 6_000
        assert during.spooled > 0, during.summary()
        assert during.indexed + during.spooled == 6_000
        es.close()

        node.start()
        es = node.client(request_timeout=30)
        es.cluster.health(index="crash-mentions-*", wait_for_status="yellow", timeout="60s")
        with BulkWriter(es, cfg) as writer:
            after = writer.replay()
            assert writer.pending() == 0
            assert list(writer.spool.dead_letters()) == []
        assert after.ok, after.summary()
        assert after.replayed == during.spooled
        ids = _all_ids(es, "crash-mentions-*")
        assert len(ids) == 6_000
        assert set(ids) == {m.id for m in batch}
        es.close()
    finally:
        node.stop()


def test_429_rejections_from_a_saturated_node_are_retried(tmp_path: Path):
    # One write thread with a queue of one: concurrent bulks get real
    # es_rejected_execution_exception (429) items, which must be retried.
    node = LocalNode(
        port=0,
        data_dir=tmp_path / "node",
        heap="256m",
        settings={"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"},
    )
    cfg = ElasticsearchConfig(index_prefix="busy", spool_dir=tmp_path / "spool", bulk_size=50)
    batch = list(mentions(500, START, END, seed=5))
    with node:
        es = node.client(request_timeout=30)
        install_templates(es, cfg)
        noise = [{"index": {"_index": "noise"}} if i % 2 == 0 else {"n": i} for i in range(100)]
        stop = threading.Event()
        rejected = 0

        def hammer() -> None:
            nonlocal rejected
            while not stop.is_set():
                resp = es.bulk(operations=noise)
                rejected += sum(1 for it in resp["items"] if it["index"]["status"] == 429)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            with BulkWriter(es, cfg, max_retries=30, backoff_initial=0.02, backoff_max=0.5) as w:
                report = w.write(batch)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert rejected > 0, "the node never pushed back: the setup does not test anything"
        assert report.retries > 0, report.summary()
        assert report.ok, report.summary()
        assert report.indexed == 500
        ids = _all_ids(es, "busy-mentions-*")
        assert sorted(ids) == sorted(m.id for m in batch)
        es.close()


def test_versions_of_one_mention_land_in_order_with_several_requests_in_flight(
    es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    """Every batch holds the same 20 ids, each batch a newer version: batches fly four
    at a time, yet the stored version is the last one written."""
    install_templates(es_client, es_cfg)
    base = list(mentions(20, START, END, seed=3))
    versions = [
        m.model_copy(update={"text": f"{m.text} (version {v})"}) for v in range(30) for m in base
    ]
    with BulkWriter(es_client, es_cfg, bulk_size=20, concurrency=4) as writer:
        report = writer.write(versions)
        assert writer.pending() == 0
    assert report.ok and report.indexed == 600, report.summary()
    alias = alias_name(es_cfg.index_prefix)
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=100)["hits"]["hits"]
    assert len(hits) == 20
    assert all(h["_source"]["text"].endswith("(version 29)") for h in hits)


_KILLED_WRITER = """
import sys
from datetime import UTC, datetime
from elasticsearch import Elasticsearch
from brandpulse.config import ElasticsearchConfig
from store.synthetic import mentions
from store.writer import BulkWriter

url, prefix, spool = sys.argv[1:4]
cfg = ElasticsearchConfig(index_prefix=prefix, spool_dir=spool, bulk_size=100)
docs = list(mentions(20_000, datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC), seed=21))
with BulkWriter(Elasticsearch(url, request_timeout=60), cfg, concurrency=3) as writer:
    for i in range(0, len(docs), 500):
        report = writer.write(docs[i : i + 500])
        assert report.ok, report.summary()
        print(f"acked {i + 500}", flush=True)
"""


def test_a_writer_killed_mid_write_loses_nothing_it_acknowledged(
    es_node, es_client: Elasticsearch, es_cfg: ElasticsearchConfig, tmp_path: Path
):
    """SIGKILL of the writing process while requests are in flight: every mention of a
    write() that returned is in Elasticsearch, and a new writer's replay sends what the
    spool kept, each mention once."""
    import subprocess
    import sys

    install_templates(es_client, es_cfg)
    repo = Path(__file__).resolve().parents[2]
    spool = tmp_path / "spool-killed"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, es_node.url, es_cfg.index_prefix, str(spool)],
        cwd=repo, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    acked = 0
    for line in child.stdout:
        acked = int(line.split()[1])
        if acked >= 2_000:
            child.kill()  # mid-way through the next write() call
            break
    child.wait()
    assert 2_000 <= acked < 20_000, "the writer finished before it could be killed"
    docs = list(mentions(20_000, START, END, seed=21))
    with BulkWriter(es_client, es_cfg.model_copy(update={"spool_dir": spool})) as writer:
        report = writer.replay()
        assert writer.pending() == 0
        assert list(writer.spool.dead_letters()) == []
    assert report.ok, report.summary()
    ids = _all_ids(es_client, alias_name(es_cfg.index_prefix))
    assert {m.id for m in docs[:acked]} <= set(ids)
    assert set(ids) <= {m.id for m in docs}


class _BulkTap:
    """An HTTP proxy in front of the real node that looks at every ``_bulk`` request.

    Before forwarding one it reads the spool directory and notes any ``_id`` of the
    request that is in no complete segment on disk (the writer's promise: a batch is
    spooled, fsynced, before a byte of it is sent). It counts how many ``_bulk``
    requests it holds at once; ``hold_second`` keeps the second one until a third
    arrives (so requests really overlap, whatever the scheduler does), up to a
    minute. ``swallow(n, body)`` says which requests (the n-th _bulk, 1-based) get
    no answer: forwarded, applied by the node, then the connection is closed, as
    when a node or a load balancer goes away between applying a write and
    answering it. A swallowed request first waits (up to 10 s) for a later _bulk to
    be answered, so one the writer sent alongside lands before the retry.
    """

    def __init__(
        self, upstream: str, spool: Path, *, swallow=lambda n, body: False, hold_second: bool = False
    ) -> None:
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.unspooled: list[str] = []
        self.bulks = 0
        self.swallowed = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._third = threading.Event()
        self._answered: list[int] = []  # numbers of the _bulk requests answered
        self._answer = threading.Condition(self._lock)
        host, port = urlsplit(upstream).hostname, urlsplit(upstream).port
        tap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                bulk = self.path.split("?")[0].endswith("/_bulk")
                n = tap._enter(body, spool) if bulk else 0
                try:
                    if n == 2 and hold_second:
                        tap._third.wait(60)
                    conn = http.client.HTTPConnection(host, port, timeout=120)
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                finally:
                    if bulk:
                        with tap._lock:
                            tap._in_flight -= 1
                if bulk and swallow(n, body):
                    with tap._answer:
                        tap._answer.wait_for(lambda: any(a > n for a in tap._answered), 10)
                        tap.swallowed += 1
                    self.close_connection = True
                    return  # applied by the node, never answered
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if bulk:
                    with tap._answer:
                        tap._answered.append(n)
                        tap._answer.notify_all()

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _enter(self, body: bytes, spool: Path) -> int:
        ops = body.splitlines()[0::2]
        ids = [json.loads(op)["index"]["_id"] for op in ops if op.strip()]
        on_disk: set[str] = set()
        for segment in spool.glob("*.jsonl"):  # complete ones: .partial until fsynced
            try:
                on_disk |= {json.loads(line)["id"] for line in segment.read_bytes().splitlines()}
            except (FileNotFoundError, ValueError):
                continue  # removed (acknowledged) meanwhile, or the dead-letter file
        with self._lock:
            self.unspooled += [i for i in ids if i not in on_disk]
            self.bulks += 1
            n = self.bulks
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        if n >= 3:
            self._third.set()
        return n

    def __enter__(self) -> _BulkTap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_every_batch_is_on_disk_before_its_request_leaves_with_several_in_flight(
    es_node, es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    """The spool's promise under concurrency: the flight that sends a batch wrote its
    segment (fsynced, renamed from .partial) first; and requests really overlap."""
    install_templates(es_client, es_cfg)
    cfg = es_cfg.model_copy(update={"bulk_size": 250, "bulk_concurrency": 3})
    batch = list(mentions(5_000, START, END, seed=31))
    with _BulkTap(es_node.url, cfg.spool_dir, hold_second=True) as tap:
        es = Elasticsearch(tap.url, request_timeout=120)
        with BulkWriter(es, cfg) as writer:
            assert writer.concurrency == 3
            report = writer.write(batch)
            assert writer.pending() == 0
        es.close()
    assert report.ok and report.indexed == 5_000, report.summary()
    assert tap.bulks == 20
    assert tap.max_in_flight >= 2
    assert tap.unspooled == []
    assert sorted(_all_ids(es_client, alias_name(es_cfg.index_prefix))) == sorted(
        m.id for m in batch
    )


def test_answers_lost_after_the_node_applied_them_are_resent_and_stored_once(
    es_node, es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    """Every third _bulk is applied by the node but never answered: the writer cannot
    tell it landed, retries it, and in the end each mention is stored once."""
    install_templates(es_client, es_cfg)
    batch = list(mentions(3_000, START, END, seed=43))
    cfg = es_cfg.model_copy(update={"bulk_size": 100, "bulk_concurrency": 3})
    sleeps: list[float] = []
    with _BulkTap(es_node.url, cfg.spool_dir, swallow=lambda n, body: n % 3 == 0) as tap:
        es = Elasticsearch(tap.url, request_timeout=120)
        with BulkWriter(es, cfg, max_retries=5, sleep=sleeps.append) as writer:
            report = writer.write(batch)
            assert writer.pending() == 0
        es.close()
    assert tap.swallowed >= 10 and report.retries >= tap.swallowed
    assert tap.unspooled == []
    assert report.ok and report.indexed == 3_000, report.summary()
    ids = _all_ids(es_client, alias_name(es_cfg.index_prefix))
    assert len(ids) == 3_000 and set(ids) == {m.id for m in batch}


def test_a_retried_batch_lands_before_a_newer_version_of_its_mentions(
    es_node, es_client: Elasticsearch, es_cfg: ElasticsearchConfig
):
    """Versions 0-7 of 20 mentions, one version per batch, each batch padded with 20
    other mentions, three requests in flight. The node applies version 6 but its
    answer is lost: the writer must not have sent version 7 meanwhile (its retry of
    6 would then overwrite 7); the stored version is 7, every mention once."""
    install_templates(es_client, es_cfg)
    base = list(mentions(20, START, END, seed=41))
    others = list(mentions(2_000, START, END, seed=42, id_prefix="o"))
    versions = [m.model_copy(update={"text": f"{m.text} (version {v})"}) for v in range(8) for m in base]
    stream = [x for i in range(8) for x in (*versions[i * 20 : i * 20 + 20], *others[i * 20 : i * 20 + 20])]
    stream += others[160:]
    cfg = es_cfg.model_copy(update={"bulk_size": 40, "bulk_concurrency": 3})
    first_v6 = threading.Event()

    def swallow(n: int, body: bytes) -> bool:
        if b"(version 6)" not in body or first_v6.is_set():
            return False
        first_v6.set()
        return True

    with _BulkTap(es_node.url, cfg.spool_dir, swallow=swallow) as tap:
        es = Elasticsearch(tap.url, request_timeout=120)
        with BulkWriter(es, cfg, max_retries=5, sleep=lambda s: None) as writer:
            report = writer.write(stream)
            assert writer.pending() == 0
        es.close()
    assert tap.swallowed == 1 and report.retries >= 1
    assert report.ok and report.indexed == len(stream), report.summary()
    alias = alias_name(es_cfg.index_prefix)
    ids = _all_ids(es_client, alias)
    assert len(ids) == 2_020 and set(ids) == {m.id for m in [*base, *others]}
    hits = es_client.search(index=alias, query={"ids": {"values": [m.id for m in base]}}, size=20)
    assert sorted(h["_source"]["text"][-11:] for h in hits["hits"]["hits"]) == ["(version 7)"] * 20


def test_the_fast_check_flags_every_character_that_needs_cleaning():
    """`_suspect` looks at a document's JSON, not its strings: every character
    `brandpulse.text` cleans must show there, and ordinary text must not."""
    from brandpulse.text import needs_cleaning
    from store.spool import json_text
    from store.writer import _suspect

    bad = [chr(c) for c in range(0x110000) if needs_cleaning(chr(c))]
    assert len(bad) == 2048 + 29 + 33 + 2  # surrogates, C0 less \t\n\r, DEL + C1, U+FFFE/F
    assert [c for c in bad if not _suspect(json_text({"text": f"Acme {c} down"}))] == []
    plain = {"text": 'Acme "phone"\tis\r\nfine \\ 小米手机 \U0001f600 \\u0041', "n": [1.5e-7]}
    assert not needs_cleaning(plain) and not _suspect(json_text(plain))
