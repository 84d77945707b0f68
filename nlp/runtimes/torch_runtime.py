"""The torch runtime: any Hugging Face sequence-classification checkpoint, CPU or GPU.

Used for hub names, for checkpoints without an ONNX export, and whenever a GPU is
wanted. On CPU the Linear layers except the feed-forward down-projections are quantised
to dynamic int8 at load time (`quantize_linear_layers`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from nlp.runtimes.base import ModelLoadError, position_limit

# Feed-forward down-projections (BERT/RoBERTa/XLM-R, DistilBERT, GPT-style, LLaMA-style).
# Their inputs are post-GELU activations with a few huge outliers; torch's dynamic int8
# uses one weight scale per tensor and one activation scale per tensor, which crushes
# everything else. Measured on the default model (600 TweetEval validation tweets, macro
# recall): fp32 0.676, all Linear int8 0.596, all but these int8 0.672.
_KEEP_FP32 = re.compile(r"(layer\.\d+\.output\.dense|ffn\.lin2|mlp\.c_proj|mlp\.fc2|down_proj)$")


def quantize_linear_layers(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 for every Linear layer except the feed-forward down-projections."""
    names = {name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and not _KEEP_FP32.search(name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the API still works
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8,
                                                      inplace=True)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def set_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)
    else:
        # torch defaults to the machine's cores even inside a CPU-limited container.
        torch.set_num_threads(max(1, min(torch.get_num_threads(),
                                         len(os.sched_getaffinity(0)))))


class HFTokenizerEncoder:
    """A transformers tokenizer seen through `TextEncoder`."""

    def __init__(self, tokenizer: object) -> None:
        self.tokenizer = tokenizer
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0

    def encode(self, texts: Sequence[str], *, special_tokens: bool) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=special_tokens,  # type: ignore[operator]
                              truncation=False)["input_ids"]

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        # transformers' slow (pure Python) tokenizers raise NotImplementedError here.
        out = self.tokenizer(list(texts), add_special_tokens=False,  # type: ignore[operator]
                             truncation=False, return_offsets_mapping=True)
        return [[(int(a), int(b)) for a, b in row] for row in out["offset_mapping"]]


class TorchClassifier:
    """`ClassifierRuntime` over a transformers model."""

    def __init__(self, model: torch.nn.Module, device: str, quantized: bool) -> None:
        self.model = model
        self.device = torch.device(device)
        self.name = "int8" if quantized else ""
        self.id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        self.max_positions = position_limit(model.config.to_dict(), 512)

    @classmethod
    def load(cls, source: str, *, device: str = "auto", quantize: bool | None = None,
             threads: int | None = None) -> tuple[TorchClassifier, HFTokenizerEncoder]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError("nlp.device is 'cuda' but torch sees no CUDA device")
        set_threads(threads)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            net = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
        except OSError as exc:
            raise ModelLoadError(f"cannot load sentiment model {source!s}: {exc}") from exc
        net.eval()
        if quantize is None:
            quantize = device == "cpu"
        if quantize:
            net = quantize_linear_layers(net)
        net.to(device)
        return cls(net, device, quantize), HFTokenizerEncoder(tokenizer)

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(ids).to(self.device),
                             attention_mask=torch.from_numpy(mask).to(self.device)).logits
            return out.float().cpu().numpy()
