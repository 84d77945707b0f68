"""The sentiment scorer: texts in, `Sentiment` (negative/neutral/positive) out.

One interface for every model the pipeline can use:

* `model: default` -- the offline multilingual model built by `make model`
  (`python -m nlp.build_default`) into `.cache/models/default`;
* a local directory holding any Hugging Face sequence-classification checkpoint;
* a Hugging Face hub name (needs network access the first time).

and for the runtimes that run it (`nlp.runtimes`): ONNX Runtime on CPU when the
checkpoint has an ONNX export (the default model has one), torch otherwise or on a GPU.

Decisions a caller can rely on:

* Texts are scored in length-sorted batches with dynamic padding; on CPU the model
  is int8 (ONNX Runtime's dynamic quantisation, or torch's for the Linear layers except
  the feed-forward down-projections); torch runs under `torch.inference_mode`.
* Long texts are split into consecutive windows of `max_length` tokens (special tokens
  included) and the windows' probabilities are averaged, weighted by each window's number
  of tokens.
* Very long texts are capped first when `max_tokens` is set (`nlp.max_tokens_per_mention`,
  512 in the pipeline): a text of more tokens is scored on its first and last
  `max_tokens // 2` tokens, joined by a line break (`cap_text`). The text is cut by
  characters before it is tokenised (`_CHARS_PER_TOKEN` per token kept, a bound no real
  token reaches), so a 500 KB post costs what a 12 KB one does, not 45 s and 1.3 GB.
  Beginnings and ends carry a post's verdict (headline, conclusion); the middle of a
  pasted log or a copied article adds length, not sentiment.
* Empty and whitespace-only texts are not given to the model: they get
  `neutral` with probabilities (0, 1, 0) -- there is nothing to be negative about.
  Emoji-only texts ARE scored by the model: the multilingual vocabulary has the
  emoji, and "😡😡" is clearly not neutral.
* A 2-class checkpoint maps to negative/positive with neutral probability 0. Several
  checkpoint labels may map to the same class (e.g. 1-5 stars); their probabilities add.
* `confidence` on each result is the calibrated probability that its label is right:
  the same windows' logits divided by the temperature fitted for the model on labelled
  held-out data (`python -m nlp.calibrate`, stored in `nlp/calibration.json`), then
  combined like the probabilities. The label and the three stored probabilities stay the
  model's own (temperature 1). A confidence under `uncertain_below`
  (`nlp.uncertain_below`) marks the result `uncertain`: it keeps its label, and the
  counts that alerts and Kibana read put it apart.
* The model id recorded on each mention names the runtime too (`...+onnx-int8`,
  `...+int8`): int8 and fp32 scores of one model differ slightly.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brandpulse.mention import SENTIMENT_LABELS, Sentiment, SentimentLabel
from nlp.runtimes import ClassifierRuntime, ModelLoadError, TextEncoder, load_runtime

if TYPE_CHECKING:
    from brandpulse.config import NlpConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / ".cache" / "models" / "default"
CLASS_INDEX: dict[SentimentLabel, int] = {label: i for i, label in enumerate(SENTIMENT_LABELS)}

# Names checkpoints commonly give their classes; anything else needs `nlp.labels`.
_SYNONYMS: dict[str, SentimentLabel] = {
    "negative": "negative", "neg": "negative", "label_negative": "negative",
    "neutral": "neutral", "neu": "neutral", "label_neutral": "neutral",
    "positive": "positive", "pos": "positive", "label_positive": "positive",
}


def empty_sentiment(model_id: str) -> Sentiment:
    return Sentiment(label="neutral", negative=0.0, neutral=1.0, positive=0.0, model=model_id,
                     confidence=1.0)


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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# The character pre-cut keeps this many characters per token it must keep. The default
# model's longest vocabulary piece is 16 characters; a token never covers more than that
# except where the normaliser collapses or deletes characters (runs of spaces, controls),
# and then fewer tokens are kept, never more.
_CHARS_PER_TOKEN = 24
_CAP_JOIN = "\n"


@dataclass
class _Window:
    text_index: int
    ids: list[int]
    weight: int  # content tokens in the window


class SentimentScorer:
    """Scores texts with one sequence-classification model; see the module docstring."""

    def __init__(self, runtime: ClassifierRuntime, encoder: TextEncoder,
                 label_matrix: np.ndarray, model_id: str, *, batch_size: int = 32,
                 max_length: int = 256, max_tokens: int | None = None,
                 temperature: float = 1.0, uncertain_below: float | None = None) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.uncertain_below = uncertain_below
        if max_tokens is not None and max_tokens < 2:
            raise ValueError(f"max_tokens must be at least 2 (a head and a tail), got {max_tokens}")
        self.runtime = runtime
        self.max_tokens = max_tokens
        self.encoder = encoder
        self.label_matrix = label_matrix
        self.model_id = model_id
        self.batch_size = batch_size
        self.max_length = min(max_length, runtime.max_positions)
        enc_a = encoder.encode(["a"], special_tokens=True)[0]
        bare_a = encoder.encode(["a"], special_tokens=False)[0]
        start = next(i for i in range(len(enc_a)) if enc_a[i : i + len(bare_a)] == bare_a)
        self._prefix = enc_a[:start]
        self._suffix = enc_a[start + len(bare_a):]
        self._window = self.max_length - len(self._prefix) - len(self._suffix)
        if self._window < 1:
            raise ValueError(f"max_length {self.max_length} leaves no room for text")
        self._pad_id = encoder.pad_id

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_config(cls, config: NlpConfig) -> SentimentScorer:
        return cls.from_pretrained(config.model, labels=config.labels,
                                   batch_size=config.batch_size, max_length=config.max_length,
                                   threads=config.threads, device=config.device,
                                   runtime=config.runtime,
                                   max_tokens=config.max_tokens_per_mention,
                                   uncertain_below=config.uncertain_below)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike[str] = "default", *,
                        labels: Mapping[str, SentimentLabel] | None = None,
                        batch_size: int = 32, max_length: int = 256,
                        threads: int | None = None, device: str = "auto",
                        runtime: str = "auto", quantize: bool | None = None,
                        max_tokens: int | None = None, temperature: float | None = None,
                        uncertain_below: float | None = None) -> SentimentScorer:
        """Load `model` ('default', a local checkpoint directory, or a hub name).

        `runtime` is 'auto', 'onnx' or 'torch' (see `nlp.runtimes`); `quantize` (default:
        on for CPU) picks the int8 model; `max_tokens` caps each text (None: no cap).
        `temperature` calibrates the confidence; by default it is the one fitted for this
        model by `python -m nlp.calibrate` (`nlp/calibration.json`), or 1 (the raw
        probabilities, with a warning) for a model nobody calibrated. Confidences under
        `uncertain_below` mark a result uncertain.
        """
        source, model_id = _locate(str(model))
        local = Path(source) if Path(source).is_dir() else None
        net, encoder = load_runtime(source, local, runtime=runtime, device=device,
                                    quantize=quantize, threads=threads)
        matrix = resolve_label_map(net.id2label, labels)
        if temperature is None:
            from nlp.calibrate import fitted_temperature

            temperature = fitted_temperature(model_id)
            if temperature is None:
                log.warning("no calibration for model %s: confidences are the raw "
                            "probabilities (python -m nlp.calibrate fits one)", model_id)
                temperature = 1.0
        if net.name:
            model_id += f"+{net.name}"
        return cls(net, encoder, matrix, model_id, batch_size=batch_size,
                   max_length=max_length, max_tokens=max_tokens, temperature=temperature,
                   uncertain_below=uncertain_below)

    # ------------------------------------------------------------------ capping
    def cap_text(self, text: str) -> str:
        """`text` itself, or its first and last `max_tokens // 2` tokens joined by a line break.

        Only texts longer than `max_tokens` tokens are cut, always at token boundaries
        (the tokenizer's character offsets). The text is cut by characters first, keeping
        `_CHARS_PER_TOKEN` characters per wanted token at each end, so that the whole of a
        huge text is never tokenised.
        """
        if self.max_tokens is None or len(text) <= self.max_tokens:
            return text  # (a token holds at least one character)
        head_n = self.max_tokens // 2
        tail_n = self.max_tokens - head_n
        head_chars, tail_chars = head_n * _CHARS_PER_TOKEN, tail_n * _CHARS_PER_TOKEN
        if len(text) <= head_chars + tail_chars:
            # Short enough to tokenise whole: cut only if it has too many tokens.
            try:
                spans = self.encoder.offsets([text])[0]
            except NotImplementedError:
                return text
            if len(spans) <= self.max_tokens:
                return text
            return text[: spans[head_n - 1][1]] + _CAP_JOIN + text[spans[-tail_n][0] :]
        tail_from = len(text) - tail_chars
        head, tail = text[:head_chars], text[tail_from:]
        try:
            head_spans, tail_spans = self.encoder.offsets([head, tail])
        except NotImplementedError:
            # No offsets (a slow tokenizer): about 4 characters per token instead.
            return text[: head_n * 4] + _CAP_JOIN + text[-tail_n * 4 :]
        # Fewer tokens than wanted in a piece means the normaliser ate characters
        # (whitespace runs, controls): the piece is kept whole, and holds fewer tokens.
        head_end = head_spans[head_n - 1][1] if len(head_spans) >= head_n else len(head)
        tail_start = tail_spans[-tail_n][0] if len(tail_spans) >= tail_n else 0
        return head[:head_end] + _CAP_JOIN + tail[tail_start:]

    # ------------------------------------------------------------------ scoring
    def _windows(self, texts: Sequence[str]) -> tuple[list[_Window], list[int]]:
        """Windows of every non-empty text (capped), and the indices of the empty ones."""
        todo = [i for i, t in enumerate(texts) if t and not t.isspace()]
        empty = [i for i, t in enumerate(texts) if not t or t.isspace()]
        if not todo:
            return [], empty
        prepared = [texts[i] for i in todo]
        if self.max_tokens is None:
            encoded = self.encoder.encode(prepared, special_tokens=False)
        else:
            # Huge texts are cut before anything tokenises them whole; the others are
            # tokenised once, and only those over the cap are cut and tokenised again.
            huge = self.max_tokens * _CHARS_PER_TOKEN
            precut = [len(t) > huge for t in prepared]
            prepared = [self.cap_text(t) if cut else t for t, cut in zip(prepared, precut, strict=True)]
            encoded = self.encoder.encode(prepared, special_tokens=False)
            over = [k for k, ids in enumerate(encoded)
                    if len(ids) > self.max_tokens and not precut[k]]
            if over:
                again = self.encoder.encode([self.cap_text(prepared[k]) for k in over],
                                            special_tokens=False)
                for k, ids in zip(over, again, strict=True):
                    encoded[k] = ids
        windows = []
        for i, ids in zip(todo, encoded, strict=True):
            if not ids:  # e.g. only characters the normaliser deletes
                empty.append(i)
                continue
            for s in range(0, len(ids), self._window):
                part = ids[s : s + self._window]
                windows.append(_Window(i, [*self._prefix, *part, *self._suffix], len(part)))
        return windows, empty

    def window_logits(self, texts: Sequence[str]) -> WindowLogits:
        """The model's raw logits for every window of `texts`: one model pass, combined
        later (`WindowLogits.probabilities`) at any temperature."""
        windows, empty = self._windows(texts)
        logits = np.zeros((len(windows), self.label_matrix.shape[0]), dtype=np.float64)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w].ids))
        for s in range(0, len(order), self.batch_size):
            rows = order[s : s + self.batch_size]
            batch = [windows[w] for w in rows]
            width = max(len(w.ids) for w in batch)
            ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, w in enumerate(batch):
                ids[row, : len(w.ids)] = w.ids
                mask[row, : len(w.ids)] = 1
            logits[rows] = self.runtime.logits(ids, mask)
        return WindowLogits(len(texts), np.array([w.text_index for w in windows], dtype=np.int64),
                            np.array([w.weight for w in windows], dtype=np.float64),
                            logits, self.label_matrix, empty)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 3) probabilities in negative/neutral/positive order (uncalibrated)."""
        return self.window_logits(texts).probabilities()

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """One `Sentiment` per text: the model's probabilities and label, plus the
        calibrated confidence in that label and whether it falls in the uncertain band."""
        if isinstance(texts, str):
            raise TypeError("score() takes a sequence of texts, not one string")
        raw = self.window_logits(texts)
        probs = raw.probabilities()
        calibrated = raw.probabilities(self.temperature) if self.temperature != 1.0 else probs
        out = []
        for p, c in zip(probs, calibrated, strict=True):
            label = int(p.argmax())
            confidence = min(max(float(c[label]), 0.0), 1.0)
            out.append(Sentiment(
                label=SENTIMENT_LABELS[label], negative=float(p[0]), neutral=float(p[1]),
                positive=float(p[2]), model=self.model_id, confidence=round(confidence, 4),
                uncertain=self.uncertain_below is not None and confidence < self.uncertain_below))
        return out


@dataclass
class WindowLogits:
    """Raw logits of every window of a list of texts, and how to combine them."""

    n_texts: int
    text_index: np.ndarray  # (windows,) the text each window belongs to
    weight: np.ndarray  # (windows,) content tokens in each window
    logits: np.ndarray  # (windows, checkpoint labels)
    label_matrix: np.ndarray
    empty: list[int]  # texts with nothing to score: neutral (0, 1, 0)

    def probabilities(self, temperature: float = 1.0) -> np.ndarray:
        """(n_texts, 3): per window softmax(logits / temperature), mapped to our classes,
        averaged over each text's windows weighted by their tokens."""
        out = np.zeros((self.n_texts, 3), dtype=np.float64)
        out[self.empty, CLASS_INDEX["neutral"]] = 1.0
        if not len(self.logits):
            return out
        mapped = softmax(self.logits / temperature) @ self.label_matrix
        weights = np.zeros(self.n_texts, dtype=np.float64)
        np.add.at(out, self.text_index, mapped * self.weight[:, None])
        np.add.at(weights, self.text_index, self.weight)
        scored = weights > 0
        out[scored] /= weights[scored, None]
        return out / out.sum(1, keepdims=True)


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


__all__ = ["ModelLoadError", "SentimentScorer", "WindowLogits", "empty_sentiment", "resolve_label_map"]
