"""``python -m esnode start|stop|status`` — the local Elasticsearch node."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from esnode import (
    DEFAULT_HEAP,
    DEFAULT_PORT,
    ES_VERSION,
    EsNodeError,
    LocalNode,
    default_data_dir,
    ensure_installed,
    find_java,
    log_tail,
    read_state,
    rss_bytes,
    stop_pid,
)
from esnode import _pid_alive as pid_alive


def _start(args: argparse.Namespace) -> int:
    # watch_parent off: the node must outlive this command
    node = LocalNode(port=args.port, data_dir=args.data, heap=args.heap, watch_parent=False)
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
    data = Path(args.data).resolve()
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


def _status(args: argparse.Namespace) -> int:
    data = Path(args.data).resolve()
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
        "--port", type=int, default=DEFAULT_PORT, help="HTTP port; 0 = any free one (the URL printed says which)"
    )
    p_start.add_argument("--data", type=Path, default=default_data_dir())
    p_start.add_argument("--heap", default=DEFAULT_HEAP, help="JVM heap, e.g. 512m (default)")
    p_start.set_defaults(func=_start)
    p_fetch = sub.add_parser("fetch", help="download the jars and compile the launcher only")
    p_fetch.set_defaults(func=_fetch)
    p_stop = sub.add_parser("stop", help="stop the node that runs on --data")
    p_stop.add_argument("--data", type=Path, default=default_data_dir())
    p_stop.set_defaults(func=_stop)
    p_status = sub.add_parser("status", help="print whether the node on --data runs")
    p_status.add_argument("--data", type=Path, default=default_data_dir())
    p_status.set_defaults(func=_status)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except EsNodeError as exc:
        print(f"esnode: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
