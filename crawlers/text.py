"""Text and time helpers shared by every spider.

Sources hand us HTML fragments (Stack Exchange bodies, HN comments, Discourse
blurbs), entity-escaped text (Reddit without `raw_json`), bytes in odd encodings,
and timestamps as epoch seconds, epoch milliseconds, ISO 8601 or RFC 2822. Every
spider funnels them through here so that the index sees one kind of text and one
kind of time (aware UTC).
"""

from __future__ import annotations

import codecs
import html
import re
import unicodedata
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import lxml.etree
import lxml.html

__all__ = [
    "clean_field",
    "clean_text",
    "decode_body",
    "fix_mojibake",
    "html_to_text",
    "normalize_whitespace",
    "parse_time",
]

# Characters that are never content: C0/C1 controls except tab/newline, and the
# byte-order mark. ZERO WIDTH JOINER (U+200D) and variation selectors are kept on
# purpose: they glue emoji sequences (family, flags, skin tones) together.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u200b]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_NEWLINES = re.compile(r"\n\s*\n(\s*\n)+")
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")
# Typical UTF-8-read-as-cp1252/latin-1 sequences: "Ã©", "â€™", "Ã¼", "Â ".
_MOJIBAKE = re.compile(
    r"[ÃÂâð][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2122]"
)
# Characters cp1252 can encode (ASCII, Latin-1 and cp1252's extra punctuation).
_LEGACY_RUN = re.compile(
    "[\x00-\xff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]+"
)
_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5",
    "h6", "tr", "table", "section", "article", "aside", "header", "footer", "hr",
}  # fmt: skip
_LINE_TAGS = {"br", "li", "tr", "hr"}
_CELL_TAGS = {"td", "th"}
_DROP_TAGS = ("script", "style", "noscript", "template", "head")


def _legacy_bytes(error: UnicodeError) -> tuple[str, int]:
    # Invalid UTF-8 bytes inside otherwise-UTF-8 text are nearly always cp1252
    # (Windows-1252) leftovers; decoding just those bytes keeps the rest intact.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bad.decode("cp1252", errors="replace"), error.end


codecs.register_error("brandpulse_cp1252", _legacy_bytes)


