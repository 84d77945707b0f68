"""The bulk writer against a real three-node cluster (issue #15): a node killed in the
middle of an ingest loses no mention and duplicates none, with a node down the writer
keeps writing to the other two, and the node holding the primary frozen mid-ingest
(alive, silent) costs one retry budget and loses nothing.

Everything is real: three Elasticsearch JVMs on loopback (`esnode.LocalCluster`), the
client the product builds from a config listing the three nodes (`store.client`), the
templates `store.setup` installs (one replica on a cluster), the `BulkWriter` with its
spool on. The kill is SIGKILL, as a crash or the kernel's OOM killer would do it, and it
happens while the writer is between batches with requests in flight: the mentions are
fed through a generator that kills the node when the writer asks for the next one. The
freeze is SIGSTOP (`LocalCluster.freeze_node`), fed the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import Mention
from esnode import LocalCluster
from store.client import make_client
from store.setup import alias_name, setup_elasticsearch
from store.synthetic import mentions
from store.writer import BulkWriter, WriteReport
from tests.hang import InThread, wait_until
from tests.store.test_writer import _all_ids

pytestmark = pytest.mark.cluster

# one monthly index, so one primary shard and one replica, on two of the three nodes
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, tzinfo=UTC)
API_KEY = "Y2x1c3Rlci1mcmVlemUta2V5Om5vdC1hLXJlYWwtc2VjcmV0LTY3ODkw"  # no security: ignored


def _config(cluster: LocalCluster, tmp_path: Path, prefix: str) -> ElasticsearchConfig:
    return ElasticsearchConfig(
        hosts=cluster.urls, index_prefix=prefix, spool_dir=tmp_path / "spool", bulk_size=100
    )


def _green(es: Elasticsearch, index: str) -> None:
    """Wait until the index's primary and replica are both allocated and in sync. The
    wait is Elasticsearch's (a replica recovering on a busy machine may take minutes);
    the client's request timeout (the config's 30 s) is stretched to cover it."""
    health = es.options(request_timeout=200).cluster.health(
        index=index, wait_for_status="green", timeout="180s"
    )
    assert health["status"] == "green", health


def _set_up(es: Elasticsearch, cfg: ElasticsearchConfig) -> str:
    """Templates and the month's index, green."""
    index = setup_elasticsearch(es, cfg, now=START).bootstrap_index
    assert index is not None
    _green(es, index)
    return index


def _primary_holder(es: Elasticsearch, cluster: LocalCluster, index: str) -> int:
    """Which node (its position in the cluster) holds the index's primary shard."""
    shards = es.cat.shards(index=index, format="json")
    (primary,) = [s["node"] for s in shards if s["prirep"] == "p"]
    return cluster.names.index(primary)


def _drain(writer: BulkWriter, report: WriteReport) -> int:
    """Replay what the spool still holds, as the daemon's timer does, until it is empty
    (each replay spends the writer's own retry budget). Returns the replays it took."""
    replays = 0
    while writer.pending() and replays < 10:
        report.merge(writer.replay())
        replays += 1
    return replays


def test_templates_give_each_mention_index_one_replica_on_a_cluster(
    es_cluster: LocalCluster, tmp_path: Path
):
    cfg = _config(es_cluster, tmp_path, "replicas")
    es = make_client(cfg)
    index = _set_up(es, cfg)
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["auto_expand_replicas"] == "0-1"
    assert settings["number_of_replicas"] == "1"
    copies = es.cat.shards(index=index, format="json")
    assert sorted(s["prirep"] for s in copies) == ["p", "r"]
    assert len({s["node"] for s in copies}) == 2  # never two copies on one node
    es.close()


