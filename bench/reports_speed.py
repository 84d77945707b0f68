"""Reports on a large index: share of voice by aggregation vs pulling every mention, and
complaint themes over 20,000 real negative posts.

    python bench/reports_speed.py                       # starts a throwaway local node
    python bench/reports_speed.py --url http://127.0.0.1:9250 --mentions 1000000
    python bench/reports_speed.py --parts weekly --data-dir var/bench-es-1m --reuse

1. Indexes ``--mentions`` constructed mentions (three brands, one in five posts naming
   two, per-brand sentiment with an uncertain share, 5 % reposts, five sources, two
   languages) over two weeks with `helpers.bulk` (refresh off while loading).
2. Share of voice of the last week against the one before: `reports.share_of_voice`
   (one aggregation request; the best of 3 runs) against the naive way, the same figures
   counted in Python from every mention of the two weeks pulled with search_after
   (the fields needed only). Both must agree exactly: the run stops if they do not.
   Then the same figures from the hourly counts rollup (`store.rollup`, what reports read
   with `alerts.counts_source: rollup`): the rollup built once from the mentions
   (`CountsRollup.rebuild`, timed apart: in a deployment the writer keeps it after every
   batch), then `reports.share_of_voice.rollup_share_of_voice` (best of 3, in UTC and
   in Asia/Shanghai), checked identical to the aggregation's `ShareOfVoice`.
3. Themes: ``--negatives`` real negative texts from the shared data (Chinese shopping
   reviews and English reviews/comments, half each), indexed as a brand's negative
   mentions of a week, plus a quarter as many the week before; `reports.themes.
   complaint_themes` end to end (count, sample, segment, vectorise, group, label) as the
   report calls it, against the same call reading every post (``sample=None``: the
   naive way and the code before sampling), after one warm-up call.

4. Full report (``--parts full``): ``--full-mentions`` constructed mentions over two
   weeks (about half of them in the reported week) whose negative posts carry real
   negative texts; `reports.full.build_report` (figures, themes, top posts, authors,
   alerts) then the charts, the HTML and the PDF, each timed, against the same-run
   baseline `reports.summary.brand_insight` (what `report --format text` computes).

5. The weekly report (``--parts weekly``): ``--week-mentions`` (default 1,000,000)
   constructed mentions over two weeks (three brands, two of them competitors; five
   sources; English and Chinese; real texts, negative ones on posts negative for their
   first brand), streamed with `helpers.parallel_bulk` (index time reported apart);
   then `scheduler.py report --period week --brand Acme --out DIR` in a new process
   (wall and CPU time, ``--runs`` times), each step of it timed in this process, and
   the naive baseline: every mention of the two weeks pulled and counted in Python,
   checked equal to the aggregations. Ids are deterministic: ``--data-dir DIR --reuse``
   keeps the node's data and skips indexing on the next run.

The data is read in place from ../shared/data/sentiment (or $BRANDPULSE_SENTIMENT_DATA).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brandpulse.config import ElasticsearchConfig
from brandpulse.mention import mention_id
from esnode import LocalNode
from nlp.data import shared_data_dir
from reports.period import Period, iso
from reports.share_of_voice import SentimentCounts, rollup_share_of_voice, share_of_voice
from reports.themes import complaint_themes
from store.setup import alias_name, ensure_index, index_for, install_templates

END = datetime(2026, 11, 16, tzinfo=UTC)
WEEK = Period(END - timedelta(days=7), END)
BRANDS = ("Acme", "Globex", "Initech")
SOURCES = ("reddit", "hackernews", "x", "mastodon", "weibo")
BUCKETS = ("negative", "neutral", "positive", "uncertain")


def _verdict(rng: random.Random) -> tuple[str, dict[str, Any]]:
    bucket = rng.choices(BUCKETS, weights=(3, 4, 3, 1))[0]
    label = "negative" if bucket == "uncertain" else bucket
    probs = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
    probs[label] = 0.8
    return bucket, {"label": label, "confidence": 0.4 if bucket == "uncertain" else 0.8,
                    "uncertain": bucket == "uncertain", **probs}


def constructed(n: int, prefix: str, seed: int = 1,
                texts: list[tuple[str, str]] | None = None,
                others: list[tuple[str, str]] | None = None) -> Iterator[dict[str, Any]]:
    """Bulk actions of `n` mentions spread over the two weeks before END; with `texts`
    ((text, language) pairs) a post negative for its first brand carries one of them,
    with `others` every other post one of those. Ids are `mention_id(source, "m<i>")`:
    the same `n` and seed give the same documents, so indexing again overwrites."""
    rng = random.Random(seed)
    span = 14 * 86400
    for i in range(n):
        brands = rng.sample(BRANDS, 2) if rng.random() < 0.2 else [rng.choices(BRANDS, (5, 3, 2))[0]]
        created = END - timedelta(seconds=rng.random() * span)
        source = SOURCES[i % len(SOURCES)]
        per = []
        for b in brands:
            bucket, v = _verdict(rng)
            per.append((b, bucket, v))
        _, post = _verdict(rng)
        text, language = f"post {i}", "zh" if source == "weibo" else "en"
        pool = texts if per[0][1] == "negative" else others
        if pool:
            text, language = pool[i % len(pool)]
            text = f"{brands[0]} {text}"
        doc: dict[str, Any] = {
            "id": mention_id(source, f"m{i}"), "source": source, "source_id": f"m{i}",
            "source_name": source, "text": text, "created_at": iso(created),
            "collected_at": iso(created), "brands": brands, "language": language,
            "author": f"user{rng.randrange(n // 3 + 1)}", "author_reach": int(rng.paretovariate(1.2) * 100),
            "sentiment": {**post, "model": "bench"},
            "sentiment_bucket": "uncertain" if post["uncertain"] else post["label"],
            "brand_sentiments": [{"brand": b, "source": "clause", **v} for b, _, v in per],
            "brand_sentiment_keys": [f"{b}|{bucket}" for b, bucket, _ in per],
        }
        if rng.random() < 0.05:
            doc["duplicate_of"] = mention_id(source, f"m{max(i - 1, 0)}")
        yield {"_index": index_for(created, prefix), "_id": doc["id"], "_source": doc}


def load(es: Elasticsearch, prefix: str, actions: Iterator[dict[str, Any]], *,
         progress: int = 0) -> tuple[int, float]:
    """Stream `actions` into the monthly indices of `prefix` with `helpers.parallel_bulk`
    (two sender threads: documents are built while the node indexes the previous batch;
    nothing is held in memory beyond the queued batches), refresh off while loading."""
    install_templates(es, ElasticsearchConfig(index_prefix=prefix))
    alias = alias_name(prefix)
    for month in ("2026.10", "2026.11"):
        ensure_index(es, f"{alias}-{month}")
    es.indices.put_settings(index=f"{alias}-*", settings={"index": {"refresh_interval": "-1"}})
    t0 = time.perf_counter()
    ok = 0
    for good, info in helpers.parallel_bulk(es.options(request_timeout=300), actions,
                                            thread_count=2, queue_size=2, chunk_size=2000):
        if not good:
            raise RuntimeError(f"bulk item failed: {info}")
        ok += 1
        if progress and ok % progress == 0:
            secs = time.perf_counter() - t0
            print(f"  indexed {ok:,} in {secs:.0f} s ({ok / secs:,.0f}/s)", flush=True)
    es.indices.put_settings(index=f"{alias}-*", settings={"index": {"refresh_interval": "1s"}})
    es.indices.refresh(index=alias)
    return ok, time.perf_counter() - t0


def naive_counts(es: Elasticsearch, index: str, period: Period) -> tuple[dict, dict]:
    """Every mention of the two weeks pulled into Python and counted the same way."""
    now: dict[str, Counter[str]] = {b: Counter() for b in BRANDS}
    before: dict[str, Counter[str]] = {b: Counter() for b in BRANDS}
    query = {"bool": {"filter": [
        {"range": {"created_at": {"gte": iso(period.previous.start), "lt": iso(period.end)}}},
        {"terms": {"brands": list(BRANDS)}},
    ]}}  # fmt: skip
    after = None
    fields = ["brands", "brand_sentiment_keys", "created_at", "duplicate_of"]
    while True:
        body: dict[str, Any] = {"query": query, "_source": fields, "size": 5000,
                                "sort": [{"created_at": "asc"}, {"id": "asc"}],
                                "track_total_hits": False}
        if after:
            body["search_after"] = after
        hits = es.search(index=index, **body)["hits"]["hits"]
        for h in hits:
            src = h["_source"]
            if "duplicate_of" in src:
                continue
            side = now if src["created_at"][:19] >= iso(period.start)[:19] else before
            keys = dict(k.rsplit("|", 1) for k in src.get("brand_sentiment_keys", []))
            for b in src["brands"]:
                side[b]["mentions"] += 1
                if b in keys:
                    side[b][keys[b]] += 1
        if len(hits) < 5000:
            return now, before
        after = hits[-1]["sort"]


def _as_counts(c: Counter[str]) -> SentimentCounts:
    return SentimentCounts(mentions=c["mentions"], **{b: c[b] for b in BUCKETS})


def bench_share_of_voice(es: Elasticsearch, n: int) -> None:
    prefix = "bench-sov"
    ok, secs = load(es, prefix, constructed(n, prefix))
    print(f"indexed {ok:,} constructed mentions in {secs:.0f} s ({ok / secs:,.0f}/s)")
    index = alias_name(prefix)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        sov = share_of_voice(es, index, BRANDS, WEEK)
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    now, before = naive_counts(es, index, WEEK)
    naive = time.perf_counter() - t0
    for f in sov.brands:
        assert f.counts == _as_counts(now[f.brand]), (f.brand, f.counts, now[f.brand])
        assert f.previous == _as_counts(before[f.brand]), (f.brand, f.previous)
    pulled = sum(c["mentions"] for c in now.values()) + sum(c["mentions"] for c in before.values())
    print(f"share of voice, {n:,} mentions in the index: aggregation {min(runs):.2f} s "
          f"(runs {', '.join(f'{r:.2f}' for r in runs)}); naive pull-and-count {naive:.1f} s "
          f"({naive / min(runs):.0f}x slower); figures identical "
          f"(Acme {sov.focus.counts.mentions:,} mentions, {pulled:,} brand mentions pulled)")
    bench_sov_rollup(es, prefix, n)


def bench_sov_rollup(es: Elasticsearch, prefix: str, n: int) -> None:
    """Share of voice from the counts rollup against the raw aggregation, same run, same
    figures (the run stops if they differ)."""
    from store.rollup import CountsRollup, counts_index_name

    t0 = time.perf_counter()
    docs = CountsRollup(es, prefix).rebuild()
    print(f"counts rollup built from the {n:,} mentions: {docs:,} (brand, hour) documents "
          f"in {time.perf_counter() - t0:.1f} s (once; the writer keeps it after every batch)")
    index, counts = alias_name(prefix), counts_index_name(prefix)
    for zone in ("UTC", "Asia/Shanghai"):
        raw_runs, rolled_runs = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            raw = share_of_voice(es, index, BRANDS, WEEK, time_zone=zone)
            raw_runs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rolled = rollup_share_of_voice(es, counts, BRANDS, WEEK, time_zone=zone)
            rolled_runs.append(time.perf_counter() - t0)
        assert rolled == raw, (zone, rolled, raw)
        print(f"share of voice of a week ({zone}), {n:,} mentions: raw aggregation "
              f"{min(raw_runs):.3f} s (runs {', '.join(f'{r:.3f}' for r in raw_runs)}); rollup "
              f"{min(rolled_runs):.3f} s (runs {', '.join(f'{r:.3f}' for r in rolled_runs)}): "
              f"{min(raw_runs) / min(rolled_runs):.1f}x; figures identical")


def real_negatives(n: int, seed: int = 0, *, negative: bool = True) -> tuple[list[str], list[str]]:
    """n/2 Chinese and n/2 English negative (or, with `negative=False`, not negative) texts
    from the shared labelled data."""
    data = shared_data_dir()
    rng = random.Random(seed)

    def rows(name: str) -> list[dict[str, str]]:
        with (data / name).open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.DictReader(fh))

    zh = [r["review"] for r in rows("zh_online_shopping_9cats.csv")
          if (r["label"] == "0") == negative]
    en = [r["text"] for name in ("en_amazon_multidomain_reviews.csv", "en_app_reviews.csv",
                                 "en_reddit_goemotions.csv", "en_stackoverflow_senti4sd.csv")
          for r in rows(name) if (r["label"] == "negative") == negative]
    rng.shuffle(zh)
    rng.shuffle(en)
    return zh[: n // 2], en[: n - n // 2]


def bench_themes(es: Elasticsearch, n: int) -> None:
    prefix = "bench-themes"
    zh, en = real_negatives(n + n // 4)
    rng = random.Random(3)
    texts = [(t, "zh") for t in zh] + [(t, "en") for t in en]
    rng.shuffle(texts)
    verdict = {"label": "negative", "confidence": 0.9, "uncertain": False,
               "negative": 0.9, "neutral": 0.05, "positive": 0.05}

    def actions() -> Iterator[dict[str, Any]]:
        for i, (text, language) in enumerate(texts):
            week = WEEK if i < n else WEEK.previous
            created = week.start + timedelta(seconds=rng.random() * 7 * 86400)
            doc = {
                "id": mention_id("x", f"t{i}"), "source": "x", "source_id": f"t{i}",
                "source_name": "x", "text": f"Acme {text}", "language": language,
                "created_at": iso(created), "collected_at": iso(created), "brands": ["Acme"],
                "author": f"u{i}", "author_reach": rng.randrange(100_000),
                "sentiment": {**verdict, "model": "bench"}, "sentiment_bucket": "negative",
                "brand_sentiments": [{"brand": "Acme", "source": "post", **verdict}],
                "brand_sentiment_keys": ["Acme|negative"],
            }
            yield {"_index": index_for(created, prefix), "_id": doc["id"], "_source": doc}

    load(es, prefix, actions())
    index = alias_name(prefix)
    complaint_themes(es, index, "Acme", WEEK, sample=500)  # imports, jieba's dictionary
    t0, c0, e0 = time.perf_counter(), time.process_time(), node_cpu()
    got = complaint_themes(es, index, "Acme", WEEK)
    secs, cpu, es_cpu = time.perf_counter() - t0, time.process_time() - c0, node_cpu() - e0
    t0, c0, e0 = time.perf_counter(), time.process_time(), node_cpu()
    whole = complaint_themes(es, index, "Acme", WEEK, sample=None)
    naive, naive_cpu = time.perf_counter() - t0, time.process_time() - c0
    naive_es = node_cpu() - e0
    print(f"themes: {got.total:,} negative mentions this week ({got.previous_total:,} the week "
          f"before): sampled ({got.sampled} + {got.previous_sampled} posts) {secs:.1f} s wall "
          f"(CPU {cpu:.1f} s here + {es_cpu:.1f} s ES) -> {len(got.themes)} themes + other "
          f"{got.other:,}; every post (baseline, same run) {naive:.1f} s wall (CPU "
          f"{naive_cpu:.1f} s + {naive_es:.1f} s ES) -> {len(whole.themes)} themes + other "
          f"{whole.other:,}; {naive / secs:.1f}x wall, "
          f"{(naive_cpu + naive_es) / (cpu + es_cpu):.1f}x CPU")
    for name, found in (("sampled", got), ("every post", whole)):
        print(f"  {name}:")
        for t in found.themes:
            print(f"  {t.size:>6,} ({t.previous_size:>5,} before) [{t.language}] {t.label}")


def bench_full_report(es: Elasticsearch, n: int) -> None:
    from brandpulse.config import parse_config
    from reports.full import build_report
    from reports.render import charts_png, to_html, to_pdf
    from reports.summary import brand_insight

    prefix = "bench-full"
    zh, en = real_negatives(20_000, seed=5)
    texts = [(t, "zh") for t in zh] + [(t, "en") for t in en]
    random.Random(7).shuffle(texts)
    ok, secs = load(es, prefix, constructed(n, prefix, seed=11, texts=texts))
    print(f"full report: indexed {ok:,} mentions (real negative texts) in {secs:.0f} s")
    config = parse_config({"brands": [{"name": "Acme"}, {"name": "Globex", "own": False},
                                      {"name": "Initech", "own": False}],
                           "elasticsearch": {"index_prefix": prefix}}, env={})
    index = alias_name(prefix)
    brand_insight(es, config, index, "Acme", WEEK)  # warm caches, jieba and scikit-learn
    t0 = time.perf_counter()
    insight = brand_insight(es, config, index, "Acme", WEEK)
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = build_report(es, config, index, "Acme", WEEK, now=END)
    gather = time.perf_counter() - t0
    t0 = time.perf_counter()
    charts = charts_png(report)
    t_charts = time.perf_counter() - t0
    t0 = time.perf_counter()
    page = to_html(report, charts)
    t_html = time.perf_counter() - t0
    t0 = time.perf_counter()
    pdf = to_pdf(report)
    t_pdf = time.perf_counter() - t0
    total = gather + t_charts + t_html + t_pdf
    focus = insight.share_of_voice.focus.counts
    themes = report.insight.themes
    print(f"full report of a week, Acme {focus.mentions:,} mentions ({sum(b.counts.mentions for b in insight.share_of_voice.brands):,} "
          f"in the set), {themes.total if themes else 0:,} negative: baseline brand_insight "
          f"{baseline:.1f} s; build_report {gather:.1f} s (+{gather - baseline:.1f} s for posts, "
          f"authors, alerts), charts {t_charts:.2f} s, HTML {t_html:.3f} s "
          f"({len(page) / 1e3:.0f} kB), PDF {t_pdf:.2f} s ({len(pdf) / 1e3:.0f} kB); "
          f"total {total:.1f} s ({total / baseline:.2f}x the baseline)")


WEEK_PREFIX = "bench-week"


def _week_config(path: Path, url: str) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({
        "brands": [{"name": "Acme"}, {"name": "Globex", "own": False},
                   {"name": "Initech", "own": False}],
        "elasticsearch": {"hosts": [url], "index_prefix": WEEK_PREFIX,
                          "spool_dir": str(path.parent / "spool"), "request_timeout": "300s"},
    }), encoding="utf-8")  # fmt: skip
    return path


def naive_report(es: Elasticsearch, index: str, period: Period) -> dict[str, Any]:
    """The weekly report's figures the naive way: every mention of the two weeks pulled
    with search_after (only the fields the figures need: a kinder baseline than whole
    documents) and counted in Python: per brand and sentiment in both weeks, by source,
    by language, by day; the top negative/positive posts by reach and the authors of
    largest reach. No themes (the themes part has their baseline)."""
    side: dict[str, dict[str, Counter[str]]] = {"now": {}, "before": {}}
    split: dict[str, Counter[tuple[str, str, str]]] = {b: Counter() for b in BRANDS}
    top: dict[str, list[tuple[int, str]]] = {"negative": [], "positive": []}
    authors: dict[str, list[int]] = {}
    query = {"bool": {"filter": [
        {"range": {"created_at": {"gte": iso(period.previous.start), "lt": iso(period.end)}}},
        {"terms": {"brands": list(BRANDS)}},
    ]}}  # fmt: skip
    after = None
    pulled = 0
    start = iso(period.start)
    while True:
        body: dict[str, Any] = {"query": query, "size": 5000, "track_total_hits": False,
                                "_source": ["id", "brands", "brand_sentiment_keys",
                                            "created_at", "duplicate_of", "source", "language",
                                            "author", "author_reach"],
                                "sort": [{"created_at": "asc"}, {"id": "asc"}]}
        if after:
            body["search_after"] = after
        hits = es.search(index=index, **body)["hits"]["hits"]
        pulled += len(hits)
        for h in hits:
            src = h["_source"]
            if "duplicate_of" in src:
                continue
            # the second's prefix: "…00:00:00.5Z" < "…00:00:00Z" as strings
            current = src["created_at"][:19] >= start[:19]
            counts = side["now" if current else "before"]
            keys = dict(k.rsplit("|", 1) for k in src.get("brand_sentiment_keys", []))
            for b in src["brands"]:
                c = counts.setdefault(b, Counter())
                c["mentions"] += 1
                if b in keys:
                    c[keys[b]] += 1
                if current:
                    day = src["created_at"][:10]
                    for key in ("all", keys.get(b, "unscored")):
                        split[b][("source", src["source"], key)] += 1
                        split[b][("language", src.get("language") or "unknown", key)] += 1
                        split[b][("day", day, key)] += 1
            if current and "Acme" in src["brands"]:
                reach = src.get("author_reach") or 0
                if keys.get("Acme") in top:
                    top[keys["Acme"]].append((reach, src["id"]))
                a = authors.setdefault(src.get("author") or "", [0, 0, 0])
                a[0] = max(a[0], reach)
                a[1] += 1
                a[2] += keys.get("Acme") == "negative"
        if len(hits) < 5000:
            break
        after = hits[-1]["sort"]
    return {
        "pulled": pulled, "now": side["now"], "before": side["before"], "split": split,
        "top": {k: sorted(v, reverse=True)[:5] for k, v in top.items()},
        "authors": sorted(authors.items(), key=lambda kv: -kv[1][0])[:10],
    }


NODE_PID: int | None = None  # the throwaway node's JVM, for its CPU time


def node_cpu() -> float:
    """CPU seconds the local node's JVM has used so far (0 with --url: not ours to read)."""
    if NODE_PID is None:
        return 0.0
    fields = Path(f"/proc/{NODE_PID}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _report_run(config: Path, out: Path) -> tuple[float, float, list[str]]:
    """`scheduler.py report --period week` as a user runs it: a new process; its wall time
    and its CPU time (user + system: what it costs whatever else shares the core)."""
    import resource
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve().parent.parent / "scheduler.py"),
           "report", "--config", str(config), "--period", "week", "--to", iso(END)[:10],
           "--brand", "Acme", "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"report failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return secs, cpu, done.stdout.split()


