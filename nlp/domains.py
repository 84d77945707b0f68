"""Per-domain held-out table: how a sentiment model does on every labelled domain.

    python -m nlp.domains [--model default|PATH] [--part test|dev] [--cap 1500]
                          [--baseline] [--json OUT.json] [--against OLD.json] [--probes]
                          [--max-length 256] [--extra-data DIR [--extra-only]]

Every shared labelled file (`nlp.data.DOMAINS`) is split by SHA-1 of the text alone:
bucket 0 of 10 is its **test** part (never trained on; for the shopping reviews it is the
held-out set `python -m nlp.evaluate` has always reported), bucket 1 its **dev** part
(chooses training checkpoints; never trained on either), the rest is training data.
Each part is capped at `--cap` rows by a fixed random sample (seed 0), so a table takes a
few minutes on a shared 2-core CPU. The tweet domain is judged on TweetEval validation
(SemEval-2017 tweets): the SemEval 2013-2016 tweets were all trained on before the split
existed, so their own hash split would prove nothing.

Metrics: on a **binary** set (the source only knows negative/positive) the model's
neutral logit is masked out -- a text is positive when P(positive) > P(negative), exactly
as `nlp.evaluate` reads a 0/1 file -- and the headline figure is accuracy. On a 3-class
set the headline figure is macro-averaged recall (as TweetEval reports it). The **mix**
is the mean of the headline figures over the shared domains plus TweetEval validation:
the figure checkpoints are chosen on (on the dev parts), so no single set decides.
The team-written sarcasm set (`nlp/training_data/sarcasm_authored.csv`) is shown but kept
out of the mix: its test part is a dozen sentences.

`--extra-data DIR` adds every `label,text` CSV of DIR as a further domain (`nlp.data.
extra_domains`: same hash split, same metrics, binary when it has no neutral row), marked
`^` and kept out of the mix so the mix stays comparable across sessions; their mean is
printed as `EXTRA MIX`. It measures transfer to text no shared file holds (a new review
site, say) without putting that text in the shared folder. `--extra-only` scores only them,
and only then may `--part all` score every row (right for a file no model trained on; the
test part stays the held-out one should a later stage train on the file).

`--baseline` adds VADER (English) or SnowNLP (Chinese) on the same rows; SnowNLP is slow,
so it costs a few minutes. `--probes` scores the issue's two sarcastic sentences, which
are never trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlp import data

LABEL_ID = {"negative": 0, "neutral": 1, "positive": 2}
TWEETEVAL_VAL = "en_tweeteval_val"
# The two sentences of issue #11: probes only, never training data.
PROBES = (
    "Oh great, another Acme update that deletes all my settings",
    "only kept me on hold for 3 hours. Truly world class",
)


@dataclass(frozen=True)
class Part:
    """The rows of one domain's split, ready to score."""

    name: str
    lang: str
    binary: bool
    examples: list[data.Example]
    in_mix: bool = True
    extra: bool = False  # from --extra-data: reported, never in the mix


def domain_score(scores: np.ndarray, labels: list[str], binary: bool) -> dict[str, float]:
    """Accuracy, macro recall and the headline figure for (n, 3) logits or probabilities
    in (negative, neutral, positive) order. Binary: neutral masked, headline = accuracy;
    3-class: argmax, headline = macro recall."""
    gold = np.array([LABEL_ID[label] for label in labels])
    if binary:
        pred = np.where(scores[:, 2] > scores[:, 0], 2, 0)
        classes = (0, 2)
    else:
        pred = scores.argmax(1)
        classes = (0, 1, 2)
    accuracy = float((pred == gold).mean())
    recall = float(np.mean([(pred[gold == c] == c).mean() for c in classes if (gold == c).any()]))
    return {"accuracy": round(accuracy, 4), "macro_recall": round(recall, 4),
            "headline": round(accuracy if binary else recall, 4), "n": len(labels)}


def parts(part: str, cap: int | None, seed: int = 0) -> list[Part]:
    """Every domain's `part` ('test' or 'dev'), capped; then TweetEval validation (always
    whole: it is the tweet domain's dev and test alike) and the authored sarcasm part."""
    out = [_part(d, part, cap, seed) for d in data.DOMAINS]
    out.append(Part(TWEETEVAL_VAL, "en", False, data.tweeteval_val()))
    sarcasm = data.domain_examples(data.SARCASM, part)
    if sarcasm:
        out.append(Part(data.SARCASM.name, "en+zh", False, sarcasm, in_mix=False))
    return out


