"""Bulk writer vs one request per document, on a real Elasticsearch node.

    python bench/bulk_index.py                 # starts a throwaway local node
    python bench/bulk_index.py --url http://127.0.0.1:9250   # an already-running node

Indexes ``--bulk-docs`` synthetic mentions through ``store.writer.BulkWriter``
(batches of ``--bulk-size``, durable spool included: every batch is fsynced to
disk before it is sent) and ``--single-docs`` through one ``index`` request per
document (no spool), into separate indices with the same template, and prints
docs/s for both and the ratio. Both runs end with a refresh, so the time
includes making the documents searchable.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brandpulse.config import ElasticsearchConfig
from esnode import ES_VERSION, LocalNode
from store.setup import alias_name, ensure_index, index_for, install_templates
from store.spool import Spool, SpoolRecord
from store.synthetic import mentions
from store.writer import BulkWriter

START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 11, 27, tzinfo=UTC)


def _cleanup(es: Elasticsearch, prefix: str) -> None:
    names = list(es.indices.get(index=f"{prefix}-mentions-*", allow_no_indices=True))
    if names:
        es.indices.delete(index=",".join(names))


def bench_bulk(es: Elasticsearch, n: int, bulk_size: int, spool: Path) -> float:
    cfg = ElasticsearchConfig(index_prefix="bench-bulk", spool_dir=spool, bulk_size=bulk_size)
    _cleanup(es, cfg.index_prefix)
    install_templates(es, cfg)
    docs = list(mentions(n, START, END, seed=1, id_prefix="b"))
    t0 = time.perf_counter()
    with BulkWriter(es, cfg) as writer:
        report = writer.write(docs)
    es.indices.refresh(index=alias_name(cfg.index_prefix))
    elapsed = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"bulk run failed: {report.summary()}")
    count = es.count(index=alias_name(cfg.index_prefix))["count"]
    if count != n:
        raise SystemExit(f"bulk run: expected {n} documents, found {count}")
    return n / elapsed


def spool_cost(n: int, bulk_size: int, spool: Path) -> float:
    """Seconds the durable spool (JSON lines + fsync per batch) takes for n mentions."""
    docs = list(mentions(n, START, END, seed=1, id_prefix="b"))
    recs = [SpoolRecord(m.id, index_for(m.created_at), m.to_document()) for m in docs]
    t0 = time.perf_counter()
    with Spool(spool) as sp:
        for i in range(0, n, bulk_size):
            sp.remove(sp.append(recs[i : i + bulk_size]))
    return time.perf_counter() - t0


def bench_single(es: Elasticsearch, n: int) -> float:
    cfg = ElasticsearchConfig(index_prefix="bench-single")
    _cleanup(es, cfg.index_prefix)
    install_templates(es, cfg)
    docs = list(mentions(n, START, END, seed=2, id_prefix="s"))
    for index in {index_for(m.created_at, cfg.index_prefix) for m in docs}:
        ensure_index(es, index)
    t0 = time.perf_counter()
    for m in docs:
        es.index(index=index_for(m.created_at, cfg.index_prefix), id=m.id, document=m.to_document())
    es.indices.refresh(index=alias_name(cfg.index_prefix))
    elapsed = time.perf_counter() - t0
    count = es.count(index=alias_name(cfg.index_prefix))["count"]
    if count != n:
        raise SystemExit(f"single run: expected {n} documents, found {count}")
    return n / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="use this node instead of starting a local one")
    ap.add_argument("--bulk-docs", type=int, default=20_000)
    ap.add_argument("--single-docs", type=int, default=3_000)
    ap.add_argument("--bulk-size", type=int, default=500)
    ap.add_argument("--heap", default="512m")
    args = ap.parse_args()

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bp-bench-")))
        if args.url:
            url = args.url
            print(f"node: {url}")
        else:
            node = LocalNode(port=0, data_dir=tmp / "node", heap=args.heap)
            node.start()
            stack.callback(node.stop)
            url = node.url
            print(f"node: local Elasticsearch {ES_VERSION}, heap {args.heap}, "
                  f"booted in {node.boot_seconds:.1f}s")  # fmt: skip
        es = Elasticsearch(url, request_timeout=120)
        stack.callback(es.close)
        # warm-up: JIT and index creation out of the measured runs
        bench_single(es, 200)
        bulk = bench_bulk(es, args.bulk_docs, args.bulk_size, tmp / "spool")
        single = bench_single(es, args.single_docs)
        spool_s = spool_cost(args.bulk_docs, args.bulk_size, tmp / "spool-only")
        print(f"bulk writer ({args.bulk_docs} docs, batches of {args.bulk_size}, spool fsync on): "
              f"{bulk:,.0f} docs/s")  # fmt: skip
        print(f"  of which the spool alone (serialise, write, fsync, delete): "
              f"{spool_s:.1f}s for {args.bulk_docs} docs")  # fmt: skip
        print(f"one request per document ({args.single_docs} docs): {single:,.0f} docs/s")
        print(f"ratio: {bulk / single:.1f}x")
        with contextlib.suppress(OSError):
            load = Path("/proc/loadavg").read_text().split()[:3]
            print(f"load average (1/5/15 min) at the end: {' '.join(load)}")
        if not args.url:
            rss = node.rss_bytes()
            if rss:
                print(f"node RSS after the runs: {rss / 2**20:.0f} MiB")
        for prefix in ("bench-bulk", "bench-single"):
            _cleanup(es, prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