def decode_body(body: bytes, declared: str | None = None) -> str:
    """Bytes from the network -> text, never raising.

    UTF-8 is tried first whatever the server declares, because APIs that say
    ISO-8859-1 by default (a missing charset) almost always send UTF-8. Then a
    declared non-UTF-8 charset; otherwise UTF-8 with each invalid byte read as
    cp1252, so one bad byte neither loses a post nor garbles the valid rest.
    """
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if declared and declared.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            return body.decode(declared)
        except (UnicodeDecodeError, LookupError):
            pass
    return body.decode("utf-8", errors="brandpulse_cp1252")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as cp1252/latin-1 somewhere upstream ("CafÃ©").

    Repaired run by run (a run = characters a legacy codec can hold), so an emoji
    or CJK text next to the damage does not block the repair; a run is only
    replaced when the round trip is lossless and removes the tell-tale sequences,
    so correct text with a real "Ã" in it is left alone.
    """
    if not _MOJIBAKE.search(text):
        return text
    return _LEGACY_RUN.sub(_repair_run, text)


def _repair_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if not _MOJIBAKE.search(run):
        return run
    for legacy in ("cp1252", "latin-1"):
        try:
            repaired = run.encode(legacy).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if len(_MOJIBAKE.findall(repaired)) < len(_MOJIBAKE.findall(run)):
            return repaired
    return run


def scrub_surrogates(text: str) -> str:
    """Text every encoder accepts: surrogate halves that form a pair are joined into
    their character, a lone one (JSON may carry `"\\ud800"`) becomes U+FFFD.

    A lone surrogate cannot be encoded as UTF-8, so a post holding one would fail
    validation or indexing and be lost while the cursor moved past it.
    """
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_field(value: str | None) -> str | None:
    """An id, URL or code from a source: surrogates repaired, control characters
    removed, surrounding space trimmed; None when nothing is left."""
    if value is None:
        return None
    value = _CONTROL.sub("", scrub_surrogates(value)).strip()
    return value or None


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks (at most one blank line)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def clean_text(text: str | None) -> str:
    """Plain text from a source: entities decoded, mojibake repaired, spaces normalised."""
    if not text:
        return ""
    text = scrub_surrogates(text)
    if "&" in text:
        text = html.unescape(text)
        text = scrub_surrogates(text)  # "&#xd800;" unescapes to a lone surrogate
    text = fix_mojibake(text)
    text = unicodedata.normalize("NFC", text)
    return normalize_whitespace(text)


def html_to_text(fragment: str | None) -> str:
    """HTML fragment -> readable plain text.

    Paragraph-like blocks (<p>, <div>, <pre>, headings...) are set off by one blank line,
    also from bare text before or after them; <br>, list items and table rows end a
    line, and a row's cells (<td>, <th>) are kept apart by a space (run together, two
    cells would read as one word or phrase to a brand query: "文件" + "AI" as "文件AI").
    Source newlines right after those (`<br>\\n`) are layout and add nothing,
    except inside <pre>, where whitespace is content.
    """
    if not fragment:
        return ""
    # lxml refuses NUL and other control characters ("All strings must be XML
    # compatible") and cannot encode lone surrogates: both go before parsing.
    fragment = _CONTROL.sub("", scrub_surrogates(fragment))
    if "<" not in fragment:
        return clean_text(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        # Unparseable markup: strip tags crudely rather than lose the post.
        return clean_text(re.sub(r"<[^>]*>", " ", fragment))
    for bad in root.iter(*_DROP_TAGS):
        bad.drop_tree()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        if element.tag in _LINE_TAGS:
            # A list item, row or <br> ends a line. The newline that usually follows
            # it in the source (`<br>\n`, `</li>\n<li>`) is markup layout, not a
            # second break; only inside <pre> is source whitespace content.
            tail = element.tail or ""
            if not _in_pre(element):
                tail = tail.lstrip(" \t\r\n")
            element.tail = "\n" + tail
        elif element.tag in _CELL_TAGS:
            tail = element.tail or ""
            if not _in_pre(element):
                tail = tail.lstrip(" \t\r\n")
            element.tail = " " + tail
        elif element.tag in _BLOCK_TAGS:
            # Paragraph-like blocks are set off by a blank line, also from bare text
            # around them: Hacker News writes `first paragraph<p>second`.
            element.tail = "\n\n" + (element.tail or "")
            element.text = "\n\n" + (element.text or "")
    return clean_text(root.text_content())


def _in_pre(element: lxml.html.HtmlElement) -> bool:
    return any(ancestor.tag == "pre" for ancestor in element.iterancestors())


def parse_time(value: object) -> datetime:
    """Epoch seconds/milliseconds, ISO 8601 or RFC 2822 -> aware UTC datetime.

    Naive times are UTC: every source we read documents its timestamps as UTC.
    Raises ValueError naming the value when it is none of these.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    elif isinstance(value, int | float):
        dt = _from_epoch(float(value))
    elif isinstance(value, str):
        dt = _parse_time_text(value.strip())
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    # Millisecond epochs (JavaScript sources) are 1000x larger than any plausible
    # second epoch: 1e11 s is the year 5138.
    if abs(seconds) >= 1e11:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"epoch timestamp out of range: {seconds!r}") from exc


def _parse_time_text(text: str) -> datetime:
    if not text:
        raise ValueError("empty timestamp")
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _from_epoch(float(text))
    iso = text
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    # Python < 3.12 accepts at most 6 fractional digits; some APIs send 7 or 9.
    iso = re.sub(r"(\.\d{6})\d+", r"\1", iso)
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(
            f"unrecognised timestamp {text!r} (expected epoch, ISO 8601 or RFC 2822)"
        ) from exc
