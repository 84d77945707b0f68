"""The brand query language.

A brand's query is compiled once (:func:`compile_query`) and then used twice: to build
the keyword search each source is asked (:meth:`BrandQuery.search_string`,
:meth:`BrandQuery.search_terms`), and to filter what the source sends back
(:meth:`BrandQuery.matches`), because sources over-match (stemming, fuzzy search,
matches in fields we do not store).

Syntax, loosest-binding first::

    query    := or
    or       := and ("OR" and)*
    and      := not (["AND"] not)*            adjacent terms are an implicit AND
    not      := ("NOT" | "-") not | near
    near     := operand ["NEAR/n" operand]    at most n words between, either order
    operand  := primary                       a term, a phrase or a (x OR y) group of them
    primary  := WORD | "PHRASE" | field:value | "(" or ")"

Operators are upper case (``AND``, ``OR``, ``NOT``) so that lower-case "and", "or" and
"not" stay searchable words; ``NEAR/n`` is accepted in any case because "near/5" is
never a word anyone searches for. The full language, with the matching rules, is
documented in docs/configuration-queries.md.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "BrandQuery",
    "QuerySyntaxError",
    "compile_query",
    "match_brands",
    "normalize_text",
]

# ---------------------------------------------------------------------------
# Normalisation and character classes
# ---------------------------------------------------------------------------

# Scripts written without spaces between words. A term in these scripts cannot
# require word boundaries (小米 must match inside 我的小米手机坏了), and a Latin term
# next to them still counts as delimited (我买了acme手机). Hangul is spaced, but
# particles attach to nouns (삼성은), so substring matching is what users expect there too.
_NOSPACE = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005-\u3007\u3021-\u3029\u3038-\u303c"  # ideographic iteration marks, numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f\uac00-\ud7ff"  # Hangul syllables and Jamo extensions
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana (NFKC maps them, but text may arrive raw)
    "\U00020000-\U0003134f"  # CJK extensions B-G
)


def _combining_marks() -> str:
    # Python's \w does not include combining marks (Mn/Mc), so without this a Hindi
    # term ending in a vowel sign would have no right boundary and match as a prefix of
    # longer words. Scanning only the blocks that hold such marks keeps import cheap.
    blocks = ((0x0300, 0x1DFF), (0x20D0, 0x20FF), (0xA670, 0xABFF), (0xFE00, 0xFE2F))
    ranges: list[tuple[int, int]] = []
    for lo, hi in blocks:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if unicodedata.category(ch) in ("Mn", "Mc") and not ch.isalnum() and ch != "_":
                if ranges and ranges[-1][1] == cp - 1:
                    ranges[-1] = (ranges[-1][0], cp)
                else:
                    ranges.append((cp, cp))
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


_MARKS = _combining_marks()
# A "spaced word" character: a word character of a script that separates words with
# spaces. Only these make a Latin (Cyrillic, Greek, ...) term's edge not a boundary.
_SPACED_WORD = f"(?:[^\\W{_NOSPACE}]|[{_MARKS}])"
_NOSPACE_RE = re.compile(f"[{_NOSPACE}]")
_SPACED_WORD_RE = re.compile(_SPACED_WORD)

# Words for NEAR/n distances: a run of spaced-script word characters (an apostrophe
# inside keeps "don't" one word), or a single character of a no-space script, since
# there is no cheap way to segment Chinese into words.
_WORD_RE = re.compile(f"[{_NOSPACE}]|{_SPACED_WORD}+(?:['\u2019]{_SPACED_WORD}+)*")

# The largest NEAR/n distance: far beyond any post's length, and small enough that
# counting words up to it stays an ordinary integer (NEAR/99999999999999999999 used
# to parse, then make every match raise).
MAX_NEAR_DISTANCE = 10_000

_DASHES = "\\-\u2010-\u2015\u2212"  # hyphen-minus, Unicode hyphens and dashes, minus sign
_APOSTROPHES = "'\u2018\u2019\u02bc"

# Invisible characters that platforms insert (soft hyphens from CMSs, zero-width spaces
# from copy-paste, BOMs) or spammers use to dodge filters; NFKC keeps them.
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]+")

# Full-width ASCII forms and the ideographic space: the only NFKC changes in most
# Chinese and Japanese posts (their comma, colon, brackets...). Mapping them with a regex
# is ~10x faster than unicodedata.normalize, which is slow on long CJK posts.
_FULLWIDTH_RE = re.compile("[\u3000\uff01-\uff5e]")
_FULLWIDTH_MAP = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}


def _unfullwidth(m: re.Match[str]) -> str:
    return _FULLWIDTH_MAP[m.group()]


def normalize_text(text: str) -> str:
    """NFKC + casefold, invisible characters removed: the form queries and posts are compared in."""
    if text.isascii():
        # ASCII is already NFKC and its casefold is lower(); this is the common case
        # and skips every other step.
        return text.lower()
    if not unicodedata.is_normalized("NFKC", text):
        # Replacing a character by its own compatibility mapping does not change the
        # NFKC result, so the full normalisation is only needed if something else remains.
        text = _FULLWIDTH_RE.sub(_unfullwidth, text)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
    if _INVISIBLE_RE.search(text):
        text = _INVISIBLE_RE.sub("", text)
    return text.casefold()


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class QuerySyntaxError(ValueError):
    """A query that does not parse; `position` is a 0-based character index into `query`."""

    def __init__(self, message: str, position: int, query: str = "") -> None:
        super().__init__(message, position, query)
        self.message = message
        self.position = position
        self.query = query

    def __str__(self) -> str:
        head = f"{self.message} at position {self.position}"
        if not self.query:
            return head
        # Show only the line holding the position (YAML block scalars make multi-line
        # queries possible) and measure the caret in terminal columns, because CJK
        # characters are two columns wide and would push it out of place.
        start = self.query.rfind("\n", 0, self.position) + 1
        end = self.query.find("\n", self.position)
        line = self.query[start : end if end >= 0 else len(self.query)]
        line = line.replace("\t", " ").replace("\r", " ")
        column = sum(_display_width(ch) for ch in line[: self.position - start])
        return f"{head}\n  {line}\n  {' ' * column}^"


def _display_width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# ---------------------------------------------------------------------------
# Syntax tree; every node evaluates itself against a _Post
# ---------------------------------------------------------------------------


class _Post:
    """One post being matched, with the costly derived forms computed on first use."""

    __slots__ = ("_host_path", "author", "language", "text", "url")

    def __init__(
        self, text: str, url: str | None, author: str | None, language: str | None
    ) -> None:
        self.text = normalize_text(text)
        self.url = url
        self.author = author
        self.language = language
        self._host_path: tuple[str, str] | None = None

    def host_path(self) -> tuple[str, str]:
        if self._host_path is None:
            self._host_path = _split_url(self.url or "")
        return self._host_path


def _split_url(url: str) -> tuple[str, str]:
    """(host, path) of a URL, lower-cased; a missing scheme is tolerated."""
    url = url.strip()
    if "//" not in url:
        url = "//" + url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "", ""
    return host.rstrip(".").casefold(), parts.path or "/"


_Matcher = Callable[[_Post], bool]


class _Node:
    __slots__ = ()

    # Rough relative cost of evaluating the node, so AND/OR can try cheap children
    # first; their children have no side effects, so the order is free to choose.
    cost = 1

    def compile(self) -> _Matcher:
        """A closure that evaluates the node; closures avoid per-node method dispatch."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, eq=False)