def _part(domain: data.Domain, part: str, cap: int | None, seed: int, *,
          extra: bool = False) -> Part:
    rows = data.sample(data.domain_examples(domain, part), cap, seed)
    return Part(domain.name, domain.lang, domain.binary, rows, in_mix=not extra, extra=extra)


def extra_parts(directory: Path, part: str, cap: int | None, seed: int = 0) -> list[Part]:
    """The `part` of every CSV in `directory` (`nlp.data.extra_domains`), capped as the
    shared domains are; kept out of the mix. A file with no row in that part is skipped."""
    out = [_part(d, part, cap, seed, extra=True) for d in data.extra_domains(directory)]
    return [p for p in out if p.examples]


def trained_domains(recipe: dict) -> set[str]:
    """The domains a model's training ever drew examples from, read from its recipe and
    every stage it continued from or was averaged from (`nlp.soup`).

    A legacy-mix stage trained SemEval tweets and shopping reviews only; a broad-mix stage
    every domain whose share was above 0 (`--hold-out NAME` sets it to 0). The tweet
    domain is trained as `en_semeval_tweets` and judged on TweetEval validation, so both
    names count as seen together. Used to mark the domains a model has never seen: their
    figures measure transfer to a new domain, the honest proxy for the kept sets that
    judge issue #11, where a seen domain's test part only measures in-domain breadth.
    """
    seen: set[str] = set()
    stack = [recipe]
    while stack:
        r = stack.pop()
        if r.get("mix") == "broad":
            seen |= {name for name, share in r.get("domain_shares", {}).items() if share > 0}
        elif "zh_share" in r or r.get("mix") == "legacy":
            seen |= {"en_semeval_tweets", "zh_shopping"}
        if "continued_from" in r:
            stack.append(r["continued_from"])
        stack += [s["stage"] for s in r.get("soup_of", ())]
    if "en_semeval_tweets" in seen:
        seen.add(TWEETEVAL_VAL)
    return seen


def model_recipe(model: str) -> dict | None:
    """The recipe a built model records (`build_info.json`), or None (a checkpoint from
    elsewhere: nothing is known of its training data)."""
    from nlp.scorer import DEFAULT_MODEL_DIR  # not nlp.build_default: that imports torch

    folder = DEFAULT_MODEL_DIR if model == "default" else Path(model)
    try:
        return json.loads((folder / "build_info.json").read_text(encoding="utf-8"))["recipe"]
    except (OSError, ValueError, KeyError):
        return None


def mix(results: dict[str, dict[str, float]], in_mix: set[str]) -> float:
    return round(float(np.mean([results[n]["headline"] for n in in_mix if n in results])), 4)


