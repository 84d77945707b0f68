"""Every crawler fixture says where it comes from (issue #16).

The contract lives in tests/crawlers/fixtures/README.md: one table row per fixture file
(platform, status, source), and for the formats that can carry a comment (HTML, XML,
robots.txt) a ``Provenance: <status>`` line in the file's own header that agrees with the
row. JSON, CSV and JSON Lines bodies cannot hold a comment without changing what the
local server replays, so for them the row is the header. A fixture added without either,
a row left behind by a deleted file, or a "recorded" row that cites nothing fails here.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.crawlers.conftest import FIXTURES

README = FIXTURES / "README.md"
STATUSES = frozenset({"recorded", "composed", "reconstructed", "written"})
# Formats whose files carry their own header comment.
COMMENTED = frozenset({".html", ".xml", ".txt"})
# What a recorded or composed row must cite: a repository commit, a code index id, or the
# explicit admission that the source could not be cited.
CITATION = re.compile(r"\b[0-9a-f]{40}\b|index ids? \d+|not citable")
# How far Scrapy (w3lib's html_body_declared_encoding) looks for a <meta> charset.
CHARSET_WINDOW = 4096
ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \| (?P<platform>[^|]+) \| (?P<status>[^|]+) \| (?P<source>.+) \|$"
)


def fixture_files() -> list[str]:
    """Every fixture file, as ``<dir>/<name>``: all files under fixtures/ except READMEs."""
    return sorted(
        path.relative_to(FIXTURES).as_posix()
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.name != "README.md" and "__pycache__" not in path.parts
    )


def table() -> dict[str, dict[str, str]]:
    """The README's rows by file; a file listed twice is an error of the table."""
    rows: dict[str, dict[str, str]] = {}
    for line in README.read_text("utf-8").splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        row = {key: value.strip() for key, value in match.groupdict().items()}
        assert row["file"] not in rows, f"{row['file']} is listed twice in {README}"
        rows[row["file"]] = row
    return rows


def test_every_fixture_file_has_exactly_one_row_and_every_row_a_file():
    rows = table()
    files = fixture_files()
    assert files, "no fixture files found"
    missing = [name for name in files if name not in rows]
    assert missing == [], f"fixture files without a provenance row in {README}: {missing}"
    stale = sorted(set(rows) - set(files))
    assert stale == [], f"rows of {README} naming no fixture file: {stale}"


def test_the_summary_counts_agree_with_the_rows():
    """The audit's opening sentence ("(N files: a recorded, ...)") is what readers quote;
    it must say what the table says."""
    summary = re.search(
        r"\((\d+) files: (\d+) recorded, (\d+) composed, (\d+) reconstructed, (\d+) written\)",
        README.read_text("utf-8"),
    )
    assert summary, f"no '(N files: a recorded, b composed, ...)' sentence in {README}"
    rows = table()
    counts = Counter(row["status"] for row in rows.values())
    expected = (
        len(rows),
        *(counts[s] for s in ("recorded", "composed", "reconstructed", "written")),
    )
    assert tuple(int(n) for n in summary.groups()) == expected, (
        f"{README} says {summary.group(0)}; its rows count (files, recorded, composed, "
        f"reconstructed, written) = {expected}"
    )


@pytest.mark.parametrize("name", sorted(table()))
def test_row_has_a_known_status_and_recorded_rows_cite_their_source(name):
    row = table()[name]
    assert row["status"] in STATUSES, f"{name}: status {row['status']!r} not in {sorted(STATUSES)}"
    assert row["platform"] and row["source"], f"{name}: empty platform or source"
    if row["status"] in ("recorded", "composed"):
        assert CITATION.search(row["source"]), (
            f"{name}: a {row['status']} fixture names a commit, a code index id or says "
            f"'not citable'; its source is: {row['source']}"
        )


@pytest.mark.parametrize("name", [n for n in fixture_files() if Path(n).suffix in COMMENTED])
def test_commentable_fixture_carries_its_provenance_line_agreeing_with_the_table(name):
    head = (FIXTURES / name).read_bytes()[:8192].decode("latin-1")  # the line is ASCII
    found = re.findall(r"Provenance: ([a-z]+)", head)
    assert found, f"{name}: no 'Provenance: <status>' line in its header"
    assert found[0] == table()[name]["status"], (
        f"{name}: header says {found[0]!r}, the table {table()[name]['status']!r}"
    )


@pytest.mark.parametrize("name", [n for n in fixture_files() if n.endswith(".html")])
def test_a_header_never_pushes_the_declared_charset_out_of_the_sniffed_bytes(name):
    body = (FIXTURES / name).read_bytes()
    meta = re.search(rb"<meta[^>]+charset", body, re.IGNORECASE)
    if meta is not None:
        assert meta.start() < CHARSET_WINDOW, (
            f"{name}: its <meta> charset starts at byte {meta.start()}, past the "
            f"{CHARSET_WINDOW} bytes Scrapy reads to decode the page"
        )