class _Term(_Node):
    """A bare word or a quoted phrase."""

    display: str  # as written (NFKC, case kept), for search strings
    key: str  # normalised form, for de-duplication
    phrase: bool
    pattern: re.Pattern[str]
    position: int

    def compile(self) -> _Matcher:
        search = self.pattern.search
        return lambda post: search(post.text) is not None

    def search_form(self) -> str:
        return f'"{self.display}"' if self.phrase else self.display


@dataclass(frozen=True, slots=True, eq=False)
class _Field(_Node):
    name: Literal["site", "author", "lang"]
    value: str
    test: _Matcher
    cost = 0

    def compile(self) -> _Matcher:
        return self.test


@dataclass(frozen=True, slots=True, eq=False)
class _Not(_Node):
    child: _Node

    @property
    def cost(self) -> int:  # type: ignore[override]
        return self.child.cost

    def compile(self) -> _Matcher:
        inner = self.child.compile()
        return lambda post: not inner(post)


def _ordered(children: tuple[_Node, ...]) -> tuple[_Matcher, ...]:
    return tuple(c.compile() for c in sorted(children, key=lambda c: c.cost))


@dataclass(frozen=True, slots=True, eq=False)
class _And(_Node):
    children: tuple[_Node, ...]

    @property
    def cost(self) -> int:  # type: ignore[override]
        return sum(c.cost for c in self.children)

    def compile(self) -> _Matcher:
        parts = _ordered(self.children)
        if len(parts) == 2:
            a, b = parts
            return lambda post: a(post) and b(post)

        def all_match(post: _Post) -> bool:
            # A plain loop: all() over a generator costs a frame per post on the hot path.
            for part in parts:  # noqa: SIM110
                if not part(post):
                    return False
            return True

        return all_match


