"""``python -m redisnode [--port 6379]`` — a local redis-server in the foreground.

For trying the shared state out (`redis: {url: redis://127.0.0.1:6379/0}` in
config.yaml); Ctrl-C (or SIGTERM) stops it. Nothing is kept on disk. ``make redis`` runs this.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from redisnode import DEFAULT_PORT, LocalRedis, RedisNodeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redisnode", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    node = LocalRedis(port=args.port)
    try:
        node.start()
    except RedisNodeError as exc:
        print(f"redisnode: error: {exc}", file=sys.stderr)
        return 1
    print(node.url)
    print(f"redisnode: redis-server pid {node.pid} on {node.url}; Ctrl-C stops it", file=sys.stderr)
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()

    # Ctrl-C, and SIGTERM (a service manager, or a shell whose background jobs ignore SIGINT)
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    try:
        while node.running() and not stop.wait(0.5):
            pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
