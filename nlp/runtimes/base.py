"""What the scorer needs from a model runtime: token ids in, logits out.

A runtime wraps one loaded sequence-classification model. The scorer (`nlp.scorer`) does
everything that does not depend on the runtime -- tokenising, windows for long texts,
length-sorted batches, the label mapping -- and calls `logits` once per batch. Each
runtime module imports its framework only when it is loaded, so a process that scores
with ONNX Runtime never imports torch (which alone costs about 0.75 GB of memory with
PyPI's CUDA build).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ONNX_DIR = "onnx"  # inside a checkpoint directory: the export made by `nlp.export_onnx`
ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
EXPORT_INFO = "export_info.json"


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded or its labels cannot be mapped."""


class TextEncoder(Protocol):
    """The checkpoint's tokenizer, reduced to what the scorer uses."""

    pad_id: int

    def encode(self, texts: Sequence[str], *, special_tokens: bool) -> list[list[int]]: ...

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Per text, the (start, end) characters of each token (no special tokens).

        The scorer's length cap (`nlp.max_tokens_per_mention`) cuts texts at token
        boundaries with these. Raise NotImplementedError where the tokenizer cannot tell
        (transformers' slow tokenizers): the cap then cuts by characters only.
        """
        ...


class ClassifierRuntime(Protocol):
    """One loaded classifier. `logits` takes int64 (batch, width) ids and attention mask."""

    name: str  # recorded on mentions after the model id, e.g. "onnx-int8"
    id2label: dict[int, str]
    max_positions: int  # the longest input the model accepts, special tokens included

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


def read_checkpoint_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{model_dir} is not a Hugging Face checkpoint (no config.json)") from None
    except ValueError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None


def position_limit(config: dict[str, Any], default: int) -> int:
    """Tokens per input the checkpoint's position table allows."""
    limit = int(config.get("max_position_embeddings") or default)
    # RoBERTa-style models reserve pad_token_id + 1 position rows.
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(config.get("pad_token_id") or 0) + 1
    return limit


def id2label_of(config: dict[str, Any]) -> dict[int, str]:
    raw = config.get("id2label")
    if not raw:
        n = int(config.get("num_labels", 2))
        return {i: f"LABEL_{i}" for i in range(n)}
    return {int(k): str(v) for k, v in raw.items()}
