"""crawlers.text: HTML to text, encodings, mojibake, times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from crawlers.text import clean_text, decode_body, html_to_text, normalize_whitespace, parse_time


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello &amp; <b>world</b></p><p>second&nbsp;para</p>", "Hello & world\n\nsecond para"),
        ("line<br>break<br/>again", "line\nbreak\nagain"),
        ("<script>alert(1)</script><style>p{}</style>kept", "kept"),
        ("Acme&#x27;s &quot;new&quot; plan 🚀", 'Acme\'s "new" plan 🚀'),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("<p>unclosed <b>tags", "unclosed tags"),
        # Hacker News: the first paragraph is bare text, the next ones open with <p>.
        ("First para.<p>Second para.<p>Third.", "First para.\n\nSecond para.\n\nThird."),
        ("<p>lead</p>tail text", "lead\n\ntail text"),
        # Stack Exchange: a <br> followed by the source's own newline is one line break.
        ("<p>line one<br>\nline two</p>\n\n<p>next</p>", "line one\nline two\n\nnext"),
        ("<ul>\n<li>one</li>\n<li>two</li>\n</ul>", "one\ntwo"),
        # Inside <pre> the source newlines are the content.
        ("<pre><code>a = 1\nb = 2\n</code></pre>", "a = 1\nb = 2"),
        # A table: a line per row, cells apart (a recorded Zhihu answer's table ran
        # together, see test_zhihu.py), whatever the source layout between them.
        ("<table><tr><th>A</th><th>B</th></tr><tr><td>x</td><td>y</td></tr></table>", "A B\nx y"),
        ("<table>\n<tr>\n<td>Acme</td>\n<td>Rocket</td>\n</tr>\n</table>", "Acme Rocket"),
        ("", ""),
        (None, ""),
    ],
)
def test_html_to_text(html, text):
    assert html_to_text(html) == text


def test_clean_text_keeps_emoji_sequences_and_drops_controls():
    family = "👨\u200d👩\u200d👧"
    assert clean_text(f"a\x00b\u200b c  {family}\r\n\r\n\r\n\r\nd\ufeff") == f"ab c {family}\n\nd"


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("CafÃ© costs â‚¬5 â€” itâ€™s ok", "Café costs €5 — it’s ok"),
        ("emoji nearby 😀 Ã¼ber", "emoji nearby 😀 über"),
        ("Real Ãx and São Paulo stay", "Real Ãx and São Paulo stay"),
        ("中文 naïve", "中文 naïve"),
    ],
)
def test_mojibake_is_repaired_only_when_it_is_mojibake(raw, fixed):
    assert clean_text(raw) == fixed


def test_decode_body_handles_bad_bytes_without_losing_the_rest():
    assert decode_body("é😀".encode() + b" caf\xe9") == "é😀 café"
    assert decode_body(b"\xef\xbb\xbfbom") == "bom"
    assert decode_body("Grüße".encode("latin-1"), "iso-8859-1") == "Grüße"


def test_normalize_whitespace():
    assert normalize_whitespace("  a \t b\u00a0c \n  d  ") == "a b c\nd"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1704189600, datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        (1704189600.5, datetime(2024, 1, 2, 10, 0, 0, 500000, tzinfo=UTC)),
        (1704189600000, datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),  # milliseconds
        ("1704189600", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("2024-01-02T10:00:00Z", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("2024-01-02T11:00:00+01:00", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("2024-01-02T10:00:00.1234567Z", datetime(2024, 1, 2, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-02T10:00:00", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),  # naive = UTC
        ("Tue, 02 Jan 2024 11:00:00 +0100", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        ("Tue, 02 Jan 2024 10:00:00 GMT", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        (
            datetime(2024, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
        ),
    ],
)
def test_parse_time_to_utc(value, expected):
    parsed = parse_time(value)
    assert parsed == expected and parsed.tzinfo == UTC


@pytest.mark.parametrize("bad", ["yesterday", "", None, True, [], "2024-13-45T00:00:00Z"])
def test_parse_time_names_the_bad_value(bad):
    with pytest.raises(ValueError, match="timestamp"):
        parse_time(bad)
