"""The ONNX exporter against real (tiny, randomly initialised) checkpoints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from nlp.export_onnx import export, main
from nlp.runtimes.base import EXPORT_INFO, ONNX_DIR, ONNX_FP32, ONNX_INT8
from nlp.scorer import ModelLoadError, SentimentScorer


def _torch_probs(path: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    with torch.inference_mode():
        return np.stack([torch.softmax(model(**tok([t], return_tensors="pt")).logits, -1)[0]
                         .numpy() for t in texts])


def test_export_gives_the_torch_models_probabilities(tiny_checkpoint_factory) -> None:
    path = tiny_checkpoint_factory(["LABEL_0", "LABEL_1", "LABEL_2"], "export3")
    info = export(path)
    assert {p.name for p in (path / ONNX_DIR).iterdir()} == {ONNX_FP32, ONNX_INT8, EXPORT_INFO}
    assert info["fp32_max_abs_diff"] <= 1e-3
    assert json.loads((path / ONNX_DIR / EXPORT_INFO).read_text()) == info

    mapping = {"LABEL_0": "positive", "LABEL_1": "negative", "LABEL_2": "neutral"}
    texts = ["some text for a random model", "这是一个测试", "a much longer text " * 30]
    ref = _torch_probs(path, texts)
    scorer = SentimentScorer.from_pretrained(str(path), labels=mapping, runtime="onnx",
                                             quantize=False)
    assert scorer.model_id == f"{path.name}+onnx"
    for got, want in zip(scorer.score(texts), ref, strict=True):
        assert got.positive == pytest.approx(want[0], abs=1e-4)
        assert got.negative == pytest.approx(want[1], abs=1e-4)
        assert got.neutral == pytest.approx(want[2], abs=1e-4)
    # The int8 graph loads and gives probabilities too (their accuracy is measured by
    # `python -m nlp.evaluate`, not here: a random model has none).
    int8 = SentimentScorer.from_pretrained(str(path), labels=mapping, runtime="onnx")
    assert int8.model_id.endswith("+onnx-int8")
    assert all(abs(s.negative + s.neutral + s.positive - 1) < 1e-6 for s in int8.score(texts))


def test_an_export_older_than_its_checkpoint_is_not_used(tiny_checkpoint_factory,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tiny_checkpoint_factory(["NEGATIVE", "POSITIVE"], "stale")
    export(path)
    assert SentimentScorer.from_pretrained(str(path)).model_id.endswith("+onnx-int8")
    config = json.loads((path / "config.json").read_text())
    config["id2label"] = {"0": "NEGATIVE", "1": "POSITIVE"}
    config["initializer_range"] = 0.03  # any change to the checkpoint makes a new digest
    (path / "config.json").write_text(json.dumps(config))

    with pytest.raises(ModelLoadError, match=r"other weights.*python -m nlp\.export_onnx"):
        SentimentScorer.from_pretrained(str(path), runtime="onnx")
    with caplog.at_level(logging.WARNING, logger="nlp.runtimes"):
        scorer = SentimentScorer.from_pretrained(str(path))  # auto: torch, said aloud
    assert "+onnx" not in scorer.model_id
    assert "other weights" in caplog.text and "nlp.export_onnx" in caplog.text


def test_onnx_runtime_without_an_export_says_how_to_make_one(tiny_checkpoint_factory) -> None:
    path = tiny_checkpoint_factory(["NEGATIVE", "POSITIVE"], "noexport")
    with pytest.raises(ModelLoadError, match=r"no ONNX export.*python -m nlp\.export_onnx"):
        SentimentScorer.from_pretrained(str(path), runtime="onnx")


def test_command_refuses_a_directory_that_is_no_checkpoint(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path)]) == 1
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / ONNX_DIR).exists()