def _baseline(part: Part) -> dict[str, float]:
    from nlp.evaluate import snownlp_labels, vader_labels

    texts = [ex.text for ex in part.examples]
    labels = (snownlp_labels if part.lang == "zh" else vader_labels)(texts, part.binary)
    if part.binary:
        labels = ["positive" if label == "1" else "negative" for label in labels]
    onehot = np.eye(3)[[LABEL_ID[label] for label in labels]]
    return domain_score(onehot, [ex.label for ex in part.examples], part.binary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.domains", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' or a checkpoint directory")
    ap.add_argument("--part", choices=("test", "dev", "all"), default="test",
                    help="'all' (every row) only with --extra-only: a shared domain's "
                         "training rows would count")
    ap.add_argument("--cap", type=int, default=1500, help="rows per domain (fixed sample)")
    ap.add_argument("--baseline", action="store_true", help="VADER / SnowNLP on the same rows")
    ap.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=256,
                    help="tokens per scoring window (the pipeline's nlp.max_length)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--against", type=Path, default=None,
                    help="a --json file of another model: adds its figures as a column")
    ap.add_argument("--probes", action="store_true", help="also score the issue's two probes")
    ap.add_argument("--extra-data", type=Path, default=None, metavar="DIR",
                    help="also score every label,text CSV in DIR as a domain of its own "
                         "(not in the mix; EXTRA MIX is their mean)")
    ap.add_argument("--extra-only", action="store_true",
                    help="with --extra-data: score only those files")
    args = ap.parse_args(argv)
    if args.extra_only and args.extra_data is None:
        ap.error("--extra-only needs --extra-data DIR")
    if args.part == "all" and not args.extra_only:
        ap.error("--part all needs --extra-only: the shared domains are trained on")
    extra: list[Part] = []
    if args.extra_data is not None:
        try:
            extra = extra_parts(args.extra_data, args.part, args.cap)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    from nlp.scorer import ModelLoadError, SentimentScorer

    try:
        scorer = SentimentScorer.from_pretrained(args.model, runtime=args.runtime,
                                                 threads=args.threads, max_length=args.max_length)
    except (FileNotFoundError, ValueError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    against = json.loads(args.against.read_text()) if args.against else None
    results: dict[str, dict[str, float]] = {}
    baselines: dict[str, dict[str, float]] = {}
    chosen = ([] if args.extra_only else parts(args.part, args.cap)) + extra
    recipe = model_recipe(args.model)
    unseen = ({p.name for p in chosen if p.in_mix} - trained_domains(recipe)
              if recipe is not None else set())
    print(f"model {scorer.model_id}, {args.part} parts (cap {args.cap}, seed 0); binary sets: "
          "neutral masked, headline = accuracy; 3-class: headline = macro recall")
    head = f"{'domain':<24}{'lang':>6}{'kind':>8}{'n':>6}{'acc':>8}{'m.rec':>8}{'HEAD':>8}"
    if against:
        head += f"{'other':>8}{'diff':>8}"
    if args.baseline:
        head += f"{'base':>8}"
    print(head)
    for part in chosen:
        probs = scorer.probabilities([ex.text for ex in part.examples])
        r = domain_score(probs, [ex.label for ex in part.examples], part.binary)
        results[part.name] = r
        mark = (" ^" if part.extra else " *" if not part.in_mix
                else " +" if part.name in unseen else "")
        line = (f"{part.name + mark:<24}{part.lang:>6}"
                f"{'binary' if part.binary else '3-class':>8}{r['n']:>6}{r['accuracy']:>8.3f}"
                f"{r['macro_recall']:>8.3f}{r['headline']:>8.3f}")
        if against:
            other = against["domains"].get(part.name)
            line += (f"{other['headline']:>8.3f}{r['headline'] - other['headline']:>+8.3f}"
                     if other else f"{'-':>8}{'-':>8}")
        if args.baseline:
            baselines[part.name] = _baseline(part)
            line += f"{baselines[part.name]['headline']:>8.3f}"
        print(line, flush=True)
    in_mix = {p.name for p in chosen if p.in_mix}
    extra_names = {p.name for p in extra}
    if in_mix:
        line = f"{'MIX (mean of HEAD)':<44}{mix(results, in_mix):>16.4f}"
        if against:
            line += f"{against['mix']:>8.4f}{mix(results, in_mix) - against['mix']:>+8.4f}"
        if args.baseline:
            line += f"{mix(baselines, in_mix):>8.4f}"
        print(line)
    if unseen:
        print(f"{'UNSEEN MIX (mean over the + domains)':<44}{mix(results, unseen):>16.4f}")
    if extra_names:
        line = f"{'EXTRA MIX (mean over the ^ files)':<44}{mix(results, extra_names):>16.4f}"
        if args.baseline:
            line += f"{mix(baselines, extra_names):>8.4f}"
        print(line)
        seen_extra = sorted(extra_names & trained_domains(recipe or {}))
        print(f"^ --extra-data {args.extra_data}: not in the mix; "
              + (f"trained on by this model: {', '.join(seen_extra)}" if seen_extra
                 else "none in this model's recipe (unseen, or the model's data unknown)"))
    if not args.extra_only:
        print("* not in the mix (team-written, a handful of test sentences)")
    if unseen:
        print("+ never trained on by this model or any stage it came from (its recipe): "
              "transfer to a new domain")
    out = {"model_id": scorer.model_id, "part": args.part, "cap": args.cap,
           "domains": results, "mix": mix(results, in_mix) if in_mix else None}
    if extra_names:
        out["extra"] = sorted(extra_names)
        out["extra_mix"] = mix(results, extra_names)
    if unseen:
        out["unseen"] = sorted(unseen)
        out["unseen_mix"] = mix(results, unseen)
    if baselines:
        out["baselines"] = baselines
    if args.probes:
        probs = scorer.probabilities(list(PROBES))
        out["probes"] = {}
        for text, p in zip(PROBES, probs, strict=True):
            label = ("negative", "neutral", "positive")[int(p.argmax())]
            out["probes"][text] = [round(float(x), 3) for x in p]
            print(f"probe: {label:<8} neg={p[0]:.3f} neu={p[1]:.3f} pos={p[2]:.3f}  {text}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
