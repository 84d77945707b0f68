"""Fixtures for the NLP tests: the real default model, built once if missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nlp.build_default import DEFAULT_MODEL_DIR, build
from nlp.scorer import SentimentScorer


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    # CI runs `make model` first, so this is normally a no-op (build() checks the digest).
    return build()


@pytest.fixture(scope="session", params=["onnx", "torch"])
def scorer(default_model_dir: Path, request: pytest.FixtureRequest) -> SentimentScorer:
    """The default model on each runtime (int8 on CPU, as the pipeline runs it)."""
    return SentimentScorer.from_pretrained("default", batch_size=16, max_length=128,
                                           runtime=request.param)


@pytest.fixture(scope="session")
def tiny_checkpoint_factory(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Save small, randomly initialised (real, loadable) BERT classifiers with chosen labels.

    The default model's tokenizer is reused so that the checkpoint is complete; the
    encoder is 2 layers of width 32, so it loads in milliseconds.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    vocab = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())["vocab_size"]

    def make(labels: list[str], name: str) -> Path:
        out = tmp_path_factory.mktemp(name)
        torch.manual_seed(len(labels))
        config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64,
                            max_position_embeddings=128, pad_token_id=1,
                            id2label=dict(enumerate(labels)),
                            label2id={label: i for i, label in enumerate(labels)})
        model = BertForSequenceClassification(config)
        # A random head gives near-uniform outputs; scale it so the mapping shows.
        with torch.no_grad():
            model.classifier.weight.mul_(50)
        model.save_pretrained(out)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(DEFAULT_MODEL_DIR / f, out / f)
        return out

    return make
