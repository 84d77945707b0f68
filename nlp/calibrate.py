"""Fit the temperature that turns the model's probabilities into calibrated confidences.

    python -m nlp.calibrate [FILE.csv ...] [--model default] [--limit N] [--out PATH]

Temperature scaling (Guo et al., 2017): one number T divides every logit before the
softmax; T is chosen to minimise the negative log-likelihood of the gold labels on
labelled held-out data (the mean over the sets, each set weighing the same), so that
among results of confidence 0.8 about 80% are right.
It never changes which class is largest in a window, so labels stay what they were.

Without FILEs the command fits on the sets the project keeps for choosing settings:
TweetEval sentiment *validation* (English tweets, 3 classes) and the Chinese shopping
reviews' held-out hash split (`nlp.data`, binary). FILEs are `label,text` CSVs as
`nlp.evaluate` reads them. On a binary set, gold negative/positive is compared with the
3-class result: a neutral answer to a clearly polar review counts as wrong.

The fitted temperature is written to `nlp/calibration.json` under the model's id
(`brandpulse-default-<digest>` for the default model, so a retrained model is never
given the old model's temperature), with the data it was fitted on and the expected
calibration error (ECE, 15 equal-width bins) before and after. After the default model is
retrained: run `python -m nlp.calibrate` and commit `nlp/calibration.json`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"
ECE_BINS = 15
_DEFAULT_PREFIX = "brandpulse-default-"


def base_model_id(model_id: str) -> str:
    """The model's id without the runtime suffix (`...+onnx-int8`): one temperature serves
    every runtime of a model (their probabilities differ by a few hundredths)."""
    return model_id.split("+", 1)[0]


def fitted_temperature(model_id: str, path: Path = CALIBRATION_PATH) -> float | None:
    """The temperature fitted for `model_id`, or None if it was never calibrated."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    entry = entries.get(base_model_id(model_id))
    return None if entry is None else float(entry["temperature"])


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """Σ over equal-width confidence bins of (share of results) × |accuracy − mean confidence|."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability(confidence: np.ndarray, correct: np.ndarray,
                edges: tuple[float, ...] = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)) -> str:
    rows = [f"{'confidence':>12} {'n':>6} {'mean conf':>10} {'accuracy':>9}"]
    for lo, hi in itertools.pairwise(edges):
        mask = (confidence > lo) & (confidence <= hi) if lo else confidence <= hi
        if mask.any():
            rows.append(f"{f'{lo:.1f}-{hi:.1f}':>12} {int(mask.sum()):>6} "
                        f"{confidence[mask].mean():>10.3f} {correct[mask].mean():>9.3f}")
    return "\n".join(rows)


def _nll(probs: np.ndarray, gold: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, 1.0)).mean())


def fit_temperature(nll_at: Callable[[float], float], lo: float = 0.05, hi: float = 20.0, steps: int = 60) -> float:
    """The T in [lo, hi] minimising `nll_at(T)`: golden-section search on log T (the NLL
    of temperature scaling is unimodal in T)."""
    a, b = np.log(lo), np.log(hi)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll_at(np.exp(c)), nll_at(np.exp(d))
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll_at(np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll_at(np.exp(d))
    return float(np.exp((a + b) / 2))


def _default_sets() -> list[tuple[str, list[str], list[str]]]:
    from nlp.data import tweeteval_val, zh_shopping

    sets = []
    for name, examples in (("tweeteval_val", tweeteval_val()),
                           ("zh_shopping_heldout", zh_shopping(heldout=True))):
        sets.append((name, [ex.label for ex in examples], [ex.text for ex in examples]))
    return sets


def _file_sets(paths: list[Path], limit: int | None) -> list[tuple[str, list[str], list[str]]]:
    from nlp.evaluate import read_labelled

    sets = []
    for path in paths:
        labels, texts, binary = read_labelled(path, limit)
        if binary:
            labels = ["positive" if label == "1" else "negative" for label in labels]
        sets.append((path.name, labels, texts))
    return sets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=Path, help="label,text CSVs (default: see above)")
    ap.add_argument("--model", default="default", help="'default', a local path or a hub name")
    ap.add_argument("--limit", type=int, default=None, help="a fixed sample of N rows per set")
    ap.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto")
    ap.add_argument("--out", type=Path, default=CALIBRATION_PATH)
    args = ap.parse_args(argv)

    from nlp.scorer import CLASS_INDEX, SentimentScorer, WindowLogits

    try:
        if args.paths:
            sets = _file_sets(args.paths, args.limit)
        else:
            sets = _default_sets()
            if args.limit is not None:
                import random

                sets = [(name, *map(list, zip(*random.Random(0).sample(
                    list(zip(labels, texts, strict=True)), min(args.limit, len(texts))),
                    strict=True))) for name, labels, texts in sets]
        scorer = SentimentScorer.from_pretrained(args.model, runtime=args.runtime,
                                                 temperature=1.0, max_tokens=512)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    raw: list[WindowLogits] = []
    golds: list[np.ndarray] = []
    for name, labels, texts in sets:
        raw.append(scorer.window_logits(texts))
        golds.append(np.array([CLASS_INDEX[label] for label in labels], dtype=np.int64))
        print(f"scored {name}: {len(texts)} rows", file=sys.stderr)
    gold = np.concatenate(golds)

    def probs_at(t: float) -> list[np.ndarray]:
        return [r.probabilities(t) for r in raw]

    def nll_at(t: float) -> float:
        # Each set weighs the same, whatever its size: the model serves every domain,
        # and the largest set should not choose the temperature alone.
        return float(np.mean([_nll(p, g) for p, g in zip(probs_at(t), golds, strict=True)]))

    temperature = fit_temperature(nll_at)
    model_id = base_model_id(scorer.model_id)
    report: dict[str, dict[str, float]] = {}
    print(f"model {scorer.model_id}: temperature {temperature:.4f} (minimises the mean of "
          f"the sets' NLL; {len(gold)} rows in {len(sets)} set(s))")
    for t, when in ((1.0, "before"), (temperature, "after")):
        per_set = probs_at(t)
        for (name, _, _), probs, g in zip([*sets, ("all", [], [])],
                                          [*per_set, np.concatenate(per_set)],
                                          [*golds, gold], strict=True):
            label = probs.argmax(1)
            conf = probs[np.arange(len(label)), label]
            correct = (label == g).astype(np.float64)
            entry = report.setdefault(name, {"n": len(g)})
            entry[f"ece_{when}"] = round(expected_calibration_error(conf, correct), 4)
            entry[f"nll_{when}"] = round(_nll(probs, g), 4)
            if name == "all" and when == "after":
                print(f"reliability after calibration (all sets):\n{reliability(conf, correct)}")
                for cut in (0.4, 0.5, 0.55, 0.6):
                    below = conf < cut
                    acc = correct[below].mean() if below.any() else float("nan")
                    print(f"  confidence < {cut}: {below.mean():.1%} of results, "
                          f"accuracy {acc:.3f}")
    for name, entry in report.items():
        print(f"{name:>20}: n={entry['n']:>5}  ECE {entry['ece_before']:.4f} -> "
              f"{entry['ece_after']:.4f}   NLL {entry['nll_before']:.4f} -> "
              f"{entry['nll_after']:.4f}")

    try:
        entries = json.loads(args.out.read_text(encoding="utf-8"))
    except FileNotFoundError:
        entries = {}
    if model_id.startswith(_DEFAULT_PREFIX):
        # One default model exists per commit: older builds' entries only mislead.
        entries = {k: v for k, v in entries.items() if not k.startswith(_DEFAULT_PREFIX)}
    entries[model_id] = {
        "temperature": round(temperature, 4),
        "fitted_with": scorer.model_id,
        "sets": report,
    }
    args.out.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({model_id}: temperature {temperature:.4f}; "
          f"ECE {report['all']['ece_before']:.4f} -> {report['all']['ece_after']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
