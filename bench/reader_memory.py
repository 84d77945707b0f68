"""The alert reader's memory with many busy brands: what `RollupMentionReader` keeps
between checks, beside the raw reader (which keeps nothing), in the same run.

    python bench/reader_memory.py                        # 50 brands, 14 days, 60 an hour
    python bench/reader_memory.py --brands 200 --history-days 21 --per-hour 60

1. Fills a throwaway local node's hourly counts index (`store.rollup`) with one
   document per (brand, hour) of ``--history-days``, in the form `CountsRollup`
   writes them, for busy brands: ``--per-hour`` mentions an hour on average,
   Poisson over the hour's minutes, each on one of five sources, so at 60 an hour
   about two minutes in three hold mentions. The documents are constructed
   (seeded, deterministic), not rolled up from raw mentions: the reader reads only
   them, and indexing weeks of raw mentions of 200 busy brands (six million) would
   take hours on this machine. The raw mentions index exists and is empty.
2. Runs ``--checks`` alert checks a simulated minute apart (`AlertEngine`, the
   default rules, `alerts.history` = the days), in a fresh process per reader, so
   each process's RSS is its own: ``raw`` (`ElasticsearchMentionReader`, the
   baseline), ``rollup`` (`RollupMentionReader`, incremental: the default) and,
   with ``--unshared``, ``unshared`` (the same without the table of shared values,
   `HourCounts.from_source`, as the reader kept its documents before).

Prints per reader the documents it keeps, their deep size (`sys.getsizeof` over
every object reachable from the kept documents, each counted once, shared ones
included) and per document, and the process's RSS after the checks (VmHWM, its
peak, beside it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from elasticsearch import Elasticsearch, helpers

from alerts.engine import AlertEngine
from alerts.notifiers.log import LogNotifier
from brandpulse.config import Config
from esnode import LocalNode
from store.reader import ElasticsearchMentionReader, RollupMentionReader
from store.rollup import COUNT_FIELDS, counts_index_name, doc_id, ensure_counts_index
from store.setup import alias_name, setup_elasticsearch

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PREFIX = "benchmemory"
SOURCES = ("reddit-r-gadgets", "hn-front", "x-search", "mastodon-social", "weibo-search")


def _config(brands: list[str], days: int, source: str, prefix: str = PREFIX) -> Config:
    return Config.model_validate({
        "brands": [{"name": b} for b in brands],
        "elasticsearch": {"index_prefix": prefix},
        "alerts": {"history": f"{days}d", "counts_source": source},
    })  # fmt: skip


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _hour_doc(rng: random.Random, brand: str, hour: datetime, per_hour: float) -> dict[str, Any]:
    """One (brand, hour) document as `CountsRollup._recompute` writes it, rolled up 62
    minutes after the hour began (as a daemon keeping the rollup leaves it)."""
    doc: dict[str, Any] = {
        "brand": brand, "hour": _iso(hour), "rolled_at": _iso(hour + timedelta(minutes=62)),
        **{f: 0 for f in COUNT_FIELDS}, "minutes": [], "sources": [],
    }  # fmt: skip
    for m in range(60):
        n = _poisson(rng, per_hour / 60)
        if not n:
            continue
        negative = rng.randint(0, n)
        positive = rng.randint(0, n - negative)
        row = {"m": m, "total": n, "negative": negative, "neutral": n - negative - positive,
               "positive": positive, "unscored": 0, "uncertain": 0}  # fmt: skip
        for f in COUNT_FIELDS:
            doc[f] += row[f]
        doc["minutes"].append(row)
        per_source: dict[str, int] = {}
        for _ in range(n):
            source = rng.choice(SOURCES)
            per_source[source] = per_source.get(source, 0) + 1
        doc["sources"] += [{"m": m, "source": s, "total": k} for s, k in sorted(per_source.items())]
    return doc


def fill(es: Elasticsearch, brands: list[str], days: int, per_hour: float) -> int:
    setup_elasticsearch(es, _config(brands, days, "rollup").elasticsearch, now=T0)
    ensure_counts_index(es, PREFIX)
    index = counts_index_name(PREFIX)
    rng = random.Random(11)
    first = T0 - timedelta(days=days + 1)  # a day more than the history reads
    hours = [first + timedelta(hours=h) for h in range((days + 1) * 24)]

    def actions() -> Any:
        for brand in brands:
            for hour in hours:
                yield {"_index": index, "_id": doc_id(brand, hour),
                       "_source": _hour_doc(rng, brand, hour, per_hour)}  # fmt: skip

    ok, _ = helpers.bulk(es, actions(), chunk_size=2000)
    es.indices.refresh(index=index)
    return ok


def deep_size(root: object) -> int:
    """Bytes of every object reachable from `root` (containers, dataclass fields), each
    counted once."""
    seen: set[int] = set()
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack += list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += list(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.append(vars(obj))
    return total


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def worker(args: argparse.Namespace) -> int:
    """One reader's checks, in a process of its own; prints one JSON line."""
    brands = [f"Brand{i:03d}" for i in range(args.brands)]
    es = Elasticsearch(args.url, request_timeout=300)
    alias = alias_name(PREFIX)
    # alert state of its own per reader (as in bench/alert_check.py); the same mentions
    source = "raw" if args.reader == "raw" else "rollup"
    cfg = _config(brands, args.history_days, source, f"{PREFIX}-{args.reader}")
    reader: ElasticsearchMentionReader
    if args.reader == "raw":
        reader = ElasticsearchMentionReader(es, alias)
    else:
        reader = RollupMentionReader(es, alias, counts_index_name(PREFIX))
        if args.reader == "unshared":
            reader._shared = _NothingShared()
    engine = AlertEngine(cfg, es, LogNotifier(), mentions_index=alias, reader=reader)
    rss_before = _status("VmRSS")
    t = time.perf_counter()
    for i in range(args.checks):
        engine.check(T0 + timedelta(minutes=i))
    took = time.perf_counter() - t
    kept = getattr(reader, "_kept", {})
    docs = sum(len(k.docs) for k in kept.values())
    print(json.dumps({
        "reader": args.reader, "docs": docs, "kept_bytes": deep_size(kept) if kept else 0,
        "rss_before": rss_before, "rss": _status("VmRSS"), "hwm": _status("VmHWM"),
        "seconds": took,
    }))  # fmt: skip
    return 0


