"""Average trained stages in weight space ("model soup"), written as one artifact folder.

    python -m nlp.soup --out DIR  A_DIR=0.5 B_DIR=0.5  [--vocab-from A_DIR]

Every stage of the default model is the same base encoder plus a LoRA delta and a set of
full tensors (pooler, classifier, biases, LayerNorms), so a weighted average of stages
fine-tuned from a common starting point is exact and needs no training: the merged weight
of the soup is ``base + sum_i w_i * s * B_i @ A_i``, which is a LoRA of the summed rank
with ``B = [w_1 B_1 | w_2 B_2 | ...]`` and ``A = [A_1; A_2; ...]``, and every full tensor is
``sum_i w_i * T_i``. The result is an ordinary artifact folder (``adapter.safetensors``,
``recipe.json``, ``vocab_keep.bits.gz``) that ``python -m nlp.build_default --artifacts``
builds like any stage, and that ``nlp.train_default --init-from`` can continue.

Why: averaging models fine-tuned from one starting point is known to hold up better on
data unlike the training data than any one of them (Wortsman et al. 2022, "Model soups";
"WiSE-FT" for the interpolation between a starting point and its fine-tune). Whether it
does *here* is measured with held-out domains, never assumed (MODEL_CARD.md, session 11).

Contract:

- the weights must be positive and sum to 1 (a soup, not an extrapolation);
- every stage must have the same layers, LoRA targets and LoRA scaling; the class-bias
  offsets folded into each stage's classifier bias are taken out before averaging and the
  soup's offsets are the weighted mean of theirs, folded back in (refit them with the
  stage's usual rule if the soup is adopted);
- the vocabulary keep-set is copied from ``--vocab-from`` (default: the first stage). The
  word embeddings are the frozen base's in every stage, so the keep-set only decides which
  pieces the tokenizer may use.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from nlp.build_default import ADAPTER_FILE, RECIPE_FILE, VOCAB_FILE


def _parse(item: str) -> tuple[Path, float]:
    folder, sep, weight = item.rpartition("=")
    if not sep:
        raise ValueError(f"{item!r}: expected FOLDER=WEIGHT")
    try:
        return Path(folder), float(weight)
    except ValueError:
        raise ValueError(f"{item!r}: weight {weight!r} is not a number") from None


def soup(stages: list[tuple[Path, float]], out: Path, vocab_from: Path | None = None) -> dict:
    """Write the weighted average of `stages` into `out`; returns its recipe."""
    from safetensors.torch import load_file, save_file

    weights = [w for _, w in stages]
    if len(stages) < 2:
        raise ValueError("a soup needs at least two stages")
    if any(w <= 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"weights must be positive and sum to 1, got {weights}")
    recipes = [json.loads((f / RECIPE_FILE).read_text(encoding="utf-8")) for f, _ in stages]
    states = [load_file(str(f / ADAPTER_FILE)) for f, _ in stages]
    for key in ("layers", "lora_scaling"):
        values = {r[key] for r in recipes}
        if len(values) != 1:
            raise ValueError(f"stages differ in {key}: {sorted(values)}")
    names = set(states[0])
    for (folder, _), state in zip(stages[1:], states[1:], strict=True):
        if set(state) != names:
            diff = sorted(set(state) ^ names)[:5]
            raise ValueError(f"{folder} has other tensors than {stages[0][0]}: {diff}...")

    biases = [torch.tensor(r["class_bias"], dtype=torch.float32) for r in recipes]
    class_bias = sum(w * b for w, b in zip(weights, biases, strict=True))
    out_state: dict[str, torch.Tensor] = {}
    for name in sorted(names):
        if name.endswith(".lora_A"):
            out_state[name] = torch.cat([s[name].float() for s in states], dim=0)
        elif name.endswith(".lora_B"):
            out_state[name] = torch.cat([w * s[name].float() for w, s in
                                         zip(weights, states, strict=True)], dim=1)
        else:
            tensors = [s[name].float() for s in states]
            if name == "classifier.bias":
                tensors = [t - b for t, b in zip(tensors, biases, strict=True)]
            avg = sum(w * t for w, t in zip(weights, tensors, strict=True))
            out_state[name] = avg + class_bias if name == "classifier.bias" else avg
    lora_dtype = next(s[n].dtype for s in states for n in s if n.endswith(".lora_A"))
    out_state = {k: (v.to(lora_dtype) if ".lora_" in k else v).contiguous()
                 for k, v in out_state.items()}

    rank = sum(int(r["lora_rank"]) for r in recipes)
    scaling = float(recipes[0]["lora_scaling"])
    recipe = {
        **{k: recipes[0][k] for k in ("base", "layers", "prefix", "train_max_length")
           if k in recipes[0]},
        "lora_rank": rank,
        "lora_alpha": scaling * rank,
        "lora_scaling": scaling,
        "class_bias": class_bias.tolist(),
        "soup_of": [{"weight": w, "stage": r} for w, r in zip(weights, recipes, strict=True)],
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(out_state, str(out / ADAPTER_FILE))
    shutil.copyfile((vocab_from or stages[0][0]) / VOCAB_FILE, out / VOCAB_FILE)
    (out / RECIPE_FILE).write_text(json.dumps(recipe, indent=2), encoding="utf-8")
    return recipe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nlp.soup", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stages", nargs="+", metavar="FOLDER=WEIGHT")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vocab-from", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        recipe = soup([_parse(s) for s in args.stages], args.out, args.vocab_from)
    except (ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: rank {recipe['lora_rank']}, class bias "
          f"{[round(b, 2) for b in recipe['class_bias']]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
