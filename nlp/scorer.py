"""The sentiment scorer: texts in, `Sentiment` (negative/neutral/positive) out.

One interface for every model the pipeline can use:

* `model: default` -- the offline multilingual model built by `make model`
  (`python -m nlp.build_default`) into `.cache/models/default`;
* a local directory holding any Hugging Face sequence-classification checkpoint;
* a Hugging Face hub name (needs network access the first time).

Decisions a caller can rely on:

* Texts are scored in length-sorted batches with dynamic padding under
  `torch.inference_mode`; on CPU the Linear layers except the feed-forward
  down-projections are quantised to int8 at load time (see `quantize_linear_layers`).
* Long texts are never silently cut: the tokens are split into consecutive windows of
  `max_length` tokens (special tokens included) and the windows' probabilities are
  averaged, weighted by each window's number of tokens.
* Empty and whitespace-only texts are not given to the model: they get
  `neutral` with probabilities (0, 1, 0) -- there is nothing to be negative about.
  Emoji-only texts ARE scored by the model: the multilingual vocabulary has the
  emoji, and "😡😡" is clearly not neutral.
* A 2-class checkpoint maps to negative/positive with neutral probability 0. Several
  checkpoint labels may map to the same class (e.g. 1-5 stars); their probabilities add.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from brandpulse.mention import SENTIMENT_LABELS, Sentiment, SentimentLabel

if TYPE_CHECKING:
    from brandpulse.config import NlpConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / ".cache" / "models" / "default"
CLASS_INDEX: dict[SentimentLabel, int] = {label: i for i, label in enumerate(SENTIMENT_LABELS)}

# Names checkpoints commonly give their classes; anything else needs `nlp.labels`.
_SYNONYMS: dict[str, SentimentLabel] = {
    "negative": "negative", "neg": "negative", "label_negative": "negative",
    "neutral": "neutral", "neu": "neutral", "label_neutral": "neutral",
    "positive": "positive", "pos": "positive", "label_positive": "positive",
}


class ModelLoadError(RuntimeError):
    """The configured model cannot be loaded or its labels cannot be mapped."""


def empty_sentiment(model_id: str) -> Sentiment:
    return Sentiment(label="neutral", negative=0.0, neutral=1.0, positive=0.0, model=model_id)


def resolve_label_map(id2label: Mapping[int, str],
                      labels: Mapping[str, SentimentLabel] | None) -> np.ndarray:
    """A (num_labels, 3) 0/1 matrix taking checkpoint probabilities to neg/neu/pos.

    `labels` maps checkpoint label names (or their index as text) to our classes; without
    it the checkpoint's own names must say negative/neutral/positive.
    """
    n = len(id2label)
    matrix = np.zeros((n, 3), dtype=np.float64)
    if labels is not None:
        unknown = [k for k in labels if k not in id2label.values()
                   and not (k.isdigit() and int(k) in id2label)]
        if unknown:
            raise ModelLoadError(
                f"nlp.labels names {unknown}, which the checkpoint does not have; "
                f"its labels are {[id2label[i] for i in sorted(id2label)]}"
            )
        for i in sorted(id2label):
            name = id2label[i]
            target = labels.get(name, labels.get(str(i)))
            if target is None:
                raise ModelLoadError(
                    f"nlp.labels has no entry for the checkpoint's label {name!r} (index {i}); "
                    f"map every one of {[id2label[j] for j in sorted(id2label)]} "
                    "to negative, neutral or positive"
                )
            matrix[i, CLASS_INDEX[target]] = 1.0
    else:
        for i in sorted(id2label):
            target = _SYNONYMS.get(str(id2label[i]).strip().lower())
            if target is None:
                raise ModelLoadError(
                    f"cannot tell what the checkpoint's label {id2label[i]!r} means; its labels "
                    f"are {[id2label[j] for j in sorted(id2label)]}: set nlp.labels, e.g. "
                    "{LABEL_0: negative, LABEL_1: neutral, LABEL_2: positive}"
                )
            matrix[i, CLASS_INDEX[target]] = 1.0
    covered = matrix.sum(0)
    if covered[CLASS_INDEX["negative"]] == 0 or covered[CLASS_INDEX["positive"]] == 0:
        raise ModelLoadError(
            "the label mapping must send at least one checkpoint label to 'negative' and one "
            f"to 'positive'; got {dict(zip(SENTIMENT_LABELS, covered.astype(int), strict=True))}"
        )
    return matrix


# Feed-forward down-projections (BERT/RoBERTa/XLM-R, DistilBERT, GPT-style, LLaMA-style).
# Their inputs are post-GELU activations with a few huge outliers; dynamic int8 uses one
# activation scale per tensor, which crushes everything else. Measured on the default
# model (600 TweetEval validation tweets, macro recall): fp32 0.676, all Linear int8
# 0.596, all but these int8 0.672.
_KEEP_FP32 = re.compile(r"(layer\.\d+\.output\.dense|ffn\.lin2|mlp\.c_proj|mlp\.fc2|down_proj)$")


def quantize_linear_layers(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 for every Linear layer except the feed-forward down-projections."""
    names = {name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and not _KEEP_FP32.search(name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the API still works
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8,
                                                      inplace=True)


@dataclass
class _Window:
    text_index: int
    ids: list[int]
    weight: int  # content tokens in the window


class SentimentScorer:
    """Scores texts with one sequence-classification model; see the module docstring."""

    def __init__(self, model: torch.nn.Module, tokenizer: object, label_matrix: np.ndarray,
                 model_id: str, *, batch_size: int = 32, max_length: int = 256,
                 device: str = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.label_matrix = label_matrix
        self.model_id = model_id
        self.batch_size = batch_size
        self.device = torch.device(device)
        limit = getattr(model.config, "max_position_embeddings", max_length)
        # RoBERTa-style models reserve pad_token_id + 1 position rows.
        if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            limit -= (model.config.pad_token_id or 0) + 1
        self.max_length = min(max_length, limit)
        enc_a = tokenizer("a")["input_ids"]  # type: ignore[operator]
        bare_a = tokenizer("a", add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        start = next(i for i in range(len(enc_a)) if enc_a[i : i + len(bare_a)] == bare_a)
        self._prefix = enc_a[:start]
        self._suffix = enc_a[start + len(bare_a):]
        self._window = self.max_length - len(self._prefix) - len(self._suffix)
        if self._window < 1:
            raise ValueError(f"max_length {self.max_length} leaves no room for text")
        pad = getattr(tokenizer, "pad_token_id", None)
        self._pad_id = int(pad) if pad is not None else 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_config(cls, config: NlpConfig) -> SentimentScorer:
        return cls.from_pretrained(config.model, labels=config.labels,
                                   batch_size=config.batch_size, max_length=config.max_length,
                                   threads=config.threads, device=config.device)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike[str] = "default", *,
                        labels: Mapping[str, SentimentLabel] | None = None,
                        batch_size: int = 32, max_length: int = 256,
                        threads: int | None = None, device: str = "auto",
                        quantize: bool | None = None) -> SentimentScorer:
        """Load `model` ('default', a local checkpoint directory, or a hub name).

        `quantize` (default: on for CPU) turns the Linear layers into dynamic int8.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError("nlp.device is 'cuda' but torch sees no CUDA device")
        if threads is not None:
            torch.set_num_threads(threads)
        else:
            # torch defaults to the machine's cores even inside a CPU-limited container.
            torch.set_num_threads(max(1, min(torch.get_num_threads(),
                                             len(os.sched_getaffinity(0)))))

        source, model_id = _locate(str(model))
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            net = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
        except OSError as exc:
            raise ModelLoadError(f"cannot load sentiment model {model!s}: {exc}") from exc
        net.eval()
        id2label = {int(k): str(v) for k, v in net.config.id2label.items()}
        matrix = resolve_label_map(id2label, labels)
        if quantize is None:
            quantize = device == "cpu"
        if quantize:
            net = quantize_linear_layers(net)
            model_id += "+int8"
        net.to(device)
        return cls(net, tokenizer, matrix, model_id, batch_size=batch_size,
                   max_length=max_length, device=device)

    # ------------------------------------------------------------------ scoring
    def _windows(self, texts: Sequence[str]) -> tuple[list[_Window], list[int]]:
        """Windows of every non-empty text, and the indices of the empty ones."""
        todo = [i for i, t in enumerate(texts) if t and not t.isspace()]
        empty = [i for i, t in enumerate(texts) if not t or t.isspace()]
        if not todo:
            return [], empty
        encoded = self.tokenizer([texts[i] for i in todo],  # type: ignore[operator]
                                 add_special_tokens=False, truncation=False)["input_ids"]
        windows = []
        for i, ids in zip(todo, encoded, strict=True):
            if not ids:  # e.g. only characters the normaliser deletes
                empty.append(i)
                continue
            for s in range(0, len(ids), self._window):
                part = ids[s : s + self._window]
                windows.append(_Window(i, [*self._prefix, *part, *self._suffix], len(part)))
        return windows, empty

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 3) probabilities in negative/neutral/positive order."""
        out = np.zeros((len(texts), 3), dtype=np.float64)
        windows, empty = self._windows(texts)
        out[empty, CLASS_INDEX["neutral"]] = 1.0
        if not windows:
            return out
        order = sorted(range(len(windows)), key=lambda w: len(windows[w].ids))
        weights = np.zeros(len(texts), dtype=np.float64)
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                batch = [windows[w] for w in order[s : s + self.batch_size]]
                width = max(len(w.ids) for w in batch)
                ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, w in enumerate(batch):
                    ids[row, : len(w.ids)] = torch.tensor(w.ids)
                    mask[row, : len(w.ids)] = 1
                logits = self.model(input_ids=ids.to(self.device),
                                    attention_mask=mask.to(self.device)).logits
                probs = torch.softmax(logits.float(), dim=-1).cpu().numpy().astype(np.float64)
                mapped = probs @ self.label_matrix
                for row, w in enumerate(batch):
                    out[w.text_index] += w.weight * mapped[row]
                    weights[w.text_index] += w.weight
        scored = weights > 0
        out[scored] /= weights[scored, None]
        return out / out.sum(1, keepdims=True)

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        if isinstance(texts, str):
            raise TypeError("score() takes a sequence of texts, not one string")
        probs = self.probabilities(texts)
        return [
            Sentiment(label=SENTIMENT_LABELS[int(p.argmax())], negative=float(p[0]),
                      neutral=float(p[1]), positive=float(p[2]), model=self.model_id)
            for p in probs
        ]


def _locate(model: str) -> tuple[str, str]:
    """(what to pass to from_pretrained, the model id recorded on mentions)."""
    if model == "default":
        info = DEFAULT_MODEL_DIR / "build_info.json"
        if not info.exists():
            raise ModelLoadError(
                f"the default sentiment model is not built ({DEFAULT_MODEL_DIR} is missing); "
                "run `make model` (python -m nlp.build_default)"
            )
        return str(DEFAULT_MODEL_DIR), json.loads(info.read_text())["model_id"]
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path} is not a Hugging Face checkpoint (no config.json)")
        return str(path), path.resolve().name
    looks_local = model.startswith((".", "/", "~")) or (os.sep in model and model.count("/") != 1)
    if looks_local or path.exists():
        raise ModelLoadError(f"sentiment model path {model!r} does not exist or is not a directory")
    return model, model
