"""Complaint themes: negative posts grouped by what they complain about, and labelled.

The pure part of theme finding, shared by the weekly report (`reports.themes`: a brand's
negative mentions of a period, read from the index) and the spike alert
(`alerts.themes`: what drives a wave). Both stages import it from here, so neither
depends on the other and there is one implementation. Nothing here reads an index.

How (docs/reports.md has the measurements and the limits):

1. **Text**: a post naming several brands contributes the clauses about this brand
   (`nlp.brands.brand_texts`, the text its sentiment was scored on): `post_text`.
2. **Split by script**: Chinese (language `zh`, or mostly Han characters when the
   language is unknown) and the rest, clustered apart (they share no words).
3. **Vectorise**: English words (lower case; scikit-learn's English stop words, fillers
   and plain displeasure words dropped) and their bigrams; Chinese words from `jieba`
   (its dictionary ships in the package: offline), words of one character and a short
   list of function and displeasure words dropped. The brand's own query terms are
   dropped: every post names the brand. TF-IDF (sublinear tf), words in at least 2
   posts and at most `max_df` of them (half, by default).
4. **Group** with NMF (`max_themes` components, default 10): each post goes to the
   component of largest weight. No k-selection criterion: on the planted-topic sets the
   silhouette grew with k up to 12 for both NMF and k-means (so it only ever picks the
   largest k); instead, components too small to matter are merged (step 6). NMF was
   kept over k-means on LSA because k-means made one catch-all cluster of ~40 % of
   the posts (generic complaints), which NMF spreads by their words (docs/reports.md).
5. **Label** each cluster by its most distinctive terms: class-based TF-IDF (the terms'
   frequency in the cluster against their frequency over all clusters), top 3, a word
   dropped when a chosen bigram holds it, a bigram when it shares a word with a chosen
   one.
6. Clusters smaller than `min_share` of the posts (or `min_size` posts) are merged into
   **other**. **Examples**: among a theme's 10 most central posts (largest weight
   share), those of highest author reach.
7. **Change**: another set of posts (the previous period's) goes to the theme of largest
   weight (same vocabulary and NMF components); a post whose weight share is under what
   95 % of the theme's own posts reach goes to "other".

Why not the sentiment model's encoder: its ONNX export gives only logits (hidden states
would need another export), encoding costs what scoring does (about 436 short texts/s on
this machine: 20,000 posts would take most of a minute before any clustering), and a
sentiment-tuned encoder places texts by how negative they are, which all of these are.
TF-IDF + NMF groups 20,000 posts in about 15 s on the loaded 2-core machine
(bench/reports_speed.py, docs/benchmarks.md).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from brandpulse.query import BrandQuery

OTHER = "other"
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EN_WORD = re.compile(r"[a-z][a-z0-9']*[a-z0-9]|[a-z]")
_URL = re.compile(r"https?://\S+|www\.\S+")
def _wordlist(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words posts use whatever they complain about: fillers, and the plain words of
# displeasure (every post here is negative, so they tell no theme apart).
_EN_EXTRA_STOP = _wordlist("""
just like get got really even also would could still one thing things lot much make made
going go im ive dont doesnt didnt cant wont isnt thats its it's i'm i've don't doesn't didn't
can't won't isn't that's you're they're there's know think use used using want way time
actually literally ever every anything something nothing everything us will can may might
bad terrible worst awful horrible hate hated disappointed disappointing useless annoying
waste poor worse garbage trash sucks stupid ridiculous frustrating unacceptable star stars
good great better best love nice
""")
_ZH_STOP = _wordlist("""
一个 没有 什么 这个 那个 就是 还是 不是 我们 你们 他们 自己 因为 所以 但是 而且 如果 虽然
可以 已经 现在 觉得 感觉 真的 非常 特别 比较 这么 那么 怎么 然后 还有 一下 一直 这样 那样
这种 那种 时候 东西 知道 出来 起来 不过 可能 应该 还是 之后 之前 以后 以前 一次 一点 有点
这次 一般 其他 其实 只是 只有 而是 为了 对于 关于 以及 或者 不能 不会 没什么 这些 那些
不好 垃圾 差评 失望 后悔 太差 很差 差差 坑人 无语 郁闷 生气 恶心 糟糕 不满 不满意 上当
""")


def is_chinese(text: str, language: str | None) -> bool:
    """Whether a post goes to the Chinese group: its language when known, else mostly Han."""
    if language is not None:
        return language.startswith("zh")
    han = len(_HAN.findall(text))
    return han >= 2 and han * 3 >= len(text.strip()) * 1  # mostly Han (a third of chars)


_en_stop: frozenset[str] | None = None


def _en_tokens(text: str) -> list[str]:
    global _en_stop
    if _en_stop is None:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        _en_stop = frozenset(ENGLISH_STOP_WORDS) | _EN_EXTRA_STOP
    stop = _en_stop
    words = _EN_WORD.findall(_URL.sub(" ", text.lower()).replace("\u2019", "'"))
    return [w for w in (w.removesuffix("'s") for w in words) if len(w) > 1 and w not in stop]


_jieba: Any = None


def _segmenter() -> Any:
    """jieba's default tokenizer, its dictionary loaded once per process (about 1-3 s)."""
    global _jieba
    if _jieba is None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        _jieba = tokenizer
    return _jieba