def bench_weekly(es: Elasticsearch, url: str, n: int, *, reuse: bool, naive: bool,
                 runs: int, index_only: bool = False) -> None:
    """A million mentions (default) over two weeks, the weekly report of the last one."""
    from brandpulse.config import load_config
    from reports.full import build_report, notable_authors, top_posts
    from reports.render import charts_png, to_html, to_pdf
    from reports.share_of_voice import competitive_set
    from reports.themes import complaint_themes

    index = alias_name(WEEK_PREFIX)
    have = (es.count(index=index)["count"] if es.indices.exists_alias(name=index) else 0)
    if reuse and have == n:
        print(f"weekly: reusing {have:,} mentions in {index}")
    else:
        zh, en = real_negatives(20_000, seed=5)
        texts = [(t, "zh") for t in zh] + [(t, "en") for t in en]
        zh, en = real_negatives(20_000, seed=6, negative=False)
        others = [(t, "zh") for t in zh] + [(t, "en") for t in en]
        random.Random(7).shuffle(texts)
        random.Random(8).shuffle(others)
        ok, secs = load(es, WEEK_PREFIX, constructed(n, WEEK_PREFIX, seed=13, texts=texts,
                                                     others=others), progress=100_000)
        size = es.indices.stats(index=index, metric="store")["_all"]["primaries"]["store"]
        print(f"weekly: indexed {ok:,} mentions in {secs:.0f} s ({ok / secs:,.0f}/s, "
              f"{size['size_in_bytes'] / 1e6:,.0f} MB on disk; parallel_bulk, 2 threads, "
              f"batches of 2,000, refresh off while loading)", flush=True)
        es.options(request_timeout=3600).indices.forcemerge(index=index, max_num_segments=5)
    if index_only:
        return
    with tempfile.TemporaryDirectory(prefix="bench-week-") as tmp:
        config = _week_config(Path(tmp) / "config.yaml", url)
        walls = []
        for i in range(runs):
            es_cpu = node_cpu()
            secs, cpu, files = _report_run(config, Path(tmp) / f"out{i}")
            es_cpu = node_cpu() - es_cpu
            walls.append(secs)
            print(f"weekly: scheduler.py report --period week (run {i + 1}): {secs:.1f} s wall; "
                  f"CPU {cpu:.1f} s in the report process + {es_cpu:.1f} s in Elasticsearch "
                  f"= {cpu + es_cpu:.1f} s -> "
                  f"{', '.join(Path(f).name for f in files)}", flush=True)
        cfg = load_config(config)
    # where the time goes, in this process (imports already paid by the warm-up)
    steps: dict[str, float] = {}

    def timed(name: str, fn: Any, *a: Any, **kw: Any) -> Any:
        t0, c0, e0 = time.perf_counter(), time.process_time(), node_cpu()
        out = fn(*a, **kw)
        steps[name] = (time.perf_counter() - t0, time.process_time() - c0, node_cpu() - e0)
        return out

    from nlp.enrich import brand_queries

    sov = timed("share of voice (aggregations)", share_of_voice, es, index,
                competitive_set(cfg, "Acme"), WEEK)
    if runs == 0:  # --runs 0: the naive baseline alone (against the aggregation)
        return _naive_part(es, index, sov, walls, naive)
    themes = timed("complaint themes", complaint_themes, es, index, "Acme", WEEK,
                   known_queries=brand_queries(cfg.brands))
    timed("top posts (2 searches)", lambda: [top_posts(es, index, "Acme", WEEK, s)
                                             for s in ("negative", "positive")])
    timed("notable authors (terms agg)", notable_authors, es, index, "Acme", WEEK)
    report = timed("build_report (all of the above + alerts)", build_report, es, cfg, index,
                   "Acme", WEEK, now=END)
    charts = timed("charts (2 PNG)", charts_png, report)
    timed("HTML", to_html, report, charts)
    timed("PDF", to_pdf, report)
    print(f"  {'step (in this process, warm)':<42} {'wall':>7} {'CPU here':>9} {'CPU ES':>7}")
    for name, (wall, cpu, es_cpu) in steps.items():
        print(f"  {name:<42} {wall:6.2f}s {cpu:8.2f}s {es_cpu:6.2f}s")
    print(f"  Acme: {sov.focus.counts.mentions:,} mentions this week "
          f"({sov.total_mentions:,} brand mentions in the set), {themes.total:,} negative "
          f"({themes.previous_total:,} the week before) -> {len(themes.themes)} themes"
          + (f" found on a sample of {themes.sampled:,}" if getattr(themes, "sampled", None) else ""))
    for t in themes.themes[:6]:
        print(f"    {t.size:>6,} ({t.previous_size:>6,} before) [{t.language}] {t.label}")
    _naive_part(es, index, sov, walls, naive)


