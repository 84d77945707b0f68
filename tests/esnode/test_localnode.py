from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elasticsearch import ConnectionTimeout, Elasticsearch

import esnode
from esnode import ES_VERSION, EsNodeError, LocalNode, find_java

REPO = Path(__file__).resolve().parents[2]


def test_node_answers_with_the_pinned_version(es_client: Elasticsearch):
    health = es_client.cluster.health(wait_for_status="yellow", timeout="30s")
    assert health["status"] in ("yellow", "green")
    nodes = es_client.nodes.info()["nodes"]
    assert [n["version"] for n in nodes.values()] == [ES_VERSION]


def test_node_indexes_and_searches(es_client: Elasticsearch):
    es_client.index(index="esnode-smoke", id="1", document={"t": "hello 世界"}, refresh=True)
    hits = es_client.search(index="esnode-smoke", query={"match": {"t": "世"}})["hits"]
    assert hits["total"]["value"] == 1
    es_client.indices.delete(index="esnode-smoke")


def test_find_java_picks_a_jdk_21_or_newer():
    java = find_java()
    assert java.major >= 21
    assert java.javac.is_file()


def test_find_java_fails_loudly_without_a_suitable_jdk(monkeypatch, tmp_path: Path):
    old = tmp_path / "jdk17"
    (old / "bin").mkdir(parents=True)
    (old / "release").write_text('JAVA_VERSION="17.0.15"\n')
    monkeypatch.setenv("JAVA_HOME", str(old))
    with pytest.raises(EsNodeError, match=r"(?s)needs a JDK >= 21.*jdk17 \(java 17\)"):
        find_java(jvm_dirs=(tmp_path / "no-jvms",))


def test_stop_then_restart_on_the_same_data_dir_keeps_documents(tmp_path: Path):
    node = LocalNode(port=0, data_dir=tmp_path / "node", heap="256m")
    with node:
        assert node.boot_seconds is not None and node.rss_bytes()
        es = node.client()
        es.index(index="persist", id="a", document={"n": 1}, refresh=True)
        es.close()
    assert not (tmp_path / "node" / "esnode.json").exists()
    with LocalNode(port=0, data_dir=tmp_path / "node", heap="256m") as again:
        es = again.client()
        assert es.get(index="persist", id="a")["_source"] == {"n": 1}
        es.close()


def test_heap_is_validated_before_anything_starts():
    with pytest.raises(ValueError, match="heap must look like"):
        LocalNode(port=0, heap="not-a-size")


def test_a_crashing_jvm_surfaces_its_log(tmp_path: Path, monkeypatch):
    node = LocalNode(port=0, data_dir=tmp_path / "crash", heap="256m")
    real = node.java_command

    def broken(java: esnode.Java, home: Path) -> list[str]:
        cmd = real(java, home)
        return [*cmd, "--no-such-flag"]

    monkeypatch.setattr(node, "java_command", broken)
    with pytest.raises(EsNodeError) as info:
        node.start()
    assert "exited with code" in str(info.value)
    assert "unknown argument: --no-such-flag" in str(info.value)
    assert node.pid is not None
    assert not esnode._pid_alive(node.pid)


