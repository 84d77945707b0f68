"""Which part of a post speaks about which brand: the text each brand's sentiment is scored on.

A post that names several brands often praises one and attacks another ("switched from
Globex to Acme, Globex lost my data twice"). `brand_texts` cuts the post into units and
gives each brand the units that concern it:

1. **Sentences**: a break after `.` `!` `?` `;` followed by a space or the end (so "v2.0"
   and "acme.com" stay whole), after `…`, and after the Chinese `。！？；` (which need no
   space). Line breaks end a sentence too.
2. **Clauses**: inside a sentence, a break at a comma (`,` `，` `、`) and before a
   contrastive word: English *but, however, whereas, while, although, though, yet*;
   Chinese 但是 / 但 / 可是 / 不过 / 然而 / 而 (not in 而且, 因而, 从而, 反而, 进而). 却 follows
   its subject ("Globex却很差"), so no break is made before it: the comma before the
   subject makes the break.
3. **Who each clause is about**: a clause names a brand when one of the brand's query
   terms occurs in it (`BrandQuery.term_spans`, the matcher's own patterns). A clause that
   names no brand belongs to the nearest brand named before it (its context: "Acme
   support was great, they fixed it in a day"); clauses before the first named brand
   belong to the first brand named after them.
4. A post longer than `MAX_SEGMENT_CHARS` (20,000) characters is segmented on its
   first and last 10,000 only, as the scorer keeps only its head and tail.
5. A brand's text is its clauses, in order. When the brand's clauses are the whole post,
   or the brand cannot be located in the text (matched by site:/author:, or by a term
   that only the full query's other parts explain), or its text has too little besides
   the brand's own name to be judged (less than one word or two Chinese characters),
   the brand gets the post's sentiment (`None` here).

Limits (docs/sentiment.md): the model still decides each clause alone, so sarcasm is
misread as in any post; pronouns ("they", "它") are not resolved, they only follow the
nearest brand named before; two brands in one clause ("Acme beats Globex") get the same
text; a comma-spliced aside ("Globex, unlike Acme, lost my data") gives the aside's tail
to the wrong brand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from brandpulse.query import BrandQuery, normalize_text

# A sentence ends after these; ASCII ones only before a space or the end of the text.
_SENTENCE_END = re.compile(r"(?<=[.!?;])(?=\s)|(?<=[…。！？；])|\n+")
_CONTRAST_EN = r"\b(?:but|however|whereas|while|although|though|yet)\b"
_CONTRAST_ZH = r"但是|(?<!不)但|可是|不过|然而|(?<![然因从反进继])而(?!且)"
# Clause breaks: after a comma, or before a contrastive word.
_CLAUSE_BREAK = re.compile(rf"(?<=[,，、])|(?=(?i:{_CONTRAST_EN}))|(?={_CONTRAST_ZH})")
_MARKERS = re.compile(rf"(?i:{_CONTRAST_EN})|{_CONTRAST_ZH}")
# Longer posts are segmented on their first and last half of this many characters, so
# that a 500 KB post costs milliseconds here too (the whole of it: 2.4 s).
MAX_SEGMENT_CHARS = 20_000
_SPACED_WORD = re.compile(r"[^\W\d_]{2,}")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def split_clauses(text: str) -> list[str]:
    """The post's clauses in order (steps 1 and 2 above), blank ones dropped."""
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        for clause in _CLAUSE_BREAK.split(sentence):
            if clause.strip():
                out.append(clause.strip())
    return out


def _enough_besides(query: BrandQuery, text: str) -> bool:
    """Whether `text`, without the brand's own terms and contrastive words, can be judged."""
    norm = normalize_text(text)
    for start, end in reversed(query.term_spans(text)):
        norm = norm[:start] + " " + norm[end:]
    rest = _MARKERS.sub(" ", norm)
    return len(_SPACED_WORD.findall(rest)) + len(_CJK.findall(rest)) / 2 >= 1


def brand_texts(body: str, brands: Mapping[str, BrandQuery]) -> dict[str, str | None]:
    """Per brand (in the order given), the text its sentiment is scored on, or None for
    the post's own sentiment (see the module docstring)."""
    if len(brands) == 1:
        # Every clause is its (named, or attached to it): the post's result serves.
        return dict.fromkeys(brands)
    if len(body) > MAX_SEGMENT_CHARS:
        # A huge post is segmented on its head and tail only, as it is scored (the
        # scorer's cap keeps its first and last tokens); a brand named only in the
        # middle gets the post's result.
        half = MAX_SEGMENT_CHARS // 2
        body = body[:half] + "\n" + body[-half:]
    clauses = split_clauses(body)
    named = [[name for name, query in brands.items() if query.term_spans(clause)]
             for clause in clauses]
    owners: list[list[str]] = []
    last: list[str] = []
    for names in named:
        if names:
            last = names
        owners.append(names or last)
    # Clauses before the first named brand belong to the first brand named after them.
    first = next((names for names in named if names), [])
    owners = [names or first for names in owners]

    out: dict[str, str | None] = {}
    for name, query in brands.items():
        mine = [clause for clause, names in zip(clauses, owners, strict=True) if name in names]
        if not mine or len(mine) == len(clauses):
            out[name] = None
            continue
        text = " ".join(mine)
        out[name] = text if _enough_besides(query, text) else None
    return out


def queries_for(names: Sequence[str], known: Mapping[str, BrandQuery]) -> dict[str, BrandQuery]:
    """The queries of a mention's brands: the configured query where known, else the
    brand's name as a phrase (a mention scored outside the daemon, or a brand since
    removed from the config, is still located by its name)."""
    from brandpulse.query import compile_query

    out: dict[str, BrandQuery] = {}
    for name in names:
        query = known.get(name)
        if query is None:
            query = compile_query('"' + name.replace('"', "") + '"')
        out[name] = query
    return out