@dataclass(frozen=True, slots=True, eq=False)
class _Or(_Node):
    children: tuple[_Node, ...]

    @property
    def cost(self) -> int:  # type: ignore[override]
        return sum(c.cost for c in self.children)

    def compile(self) -> _Matcher:
        parts = _ordered(self.children)
        if len(parts) == 2:
            a, b = parts
            return lambda post: a(post) or b(post)

        def any_match(post: _Post) -> bool:
            for part in parts:  # noqa: SIM110 - see all_match
                if part(post):
                    return True
            return False

        return any_match


@dataclass(frozen=True, slots=True, eq=False)
class _Near(_Node):
    """Some left alternative and some right alternative with at most `distance` words between."""

    left: tuple[_Term, ...]
    right: tuple[_Term, ...]
    distance: int
    cost = 10

    def compile(self) -> _Matcher:
        return self.test

    def test(self, post: _Post) -> bool:
        text = post.text
        # Cheap presence checks first: most posts fail here and never pay for
        # finditer and word segmentation.
        if not any(t.pattern.search(text) for t in self.left):
            return False
        if not any(t.pattern.search(text) for t in self.right):
            return False
        lspans = [m.span() for t in self.left for m in t.pattern.finditer(text)]
        rspans = [m.span() for t in self.right for m in t.pattern.finditer(text)]
        # Only the nearest right occurrence after and before each left one can be
        # within the distance (a wider gap holds at least as many words), so the
        # work is linear in the occurrences, not their product: a post repeating
        # both terms thousands of times took minutes when every pair was tried.
        # Overlapping spans are one occurrence, not two near each other, so
        # `acme NEAR/2 acme` needs acme twice: they are neither after nor before.
        by_start = sorted(rspans)
        starts = [rs for rs, _ in by_start]
        by_end = sorted(rspans, key=lambda span: span[1])
        ends = [re_ for _, re_ in by_end]
        # Of the left occurrences sharing a nearest right one, only the closest
        # counts: each gap is then segmented once, so the total is about one pass.
        gaps: dict[tuple[str, int], tuple[int, int]] = {}
        for ls, le in lspans:
            after = bisect_left(starts, le)
            if after < len(by_start):
                gap = gaps.get(("after", after))
                if gap is None or le > gap[0]:
                    gaps["after", after] = (le, by_start[after][0])
            before = bisect_right(ends, ls) - 1
            if before >= 0:
                gap = gaps.get(("before", before))
                if gap is None or ls < gap[1]:
                    gaps["before", before] = (by_end[before][1], ls)
        return any(_words_within(text, start, end, self.distance) for start, end in gaps.values())


def _words_within(text: str, start: int, end: int, limit: int) -> bool:
    """Whether text[start:end] holds at most `limit` words."""
    # Only the gap is segmented, and only until the limit is passed: segmenting
    # whole posts costs far more than the regex searches themselves.
    words = islice(_WORD_RE.finditer(text, start, end), limit + 1)
    return sum(1 for _ in words) <= limit


def _walk(node: _Node, negated: bool = False) -> Iterator[tuple[_Node, bool]]:
    """Every node with whether it sits under an odd number of NOTs."""
    yield node, negated
    if isinstance(node, _Not):
        yield from _walk(node.child, not negated)
    elif isinstance(node, _And | _Or):
        for child in node.children:
            yield from _walk(child, negated)
    elif isinstance(node, _Near):
        for term in (*node.left, *node.right):
            yield term, negated


# ---------------------------------------------------------------------------
# Term patterns and field tests
# ---------------------------------------------------------------------------


