"""The ONNX Runtime runtime with the real default model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from brandpulse.config import NlpConfig
from nlp.runtimes.onnx_runtime import TokenizersEncoder
from nlp.scorer import ModelLoadError, SentimentScorer

REPO = Path(__file__).resolve().parents[3]

TEXTS = [
    "I absolutely love this phone!", "这个东西太好用了，质量非常好", "😡😡🤬👎", "",
    "Mixed 中文 and English, with ÜNÏCÖDÉ and tabs\tand\nnewlines", "a" * 600,
    "zero\u200bwidth and \u0000control\u0007 chars", "Ｆｕｌｌｗｉｄｔｈ　ＡＳＣＩＩ　１２３",
]


def test_tokenizers_encoder_gives_the_transformers_tokenizers_ids(default_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(default_model_dir)
    config = json.loads((default_model_dir / "config.json").read_text())
    ours = TokenizersEncoder(default_model_dir, config)
    assert ours.pad_id == hf.pad_token_id
    for special in (True, False):
        want = hf(TEXTS, add_special_tokens=special, truncation=False)["input_ids"]
        assert ours.encode(TEXTS, special_tokens=special) == want


def test_scoring_with_the_default_model_never_imports_torch(default_model_dir: Path) -> None:
    # What the daemon does: load from the configuration, score a batch. The figure that
    # matters is memory: torch's import alone is ~0.75 GB; the budget is 1 GB.
    code = (
        "import json, sys\n"
        "from brandpulse.config import NlpConfig\n"
        "from nlp.scorer import SentimentScorer\n"
        "s = SentimentScorer.from_config(NlpConfig(threads=1))\n"
        "s.score(['I hate this', '我很喜欢', 'ok'] * 50)\n"
        "print(json.dumps({'model': s.model_id,\n"
        "                  'imported': [m for m in ('torch', 'transformers') if m in sys.modules],\n"
        "                  'status': open('/proc/self/status').read()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["model"].endswith("+onnx-int8")
    assert result["imported"] == []
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from this (torch-laden)
    # pytest process into the child.
    peak_mb = int(result["status"].split("VmHWM:")[1].split()[0]) // 1024
    assert peak_mb < 600, f"peak RSS {peak_mb} MB"


def test_onnx_is_cpu_only_and_local_only(default_model_dir: Path) -> None:
    with pytest.raises(ValidationError, match="runs on the CPU"):
        NlpConfig(runtime="onnx", device="cuda")
    with pytest.raises(ModelLoadError, match="runs on the CPU"):
        SentimentScorer.from_pretrained("default", runtime="onnx", device="cuda")
    with pytest.raises(ModelLoadError, match="local checkpoint directory"):
        SentimentScorer.from_pretrained("someone/some-hub-model", runtime="onnx")


def test_spinning_threads_are_an_explicit_choice_with_the_same_results(
        default_model_dir: Path) -> None:
    # The daemon's sessions keep idle threads asleep (a spinning thread burns a core that
    # Elasticsearch and the crawlers need); the bench's `scorer-spin` asks for spinning.
    import numpy as np

    from nlp.runtimes.onnx_runtime import OnnxClassifier

    asleep, encoder = OnnxClassifier.load(default_model_dir, threads=2)
    spinning, _ = OnnxClassifier.load(default_model_dir, threads=2, spinning=True)
    key = "session.intra_op.allow_spinning"
    assert asleep.session.get_session_options().get_session_config_entry(key) == "0"
    assert spinning.session.get_session_options().get_session_config_entry(key) == "1"
    ids = np.array([encoder.encode([TEXTS[0]], special_tokens=True)[0]], dtype=np.int64)
    np.testing.assert_array_equal(asleep.logits(ids, np.ones_like(ids)),
                                  spinning.logits(ids, np.ones_like(ids)))


def test_without_torch_installed_onnx_scores_and_torch_is_a_clear_error(
        default_model_dir: Path) -> None:
    # The image and a plain `pip install brandpulse` have no torch (the `torch` extra).
    # None in sys.modules is Python's own "not importable" (import raises, find_spec says
    # None), set before anything is imported; tests/deploy/test_image.py checks the image
    # itself, where torch is really absent.
    code = (
        "import sys\n"
        "sys.modules['torch'] = sys.modules['transformers'] = None\n"
        "from brandpulse.config import NlpConfig\n"
        "from nlp.runtimes import torch_installed\n"
        "from nlp.scorer import ModelLoadError, SentimentScorer\n"
        "assert not torch_installed()\n"
        "s = SentimentScorer.from_config(NlpConfig(threads=1))\n"
        "print(s.score(['I hate this'])[0].model)\n"
        "for name in ('someone/some-hub-model', 'default'):\n"
        "    runtime = 'torch' if name == 'default' else 'auto'\n"
        "    try:\n"
        "        SentimentScorer.from_pretrained(name, runtime=runtime)\n"
        "    except ModelLoadError as exc:\n"
        "        print('refused:', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].endswith("+onnx-int8")
    refusals = [line for line in lines[1:] if line.startswith("refused:")]
    assert len(refusals) == 2
    assert all("brandpulse[torch]" in line for line in refusals)
