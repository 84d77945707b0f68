"""Shared fixtures: a real Elasticsearch node and a real Redis for tests that need one,
a local three-node Elasticsearch cluster for the tests marked ``cluster``, and a
node of its own for the tests that freeze one (`hang_node`).

``BRANDPULSE_TEST_ES_URL=http://host:port`` reuses a running node instead of
starting one (CI services, or `python -m esnode start` kept open while iterating);
it does not apply to the cluster, whose tests stop and kill its nodes;
``BRANDPULSE_TEST_REDIS_URL=redis://host:port/db`` does the same for Redis
(`make redis`). Tests that use Redis put their keys under a prefix of their own.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

# `pytest` (unlike `python -m pytest`) puts tests/ first on sys.path, where the
# folder tests/esnode/ would shadow the real `esnode` package as a namespace
# package; the repository root on the path lets the regular package win.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from esnode import LocalCluster, LocalNode
from redisnode import LocalRedis


class RunningNode:
    """A node someone else started: same surface as LocalNode for tests."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def client(self, **kwargs: object) -> Elasticsearch:
        opts: dict[str, object] = {"request_timeout": 60}
        opts.update(kwargs)
        return Elasticsearch(self.url, **opts)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def es_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode | RunningNode]:
    url = os.environ.get("BRANDPULSE_TEST_ES_URL")
    if url:
        yield RunningNode(url)
        return
    data_dir: Path = tmp_path_factory.mktemp("esnode")
    # port 0: a free port, and another one if a concurrent session takes it first
    node = LocalNode(port=0, data_dir=data_dir, heap="512m")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def hang_node_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """A node of its own for the tests that make it hang (`LocalNode.freeze`), started
    on first use: never the shared `es_node`, which a frozen node would stall for
    every other test (and `BRANDPULSE_TEST_ES_URL` does not apply: a node someone
    else runs cannot be frozen). Tests take it through `hang_node`."""
    node = LocalNode(port=0, data_dir=tmp_path_factory.mktemp("esnode-hang"), heap="512m")
    node.start()
    try:
        yield node
    finally:
        node.stop()  # thaws it first if a test left it frozen


@pytest.fixture
def hang_node(hang_node_session: LocalNode) -> Iterator[LocalNode]:
    """The node the hang tests freeze, thawed again after each test whatever happened."""
    yield hang_node_session
    hang_node_session.thaw()


@pytest.fixture(scope="module")
def es_cluster_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three local nodes (512 MB heap each) forming one cluster, for one test module,
    torn down after it: a cluster takes 30-40 s to boot on a busy 2-core machine, so
    a module's tests share one, and no two modules' clusters overlap."""
    cluster = LocalCluster(nodes=3, port=0, data_dir=tmp_path_factory.mktemp("escluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def es_cluster(es_cluster_module: LocalCluster) -> LocalCluster:
    """The module's cluster with its three nodes running: a node an earlier test stopped
    or killed is started again first (same ports, same data). Before the test, not
    after: the module's last test leaves no node to restart for nothing."""
    for i, node in enumerate(es_cluster_module.nodes):
        if node.pid is None:
            es_cluster_module.start_node(i)
    return es_cluster_module


@pytest.fixture(scope="session")
def es_client(es_node: LocalNode | RunningNode) -> Iterator[Elasticsearch]:
    client = es_node.client()
    yield client
    client.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on, held for the whole test: connections are
    refused, and no one else can take it meanwhile (a port found free and let go,
    as `esnode.free_port` does, may be another test session's server a moment
    later). It is bound with SO_REUSEPORT, so `TcpProxy(port=closed_port)` can
    listen on it for a while and leave it refusing again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


class RunningRedis:
    """A Redis someone else started: same surface as LocalRedis for tests."""

    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture(scope="session")
def redis_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis | RunningRedis]:
    url = os.environ.get("BRANDPULSE_TEST_REDIS_URL")
    if url:
        yield RunningRedis(url)
        return
    node = LocalRedis(work_dir=tmp_path_factory.mktemp("redisnode"))
    node.start()
    try:
        yield node
    finally:
        node.stop()
