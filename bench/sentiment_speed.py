"""Sentiment scoring speed: the project's scorer vs a naive transformers pipeline.

    python bench/sentiment_speed.py [--model default|PATH] [--n 1000] [--threads 2]
                                    [--batch-size 32] [--variants scorer,pipeline,...]

Same model, same texts (the first N SemEval tweets by a fixed shuffle). Each variant runs
in its own subprocess so that its peak RSS (ru_maxrss) is its own:

* `scorer`        nlp.scorer.SentimentScorer as the pipeline runs it on CPU: length-sorted
                  batches, dynamic padding, the model's int8 ONNX export on ONNX Runtime
                  (torch is never imported);
* `scorer-torch`  the same scorer on the torch runtime: int8 dynamic quantisation of the
                  Linear layers, inference_mode;
* `scorer-fp32`   the torch runtime without quantisation;
* `scorer-onnx-fp32`  (only when named in --variants) the ONNX runtime on the fp32 graph:
                  what int8 gains over fp32 on this CPU, with everything else equal;
* `scorer-spin`   (only when named in --variants) `scorer` with ONNX Runtime's idle
                  intra-op threads spinning between operators (the daemon keeps them
                  asleep): what that would gain with 2 or more threads on idle cores;
* `pipeline`      transformers.pipeline("text-classification") called one text at a time
                  (the baseline: same model, same texts).

Peak memory is the child's VmHWM (its resident high-water mark).
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

VARIANTS = ("scorer", "scorer-torch", "scorer-fp32", "pipeline")  # the default run
KNOWN = (*VARIANTS, "scorer-onnx-fp32", "scorer-spin")


def load_texts(n: int) -> list[str]:
    from nlp.data import semeval_tweets

    texts = [ex.text for ex in semeval_tweets()]
    random.Random(0).shuffle(texts)
    return texts[:n]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) // 1024


def run_variant(variant: str, model: str, n: int, threads: int, batch_size: int = 32) -> dict:
    texts = load_texts(n)
    start = time.perf_counter()
    if variant.startswith("scorer"):
        from nlp.scorer import SentimentScorer

        if variant == "scorer-spin":
            from nlp.runtimes.onnx_runtime import OnnxClassifier
            from nlp.scorer import _locate, resolve_label_map

            # `scorer` on a session whose idle threads spin (one session, so that the
            # peak RSS compares).
            path, model_id = _locate(model)
            net, encoder = OnnxClassifier.load(Path(path), threads=threads, spinning=True)
            scorer = SentimentScorer(net, encoder, resolve_label_map(net.id2label, None),
                                     f"{model_id}+{net.name}+spin", batch_size=batch_size)
        else:
            runtime = {"scorer": "auto", "scorer-onnx-fp32": "onnx"}.get(variant, "torch")
            scorer = SentimentScorer.from_pretrained(
                model, threads=threads, batch_size=batch_size, runtime=runtime,
                quantize=variant not in ("scorer-fp32", "scorer-onnx-fp32"))
        loaded = time.perf_counter() - start
        scorer.score(texts[:8])  # warm-up
        start = time.perf_counter()
        cpu0 = _cpu()
        scorer.score(texts)
    else:
        import torch
        from transformers import pipeline

        torch.set_num_threads(threads)
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
            "model_id": scorer.model_id if variant.startswith("scorer") else "pipeline",
            "imports_torch": "torch" in sys.modules, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32,
                    help="the scorer variants' batch size (the pipeline's default is 32)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, any of {', '.join(KNOWN)}; a name may repeat "
                         "(e.g. scorer,pipeline,scorer to see the drift within one run)")
    ap.add_argument("--variant", help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.model, args.n, args.threads,
                                     args.batch_size)))
        return
    unknown = set(args.variants.split(",")) - set(KNOWN)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; known: {', '.join(KNOWN)}")
    load_before = os.getloadavg()[0]
    results = []
    for variant in args.variants.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--model", args.model,
             "--n", str(args.n), "--threads", str(args.threads),
             "--batch-size", str(args.batch_size)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {variant} failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{args.n} tweets, {args.threads} threads, scorer batch size {args.batch_size}, "
          f"load average before: {load_before:.1f}")
    print(f"{'variant':<16} {'texts/s':>8} {'texts/CPU-s x threads':>22} {'peak RSS MB':>12} "
          f"{'load s':>7} {'torch':>6}  model")
    for r in results:
        print(f"{r['variant']:<16} {r['texts_per_s']:>8} {r['texts_per_cpu_s_x_threads']:>22} "
              f"{r['peak_rss_mb']:>12} {r['load_s']:>7} {'yes' if r['imports_torch'] else 'no':>6}"
              f"  {r['model_id']}")
    by_name = {r["variant"]: r for r in results}
    if "scorer" in by_name and "pipeline" in by_name:
        ours, base = by_name["scorer"], by_name["pipeline"]
        print(f"scorer vs naive pipeline (baseline, same run): "
              f"{ours['texts_per_s'] / base['texts_per_s']:.1f}x texts/s, "
              f"{ours['texts_per_cpu_s_x_threads'] / base['texts_per_cpu_s_x_threads']:.1f}x "
              f"per CPU-second, peak RSS {ours['peak_rss_mb']} vs {base['peak_rss_mb']} MB "
              f"(targets: >= 200 texts/s, < 1024 MB)")

if __name__ == "__main__":
    main()
