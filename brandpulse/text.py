"""Text that every stage can store, send and show: one cleaning helper.

Posts arrive with whatever their sites hold: a lone UTF-16 surrogate (half of an
emoji cut by a careless API, or `\\ud83d` from a JSON escape), NUL and other control
characters, Unicode non-characters. Python strings carry them, but UTF-8 cannot
encode a lone surrogate (the spool's `.encode()` raises) and they mean nothing to a
reader. Such a character is never a reason to drop a post or a batch: `clean_text`
replaces a lone surrogate with U+FFFD (so a reader sees that something was there),
turns vertical tab and form feed into a space, and removes the other control
characters (C0 except tab, newline and carriage return; DEL; C1) and the
non-characters U+FFFE/U+FFFF. Text without such characters is returned unchanged
(the same object), so cleaning is free for the usual post.

The crawlers (`crawlers/text.py`) and the bulk writer (`store/writer.py`) both use it.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"

_BAD = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def _replace(match: re.Match[str]) -> str:
    char = match.group(0)
    if "\ud800" <= char <= "\udfff":
        return REPLACEMENT
    if char in "\x0b\x0c":
        return " "
    return ""


def has_bad_characters(text: str) -> bool:
    return _BAD.search(text) is not None


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced and control characters removed (see module doc)."""
    if _BAD.search(text) is None:
        return text
    return _BAD.sub(_replace, text)


def clean_value(value: Any) -> Any:
    """`clean_text` applied to every string (keys too) inside dicts, lists and tuples."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean_value(v) for v in value)
    return value


def needs_cleaning(value: Any) -> bool:
    """Whether `clean_value(value)` would change anything."""
    if isinstance(value, str):
        return has_bad_characters(value)
    if isinstance(value, dict):
        return any(needs_cleaning(k) or needs_cleaning(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(needs_cleaning(v) for v in value)
    return False