def _term_pattern(norm: str) -> re.Pattern[str]:
    """Regex for a normalised term or phrase; see docs for the boundary/hyphen rules."""
    parts: list[str] = []
    literal_prefix = 0  # leading parts that are one plain character each
    n = len(norm)
    i = 0
    while i < n:
        ch = norm[i]
        prev = norm[i - 1] if i else ""
        if ch.isspace():
            j = i
            while j < n and norm[j].isspace():
                j += 1
            nxt = norm[j] if j < n else ""
            if _NOSPACE_RE.match(prev) and _NOSPACE_RE.match(nxt):
                # "小米 手机" is how people type two Chinese words; the text has no space.
                parts.append(r"\s*")
            else:
                # Line breaks and hyphens between phrase words are incidental formatting.
                parts.append(f"[\\s{_DASHES}]+")
            i = j
            continue
        nxt = norm[i + 1] if i + 1 < n else ""
        between_words = bool(_SPACED_WORD_RE.match(prev)) and bool(_SPACED_WORD_RE.match(nxt))
        if between_words and re.match(f"[{_DASHES}]", ch):
            # coca-cola also finds "Coca Cola" and "CocaCola", spelled all three ways.
            parts.append(f"(?:[{_DASHES}]|\\s+)?")
        elif between_words and ch in _APOSTROPHES:
            # mcdonald's also finds "McDonald’s" (typographic) and "McDonalds".
            parts.append(f"[{_APOSTROPHES}]?")
        else:
            parts.append(re.escape(ch))
            if literal_prefix == len(parts) - 1:
                literal_prefix += 1
        i += 1
    if _SPACED_WORD_RE.match(norm[0]):
        # The left boundary is checked *after* the literal prefix, looking back past it:
        # a pattern that starts with a lookbehind loses re's fast literal-prefix scan
        # and runs about 10x slower.
        parts.insert(literal_prefix, f"(?<!{_SPACED_WORD}(?s:.{{{literal_prefix}}}))")
    if _SPACED_WORD_RE.match(norm[-1]):
        parts.append(f"(?!{_SPACED_WORD})")
    return re.compile("".join(parts))


def _site_test(value: str) -> Callable[[_Post], bool]:
    host, path = _split_url(value)
    host = host.removeprefix("*.")
    suffix = "." + host
    has_path = path not in ("", "/")
    path = path.rstrip("/")

    def test(post: _Post) -> bool:
        if not post.url:
            return False
        post_host, post_path = post.host_path()
        if post_host != host and not post_host.endswith(suffix):
            return False
        if not has_path:
            return True
        # site:reddit.com/r/acme covers /r/acme and /r/acme/..., not /r/acmeville.
        return post_path.casefold().rstrip("/") == path or post_path.casefold().startswith(
            path + "/"
        )

    return test


def _author_key(author: str) -> str:
    return normalize_text(author.strip()).removeprefix("@")


def _author_test(value: str) -> Callable[[_Post], bool]:
    wanted = _author_key(value)
    bare = "@" not in wanted

    def test(post: _Post) -> bool:
        if not post.author:
            return False
        got = _author_key(post.author)
        if got == wanted:
            return True
        # author:acme also covers the fediverse handle acme@mastodon.social; give the
        # full handle in the query to pin one instance.
        return bare and got.split("@", 1)[0] == wanted

    return test


_LANG_CODE = re.compile(r"[a-z]{2,3}")


def _lang_test(value: str) -> Callable[[_Post], bool]:
    def test(post: _Post) -> bool:
        if not post.language:
            return False
        # Tolerate region tags ("en-US", "pt_BR") although mentions should carry bare codes.
        got = post.language.strip().casefold().replace("_", "-").split("-", 1)[0]
        return got == value

    return test


# ---------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------

_OPEN_QUOTES = '"\uff02\u201c\u201e'
_CLOSE_QUOTES = '"\uff02\u201d\u201c'
_OPEN_PARENS = "(\uff08"
_CLOSE_PARENS = ")\uff09"
_MINUS = "-\uff0d\u2212"
_FIELD_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_]*)[:\uff1a](.*)", re.S)
_NEAR = re.compile(r"near(?:/(.*))?", re.I | re.S)
_FIELDS = ("site", "author", "lang")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["word", "phrase", "field", "and", "or", "not", "near", "(", ")", "end"]
    text: str  # as written, for error messages
    pos: int
    value: str = ""  # word/phrase text, field value
    field: str = ""
    number: int = 0


