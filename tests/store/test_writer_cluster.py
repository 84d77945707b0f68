"""The bulk writer against a real three-node cluster (issue #15): a node killed in the
middle of an ingest loses no mention and duplicates none, and with a node down the
writer keeps writing to the other two.

Everything is real: three Elasticsearch JVMs on loopback (`esnode.LocalCluster`), the
client the product builds from a config listing the three nodes (`store.client`), the
templates `store.setup` installs (one replica on a cluster), the `BulkWriter` with its
spool on. The kill is SIGKILL, as a crash or the kernel's OOM killer would do it, and it
happens while the writer is between batches with requests in flight: the mentions are
fed through a generator that kills the node when the writer asks for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
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
from tests.store.test_writer import _all_ids

pytestmark = pytest.mark.cluster

# one monthly index, so one primary shard and one replica, on two of the three nodes
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, tzinfo=UTC)


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
