"""Scoring one very long post: the capped scorer vs the uncapped one, same run.

    python bench/long_text.py [--kb 500] [--baseline-kb 50] [--max-tokens 512] [--threads 2]

The post is English and Chinese sentences repeated to the size asked (a pasted log or
a copied article looks like this to the model: long, repetitive, mostly neutral). Each
variant runs in its own subprocess so that its peak RSS (VmHWM) is its own:

* `capped`    the scorer as the pipeline runs it (`nlp.max_tokens_per_mention`, default
              512): the first and last 256 tokens, cut by characters before tokenising;
* `uncapped`  the same scorer without the cap (every token, in windows of 256) on a
              smaller post (`--baseline-kb`), because the full size takes a minute and
              more than a gigabyte; its per-KB cost shows what the full size would cost.

Load time is excluded: the figures are the scoring call alone (after a short warm-up).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCES = (
    "The update installed overnight and the settings page now has a new layout. ",
    "更新之后设置页面换了新的布局，菜单的位置也变了。",
    "Log line 4411: service restarted, 0 errors, 12 warnings, uptime 3d 4h. ",
    "I finally got a reply from support after three days and they were very kind. ",
)


def make_post(kb: int) -> str:
    block = "".join(SENTENCES)
    text = block * (kb * 1024 // len(block.encode("utf-8")) + 1)
    while len(text.encode("utf-8")) > kb * 1024:
        text = text[: -len(block)]
    return text


def peak_rss_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) // 1024


def run_variant(variant: str, kb: int, max_tokens: int, threads: int) -> dict:
    from nlp.scorer import SentimentScorer

    scorer = SentimentScorer.from_pretrained(
        "default", threads=threads, max_tokens=max_tokens if variant == "capped" else None)
    scorer.score(["warm-up text"])
    post = make_post(kb)
    start = time.perf_counter()
    result = scorer.score([post])[0]
    elapsed = time.perf_counter() - start
    return {"variant": variant, "kb": kb, "seconds": round(elapsed, 3),
            "peak_rss_mb": peak_rss_mb(), "label": result.label, "model_id": scorer.model_id}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=int, default=500)
    ap.add_argument("--baseline-kb", type=int, default=50)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.kb, args.max_tokens, args.threads)))
        return
    runs = [("capped", args.kb), ("uncapped", args.baseline_kb)]
    results = []
    for variant, kb in runs:
        proc = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--kb", str(kb),
             "--max-tokens", str(args.max_tokens), "--threads", str(args.threads)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {variant} failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"one long post, {args.threads} threads, cap {args.max_tokens} tokens")
    print(f"{'variant':<9} {'post KB':>8} {'seconds':>8} {'peak RSS MB':>12}  label")
    for r in results:
        print(f"{r['variant']:<9} {r['kb']:>8} {r['seconds']:>8} {r['peak_rss_mb']:>12}  "
              f"{r['label']}")
    capped, base = results
    per_kb = base["seconds"] / base["kb"]
    print(f"uncapped cost {per_kb * 1000:.1f} ms/KB, i.e. about {per_kb * args.kb:.0f} s for "
          f"{args.kb} KB; capped {args.kb} KB: {capped['seconds']} s, {capped['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
