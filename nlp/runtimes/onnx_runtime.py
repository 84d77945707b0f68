"""The ONNX Runtime runtime: a checkpoint's ONNX export, scored on CPU without torch.

`python -m nlp.export_onnx CHECKPOINT` (run by `make model` for the default model) writes
`CHECKPOINT/onnx/`: the fp32 graph, an int8 graph (dynamic quantisation, one weight scale
per output channel) and `export_info.json`, which records a digest of the checkpoint's
weights so that an export older than its checkpoint is refused rather than silently used.

Why it exists: on the 2-core machine the project is measured on, the int8 graph scores
tweets faster than torch's int8 model and the whole process stays around 0.25 GB, where
`import torch` alone takes 0.75 GB (docs/sentiment.md has the figures).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlp.runtimes.base import (
    EXPORT_INFO,
    ONNX_DIR,
    ONNX_FP32,
    ONNX_INT8,
    ModelLoadError,
    id2label_of,
    position_limit,
    read_checkpoint_config,
)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def checkpoint_digest(model_dir: Path) -> str:
    """Identifies a checkpoint's weights and config (what an export was made from)."""
    h = hashlib.sha256()
    files = [model_dir / "config.json", *sorted(model_dir.glob("*.safetensors")),
             *[model_dir / n for n in WEIGHT_FILES[1:] if (model_dir / n).exists()]]
    for path in files:
        h.update(path.name.encode())
        with path.open("rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
    return h.hexdigest()[:16]


def export_problem(model_dir: Path, quantize: bool = True,
                   onnx_dir: Path | None = None) -> str | None:
    """Why the checkpoint's ONNX export cannot be used, or None when it can."""
    onnx_dir = onnx_dir or model_dir / ONNX_DIR
    graph = onnx_dir / (ONNX_INT8 if quantize else ONNX_FP32)
    if not graph.exists():
        return f"{model_dir} has no ONNX export ({graph} is missing)"
    try:
        info = json.loads((onnx_dir / EXPORT_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"the ONNX export in {onnx_dir} has no readable {EXPORT_INFO} ({exc})"
    if info.get("checkpoint_digest") != checkpoint_digest(model_dir):
        return (f"the ONNX export in {onnx_dir} was made from other weights than "
                f"{model_dir} now holds")
    return None


class TokenizersEncoder:
    """The checkpoint's `tokenizer.json`, run by the `tokenizers` library directly."""

    def __init__(self, model_dir: Path, config: dict) -> None:
        from tokenizers import Tokenizer

        path = model_dir / "tokenizer.json"
        if not path.exists():
            raise ModelLoadError(f"{model_dir} has no tokenizer.json, which the onnx runtime needs")
        self.tokenizer = Tokenizer.from_file(str(path))
        # Never cut or pad here: the scorer makes windows and pads batches itself.
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        pad = config.get("pad_token_id")
        if pad is None:
            pad = self._pad_from_tokenizer_config(model_dir)
        self.pad_id = int(pad) if pad is not None else 0

    def _pad_from_tokenizer_config(self, model_dir: Path) -> int | None:
        try:
            conf = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        token = conf.get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
        return self.tokenizer.token_to_id(token) if isinstance(token, str) else None

    def encode(self, texts: Sequence[str], *, special_tokens: bool) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts),
                                                           add_special_tokens=special_tokens)]

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [list(e.offsets) for e in self.tokenizer.encode_batch(list(texts),
                                                                     add_special_tokens=False)]


class OnnxClassifier:
    """`ClassifierRuntime` over an ONNX Runtime CPU session."""

    def __init__(self, session: object, config: dict, quantized: bool) -> None:
        self.session = session
        self.name = "onnx-int8" if quantized else "onnx"
        self.id2label = id2label_of(config)
        self.max_positions = position_limit(config, 512)
        inputs = {i.name for i in session.get_inputs()}  # type: ignore[attr-defined]
        if not {"input_ids", "attention_mask"} <= inputs:
            raise ModelLoadError(f"the ONNX graph takes {sorted(inputs)}, not input_ids and "
                                 "attention_mask; re-export it with `python -m nlp.export_onnx`")

    @classmethod
    def load(cls, model_dir: Path, *, quantize: bool = True, threads: int | None = None,
             onnx_dir: Path | None = None,
             spinning: bool = False) -> tuple[OnnxClassifier, TokenizersEncoder]:
        """Load the graph in `onnx_dir` (default: the checkpoint's `onnx/`).

        Whether the export is current is the caller's question (`export_problem`, asked
        once by `nlp.runtimes.load_runtime`; the exporter loads the graphs it just made).
        `spinning` lets idle intra-op threads spin between operators: off for the daemon
        (see below); `bench/sentiment_speed.py --variants scorer-spin` measures what it
        would gain on 2 or more idle threads.
        """
        import onnxruntime as ort

        onnx_dir = onnx_dir or model_dir / ONNX_DIR
        config = read_checkpoint_config(model_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        # Between batches the daemon waits for crawls; spinning threads would burn a core
        # that Elasticsearch and the crawlers need on a small machine.
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                          "1" if spinning else "0")
        options.log_severity_level = 3  # errors only: the graph's harmless warnings are noise
        graph = onnx_dir / (ONNX_INT8 if quantize else ONNX_FP32)
        try:
            session = ort.InferenceSession(str(graph), options,
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"cannot load the ONNX graph {graph}: {exc}") from exc
        return cls(session, config, quantize), TokenizersEncoder(model_dir, config)

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self.session.run(["logits"], {"input_ids": ids,  # type: ignore[attr-defined]
                                            "attention_mask": mask})
        return np.asarray(out[0], dtype=np.float32)