def _zh_tokens(text: str) -> list[str]:
    out = []
    for w in _segmenter().lcut(_URL.sub(" ", text)):
        w = w.strip().lower()
        if len(w) < 2 or w in _ZH_STOP:
            continue
        if _HAN.search(w) or w.isalnum():
            out.append(w)
    return out


def tokens(text: str, chinese: bool) -> list[str]:
    """The words a theme is made of (see the module docstring, step 3)."""
    return _zh_tokens(text) if chinese else _en_tokens(text)


def post_text(
    brand: str, title: str | None, text: str | None, brands: Sequence[str] | None,
    known: Mapping[str, BrandQuery], query: BrandQuery | None = None,
) -> str:
    """What a post says about `brand`: title and text, and for a post naming several
    brands only the clauses about this one (`nlp.brands.brand_texts`); the whole post
    when the brand cannot be located in it. `known`: every configured brand's query."""
    from nlp.brands import brand_texts, queries_for

    body = f"{title}\n{text}" if title and text else (title or text or "")
    names = list(brands or [brand])
    if len(names) > 1:
        queries = queries_for(names, {**known, **({brand: query} if query else {})})
        body = brand_texts(body, queries).get(brand) or body
    return body


@dataclass(frozen=True)
class Example:
    """A post shown for a theme."""

    id: str
    text: str
    author: str | None = None
    author_reach: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Theme:
    label: str  # its distinctive terms joined, e.g. "ads · premium · shuffle"
    terms: tuple[str, ...]
    language: str  # "zh" or "en" (the non-Chinese group)
    size: int
    previous_size: int
    examples: tuple[Example, ...] = ()
    # Share of the theme's posts that contain one of its label terms. A theme of real
    # posts about one thing is mostly over 0.6; a catch-all of posts with no common
    # topic (moods, outbursts) is labelled by words few of its posts use (0.2-0.4,
    # measured: docs/reports.md, "Themes of a spike").
    coverage: float = 1.0

    @property
    def change(self) -> float | None:
        """Relative change against the previous period; None when it had none."""
        return self.size / self.previous_size - 1.0 if self.previous_size else None


@dataclass(frozen=True)
class ThemePost:
    """A negative post as themes read it: the text about the brand and its script."""

    id: str
    text: str
    chinese: bool
    author: str | None
    author_reach: int | None
    url: str | None