def _naive_part(es: Elasticsearch, index: str, sov: Any, walls: list[float], naive: bool) -> None:
    if not naive:
        return
    t0, c0, e0 = time.perf_counter(), time.process_time(), node_cpu()
    got = naive_report(es, index, WEEK)
    secs, cpu, es_cpu = time.perf_counter() - t0, time.process_time() - c0, node_cpu() - e0
    for f in sov.brands:
        assert f.counts == _as_counts(got["now"][f.brand]), (f.brand, f.counts)
        assert f.previous == _as_counts(got["before"][f.brand]), (f.brand, f.previous)
    print(f"weekly: naive baseline (same run): pulled {got['pulled']:,} mentions of the two "
          f"weeks and counted the report's figures in Python (no themes): {secs:.1f} s wall, "
          f"CPU {cpu:.1f} s here + {es_cpu:.1f} s in Elasticsearch; "
          f"figures identical to the aggregations'"
          + (f"; the report: {min(walls):.1f} s wall" if walls else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an already-running node (default: start a throwaway one)")
    ap.add_argument("--mentions", type=int, default=300_000)
    ap.add_argument("--negatives", type=int, default=20_000)
    ap.add_argument("--heap", default="1g")
    ap.add_argument("--full-mentions", type=int, default=100_000,
                    help="mentions over two weeks for the full report (about half in the week)")
    ap.add_argument("--parts", default="themes,sov,full",
                    help="which parts to run, comma-separated (themes, sov, full, weekly)")
    ap.add_argument("--week-mentions", type=int, default=1_000_000,
                    help="mentions over two weeks for the weekly report (--parts weekly)")
    ap.add_argument("--data-dir", help="the throwaway node's data folder, kept after the run "
                    "(default: a temporary one); with --reuse a later run skips indexing")
    ap.add_argument("--reuse", action="store_true",
                    help="weekly: keep the index when it already holds --week-mentions mentions")
    ap.add_argument("--runs", type=int, default=2, help="weekly: report runs (the first is cold)")
    ap.add_argument("--no-naive", action="store_true", help="weekly: skip the naive baseline")
    ap.add_argument("--index-only", action="store_true", help="weekly: index, then stop")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        if args.url:
            url = args.url
            es = Elasticsearch(url, request_timeout=300)
        else:
            if args.data_dir:
                data = Path(args.data_dir)
            else:
                data = Path(stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="bench-reports-"))) / "es"
            node = LocalNode(port=0, data_dir=data, heap=args.heap)
            node.start()
            stack.callback(node.stop)
            global NODE_PID
            NODE_PID = node.pid
            url = node.url
            es = node.client(request_timeout=300)
        t0 = time.perf_counter()
        parts = set(args.parts.split(","))
        if "themes" in parts:
            bench_themes(es, args.negatives)
        if "sov" in parts:
            bench_share_of_voice(es, args.mentions)
        if "full" in parts:
            bench_full_report(es, args.full_mentions)
        if "weekly" in parts:
            bench_weekly(es, url, args.week_mentions, reuse=args.reuse,
                         naive=not args.no_naive, runs=args.runs, index_only=args.index_only)
        print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
