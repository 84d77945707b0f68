"""Export a sequence-classification checkpoint to ONNX, fp32 and int8, and check it.

    python -m nlp.export_onnx CHECKPOINT_DIR [--opset 17]

Writes CHECKPOINT_DIR/onnx/: `model.onnx` (fp32), `model.int8.onnx` (ONNX Runtime
dynamic quantisation, int8 weights with one scale per output channel, including the word
embeddings) and `export_info.json` (the digest of the checkpoint it was made from and the
checks below). The scorer then runs the checkpoint with ONNX Runtime (`nlp.runtime: auto`
or `onnx`), without torch. `make model` runs this for the default model.

The export is checked before it is kept: on a few fixed texts (English, Chinese, emoji,
a long one) `tokenizer.json` run by `tokenizers` alone must give the checkpoint
tokenizer's ids, the fp32 graph must give the torch model's probabilities to within 1e-3,
and the int8 graph's largest difference is recorded.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from nlp.runtimes.base import EXPORT_INFO, ONNX_DIR, ONNX_FP32, ONNX_INT8, ModelLoadError
from nlp.runtimes.onnx_runtime import checkpoint_digest

CHECK_TEXTS = (
    "I love this phone, the camera is amazing!",
    "Worst customer service ever. Never buying from them again.",
    "The store opens at 9am on Saturdays.",
    "这个手机太差了，电池一天都撑不住",
    "质量很好，物流也快，非常满意",
    "😡😡🤬👎",
    "The update broke everything and support keeps closing my tickets. " * 12,
)
FP32_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    """The checkpoint could not be exported, or the export does not match the model."""


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def export(checkpoint: Path, *, opset: int = 17) -> dict:
    """Export `checkpoint` into `checkpoint/onnx`, replacing an older export; returns its info."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nlp.runtimes.onnx_runtime import OnnxClassifier, TokenizersEncoder

    if not (checkpoint / "config.json").exists():
        raise ExportError(f"{checkpoint} is not a Hugging Face checkpoint (no config.json)")
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, dtype=torch.float32)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)

    # The onnx runtime tokenises with `tokenizers` alone (no transformers): it must give
    # the ids the checkpoint's own tokenizer gives, special tokens included.
    try:
        ours = TokenizersEncoder(checkpoint, model.config.to_dict())
    except ModelLoadError as exc:
        raise ExportError(str(exc)) from None
    for special in (True, False):
        want = tokenizer(list(CHECK_TEXTS), add_special_tokens=special)["input_ids"]
        if ours.encode(CHECK_TEXTS, special_tokens=special) != want:
            raise ExportError(f"{checkpoint}/tokenizer.json, run without transformers, does not "
                              "give the ids the checkpoint's tokenizer gives; use nlp.runtime "
                              "'torch' for this checkpoint")

    class LogitsOnly(torch.nn.Module):
        """The graph takes ids and mask and returns logits (token types are all 0)."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              return_dict=False)[0]

    tmp = checkpoint / (ONNX_DIR + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    sample = tokenizer(["a short text", "and another, a little longer one"], padding=True,
                       return_tensors="pt")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings
        # dynamo=False: the TorchScript exporter needs no extra packages and handles
        # transformers' encoder models; dynamic batch and sequence axes.
        # .eval() on the wrapper too: the exporter restores the wrapper's mode recursively
        # afterwards, and a fresh Module is in training mode (dropout on in the check below).
        torch.onnx.export(
            LogitsOnly(model).eval(), (sample["input_ids"], sample["attention_mask"]),
            str(tmp / ONNX_FP32), input_names=["input_ids", "attention_mask"],
            output_names=["logits"], opset_version=opset, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"},
                          "logits": {0: "batch"}},
        )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's generic "consider pre-processing" advice
    try:
        quantize_dynamic(str(tmp / ONNX_FP32), str(tmp / ONNX_INT8),
                         weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)

    # Check against torch, text by text (no padding, so the graphs see what torch sees).
    info = {"checkpoint_digest": checkpoint_digest(checkpoint), "opset": opset,
            "check_texts": len(CHECK_TEXTS)}
    limit = min(int(getattr(model.config, "max_position_embeddings", 512)), 256)
    cases = []  # (ids, mask, torch's probabilities)
    with torch.inference_mode():
        for text in CHECK_TEXTS:
            enc = tokenizer(text, truncation=True, max_length=limit, return_tensors="pt")
            probs = torch.softmax(model(input_ids=enc["input_ids"],
                                        attention_mask=enc["attention_mask"]).logits, -1)
            cases.append((enc["input_ids"].numpy().astype(np.int64),
                          enc["attention_mask"].numpy().astype(np.int64), probs[0].numpy()))
    for quantized, key in ((False, "fp32_max_abs_diff"), (True, "int8_max_abs_diff")):
        runtime, _ = OnnxClassifier.load(checkpoint, quantize=quantized, threads=1,
                                         onnx_dir=tmp)
        diff = max(float(np.abs(_softmax(runtime.logits(ids, mask))[0] - probs).max())
                   for ids, mask, probs in cases)
        info[key] = round(diff, 6)
    if info["fp32_max_abs_diff"] > FP32_TOLERANCE:
        shutil.rmtree(tmp)
        raise ExportError(f"the fp32 ONNX graph differs from the torch model by "
                          f"{info['fp32_max_abs_diff']} (> {FP32_TOLERANCE}); export not kept")
    (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    final = checkpoint / ONNX_DIR
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.export_onnx", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    try:
        info = export(args.checkpoint, opset=args.opset)
    except (ExportError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported {args.checkpoint / ONNX_DIR} in {time.perf_counter() - start:.1f}s: "
          f"fp32 within {info['fp32_max_abs_diff']}, int8 within {info['int8_max_abs_diff']} "
          "of the torch model's probabilities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