def _tokenize(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    n = len(query)
    i = 0

    def read_phrase(start: int) -> tuple[str, int]:
        # `start` is at the opening quote; returns (content, index after closing quote).
        j = start + 1
        while j < n and query[j] not in _CLOSE_QUOTES:
            j += 1
        if j >= n:
            raise QuerySyntaxError("unterminated phrase: expected a closing '\"'", start, query)
        return query[start + 1 : j], j + 1

    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in _OPEN_PARENS:
            toks.append(_Tok("(", ch, i))
            i += 1
        elif ch in _CLOSE_PARENS:
            toks.append(_Tok(")", ch, i))
            i += 1
        elif ch in _OPEN_QUOTES:
            content, end = read_phrase(i)
            toks.append(_Tok("phrase", query[i:end], i, value=content))
            i = end
        elif ch in _MINUS:
            nxt = query[i + 1] if i + 1 < n else ""
            if not nxt or nxt.isspace() or nxt in _CLOSE_PARENS:
                raise QuerySyntaxError("expected a term after '-'", i + 1, query)
            toks.append(_Tok("not", ch, i))
            i += 1
        else:
            j = i
            while (
                j < n
                and not query[j].isspace()
                and query[j] not in _OPEN_PARENS
                and query[j] not in _CLOSE_PARENS
                and query[j] not in _OPEN_QUOTES
            ):
                j += 1
            raw = query[i:j]
            word = unicodedata.normalize("NFKC", raw)
            if word in ("AND", "OR", "NOT"):
                toks.append(_Tok(word.lower(), raw, i))  # type: ignore[arg-type]
                i = j
                continue
            near = _NEAR.fullmatch(word)
            if near and (word.isupper() or near.group(1) is not None):
                digits = near.group(1)
                if digits is None:
                    raise QuerySyntaxError(
                        "expected 'NEAR/n' with a word distance n, e.g. NEAR/5", i, query
                    )
                if not digits.isdigit() or not digits.isascii():
                    raise QuerySyntaxError("expected a number of words after 'NEAR/'", i + 5, query)
                if int(digits) > MAX_NEAR_DISTANCE:
                    raise QuerySyntaxError(
                        f"NEAR distance {digits} is too large (at most {MAX_NEAR_DISTANCE} words)",
                        i + 5, query,
                    )  # fmt: skip
                toks.append(_Tok("near", raw, i, number=int(digits)))
                i = j
                continue
            field = _FIELD_PREFIX.fullmatch(word)
            if field and field.group(1).lower() in _FIELDS:
                name = field.group(1).lower()
                value = field.group(2)
                end = j
                if not value and j < n and query[j] in _OPEN_QUOTES:
                    value, end = read_phrase(j)
                if not value.strip():
                    raise QuerySyntaxError(f"expected a value after '{name}:'", j, query)
                toks.append(_Tok("field", query[i:end], i, value=value.strip(), field=name))
                i = end
                continue
            if field and field.group(2):
                # A typo such as `sit:reddit.com` would otherwise silently become a
                # search term that never matches.
                raise QuerySyntaxError(
                    f"unknown field '{field.group(1)}:' (expected site:, author: or lang:;"
                    " put the word in quotes to search for it as text)",
                    i,
                    query,
                )
            toks.append(_Tok("word", raw, i, value=raw))
            i = j
    toks.append(_Tok("end", "", n))
    return toks


# ---------------------------------------------------------------------------
# Parser (recursive descent, one function per precedence level)
# ---------------------------------------------------------------------------

_STARTS_OPERAND = ("word", "phrase", "field", "(", "not")


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _tokenize(query)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, position: int) -> QuerySyntaxError:
        return QuerySyntaxError(message, position, self.query)

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise self.error("expected a term, phrase or '(' in an empty query", 0)
        node = self.parse_or(after=None)
        tok = self.peek()
        if tok.kind == ")":
            raise self.error("unbalanced parenthesis", tok.pos)
        if tok.kind == "near":
            raise self.error(
                "NEAR cannot be chained; expected AND, OR or the end of the query", tok.pos
            )
        if tok.kind != "end":  # pragma: no cover - every other token continues an AND
            raise self.error("expected AND, OR or the end of the query", tok.pos)
        return node

    def parse_or(self, after: _Tok | None) -> _Node:
        children = [self.parse_and(after)]
        while self.peek().kind == "or":
            op = self.take()
            children.append(self.parse_and(op))
        return children[0] if len(children) == 1 else _Or(tuple(children))

    def parse_and(self, after: _Tok | None) -> _Node:
        children = [self.parse_not(after)]
        while True:
            tok = self.peek()
            if tok.kind == "and":
                self.take()
                children.append(self.parse_not(tok))
            elif tok.kind in _STARTS_OPERAND:
                children.append(self.parse_not(None))
            else:
                break
        return children[0] if len(children) == 1 else _And(tuple(children))

    def parse_not(self, after: _Tok | None) -> _Node:
        tok = self.peek()
        if tok.kind == "not":
            self.take()
            return _Not(self.parse_not(tok))
        return self.parse_near(after)

    def parse_near(self, after: _Tok | None) -> _Node:
        left = self.parse_primary(after)
        tok = self.peek()
        if tok.kind != "near":
            return left
        self.take()
        operand_pos = self.peek().pos
        right = self.parse_primary(tok)
        return _Near(
            self.near_operand(left, tok.pos),
            self.near_operand(right, operand_pos),
            tok.number,
        )

    def near_operand(self, node: _Node, position: int) -> tuple[_Term, ...]:
        if isinstance(node, _Term):
            return (node,)
        if isinstance(node, _Or) and all(isinstance(c, _Term) for c in node.children):
            return tuple(c for c in node.children if isinstance(c, _Term))
        raise self.error(
            "expected a term, phrase or (x OR y) group of them on each side of NEAR", position
        )

    def parse_primary(self, after: _Tok | None) -> _Node:
        tok = self.take()
        if tok.kind == "word":
            return self.make_term(tok.value, tok.pos, phrase=False)
        if tok.kind == "phrase":
            return self.make_term(tok.value, tok.pos, phrase=True)
        if tok.kind == "field":
            return self.make_field(tok)
        if tok.kind == "(":
            if self.peek().kind == ")":
                raise self.error("expected a term after '('", self.peek().pos)
            node = self.parse_or(tok)
            close = self.peek()
            if close.kind != ")":
                if close.kind == "near":
                    raise self.error("NEAR cannot be chained; expected AND, OR or ')'", close.pos)
                raise self.error("unbalanced parenthesis", tok.pos)
            self.take()
            return node
        self.i -= 1
        if after is not None:
            raise self.error(f"expected a term after '{after.text}'", tok.pos)
        if tok.kind == ")":
            raise self.error("unbalanced parenthesis", tok.pos)
        raise self.error(f"expected a term before '{tok.text}'", tok.pos)

    def make_term(self, raw: str, position: int, *, phrase: bool) -> _Term:
        display = " ".join(unicodedata.normalize("NFKC", raw).split())
        norm = " ".join(normalize_text(raw).split())
        if not norm:
            raise self.error("empty phrase" if phrase else "empty term", position)
        return _Term(display, norm, phrase, _term_pattern(norm), position)

    def make_field(self, tok: _Tok) -> _Field:
        value = unicodedata.normalize("NFKC", tok.value)
        if tok.field == "site":
            return _Field("site", value, _site_test(value))
        if tok.field == "author":
            return _Field("author", value, _author_test(value))
        code = value.casefold()
        if not _LANG_CODE.fullmatch(code):
            raise self.error(
                "expected a two-letter ISO 639-1 language code such as 'en' after 'lang:'",
                tok.pos + len("lang:"),
            )
        return _Field("lang", code, _lang_test(code))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


