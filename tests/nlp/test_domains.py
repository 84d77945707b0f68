from __future__ import annotations

import csv

import numpy as np
import pytest

from nlp import data
from nlp.domains import PROBES, domain_score


def test_binary_sets_mask_neutral_and_report_accuracy() -> None:
    # Row 0 is neutral by argmax but leans positive; row 1 neutral leaning negative.
    scores = np.array([[0.1, 0.8, 0.1001], [0.3, 0.6, 0.1], [0.9, 0.05, 0.05], [0.2, 0.1, 0.7]])
    r = domain_score(scores, ["positive", "positive", "negative", "positive"], binary=True)
    assert r["accuracy"] == pytest.approx(3 / 4)
    assert r["macro_recall"] == pytest.approx((1 + 2 / 3) / 2, abs=1e-4)
    assert r["headline"] == r["accuracy"]


def test_three_class_sets_report_macro_recall() -> None:
    scores = np.array([[0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.9, 0.05, 0.05], [0.2, 0.1, 0.7]])
    r = domain_score(scores, ["neutral", "negative", "negative", "positive"], binary=False)
    assert r["accuracy"] == pytest.approx(3 / 4)
    assert r["macro_recall"] == pytest.approx((1 / 2 + 1 + 1) / 3, abs=1e-4)
    assert r["headline"] == r["macro_recall"]


def test_splits_depend_on_the_text_alone() -> None:
    texts = [f"review number {i}" for i in range(2000)]
    parts = [data.split_of(t) for t in texts]
    assert parts == [data.split_of(t) for t in texts]
    share = {p: parts.count(p) / len(parts) for p in ("test", "dev", "train")}
    assert 0.07 < share["test"] < 0.13 and 0.07 < share["dev"] < 0.13
    # The test part is the held-out set the shopping reviews have always used.
    assert all((data.split_of(t) == "test") == data.is_heldout(t) for t in texts)


def test_authored_sarcasm_is_labelled_bilingual_and_keeps_the_probes_out() -> None:
    with data.AUTHORED_SARCASM.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["label"] for r in rows} == {"negative", "positive"}
    zh = [r for r in rows if any("\u4e00" <= c <= "\u9fff" for c in r["text"])]
    assert 0 < len(zh) < len(rows)
    texts = {r["text"].strip().lower() for r in rows}
    assert len(texts) == len(rows)
    for probe in PROBES:  # the issue's examples judge the model; they are not training data
        assert not any(probe.lower()[:30] in t or t in probe.lower() for t in texts)
    examples = data.domain_examples(data.SARCASM, "all")
    assert len(examples) == len(rows) and not any(ex.binary for ex in examples)


def test_trained_domains_follow_every_stage_a_model_came_from() -> None:
    """The committed model's recipe chain: legacy stages (tweets + shopping) continued on
    the broad mix, so every shared domain is seen; a leave-domains-out stage and a soup
    are read the same way (nlp.soup, --hold-out)."""
    import argparse
    import json

    from nlp.build_default import ARTIFACT_DIR, RECIPE_FILE
    from nlp.domains import TWEETEVAL_VAL, trained_domains
    from nlp.train_default import DOMAIN_SHARES, domain_shares

    committed = json.loads((ARTIFACT_DIR / RECIPE_FILE).read_text(encoding="utf-8"))
    assert {d.name for d in data.DOMAINS} <= trained_domains(committed)
    assert TWEETEVAL_VAL in trained_domains(committed)

    legacy = {"zh_share": 0.3, "layers": 6}
    assert trained_domains(legacy) == {"en_semeval_tweets", "zh_shopping", TWEETEVAL_VAL}

    held = ["zh_amazon_cn", "en_app_reviews"]
    shares = domain_shares(argparse.Namespace(share=["zh_shopping=0.2"], hold_out=held))
    assert shares["zh_shopping"] == 0.2 and shares["zh_amazon_cn"] == 0.0
    lodo = {"mix": "broad", "domain_shares": shares, "continued_from": legacy}
    seen = trained_domains(lodo)
    assert not set(held) & seen
    assert seen == {n for n, s in DOMAIN_SHARES.items() if n not in held} | {TWEETEVAL_VAL}
    # a soup of the leave-out stage with the committed model has seen them all again
    soup = {"soup_of": [{"weight": 0.5, "stage": lodo}, {"weight": 0.5, "stage": committed}]}
    assert set(held) <= trained_domains(soup)
    assert trained_domains({}) == set()

    with pytest.raises(SystemExit, match="--hold-out 'zh_hotel'"):
        domain_shares(argparse.Namespace(share=None, hold_out=["zh_hotel"]))
