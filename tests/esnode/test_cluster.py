"""`esnode.LocalCluster`: several real Elasticsearch JVMs on loopback forming one cluster,
whose nodes a test can stop, kill and start again (issue #15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import ConnectionTimeout, Elasticsearch

import esnode
from esnode import ES_VERSION, LocalCluster, cluster_name, read_cluster

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]


def test_a_cluster_has_two_nodes_or_more_and_a_valid_heap():
    with pytest.raises(ValueError, match="2 nodes or more"):
        LocalCluster(nodes=1)
    with pytest.raises(ValueError, match="heap must look like"):
        LocalCluster(nodes=3, heap="lots")


def test_the_cluster_name_is_stable_per_folder_and_differs_between_folders(tmp_path: Path):
    assert cluster_name(tmp_path / "a") == cluster_name(tmp_path / "b" / ".." / "a")
    assert cluster_name(tmp_path / "a") != cluster_name(tmp_path / "b")
    assert LocalCluster(data_dir=tmp_path / "a").name == cluster_name(tmp_path / "a")


def test_three_nodes_form_one_cluster_each_with_its_own_folder(es_cluster: LocalCluster):
    es = es_cluster.client(request_timeout=200)  # above the health waits below
    health = es.cluster.health(wait_for_nodes="3", wait_for_status="green", timeout="60s")
    assert health["cluster_name"] == es_cluster.name and health["number_of_nodes"] == 3
    nodes = es.nodes.info(metric="process")["nodes"].values()
    assert sorted(n["name"] for n in nodes) == ["node-0", "node-1", "node-2"]
    assert {n["version"] for n in nodes} == {ES_VERSION}
    assert sorted(n["process"]["id"] for n in nodes) == sorted(es_cluster.pids())
    assert len({node.data_dir for node in es_cluster.nodes}) == 3
    assert len(set(es_cluster.urls)) == 3
    cluster_file = read_cluster(es_cluster.data_dir)
    assert cluster_file is not None and cluster_file["cluster_name"] == es_cluster.name
    es.close()


def test_the_master_killed_the_other_two_elect_another_and_it_rejoins(es_cluster: LocalCluster):
    es = es_cluster.client(request_timeout=200)  # above the health waits below
    es.indices.create(index="survives", settings={"number_of_shards": 1, "number_of_replicas": 1})
    es.index(index="survives", id="1", document={"n": 1}, refresh=True)
    # green first: a replica still recovering when its primary's node dies cannot take
    # over, and the index would stay red until that node came back
    es.cluster.health(index="survives", wait_for_status="green", timeout="180s")
    master = es.cat.master(format="json")[0]["node"]
    victim = es_cluster.names.index(master)
    pid = es_cluster.nodes[victim].pid
    assert pid is not None

    es_cluster.stop_node(victim, kill=True)
    assert not esnode._pid_alive(pid)
    health = es_cluster.wait_for_nodes(2)
    assert health["number_of_nodes"] == 2
    # the client's node pool skips the dead node; the two left have a quorum of masters
    new_master = es.cat.master(format="json")[0]["node"]
    assert new_master != master and new_master in es_cluster.names
    assert es.get(index="survives", id="1")["_source"] == {"n": 1}

    es_cluster.start_node(victim)
    assert es_cluster.nodes[victim].pid not in (None, pid)
    health = es.cluster.health(index="survives", wait_for_status="green", timeout="180s")
    assert health["number_of_nodes"] == 3
    assert es.get(index="survives", id="1")["_source"] == {"n": 1}
    es.indices.delete(index="survives")
    es.close()


def test_a_node_stopped_cleanly_leaves_and_comes_back_on_its_ports(es_cluster: LocalCluster):
    url = es_cluster.nodes[1].url
    es_cluster.stop_node(1)
    assert es_cluster.nodes[1].pid is None
    assert es_cluster.wait_for_nodes(2)["number_of_nodes"] == 2
    es_cluster.start_node(1)
    assert es_cluster.nodes[1].url == url
    assert es_cluster.wait_for_nodes(3)["number_of_nodes"] == 3


def test_a_frozen_node_hangs_while_the_others_answer_and_answers_once_thawed(
    es_cluster: LocalCluster,
):
    frozen = es_cluster.nodes[2]
    direct = Elasticsearch(frozen.url, request_timeout=2, max_retries=0)
    es_cluster.freeze_node(2)
    try:
        assert frozen.frozen and esnode._pid_alive(frozen.pid)  # type: ignore[arg-type]
        with pytest.raises(ConnectionTimeout):
            direct.cluster.health()
        # the other two answer what they know themselves (a request routed to the
        # master would hang too if the frozen node is the master, until the others'
        # fault detection removes it)
        for node in es_cluster.nodes[:2]:
            local = Elasticsearch(node.url, request_timeout=30)
            info = local.nodes.info(node_id="_local", metric="process")["nodes"]
            assert [n["process"]["id"] for n in info.values()] == [node.pid]
            local.close()
    finally:
        es_cluster.thaw_node(2)
    assert not frozen.frozen
    health = direct.options(request_timeout=60).cluster.health(timeout="30s")
    assert health["cluster_name"] == es_cluster.name
    es_cluster.wait_for_nodes(3)
    direct.close()


def _esnode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esnode", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def test_cli_start_nodes_status_stop(tmp_path: Path):
    data = tmp_path / "cli-cluster"
    started = _esnode("start", "--nodes", "2", "--port", "0", "--data", str(data), "--heap", "256m")
    try:
        assert started.returncode == 0, started.stderr
        state = read_cluster(data)
        assert state is not None
        urls = [n["url"] for n in state["nodes"]]  # type: ignore[attr-defined]
        assert started.stdout.split() == urls and len(set(urls)) == 2
        status = _esnode("status", "--data", str(data))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "2 of 2 running, health green, 2 node(s)" in status.stdout
        pids = [esnode.read_state(data / f"node-{i}")["pid"] for i in range(2)]  # type: ignore[index]
    finally:
        stopped = _esnode("stop", "--data", str(data))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(esnode._pid_alive(int(pid)) for pid in pids)
    after = _esnode("status", "--data", str(data))
    assert after.returncode == 3 and after.stdout.startswith("stopped")