class BrandQuery:
    """A compiled brand query. Build it with :func:`compile_query` (cached)."""

    __slots__ = ("_match", "_root", "_terms", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._root = _Parser(text).parse()
        self._match = self._root.compile()
        terms: dict[str, _Term] = {}
        for node, negated in _walk(self._root):
            if isinstance(node, _Term) and not negated:
                terms.setdefault(node.key if not node.phrase else f'"{node.key}"', node)
        if not terms:
            # Such a query can neither be searched for nor select anything sensible:
            # `NOT acme` matches nearly every post on the internet.
            raise QuerySyntaxError(
                "expected at least one term or phrase that is not under NOT", 0, text
            )
        self._terms = tuple(terms.values())

    def __repr__(self) -> str:
        return f"BrandQuery({self.text!r})"

    def matches(
        self,
        text: str,
        *,
        url: str | None = None,
        author: str | None = None,
        language: str | None = None,
    ) -> bool:
        """Whether a post (its text, plus metadata for site:/author:/lang:) matches."""
        return self._match(_Post(text, url, author, language))

    def term_spans(self, text: str) -> list[tuple[int, int]]:
        """Where the query's positive terms (those of `search_terms`) occur, sorted.

        Spans index ``normalize_text(text)``, where matching happens; they are found
        with the very patterns `matches` uses (same boundaries, hyphen and apostrophe
        rules). Per-brand sentiment uses them to find which clauses of a post name the
        brand. Field filters (site:, author:, lang:) have no place in the text.
        """
        norm = normalize_text(text)
        return sorted(m.span() for t in self._terms for m in t.pattern.finditer(norm))

    def search_terms(self) -> list[str]:
        """Positive terms and phrases (not under NOT), phrases in quotes, in query order."""
        return [t.search_form() for t in self._terms]

    def search_string(self, *, style: Literal["boolean", "or_terms"] = "boolean") -> str:
        """The query as a source's keyword search understands it.

        "boolean" keeps AND/OR/NOT, quotes and parentheses, turns NEAR into AND and drops
        field filters (matches() applies them afterwards). "or_terms" is the positive
        terms joined by ' OR '. Both only ever widen the query, except that an OR branch
        made only of field filters cannot be searched for (see the docs).
        """
        if style == "or_terms":
            return " OR ".join(self.search_terms())
        if style != "boolean":
            raise ValueError(f"unknown search string style {style!r}")
        rendered = _render(self._root)
        return rendered[0] if rendered else " OR ".join(self.search_terms())


# Binding strength of rendered sub-expressions, to know where parentheses are needed.
_P_OR, _P_AND, _P_NOT, _P_ATOM = range(4)


def _render(node: _Node) -> tuple[str, int] | None:
    """Boolean search text for `node`, or None where it adds no searchable constraint."""
    if isinstance(node, _Term):
        return node.search_form(), _P_ATOM
    if isinstance(node, _Field):
        return None
    if isinstance(node, _Near):
        sides = []
        for side in (node.left, node.right):
            words = " OR ".join(t.search_form() for t in side)
            sides.append(f"({words})" if len(side) > 1 else words)
        return " AND ".join(sides), _P_AND
    if isinstance(node, _Not):
        # Dropping a filter inside NOT would narrow the search (NOT (a site:x) is wider
        # than NOT a), losing posts matches() would accept; drop the whole NOT instead.
        if any(isinstance(n, _Field) for n, _ in _walk(node.child)):
            return None
        inner = _render(node.child)
        if inner is None:  # pragma: no cover - only fields render to None
            return None
        text, prec = inner
        return ("NOT " + (text if prec >= _P_NOT else f"({text})")), _P_NOT
    if isinstance(node, _And | _Or):
        is_and = isinstance(node, _And)
        parts = [r for r in map(_render, node.children) if r is not None]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        if is_and:
            return " AND ".join(t if p >= _P_AND else f"({t})" for t, p in parts), _P_AND
        # AND inside OR is parenthesised although precedence makes it redundant: source
        # search engines do not agree on whether AND or OR binds tighter.
        return " OR ".join(t if p > _P_AND else f"({t})" for t, p in parts), _P_OR
    raise TypeError(f"unknown query node {node!r}")  # pragma: no cover


@functools.lru_cache(maxsize=4096)
def compile_query(text: str) -> BrandQuery:
    """Parse and compile a brand query; raises QuerySyntaxError. Cached by text."""
    return BrandQuery(text)


def match_brands(
    brands: Sequence[tuple[str, BrandQuery]],
    text: str,
    *,
    url: str | None = None,
    author: str | None = None,
    language: str | None = None,
) -> list[str]:
    """Names of the brands whose query matches the post, in the order given."""
    # One normalisation of the text serves every brand.
    post = _Post(text, url, author, language)
    return [name for name, query in brands if query._match(post)]
