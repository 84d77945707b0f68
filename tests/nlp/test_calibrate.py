"""Calibrated confidence: temperature fitting, ECE, and the scorer's confidence/uncertain."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from brandpulse.config import NlpConfig
from nlp.calibrate import (
    CALIBRATION_PATH,
    base_model_id,
    expected_calibration_error,
    fit_temperature,
    fitted_temperature,
    main,
)
from nlp.scorer import SentimentScorer, WindowLogits, softmax


def test_fit_recovers_the_temperature_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20_000, 3))
    true_t = 2.5
    probs = softmax(logits / true_t)
    gold = np.array([rng.choice(3, p=p) for p in probs])
    raw = WindowLogits(len(gold), np.arange(len(gold)), np.ones(len(gold)), logits, np.eye(3), [])

    def nll(t: float) -> float:
        p = raw.probabilities(t)
        return float(-np.log(p[np.arange(len(gold)), gold]).mean())

    assert fit_temperature(nll) == pytest.approx(true_t, rel=0.05)
    # Confidences at the true temperature are calibrated; the raw ones are overconfident.
    for t, worse in ((1.0, True), (true_t, False)):
        p = raw.probabilities(t)
        label = p.argmax(1)
        ece = expected_calibration_error(p.max(1), (label == gold).astype(float))
        assert (ece > 0.1) == worse


def test_ece_by_hand() -> None:
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.55, 0.55])
    correct = np.array([1, 1, 1, 0, 1, 0], dtype=float)
    # bin 0.867-0.933: 4 results, accuracy 0.75 vs 0.9; bin 0.533-0.6: 2, 0.5 vs 0.55
    assert expected_calibration_error(conf, correct) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.05)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.0


def test_confidence_is_the_calibrated_probability_of_the_label(default_model_dir: Path) -> None:
    texts = ["I love it, best phone ever!", "meh, it is a phone", "质量太差了，非常失望",
             "Oh great, another update that deletes all my settings"]
    plain = SentimentScorer.from_pretrained("default", temperature=1.0, uncertain_below=None)
    hot = SentimentScorer.from_pretrained("default", temperature=3.0, uncertain_below=0.6)
    a, b = plain.score(texts), hot.score(texts)
    raw = hot.window_logits(texts)
    for x, y, calibrated in zip(a, b, raw.probabilities(3.0), strict=True):
        # The label and the stored probabilities are the model's own; only confidence moves.
        assert (x.label, x.negative, x.positive) == (y.label, y.negative, y.positive)
        assert x.confidence == pytest.approx(max(x.negative, x.neutral, x.positive), abs=1e-4)
        assert y.confidence == pytest.approx(calibrated[["negative", "neutral", "positive"]
                                                        .index(y.label)], abs=1e-4)
        assert y.confidence < x.confidence  # a higher temperature flattens
        assert y.uncertain == (y.confidence < 0.6)
        assert not x.uncertain
    assert any(s.uncertain for s in b) and not all(s.uncertain for s in b)
    empty = hot.score([""])[0]
    assert (empty.label, empty.confidence, empty.uncertain) == ("neutral", 1.0, False)


def test_config_sets_the_band_and_the_committed_calibration_is_used(default_model_dir: Path) -> None:
    assert NlpConfig().uncertain_below == 0.55
    scorer = SentimentScorer.from_config(NlpConfig(uncertain_below=0.7, threads=1))
    assert scorer.uncertain_below == 0.7
    committed = fitted_temperature(scorer.model_id)
    assert committed is not None, (
        f"nlp/calibration.json has no temperature for {base_model_id(scorer.model_id)}: "
        "run `python -m nlp.calibrate` and commit nlp/calibration.json")
    assert scorer.temperature == committed
    assert json.loads(CALIBRATION_PATH.read_text())[base_model_id(scorer.model_id)]["sets"]


def test_command_fits_on_csvs_and_writes_the_model_entry(default_model_dir: Path,
                                                          tmp_path: Path, capsys) -> None:
    en = tmp_path / "en.csv"
    with en.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "text"])
        for i in range(8):
            w.writerow(["positive", f"Day {i}: I really love this, wonderful service!"])
            w.writerow(["negative", f"Day {i}: awful, it broke again and nobody helps."])
            w.writerow(["neutral", f"Day {i}: the store opens at nine."])
        # Gold labels the model disagrees with, as real data has: without them the best
        # temperature is as low as the search allows (every answer right: be certain).
        w.writerow(["negative", "Loved the concert, what a night!"])
        w.writerow(["positive", "The screen cracked on the first day."])
    zh = tmp_path / "zh.csv"
    zh.write_text("label,text\n1,非常好用，很满意\n0,太差了，退货\n1,物流很快，好评\n0,客服不理人\n",
                  encoding="utf-8")
    out = tmp_path / "calibration.json"
    out.write_text(json.dumps({"brandpulse-default-old": {"temperature": 9.0},
                               "someone/else": {"temperature": 2.0}}))
    assert main([str(en), str(zh), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ECE" in printed and "->" in printed
    entries = json.loads(out.read_text())
    model_id = base_model_id(SentimentScorer.from_pretrained("default").model_id)
    # The old default build's entry is gone, another model's entry is kept.
    assert set(entries) == {model_id, "someone/else"}
    entry = entries[model_id]
    assert 0.05 < entry["temperature"] < 20
    assert entry["sets"]["en.csv"]["n"] == 26 and entry["sets"]["zh.csv"]["n"] == 4
    assert fitted_temperature(model_id + "+onnx-int8", out) == entry["temperature"]