def test_a_node_killed_mid_ingest_loses_no_mention_and_stores_each_once(
    es_cluster: LocalCluster, tmp_path: Path
):
    cfg = _config(es_cluster, tmp_path, "killed")
    es = make_client(cfg)
    index = _set_up(es, cfg)
    # the node with the primary: its replica must be promoted while bulks are in flight
    victim = _primary_holder(es, es_cluster, index)
    batch = list(mentions(3000, START, END, id_prefix="k"))
    killed_after = len(batch) // 3

    def feed() -> Iterator[Mention]:
        for i, mention in enumerate(batch):
            if i == killed_after:
                es_cluster.stop_node(victim, kill=True)
            yield mention

    with BulkWriter(es, cfg, concurrency=2) as writer:
        report = writer.write(feed())
        assert es_cluster.nodes[victim].pid is None  # the kill did happen, mid-call
        replays = _drain(writer, report)
        assert writer.pending() == 0, report.summary()
    assert not report.failures and report.dead_lettered == 0, report.summary()
    # the kill was felt: a request met the dead node (the pool sends round robin) and
    # was retried on another
    assert report.retries >= 1
    print(f"\nkilled node-{victim} after {killed_after} mentions: {report.summary()}, "
          f"{report.retries} retries, {replays} replay(s) of the spool")  # fmt: skip

    # with the two nodes left: every mention, each exactly once
    es_cluster.wait_for_nodes(2)
    ids = _all_ids(es, alias_name(cfg.index_prefix))
    assert len(ids) == len(batch)
    assert set(ids) == {m.id for m in batch}

    # and once the killed node is back and the replica recovered, still so
    es_cluster.start_node(victim)
    _green(es, index)
    ids = _all_ids(es, alias_name(cfg.index_prefix))
    assert len(ids) == len(batch)
    assert set(ids) == {m.id for m in batch}
    es.close()


def test_the_writer_keeps_writing_with_a_node_down(es_cluster: LocalCluster, tmp_path: Path):
    cfg = _config(es_cluster, tmp_path, "degraded")
    es = make_client(cfg)
    index = _set_up(es, cfg)
    down = _primary_holder(es, es_cluster, index)
    es_cluster.stop_node(down)  # SIGTERM: a node taken out for maintenance
    es_cluster.wait_for_nodes(2)
    batch = list(mentions(2000, START, END, id_prefix="d"))

    with BulkWriter(es, cfg, concurrency=2) as writer:
        report = writer.write(batch)
        assert writer.pending() == 0
    # nothing waited in the spool: the node pool sent every batch to a node that runs
    assert report.ok and report.indexed == len(batch), report.summary()
    assert report.retries >= 1  # the stopped node's turn came, and went to another node
    print(f"\nnode-{down} down: {report.summary()}, {report.retries} retries")

    # reads go round the three hosts too; the stopped one's turns go to another node
    alias = alias_name(cfg.index_prefix)
    es.indices.refresh(index=alias)
    for _ in range(2 * len(cfg.hosts)):
        assert es.count(index=alias)["count"] == len(batch)
    ids = _all_ids(es, alias)
    assert len(ids) == len(batch) and set(ids) == {m.id for m in batch}
    # two data nodes left: still one replica wanted (auto_expand_replicas 0-1)
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["number_of_replicas"] == "1"
    es.close()


def _answering(cluster: LocalCluster, but: int) -> Elasticsearch:
    """A client over the nodes other than `but` (the frozen one), for the checks: each
    request to a frozen node would wait out its timeout before going elsewhere."""
    urls = [node.url for i, node in enumerate(cluster.nodes) if i != but]
    return Elasticsearch(urls, request_timeout=60, max_retries=len(urls))


def _dropped(es: Elasticsearch, index: str, nodes: int) -> bool:
    """Whether the cluster (asked of nodes that answer) has `nodes` nodes and the index a
    primary (yellow at least): the frozen node was removed and its primary promoted.
    False while there is no master to answer (the frozen node was it)."""
    try:
        health = es.cluster.health(
            index=index, wait_for_nodes=str(nodes), wait_for_status="yellow",
            timeout="10s", master_timeout="10s",
        )  # fmt: skip
    except Exception:  # 503 / timeout: no elected master yet
        return False
    return not health["timed_out"] and health["number_of_nodes"] == nodes


def _sentiments(es: Elasticsearch, index: str) -> dict[str, object]:
    """Every stored mention's ``sentiment`` object, by _id."""
    es.indices.refresh(index=index)
    found: dict[str, object] = {}
    after = None
    while True:
        page = es.search(
            index=index, size=5000, source_includes=["sentiment"], sort=[{"id": "asc"}],
            search_after=after,
        )["hits"]["hits"]  # fmt: skip
        if not page:
            return found
        found.update((h["_id"], h["_source"]["sentiment"]) for h in page)
        after = page[-1]["sort"]


