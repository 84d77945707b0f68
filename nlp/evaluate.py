"""Evaluate a sentiment model on a labelled CSV, next to a lexicon baseline.

    python -m nlp.evaluate PATH.csv [--model default|PATH|NAME] [--limit N]
                           [--baseline auto|vader|snownlp|none] [--labels LABEL_0=negative,...]
                           [--runtime auto|onnx|torch] [--no-quantize]

The CSV has columns `label,text`. Labels are negative/neutral/positive (3 classes) or 0/1
(binary: negative vs positive). On a binary set a model's neutral is resolved by the larger
of its negative and positive probabilities. `--limit N` scores a fixed random sample
(seed 0) of N rows, so that a sorted file is not cut to one class. The baseline is VADER
for English-looking data and SnowNLP for Chinese (by the share of CJK characters).

The last line printed is always
    accuracy=<0..1> macro_f1=<0..1> macro_recall=<0..1> n=<rows>
for the model.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

THREE = ("negative", "neutral", "positive")
BINARY = ("0", "1")


@dataclass
class Report:
    classes: tuple[str, ...]
    confusion: np.ndarray  # rows gold, columns predicted
    accuracy: float
    macro_f1: float
    macro_recall: float
    n: int

    def last_line(self) -> str:
        return (f"accuracy={self.accuracy:.4f} macro_f1={self.macro_f1:.4f} "
                f"macro_recall={self.macro_recall:.4f} n={self.n}")

    def table(self) -> str:
        width = max(10, *(len(c) for c in self.classes)) + 1
        head = "gold\\pred".ljust(width) + "".join(c.rjust(width) for c in self.classes)
        rows = [c.ljust(width) + "".join(str(v).rjust(width) for v in row)
                for c, row in zip(self.classes, self.confusion, strict=True)]
        return "\n".join([head, *rows])


def metrics(gold: list[str], pred: list[str], classes: tuple[str, ...]) -> Report:
    index = {c: i for i, c in enumerate(classes)}
    conf = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for g, p in zip(gold, pred, strict=True):
        conf[index[g], index[p]] += 1
    n = int(conf.sum())
    accuracy = float(np.trace(conf) / n) if n else 0.0
    recalls, f1s = [], []
    for i in range(len(classes)):
        support, predicted, hit = conf[i].sum(), conf[:, i].sum(), conf[i, i]
        if support == 0:  # a class absent from the gold labels says nothing either way
            continue
        recall = hit / support
        precision = hit / predicted if predicted else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return Report(classes, conf, accuracy, float(np.mean(f1s)) if f1s else 0.0,
                  float(np.mean(recalls)) if recalls else 0.0, n)


def read_labelled(path: Path, limit: int | None = None) -> tuple[list[str], list[str], bool]:
    """(labels, texts, binary) from a label,text CSV; errors name the offending row."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "label" not in fields or "text" not in fields:
            raise ValueError(f"{path}: expected columns 'label,text', found {fields}")
        rows = [(r["label"].strip(), r["text"] or "") for r in reader]
    if not rows:
        raise ValueError(f"{path}: no rows")
    labels = {label for label, _ in rows}
    if labels <= set(BINARY):
        binary = True
    elif labels <= set(THREE):
        binary = False
    else:
        bad = sorted(labels - set(THREE) - set(BINARY))
        line = next(i for i, (label, _) in enumerate(rows, start=2) if label in bad)
        raise ValueError(f"{path}: label {bad[0]!r} on line {line} is neither "
                         "negative/neutral/positive nor 0/1 (and the two kinds cannot mix)")
    if limit is not None and limit < len(rows):
        keep = sorted(random.Random(0).sample(range(len(rows)), limit))
        rows = [rows[i] for i in keep]
    return [label for label, _ in rows], [text for _, text in rows], binary


def to_labels(probs: np.ndarray, binary: bool) -> list[str]:
    """Model probabilities (neg, neu, pos) -> labels of the data set's kind."""
    if binary:
        return ["1" if p[2] > p[0] else "0" for p in probs]
    return [THREE[int(p.argmax())] for p in probs]


def looks_chinese(texts: list[str]) -> bool:
    sample = "".join(texts[:500])
    letters = [c for c in sample if c.isalpha()]
    cjk = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf")
    return bool(letters) and cjk / len(letters) > 0.3


def vader_labels(texts: list[str], binary: bool) -> list[str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        compound = analyzer.polarity_scores(text)["compound"]
        if binary:
            out.append("1" if compound >= 0 else "0")
        else:  # VADER's documented thresholds
            out.append("positive" if compound >= 0.05 else
                       "negative" if compound <= -0.05 else "neutral")
    return out


def snownlp_labels(texts: list[str], binary: bool) -> list[str]:
    from snownlp import SnowNLP

    out = []
    for text in texts:
        p = SnowNLP(text).sentiments if text.strip() else 0.5
        if binary:
            out.append("1" if p >= 0.5 else "0")
        else:  # SnowNLP is binary; the middle band is read as neutral
            out.append("positive" if p > 0.6 else "negative" if p < 0.4 else "neutral")
    return out


def _parse_labels(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    pairs = [item.split("=", 1) for item in value.split(",") if item]
    if any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError("--labels wants NAME=negative|neutral|positive,...")
    return {k.strip(): v.strip() for k, v in pairs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path)
    ap.add_argument("--model", default="default", help="'default', a local path or a hub name")
    ap.add_argument("--labels", type=_parse_labels, default=None,
                    help="checkpoint label mapping, e.g. LABEL_0=negative,LABEL_1=positive")
    ap.add_argument("--limit", type=int, default=None, help="score a fixed sample of N rows")
    ap.add_argument("--baseline", choices=("auto", "vader", "snownlp", "none"), default="auto")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto",
                    help="auto: ONNX Runtime when the checkpoint has an export, else torch")
    ap.add_argument("--no-quantize", action="store_true", help="score with the fp32 model on CPU")
    args = ap.parse_args(argv)

    from nlp.scorer import ModelLoadError, SentimentScorer

    try:
        gold, texts, binary = read_labelled(args.path, args.limit)
        scorer = SentimentScorer.from_pretrained(
            args.model, labels=args.labels, batch_size=args.batch_size,
            max_length=args.max_length, runtime=args.runtime,
            quantize=False if args.no_quantize else None)
    except (FileNotFoundError, ValueError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classes = BINARY if binary else THREE
    kind = "binary (0=negative, 1=positive)" if binary else "3-class"
    print(f"data: {args.path} ({len(texts)} rows, {kind})")

    baseline = args.baseline
    if baseline == "auto":
        baseline = "snownlp" if looks_chinese(texts) else "vader"
    if baseline != "none":
        start = time.perf_counter()
        base_pred = (snownlp_labels if baseline == "snownlp" else vader_labels)(texts, binary)
        rate = len(texts) / (time.perf_counter() - start)
        base = metrics(gold, base_pred, classes)
        print(f"\nbaseline {baseline} ({rate:.0f} texts/s)\n{base.table()}")
        print(f"baseline {baseline}: {base.last_line()}")

    start = time.perf_counter()
    probs = scorer.probabilities(texts)
    rate = len(texts) / (time.perf_counter() - start)
    report = metrics(gold, to_labels(probs, binary), classes)
    print(f"\nmodel {scorer.model_id} ({rate:.0f} texts/s)\n{report.table()}")
    print(report.last_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