def test_a_busy_port_is_refused_before_booting(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(EsNodeError, match=f"port {port} .* already in use"):
            LocalNode(port=port, data_dir=tmp_path / "busy").start()


class _FirstPortsTaken(LocalNode):
    """A node whose first two picks are taken: one port only bound (the JVM's own bind
    fails, as when another session binds it after the pick), one listening (seen
    before booting)."""

    def __init__(self, taken: list[int], **kwargs: object) -> None:
        super().__init__(port=0, **kwargs)  # type: ignore[arg-type]
        self.tried: list[int] = []
        self._taken = list(taken)

    def _pick_port(self) -> int:
        port = self._taken.pop(0) if self._taken else super()._pick_port()
        self.tried.append(port)
        return port


def test_port_0_retries_on_a_fresh_port_when_its_port_is_taken(tmp_path: Path):
    with socket.socket() as bound, socket.socket() as listening:
        bound.bind(("127.0.0.1", 0))
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        taken = [bound.getsockname()[1], listening.getsockname()[1]]
        node = _FirstPortsTaken(taken, data_dir=tmp_path / "node", heap="256m")
        with node:
            assert node.tried[:2] == taken and len(node.tried) == 3
            assert node.port == node.tried[2] and node.url.endswith(f":{node.port}")
            es = node.client()
            assert es.cluster.health()["status"] in ("yellow", "green")
            es.close()
            assert json.loads((tmp_path / "node" / "esnode.json").read_text())["port"] == node.port
        assert "BindHttpException" in esnode.log_tail(tmp_path / "node", 400)


def test_an_explicit_port_that_is_taken_is_not_changed(tmp_path: Path):
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        node = LocalNode(port=port, data_dir=tmp_path / "fixed", heap="256m")
        with pytest.raises(esnode.PortTaken, match=f"port {port} .* taken before Elasticsearch bound it"):
            node.start()
        assert node.port == port


def _esnode(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esnode", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_cli_start_status_stop(tmp_path: Path):
    data = tmp_path / "cli"
    started = _esnode("start", "--port", "0", "--data", str(data), "--heap", "256m")
    try:
        assert started.returncode == 0, started.stderr
        state = json.loads((data / "esnode.json").read_text())
        assert state["port"] > 0 and state["version"] == ES_VERSION
        assert started.stdout.strip() == f"http://127.0.0.1:{state['port']}"
        status = _esnode("status", "--data", str(data))
        assert status.returncode == 0
        assert "running" in status.stdout and "health green" in status.stdout
    finally:
        stopped = _esnode("stop", "--data", str(data))
    assert stopped.returncode == 0, stopped.stderr
    assert not esnode._pid_alive(state["pid"])
    after = _esnode("status", "--data", str(data))
    assert after.returncode == 3 and after.stdout.startswith("stopped")


def test_the_node_exits_when_the_python_process_that_started_it_dies(tmp_path: Path):
    data = tmp_path / "orphan"
    script = (
        "import sys; from esnode import LocalNode;"
        f"n = LocalNode(port=0, data_dir={str(data)!r}, heap='256m').start();"
        "print(n.pid, flush=True)"
    )
    # the parent exits right after the boot without stopping the node
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 60
    while esnode._pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not esnode._pid_alive(pid), "the JVM outlived its parent"
    assert "parent" in esnode.log_tail(data, 200) and "shutting down" in esnode.log_tail(data, 200)


def test_a_frozen_node_times_out_and_answers_again_once_thawed(hang_node: LocalNode):
    es = hang_node.client(request_timeout=2, max_retries=0)
    assert es.cluster.health()["status"] in ("yellow", "green")
    hang_node.freeze()
    hang_node.freeze()  # idempotent
    assert hang_node.frozen and esnode._pid_alive(hang_node.pid)  # type: ignore[arg-type]
    # alive and listening: the connection is accepted, the request never answered
    assert esnode._port_open(hang_node.port)
    with pytest.raises(ConnectionTimeout):
        es.cluster.health()
    hang_node.thaw()
    hang_node.thaw()  # idempotent
    assert not hang_node.frozen
    assert es.cluster.health()["status"] in ("yellow", "green")
    es.close()


def test_a_frozen_node_stops_cleanly_on_sigterm(tmp_path: Path):
    node = LocalNode(port=0, data_dir=tmp_path / "frozen", heap="256m").start()
    pid = node.pid
    assert pid is not None
    try:
        node.freeze()
        # True: gone after SIGTERM (thawed to act on it), not SIGKILLed after the timeout
        assert esnode.stop_pid(pid, timeout=120) is True
    finally:
        node.stop()
    assert not esnode._pid_alive(pid)
    with pytest.raises(EsNodeError, match="does not run"):
        node.freeze()