def test_the_node_holding_the_primary_frozen_mid_ingest_loses_nothing(
    es_cluster: LocalCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """SIGSTOP on the node with the mention index's primary, a third into a write of
    3,000 mentions, spool on and two batches in flight (the product's default). Every
    request then hangs: on the frozen node itself, and on the others too, which forward
    the shard's writes to the frozen primary until the cluster's fault detection
    removes the node (about 30 s with the defaults) and promotes the replica. The write
    must give up after one retry budget with the rest spooled, and a replay once the
    cluster dropped the node (still frozen) must leave each mention once, its scores
    as sent; still so after the thaw and the rejoin."""
    caplog.set_level(logging.INFO)
    cfg = ElasticsearchConfig.model_validate({
        "hosts": es_cluster.urls, "index_prefix": "frozen", "spool_dir": str(tmp_path / "spool"),
        "bulk_size": 100, "request_timeout": "8s", "bulk_retries": 1, "api_key": API_KEY,
    })  # fmt: skip
    es = make_client(cfg)
    index = _set_up(es.options(request_timeout=120), cfg)  # patient: 8 s is for the writes
    victim = _primary_holder(es, es_cluster, index)
    was_master = es.cat.master(format="json")[0]["node"] == es_cluster.names[victim]
    batch = list(mentions(3000, START, END, seed=17, id_prefix="f"))
    frozen_at = len(batch) // 3
    alias = alias_name(cfg.index_prefix)
    expected = {m.id: m.to_document()["sentiment"] for m in batch}
    pulls: list[float] = []  # when the writer took each mention: a gap is a stall
    froze: list[float] = []

    def feed() -> Iterator[Mention]:
        for i, mention in enumerate(batch):
            if i == frozen_at:
                es_cluster.freeze_node(victim)
                froze.append(time.monotonic())
            pulls.append(time.monotonic())
            yield mention

    writer = BulkWriter(es, cfg, backoff_initial=0.1, backoff_max=0.5)
    others = _answering(es_cluster, but=victim)
    try:
        assert (writer.concurrency, writer.max_retries) == (2, 1)
        budget = writer.retry_budget()  # 2 attempts of 8 s plus a backoff: about 16 s
        call = InThread(lambda: writer.write(feed()), name="write")
        # a bound on a hang, not a timing: a budget spent per batch would pass it too
        wait_until(call.done, 10 * budget, "write() with the primary's node frozen to return")
        returned = time.monotonic() - froze[0]
        during: WriteReport = call.result()
        stall = max(b - a for a, b in pairwise(pulls))
        assert es_cluster.nodes[victim].frozen, "the node was frozen the whole call"
        # one flight spent the call's budget; the other gave up with it
        assert during.retries <= writer.max_retries, during.summary()
        assert during.spooled > 0, during.summary()
        assert during.indexed + during.spooled == len(batch), during.summary()
        assert writer.pending() == during.spooled
        assert "timeout" in (during.unavailable or ""), during.unavailable

        # the two others remove the silent node and promote the replica; the spool
        # replays into them with the node still frozen
        wait_until(lambda: _dropped(others, index, 2), 300, "the cluster to drop the frozen node")
        dropped_after = time.monotonic() - froze[0]
        after = WriteReport()
        replays = _drain(writer, after)
        assert writer.pending() == 0, after.summary()
        assert not after.failures and after.dead_lettered == 0, after.summary()
        assert during.indexed + after.replayed >= len(batch), after.summary()
        print(f"\nnode-{victim} (primary{', master' if was_master else ''}) frozen after "
              f"{frozen_at}: write() returned {returned:.1f} s after the freeze (budget "
              f"{budget:.1f} s, longest stall {stall:.1f} s): {during.summary()}, "
              f"{during.retries} retries; dropped {dropped_after:.1f} s after the freeze; "
              f"{replays} replay(s): {after.summary()}, {after.retries} retries")  # fmt: skip

        ids = _all_ids(others, alias)
        assert len(ids) == len(batch) and set(ids) == set(expected), "each mention once"
        assert _sentiments(others, alias) == expected, "scores as sent"
    finally:
        es_cluster.thaw_node(victim)
        writer.close()
    # thawed, it rejoins; its stale copy is recovered from the new primary
    es_cluster.wait_for_nodes(3)
    _green(others, index)
    ids = _all_ids(others, alias)
    assert len(ids) == len(batch) and set(ids) == set(expected)
    assert _sentiments(others, alias) == expected
    leaked = [r.getMessage() for r in caplog.records if API_KEY in r.getMessage()]
    assert not leaked, leaked
    others.close()
    es.close()
