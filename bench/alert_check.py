"""Alert checks over 50 brands: counts aggregated from raw mentions vs the hourly rollup.

    python bench/alert_check.py                          # starts a throwaway local node
    python bench/alert_check.py --minutes 10 --brands 50 --history-days 14 --per-hour 4

1. Seeds ``--history-days`` of constructed mentions (`store.synthetic`, ``--per-hour``
   per brand and hour on average, five sources, per-brand mentions scored) for
   ``--brands`` brands, written with `BulkWriter` without the rollup; then builds the
   hourly counts index once (`CountsRollup.rebuild`, timed apart), with `rolled_at` in
   simulated time as a daemon that kept the rollup for hours would have left it.
2. Runs ``--minutes`` scheduled checks, one a simulated minute (`alerts.check_every`
   1m, the default settings otherwise: 5-minute intervals, `history` = the seeded
   days). Before each check the minute's new mentions are written through a writer
   that keeps the rollup (its recompute time is reported apart: it is the rollup's
   cost, paid by the writer). Four engines on the same mentions, each with its own
   alert state: raw counts, the rollup read whole at every check
   (`RollupMentionReader(incremental=False)`), and the rollup read incrementally
   (documents kept between checks), these three rebuilding their spike detectors from
   the counts since `alerts.kept.anchor` at every check (`keep_detectors=False`); and
   `kept`: the incremental rollup reader and the detectors kept between checks, fed
   only the new intervals (`alerts.keep_detectors`, the default; `alerts.kept`). Each
   check's alerts must be the same on all four paths (the run stops if not): the kept
   and the rebuilt detector are the same detector by construction.

Prints, per path, the seconds of all checks, of the slowest check, the mean seconds a
check, and the CPU seconds spent in the spike detectors (`SpikeDetector.warm` and
`judge`, process time); then the recompute seconds. The raw path is the same-run
baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.detector import SpikeDetector
from alerts.engine import AlertEngine
from alerts.notifiers.log import LogNotifier
from brandpulse.config import Config
from esnode import LocalNode
from store.reader import RollupMentionReader
from store.rollup import CountsRollup, counts_index_name
from store.setup import alias_name, setup_elasticsearch
from store.synthetic import mentions
from store.writer import BulkWriter

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PREFIX = "benchchecks"


def _config(prefix: str, brands: list[str], days: int, source: str) -> Config:
    return Config.model_validate({
        "brands": [{"name": b} for b in brands],
        "elasticsearch": {"index_prefix": prefix},
        "alerts": {"history": f"{days}d", "counts_source": source},
    })  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an already-running node (default: start a throwaway one)")
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--brands", type=int, default=50)
    ap.add_argument("--history-days", type=int, default=14)
    ap.add_argument("--per-hour", type=float, default=4.0, help="mentions per brand and hour")
    ap.add_argument("--heap", default="1g")
    args = ap.parse_args()
    brands = [f"Brand{i:02d}" for i in range(args.brands)]
    with contextlib.ExitStack() as stack:
        if args.url:
            from elasticsearch import Elasticsearch

            es = Elasticsearch(args.url, request_timeout=300)
        else:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-checks-")))
            node = LocalNode(port=0, data_dir=data / "es", heap=args.heap)
            node.start()
            stack.callback(node.stop)
            es = node.client(request_timeout=300)
        spool = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-spool-")))
        raw_cfg = _config(PREFIX, brands, args.history_days, "raw")
        setup_elasticsearch(es, raw_cfg.elasticsearch, now=T0)
        alias = alias_name(PREFIX)
        start = T0 - timedelta(days=args.history_days)
        n = int(args.per_hour * args.brands * args.history_days * 24)
        t = time.perf_counter()
        with BulkWriter(es, raw_cfg.elasticsearch, spool_dir=spool / "seed") as writer:
            report = writer.write(mentions(n, start, T0, seed=3, id_prefix="h", brands=tuple(brands)))
        assert report.ok, report.summary()
        print(f"seeded {n:,} mentions over {args.history_days} days, {args.brands} brands "
              f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
        # rolled_at in simulated time, as a daemon that has kept the rollup for hours
        # would have left it: the history rolled up long ago, the last two hours as
        # they ended (the incremental reader's steady state, not its first hour)
        sim = [T0 - timedelta(hours=3)]
        rollup = CountsRollup(es, PREFIX, clock=lambda: sim[0])
        t = time.perf_counter()
        docs = rollup.rebuild()
        print(f"rollup rebuilt: {docs:,} (brand, hour) documents in {time.perf_counter() - t:.1f} s")
        for hour in (T0 - timedelta(hours=2), T0 - timedelta(hours=1)):
            sim[0] = hour + timedelta(minutes=62)
            rollup.recompute([hour])

        recompute = [0.0]

        def after_write(hours: set[datetime]) -> None:
            t = time.perf_counter()
            rollup.after_write(hours)
            recompute[0] += time.perf_counter() - t

        engines = {"raw": AlertEngine(raw_cfg, es, LogNotifier(), mentions_index=alias,
                                      keep_detectors=False)}  # fmt: skip
        for name, incremental, keep in (("rollup", False, False), ("incremental", True, False),
                                        ("kept", True, True)):  # fmt: skip
            cfg = _config(f"{PREFIX}-{name}", brands, args.history_days, "rollup")
            reader = RollupMentionReader(es, alias, counts_index_name(PREFIX), incremental=incremental)
            engines[name] = AlertEngine(cfg, es, LogNotifier(), mentions_index=alias, reader=reader,
                                        keep_detectors=keep)  # fmt: skip
        took: dict[str, list[float]] = {name: [] for name in engines}
        cpu: dict[str, float] = dict.fromkeys(engines, 0.0)
        running = ["raw"]
        _time_detector(cpu, running)
        per_minute = max(1, round(args.per_hour * args.brands / 60))
        with BulkWriter(es, raw_cfg.elasticsearch, spool_dir=spool / "live",
                        after_write=after_write) as writer:  # fmt: skip
            for i in range(args.minutes):
                now = T0 + timedelta(minutes=i)
                sim[0] = now
                new = mentions(per_minute, now - timedelta(minutes=1), now, seed=100 + i,
                               id_prefix=f"m{i}-", brands=tuple(brands))  # fmt: skip
                assert writer.write(new).ok
                decided = {}
                for name, engine in engines.items():
                    running[0] = name
                    t = time.perf_counter()
                    alerts = engine.check(now + timedelta(minutes=2))
                    took[name].append(time.perf_counter() - t)
                    decided[name] = [(a.alert_id, a.kind, a.observed) for a in alerts]
                if any(d != decided["raw"] for d in decided.values()):
                    print(f"check {i}: different alerts: {decided}", file=sys.stderr)
                    return 1
                print(f"check {i + 1}/{args.minutes}: "
                      + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in took.items())
                      + f", {len(decided['raw'])} alert(s)")  # fmt: skip
        for name, times in took.items():
            print(f"{name}: {args.minutes} checks in {sum(times):.1f} s "
                  f"(slowest {max(times):.2f} s, {sum(times) / len(times):.3f} s a check; "
                  f"detector CPU {cpu[name]:.2f} s)")  # fmt: skip
        kept = engines["kept"].detectors
        assert kept is not None
        print(f"kept detectors: {kept.reused} fed on, rebuilt {dict(kept.rebuilds)}; "
              f"the same alerts as the rebuilt ones at all {args.minutes} checks")
        print(f"rollup recompute after each minute's batch: {recompute[0]:.1f} s in all")
        for name in ("rollup", "incremental", "kept"):
            ratio = sum(took["raw"]) / max(sum(took[name]) + recompute[0], 1e-9)
            print(f"raw / ({name} + recompute): {ratio:.1f}x")
    return 0


def _time_detector(cpu: dict[str, float], running: list[str]) -> None:
    """Count the process time of `SpikeDetector.warm` and `judge` against the engine
    running (`running[0]`): the detector's share of a check, whatever path feeds it."""
    for method in ("warm", "judge"):
        inner = getattr(SpikeDetector, method)

        def timed(self, *a, _inner=inner, **k):  # type: ignore[no-untyped-def]
            t = time.process_time()
            try:
                return _inner(self, *a, **k)
            finally:
                cpu[running[0]] += time.process_time() - t

        setattr(SpikeDetector, method, timed)


if __name__ == "__main__":
    sys.exit(main())