class _NothingShared(dict[Any, Any]):
    """A table of shared values that shares nothing (every value read stays an object
    of its own): how the reader kept its documents before the table."""

    def setdefault(self, key: Any, default: Any = None) -> Any:
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an already-running node (default: start a throwaway one)")
    ap.add_argument("--brands", type=int, default=50)
    ap.add_argument("--history-days", type=int, default=14)
    ap.add_argument("--per-hour", type=float, default=60.0, help="mentions per brand and hour")
    ap.add_argument("--checks", type=int, default=3)
    ap.add_argument("--unshared", action="store_true", help="also run the reader without sharing")
    ap.add_argument("--heap", default="1g")
    ap.add_argument("--reader", choices=("raw", "rollup", "unshared"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reader:
        return worker(args)
    with contextlib.ExitStack() as stack:
        if args.url:
            url = args.url
        else:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-memory-")))
            node = LocalNode(port=0, data_dir=data / "es", heap=args.heap)
            node.start()
            stack.callback(node.stop)
            url = node.url
        es = Elasticsearch(url, request_timeout=300)
        brands = [f"Brand{i:03d}" for i in range(args.brands)]
        t = time.perf_counter()
        n = fill(es, brands, args.history_days, args.per_hour)
        print(f"filled {n:,} (brand, hour) documents: {args.brands} brands, "
              f"{args.history_days + 1} days, {args.per_hour:g} mentions a brand and hour, "
              f"in {time.perf_counter() - t:.0f} s")  # fmt: skip
        readers = ["raw", "rollup"] + (["unshared"] if args.unshared else [])
        for name in readers:
            cmd = [sys.executable, __file__, "--url", url, "--reader", name,
                   "--brands", str(args.brands), "--history-days", str(args.history_days),
                   "--checks", str(args.checks)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            per_doc = r["kept_bytes"] / r["docs"] if r["docs"] else 0
            print(f"{name:>9}: keeps {r['docs']:,} documents, {r['kept_bytes'] / 2**20:,.1f} MiB "
                  f"({per_doc / 1024:.1f} KiB each); RSS {r['rss_before'] / 2**20:,.0f} MiB "
                  f"before the checks, {r['rss'] / 2**20:,.0f} MiB after (peak "
                  f"{r['hwm'] / 2**20:,.0f}); {args.checks} checks in {r['seconds']:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