@dataclass
class ThemeModel:
    """Themes found in one language group, able to place other posts among them."""

    chinese: bool
    vectorizer: Any
    tfidf: Any
    nmf: Any
    topics: list[int]  # the NMF components kept as themes, largest first
    floors: np.ndarray  # per theme: the weight share under which a new post is "other"
    terms: list[tuple[str, ...]]
    members: list[np.ndarray]  # per theme: indices into the fitted posts, most central first
    outliers: int  # fitted posts in no theme

    def weights(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, components): each text's topic weights, as shares of its total."""
        w = self.nmf.transform(self.tfidf.transform(self.vectorizer.transform(texts)))
        total = w.sum(axis=1, keepdims=True)
        return np.divide(w, total, out=np.zeros_like(w), where=total > 0)

    def coverage(self, theme: int, texts: Sequence[str]) -> float:
        """Share of the theme's posts (`texts`: the fitted ones) holding one of its terms."""
        members = self.members[theme]
        if not len(members):
            return 0.0
        columns = [self.vectorizer.vocabulary_[t] for t in self.terms[theme]]
        counts = self.vectorizer.transform([texts[i] for i in members])[:, columns]
        return float((counts.sum(axis=1) > 0).mean())

    def assign(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, the index of its theme (into `topics`), or -1 for "other"."""
        if not len(texts) or not self.topics:
            return np.full(len(texts), -1)
        w = self.weights(texts)
        best = w.argmax(axis=1)
        theme = {c: t for t, c in enumerate(self.topics)}
        out = np.full(len(texts), -1)
        for i, c in enumerate(best):
            t = theme.get(int(c))
            if t is not None and w[i, c] > 0 and w[i, c] >= self.floors[t]:
                out[i] = t
        return out


def _ctfidf_terms(counts: Any, labels: np.ndarray, k: int, vocab: np.ndarray,
                  top: int = 3) -> list[tuple[str, ...]]:
    """Class-based TF-IDF: per cluster, the terms frequent in it and rare in the others."""
    import scipy.sparse as sp

    onehot = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))),
                           shape=(k, len(labels)))
    per_class = np.asarray((onehot @ counts).todense(), dtype=np.float64)  # (k, terms)
    tf = per_class / np.maximum(per_class.sum(axis=1, keepdims=True), 1.0)
    avg_words = per_class.sum() / k
    idf = np.log1p(avg_words / np.maximum(per_class.sum(axis=0), 1.0))
    scores = tf * idf
    out = []
    for c in range(k):
        chosen: list[str] = []
        for j in np.argsort(-scores[c]):
            if scores[c, j] <= 0 or len(chosen) >= top:
                break
            term = str(vocab[j])
            if any(term in (t + "s", t + "es") or t in (term + "s", term + "es") for t in chosen):
                continue  # "ad" after "ads": the same word
            # "battery died" then "died months": a bigram sharing a word with a chosen one
            # repeats it and says little more
            if " " in term and any(
                " " in t and set(t.split(" ")) & set(term.split(" ")) for t in chosen
            ):
                continue
            # "battery life" over "battery"; a word already in a chosen bigram adds nothing
            if any(term in t.split(" ") or t in term.split(" ") for t in chosen):
                if " " in term and term not in chosen:
                    chosen = [t for t in chosen if t not in term.split(" ")] + [term]
                continue
            chosen.append(term)
        out.append(tuple(chosen))
    return out


def fit_themes(
    texts: Sequence[str],
    *,
    chinese: bool,
    stop_terms: Sequence[str] = (),
    max_themes: int = 10,
    min_share: float = 0.03,
    min_size: int = 5,
    max_df: float = 0.5,
    seed: int = 0,
) -> ThemeModel:
    """Group ``texts`` (one language group) into at most ``max_themes`` labelled themes.

    Deterministic for a given input and ``seed``. ``stop_terms``: words never used (the
    brand's own name). Fewer than ``2 * min_size`` texts, or no word seen twice: no theme.
    ``max_df``: the largest share of the texts a word may be in (half for a week of
    complaints, where such a word tells no theme apart; a spike's wave keeps them, as one
    complaint can be most of it).
    """
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    from threadpoolctl import threadpool_limits

    stop = {t for term in stop_terms for t in [*tokens(term, chinese), term.lower()]}

    def analyse(text: str) -> list[str]:
        words = [w for w in tokens(text, chinese) if w not in stop]
        if chinese:
            return words
        return words + [f"{a} {b}" for a, b in pairwise(words)]

    n = len(texts)
    empty = ThemeModel(chinese, None, None, None, [], np.zeros(0), [], [], n)
    if n < 2 * min_size:
        return empty
    vectorizer = CountVectorizer(analyzer=analyse, min_df=2, max_df=max_df, max_features=30_000,
                                 dtype=np.float32)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # no word in two posts
        return empty
    tfidf = TfidfTransformer(sublinear_tf=True)
    x = tfidf.fit_transform(counts)
    k = max(1, min(max_themes, n // min_size, x.shape[1]))
    # one thread: on a busy 2-core machine OpenMP/BLAS threads mostly wait for each other
    # (k-means was 15x slower with two on small inputs, measured)
    with threadpool_limits(1), warnings.catch_warnings():
        # not converged in 300 iterations still groups well; more would cost seconds
        warnings.simplefilter("ignore", ConvergenceWarning)
        nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=300)
        w = nmf.fit_transform(x)
    total = w.sum(axis=1, keepdims=True)
    share = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    labels = np.where(total.ravel() > 0, share.argmax(axis=1), -1)
    rows = np.flatnonzero(labels >= 0)
    terms = _ctfidf_terms(counts[rows], labels[rows], k, vectorizer.get_feature_names_out())
    floor = max(min_size, int(np.ceil(min_share * n)))
    kept = [c for c in range(k) if (labels == c).sum() >= floor and terms[c]]
    kept.sort(key=lambda c: (-(labels == c).sum(), c))
    members = []
    for c in kept:
        idx = np.flatnonzero(labels == c)
        members.append(idx[np.argsort(-share[idx, c], kind="stable")])
    floors = np.array([np.quantile(share[labels == c, c], 0.05) for c in kept])
    return ThemeModel(
        chinese=chinese, vectorizer=vectorizer, tfidf=tfidf, nmf=nmf, topics=kept,
        floors=floors, terms=[terms[c] for c in kept], members=members,
        outliers=n - sum(len(m) for m in members),
    )


def _examples(model: ThemeModel, theme: int, posts: Sequence[ThemePost],
              count: int) -> tuple[Example, ...]:
    """Among the theme's 10 most central posts (largest weight share), the highest reach."""
    central = model.members[theme][:10]
    chosen = sorted(central, key=lambda i: -(posts[i].author_reach or 0))[:count]
    return tuple(Example(id=posts[i].id, text=posts[i].text[:280], author=posts[i].author,
                         author_reach=posts[i].author_reach, url=posts[i].url) for i in chosen)


def themes_of_posts(
    posts: Sequence[ThemePost], previous: Sequence[ThemePost], *, stop_terms: Sequence[str] = (),
    max_themes: int = 10, min_share: float = 0.03, min_size: int = 5, max_df: float = 0.5,
    examples: int = 3, seed: int = 0,
) -> tuple[list[Theme], int, int]:
    """The themes of `posts` (both language groups), sized in `previous` too; and the
    "other" counts of both periods."""
    themes: list[Theme] = []
    other = previous_other = 0
    for chinese in (False, True):
        group = [p for p in posts if p.chinese == chinese]
        before = [p.text for p in previous if p.chinese == chinese]
        texts = [p.text for p in group]
        model = fit_themes(texts, chinese=chinese, stop_terms=stop_terms, max_themes=max_themes,
                           min_share=min_share, min_size=min_size, max_df=max_df, seed=seed)
        assigned = model.assign(before)
        other += model.outliers
        previous_other += int((assigned == -1).sum())
        for t in range(len(model.topics)):
            themes.append(Theme(
                label=" · ".join(model.terms[t]), terms=model.terms[t],
                language="zh" if chinese else "en", size=len(model.members[t]),
                previous_size=int((assigned == t).sum()),
                examples=_examples(model, t, group, examples),
                coverage=model.coverage(t, texts),
            ))  # fmt: skip
    themes.sort(key=lambda t: (-t.size, t.label))
    return themes, other, previous_other


