"""The one text-cleaning helper: what it replaces, what it keeps, and that a clean
text costs nothing."""

from __future__ import annotations

import json

from brandpulse.text import REPLACEMENT, clean_text, clean_value, needs_cleaning


def test_lone_surrogates_become_the_replacement_character_and_encode():
    text = "Acme \ud83d broke \udc00 again"
    cleaned = clean_text(text)
    assert cleaned == f"Acme {REPLACEMENT} broke {REPLACEMENT} again"
    cleaned.encode("utf-8")  # the raw text raises UnicodeEncodeError here


def test_control_characters_go_and_whitespace_stays():
    text = "a\x00b\x07c\x1bd\x7fe\x85f\tg\nh\ri\x0bj\x0ck\ufffel"
    assert clean_text(text) == "abcdef\tg\nh\ri j kl"


def test_real_text_is_untouched_and_not_copied():
    text = "阿克米 😀 Acme — “quotes” \t\n ok"
    assert clean_text(text) is text
    assert not needs_cleaning({"a": [text, 1, None]})


def test_clean_value_walks_documents():
    doc = {"text": "x\x00y", "brands": ["A\ud800"], "n": 3, "k\x01": True}
    cleaned = clean_value(doc)
    assert cleaned == {"text": "xy", "brands": [f"A{REPLACEMENT}"], "n": 3, "k": True}
    assert needs_cleaning(doc) and not needs_cleaning(cleaned)
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")
