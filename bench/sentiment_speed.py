"""Sentiment scoring speed: the project's scorer vs a naive transformers pipeline.

    python bench/sentiment_speed.py [--model default|PATH] [--n 1000] [--threads 2]

Same model, same texts (the first N SemEval tweets by a fixed shuffle). Each variant runs
in its own subprocess so that its peak RSS (ru_maxrss) is its own:

* `scorer`        nlp.scorer.SentimentScorer: length-sorted batches, dynamic padding,
                  int8 dynamic quantisation of the Linear layers, inference_mode;
* `scorer-fp32`   the same without quantisation;
* `pipeline`      transformers.pipeline("text-classification") called one text at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("scorer", "scorer-fp32", "pipeline")


def load_texts(n: int) -> list[str]:
    from nlp.data import semeval_tweets

    texts = [ex.text for ex in semeval_tweets()]
    random.Random(0).shuffle(texts)
    return texts[:n]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_variant(variant: str, model: str, n: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    texts = load_texts(n)
    start = time.perf_counter()
    if variant.startswith("scorer"):
        from nlp.scorer import SentimentScorer

        scorer = SentimentScorer.from_pretrained(model, threads=threads, batch_size=32,
                                                 quantize=variant == "scorer")
        loaded = time.perf_counter() - start
        scorer.score(texts[:8])  # warm-up
        start = time.perf_counter()
        cpu0 = _cpu()
        scorer.score(texts)
    else:
        from transformers import pipeline
        from transformers.utils import logging

        from nlp.scorer import _locate

        logging.disable_progress_bar()
        path, _ = _locate(model)
        pipe = pipeline("text-classification", model=path, tokenizer=path, device="cpu",
                        dtype=torch.float32)
        loaded = time.perf_counter() - start
        pipe(texts[0])
        start = time.perf_counter()
        cpu0 = _cpu()
        for text in texts:
            pipe(text, truncation=True)
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    return {"cpu_s": round(cpu, 2),
            # What the run would take on `threads` otherwise idle cores, assuming the
            # threads were kept busy: meaningful when other jobs share the machine.
            "texts_per_cpu_s_x_threads": round(n / cpu * threads, 1),
            "variant": variant, "texts": n, "seconds": round(elapsed, 2),
            "texts_per_s": round(n / elapsed, 1), "load_s": round(loaded, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--variant", help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.model, args.n, args.threads)))
        return
    load_before = os.getloadavg()[0]
    results = []
    for variant in args.variants.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--model", args.model,
             "--n", str(args.n), "--threads", str(args.threads)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {variant} failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{args.n} tweets, {args.threads} threads, load average before: "
          f"{load_before:.1f}")
    print(f"{'variant':<12} {'texts/s':>9} {'texts/CPU-s x threads':>22} {'peak RSS MB':>12} "
          f"{'load s':>7}")
    for r in results:
        print(f"{r['variant']:<12} {r['texts_per_s']:>9} {r['texts_per_cpu_s_x_threads']:>22} "
              f"{r['peak_rss_mb']:>12} {r['load_s']:>7}")


if __name__ == "__main__":
    main()
