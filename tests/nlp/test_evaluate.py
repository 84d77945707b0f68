from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from nlp.evaluate import main, metrics, read_labelled, to_labels

LAST_LINE = re.compile(
    r"^accuracy=(0(\.\d+)?|1(\.0+)?) macro_f1=(0(\.\d+)?|1(\.0+)?) "
    r"macro_recall=(0(\.\d+)?|1(\.0+)?) n=(\d+)$"
)


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return path


def test_metrics_on_a_known_confusion() -> None:
    gold = ["negative", "negative", "neutral", "positive", "positive", "positive"]
    pred = ["negative", "neutral", "neutral", "positive", "negative", "positive"]
    r = metrics(gold, pred, ("negative", "neutral", "positive"))
    assert r.confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.macro_recall == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * 0.5 * 1 / 1.5, 2 * 1 * (2 / 3) / (1 + 2 / 3)]
    assert r.macro_f1 == pytest.approx(sum(f1) / 3)


def test_binary_resolves_neutral_by_the_larger_side() -> None:
    probs = np.array([[0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])
    assert to_labels(probs, binary=True) == ["0", "1", "0"]
    assert to_labels(probs, binary=False) == ["neutral", "neutral", "negative"]


def test_three_class_last_line(tmp_path: Path, capsys, default_model_dir: Path) -> None:
    path = write_csv(tmp_path / "en.csv", [
        ("positive", "I love this, it is wonderful!"),
        ("negative", "Worst purchase ever, it broke immediately."),
        ("neutral", "The store opens at 9am on Monday."),
        ("positive", "Amazing support team, thank you so much!"),
        ("negative", "I hate the new update, everything is slow."),
    ])
    assert main([str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    match = LAST_LINE.match(out[-1])
    assert match, out[-1]
    assert match.group(10) == "5"
    assert any(line.startswith("baseline vader:") for line in out)
    accuracy = float(out[-1].split()[0].split("=")[1])
    assert accuracy >= 0.8  # obvious examples: the model must get nearly all


def test_binary_chinese_with_limit(tmp_path: Path, capsys, default_model_dir: Path) -> None:
    rows = [("1", "非常好用，很满意"), ("0", "太差了，不推荐"), ("1", "质量不错，物流快"),
            ("0", "坏了，退货"), ("1", "好评！")] * 4
    path = write_csv(tmp_path / "zh.csv", rows)
    assert main([str(path), "--limit", "7"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(out[-1])
    assert out[-1].endswith(" n=7")
    assert any(line.startswith("baseline snownlp:") for line in out)


def test_limit_is_a_fixed_sample(tmp_path: Path) -> None:
    rows = [("0", f"text {i}") for i in range(50)] + [("1", f"text {i}") for i in range(50, 100)]
    path = write_csv(tmp_path / "sorted.csv", rows)
    labels, texts, binary = read_labelled(path, limit=20)
    assert binary
    assert len(texts) == 20
    assert set(labels) == {"0", "1"}, "a sample of a sorted file must not be one class"
    assert read_labelled(path, limit=20)[1] == texts


def test_bad_labels_and_columns_are_named(tmp_path: Path, capsys) -> None:
    bad = write_csv(tmp_path / "bad.csv", [("positive", "fine"), ("meh", "hm")])
    assert main([str(bad), "--baseline", "none"]) == 2
    assert "'meh' on line 3" in capsys.readouterr().err
    cols = tmp_path / "cols.csv"
    cols.write_text("sentiment,body\npositive,x\n", encoding="utf-8")
    assert main([str(cols), "--baseline", "none"]) == 2
    assert "expected columns 'label,text'" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
