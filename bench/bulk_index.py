"""Bulk writer vs the client library's own bulk helpers, on a real Elasticsearch node.

    python bench/bulk_index.py                 # starts a throwaway local node
    python bench/bulk_index.py --url http://127.0.0.1:9250   # an already-running node

Indexes the same ``--bulk-docs`` synthetic mentions, ``--rounds`` times, each
round through every one of (order rotated per round, so drift in the machine's
load does not favour one):

- ``store.writer.BulkWriter`` (batches of ``--bulk-size``, ``--concurrency``
  requests in flight, durable spool included: every batch is fsynced to disk
  before it is sent and deleted once acknowledged);
- the same writer with one request at a time (``concurrency=1``);
- ``elasticsearch.helpers.bulk`` (same chunk size, no spool);
- ``elasticsearch.helpers.parallel_bulk`` with 2 threads (same chunk size, no spool);

each into fresh indices with the same template, timed from the mentions to
searchable documents (``Mention.to_document`` included for all, a refresh at the
end), and ``--single-docs`` through one ``index`` request per document. Prints
docs/s per run, min/median/max per way, and the writer's ratio to each library
helper: per round (the ways of one round ran back to back) and of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch, helpers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import Mention
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


def _fresh(es: Elasticsearch, prefix: str, docs: list[Mention]) -> ElasticsearchConfig:
    """Empty indices of `prefix` for `docs`, made before the clock starts for every way."""
    cfg = ElasticsearchConfig(index_prefix=prefix)
    _cleanup(es, prefix)
    install_templates(es, cfg)
    for index in {index_for(m.created_at, prefix) for m in docs}:
        ensure_index(es, index)
    return cfg


def _finish(es: Elasticsearch, prefix: str, n: int, t0: float, what: str) -> float:
    es.indices.refresh(index=alias_name(prefix))
    elapsed = time.perf_counter() - t0
    count = es.count(index=alias_name(prefix))["count"]
    if count != n:
        raise SystemExit(f"{what}: expected {n} documents, found {count}")
    _cleanup(es, prefix)
    return n / elapsed


def bench_writer(
    es: Elasticsearch, docs: list[Mention], bulk_size: int, spool: Path, concurrency: int
) -> float:
    prefix = f"bench-writer{concurrency}"
    cfg = _fresh(es, prefix, docs).model_copy(update={"spool_dir": spool, "bulk_size": bulk_size})
    t0 = time.perf_counter()
    with BulkWriter(es, cfg, concurrency=concurrency) as writer:
        report = writer.write(docs)
    if not report.ok:
        raise SystemExit(f"bulk writer run failed: {report.summary()}")
    return _finish(es, prefix, len(docs), t0, "bulk writer")


def _actions(docs: list[Mention], prefix: str) -> object:
    for m in docs:
        yield {"_index": index_for(m.created_at, prefix), "_id": m.id, "_source": m.to_document()}


def bench_helpers_bulk(es: Elasticsearch, docs: list[Mention], bulk_size: int) -> float:
    prefix = "bench-helpers"
    _fresh(es, prefix, docs)
    t0 = time.perf_counter()
    _, errors = helpers.bulk(es, _actions(docs, prefix), chunk_size=bulk_size)
    if errors:
        raise SystemExit(f"helpers.bulk: {errors[:1]}")
    return _finish(es, prefix, len(docs), t0, "helpers.bulk")


def bench_parallel_bulk(es: Elasticsearch, docs: list[Mention], bulk_size: int) -> float:
    prefix = "bench-parallel"
    _fresh(es, prefix, docs)
    t0 = time.perf_counter()
    for ok, item in helpers.parallel_bulk(
        es, _actions(docs, prefix), thread_count=2, chunk_size=bulk_size
    ):
        if not ok:
            raise SystemExit(f"parallel_bulk: {item}")
    return _finish(es, prefix, len(docs), t0, "parallel_bulk")


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
    ap.add_argument("--single-docs", type=int, default=3_000, help="0: skip that run")
    ap.add_argument("--bulk-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=2, help="the writer's requests in flight")
    ap.add_argument("--rounds", type=int, default=3)
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
        docs = list(mentions(args.bulk_docs, START, END, seed=1, id_prefix="b"))
        # and the node's bulk path: the first big write after idling ran slower,
        # whichever way came first
        _fresh(es, "bench-warmup", docs)
        helpers.bulk(es, _actions(docs[:1000], "bench-warmup"), chunk_size=args.bulk_size)
        _cleanup(es, "bench-warmup")
        ways = {
            f"bulk writer, spool on, {args.concurrency} in flight": lambda: bench_writer(
                es, docs, args.bulk_size, tmp / "spool", args.concurrency
            ),
            "bulk writer, spool on, 1 in flight": lambda: bench_writer(
                es, docs, args.bulk_size, tmp / "spool1", 1
            ),
            "helpers.bulk (no spool)": lambda: bench_helpers_bulk(es, docs, args.bulk_size),
            "helpers.parallel_bulk, 2 threads (no spool)": lambda: bench_parallel_bulk(
                es, docs, args.bulk_size
            ),
        }
        rates: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                rate = ways[name]()
                rates[name].append(rate)
                print(f"round {r + 1}: {name}: {rate:,.0f} docs/s", flush=True)
        print(f"\n{args.bulk_docs} docs, chunks of {args.bulk_size}, {args.rounds} round(s), "
              "docs/s min / median / max:")  # fmt: skip
        for name, values in rates.items():
            print(f"  {name:45s} {min(values):7,.0f} / {statistics.median(values):7,.0f} / "
                  f"{max(values):7,.0f}")  # fmt: skip
        writer = names[0]
        for base in names[2:]:
            per_round = [w / b for w, b in zip(rates[writer], rates[base], strict=True)]
            print(f"  ratio writer / {base.split(' (')[0]}: per round "
                  f"{', '.join(f'{r:.2f}' for r in per_round)}; medians "
                  f"{statistics.median(rates[writer]) / statistics.median(rates[base]):.2f}")  # fmt: skip
        spool_s = spool_cost(args.bulk_docs, args.bulk_size, tmp / "spool-only")
        print(f"the spool alone (serialise, write, fsync, delete): "
              f"{spool_s:.1f}s for {args.bulk_docs} docs")  # fmt: skip
        if args.single_docs:
            single = bench_single(es, args.single_docs)
            print(f"one request per document ({args.single_docs} docs): {single:,.0f} docs/s")
        with contextlib.suppress(OSError):
            load = Path("/proc/loadavg").read_text().split()[:3]
            print(f"load average (1/5/15 min) at the end: {' '.join(load)}")
        if not args.url:
            rss = node.rss_bytes()
            if rss:
                print(f"node RSS after the runs: {rss / 2**20:.0f} MiB")
        _cleanup(es, "bench-single")
    return 0


if __name__ == "__main__":
    sys.exit(main())
