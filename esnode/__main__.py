"""``python -m esnode start|stop|status`` — the local Elasticsearch node, or with
``start --nodes N`` a local cluster of N nodes (``stop``/``status`` find it by its
``--data`` folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from elasticsearch import Elasticsearch

from esnode import (
    DEFAULT_HEAP,
    DEFAULT_PORT,
    ES_VERSION,
    EsNodeError,
    LocalCluster,
    LocalNode,
    default_cluster_dir,
    default_data_dir,
    ensure_installed,
    find_java,
    log_tail,
    read_cluster,
    read_state,
    rss_bytes,
    stop_data_dirs,
    stop_pid,
)
from esnode import _pid_alive as pid_alive


def _data_dir(args: argparse.Namespace) -> Path:
    """``--data``, else the default cluster folder if a cluster runs from it, else the
    default node folder."""
    if args.data is not None:
        return Path(args.data).resolve()
    if read_cluster(default_cluster_dir()) is not None:
        return default_cluster_dir()
    return default_data_dir()


def _node_dirs(cluster: dict[str, object]) -> list[Path]:
    return [Path(str(n["data"])) for n in cluster["nodes"]]  # type: ignore[attr-defined]


def _start_cluster(args: argparse.Namespace) -> int:
    cluster = LocalCluster(
        nodes=args.nodes,
        port=args.port,
        data_dir=args.data or default_cluster_dir(),
        heap=args.heap,
        watch_parent=False,
    )
    cluster.start()
    for url in cluster.urls:
        print(url)
    rss = sum(node.rss_bytes() or 0 for node in cluster.nodes)
    print(
        f"esnode: cluster {cluster.name} of {cluster.size} nodes (Elasticsearch {ES_VERSION}, "
        f"pids {' '.join(str(p) for p in cluster.pids())}) ready in {cluster.boot_seconds:.1f}s, "
        f"RSS {rss / 2**20:.0f} MiB in all, data {cluster.data_dir}",
        file=sys.stderr,
    )
    return 0


def _start(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        raise EsNodeError(f"--nodes must be 1 or more, got {args.nodes}")
    if args.nodes > 1:
        return _start_cluster(args)
    # watch_parent off: the node must outlive this command
    data = args.data or default_data_dir()
    node = LocalNode(port=args.port, data_dir=data, heap=args.heap, watch_parent=False)
    node.start()
    rss = node.rss_bytes()
    print(node.url)
    print(
        f"esnode: Elasticsearch {ES_VERSION} pid {node.pid} ready in {node.boot_seconds:.1f}s, "
        f"RSS {rss / 2**20:.0f} MiB, data {node.data_dir}",
        file=sys.stderr,
    )
    return 0


def _fetch(args: argparse.Namespace) -> int:
    java = find_java()
    home = ensure_installed(java)
    print(f"esnode: Elasticsearch {ES_VERSION} ready in {home} (JDK {java.major} at {java.home})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    data = _data_dir(args)
    cluster = read_cluster(data)
    if cluster is not None:
        stopped = stop_data_dirs(_node_dirs(cluster))
        (data / "cluster.json").unlink(missing_ok=True)
        killed = [pid for pid, clean in stopped if not clean]
        print(
            f"esnode: stopped cluster {cluster['cluster_name']}: pids "
            f"{' '.join(str(pid) for pid, _ in stopped) or '(none ran)'}"
            + (f" (killed after timeout: {killed})" if killed else ""),
            file=sys.stderr,
        )
        return 0
    state = read_state(data)
    if state is None:
        print(f"esnode: no node state in {data}; nothing to stop", file=sys.stderr)
        return 0
    pid = int(str(state["pid"]))
    clean = stop_pid(pid)
    (data / "esnode.json").unlink(missing_ok=True)
    print(
        f"esnode: stopped pid {pid}" + ("" if clean else " (killed after timeout)"), file=sys.stderr
    )
    return 0


def _cluster_status(cluster: dict[str, object]) -> int:
    running = []
    lines = []
    for data in _node_dirs(cluster):
        state = read_state(data)
        pid = int(str(state["pid"])) if state else None
        if state is None or pid is None or not pid_alive(pid):
            lines.append(f"  {data.name}: stopped")
            continue
        running.append(str(state["url"]))
        rss = rss_bytes(pid)
        rss_text = f"{rss / 2**20:.0f} MiB" if rss else "?"
        lines.append(f"  {data.name}: running {state['url']} pid {pid} RSS {rss_text}")
    status = "no node runs"
    if running:
        es = Elasticsearch(running, request_timeout=5, max_retries=len(running))
        try:
            health = es.cluster.health()
            status = f"health {health['status']}, {health['number_of_nodes']} node(s)"
        except Exception as exc:
            status = f"not answering ({exc.__class__.__name__})"
        finally:
            es.close()
    print(f"cluster {cluster['cluster_name']}: {len(running)} of {len(lines)} running, {status}")
    print("\n".join(lines))
    return 0 if running else 3


def _status(args: argparse.Namespace) -> int:
    data = _data_dir(args)
    cluster = read_cluster(data)
    if cluster is not None:
        return _cluster_status(cluster)
    state = read_state(data)
    if state is None:
        print(f"stopped (no state file in {data})")
        return 3
    pid = int(str(state["pid"]))
    if not pid_alive(pid):
        print(f"stopped (stale state: pid {pid} is gone). Last log lines:\n{log_tail(data, 15)}")
        return 3
    node = LocalNode(port=int(str(state["port"])), data_dir=data)
    es = node.client(request_timeout=5, max_retries=0)
    try:
        health = es.cluster.health()
        status = str(health["status"])
    except Exception as exc:
        status = f"not answering ({exc.__class__.__name__})"
    finally:
        es.close()
    rss = rss_bytes(pid)
    rss_text = f"{rss / 2**20:.0f} MiB" if rss else "?"
    print(
        f"running: {state['url']} pid {pid} Elasticsearch {state.get('version')} "
        f"health {status} RSS {rss_text} heap {state.get('heap')} "
        f"boot {state.get('boot_seconds')}s data {data}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m esnode", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start a node in the background and wait for yellow")
    p_start.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="HTTP port (of the first node; the others take the next ones); 0 = any free "
        "one (the URLs printed say which)",
    )
    p_start.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="nodes: 1 (default) is one single-node Elasticsearch; more form one cluster "
        "on 127.0.0.1, one folder per node under --data",
    )
    p_start.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"default {default_data_dir()} (a cluster: {default_cluster_dir()})",
    )
    p_start.add_argument(
        "--heap", default=DEFAULT_HEAP, help="JVM heap per node, e.g. 512m (default)"
    )
    p_start.set_defaults(func=_start)
    p_fetch = sub.add_parser("fetch", help="download the jars and compile the launcher only")
    p_fetch.set_defaults(func=_fetch)
    p_stop = sub.add_parser("stop", help="stop the node (or every node of the cluster) on --data")
    p_stop.add_argument("--data", type=Path, default=None)
    p_stop.set_defaults(func=_stop)
    p_status = sub.add_parser("status", help="print whether the node (or cluster) on --data runs")
    p_status.add_argument("--data", type=Path, default=None)
    p_status.set_defaults(func=_status)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EsNodeError as exc:
        print(f"esnode: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
