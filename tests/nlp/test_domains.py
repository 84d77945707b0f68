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


def _in_test_part(text: str) -> str:
    """`text` with as few trailing "！" as put it in the test part (bucket 0)."""
    for k in range(80):
        candidate = text + "！" * k
        if data.split_of(candidate) == "test":
            return candidate
    raise AssertionError(f"no test-part variant of {text!r}")


def _write(path, rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        writer.writerows(rows)


def test_extra_data_files_are_domains_of_their_own(tmp_path) -> None:
    """Name from the stem, binary when no row is neutral, language from the zh_/en_ prefix
    or the text; only the asked part is kept; malformed files are refused by name."""
    from nlp.domains import extra_parts

    texts = [f"第{i}家店的菜很好吃" for i in range(300)]
    _write(tmp_path / "zh_restaurant.csv", [("1" if i % 2 else "0", t) for i, t in enumerate(texts)])
    _write(tmp_path / "airline.csv", [("neutral", f"flight {i} was on time") for i in range(50)]
           + [("negative", "lost my bag"), ("positive", "great crew")])
    _write(tmp_path / "scenic.csv", [("positive", f"风景{i}很美") for i in range(5)])
    found = {d.name: d for d in data.extra_domains(tmp_path)}
    assert set(found) == {"zh_restaurant", "airline", "scenic"}
    assert (found["zh_restaurant"].lang, found["zh_restaurant"].binary) == ("zh", True)
    assert (found["airline"].lang, found["airline"].binary) == ("en", False)
    assert found["scenic"].lang == "zh"

    by_name = {p.name: p for p in extra_parts(tmp_path, "test", cap=None)}
    expected = [t for t in texts if data.split_of(t) == "test"]
    assert [ex.text for ex in by_name["zh_restaurant"].examples] == expected
    assert {ex.label for ex in by_name["zh_restaurant"].examples} <= {"negative", "positive"}
    assert all(p.extra and not p.in_mix for p in by_name.values())
    capped = {p.name: p for p in extra_parts(tmp_path, "test", cap=5)}
    assert len(capped["zh_restaurant"].examples) == min(5, len(expected))

    _write(tmp_path / "bad.csv", [("4 stars", "nice")])
    with pytest.raises(ValueError, match=r"bad\.csv.*4 stars"):
        data.extra_domains(tmp_path)
    (tmp_path / "bad.csv").unlink()
    _write(tmp_path / "zh_shopping.csv", [("positive", "好")])
    with pytest.raises(ValueError, match="already a shared domain"):
        data.extra_domains(tmp_path)


def test_extra_data_is_scored_apart_from_the_mix(default_model_dir, tmp_path, capsys) -> None:
    """End to end with the real default model: obvious restaurant reviews (zh, binary) and
    airline tweets (en, 3-class) in the test part are scored as `^` domains, outside MIX."""
    import json

    from nlp.domains import main

    zh = [("positive", "菜很好吃，服务员很热情，环境也干净，下次还会再来"),
          ("positive", "味道超赞，分量足，性价比很高，强烈推荐"),
          ("negative", "菜是凉的，还很咸，服务员态度极差，再也不来了"),
          ("negative", "等了一个小时才上菜，味道难吃，太失望了")]
    en = [("positive", "Thank you for the wonderful crew and a smooth flight, love this airline"),
          ("negative", "Flight cancelled again and nobody at the desk would help. Worst airline ever"),
          ("neutral", "What time does the first flight to Boston leave tomorrow?")]
    _write(tmp_path / "zh_restaurant.csv", [(label, _in_test_part(t)) for label, t in zh])
    _write(tmp_path / "en_airline.csv", [(label, _in_test_part(t)) for label, t in en])
    out = tmp_path / "out.json"
    assert main(["--extra-data", str(tmp_path), "--extra-only", "--part", "test",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "zh_restaurant ^" in printed and "EXTRA MIX" in printed
    assert "MIX (mean of HEAD)" not in printed  # no shared domain was scored
    result = json.loads(out.read_text())
    assert result["extra"] == ["en_airline", "zh_restaurant"] and result["mix"] is None
    assert result["domains"]["zh_restaurant"]["n"] == 4
    assert result["domains"]["zh_restaurant"]["accuracy"] == 1.0
    assert result["domains"]["en_airline"]["n"] == 3
    assert result["domains"]["en_airline"]["macro_recall"] >= 2 / 3
    assert result["extra_mix"] == pytest.approx(
        (result["domains"]["zh_restaurant"]["headline"]
         + result["domains"]["en_airline"]["headline"]) / 2, abs=1e-4)

    with pytest.raises(SystemExit):
        main(["--extra-only"])
    with pytest.raises(SystemExit):  # every row of a shared domain includes its training rows
        main(["--extra-data", str(tmp_path), "--part", "all"])
    outside = next(t for t in (f"服务太慢了，菜也一般{'！' * k}" for k in range(80))
                   if data.split_of(t) != "test")
    _write(tmp_path / "zh_restaurant.csv",
           [(label, _in_test_part(t)) for label, t in zh] + [("negative", outside)])
    assert main(["--extra-data", str(tmp_path), "--extra-only", "--part", "all",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["domains"]["zh_restaurant"]["n"] == 5
    (tmp_path / "zh_restaurant.csv").write_text("label,text\nfour,好吃\n", encoding="utf-8")
    assert main(["--extra-data", str(tmp_path), "--extra-only"]) == 2
    assert "zh_restaurant.csv" in capsys.readouterr().err
