"""The export folder (`type: export_drop`) through the real Scrapy engine.

Files in UTF-8 with BOM, GBK and JSON Lines; a file is read once (by content), only
when settled, malformed rows are faults naming file:line and the good rows arrive.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta

from crawlers.spiders.export_drop import decode_export, read_rows
from tests.crawlers.conftest import FIXTURES
from tests.crawlers.sources_helpers import BRANDS, by_id, faults

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def clock(at: datetime) -> dict[str, str]:
    return {"BRANDPULSE_NOW": at.isoformat(), "LOG_LEVEL": "INFO"}


def drop(folder, name: str, age: timedelta, data: bytes | None = None):
    path = folder / name
    if data is None:
        shutil.copyfile(FIXTURES / "export_drop" / name, path)
    else:
        path.write_bytes(data)
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def source(folder, **extra):
    return {
        "type": "export_drop",
        "path": str(folder),
        "platform": "douyin",
        "language": "zh",
        **extra,
    }


def test_exports_are_read_once_when_settled_with_bad_rows_reported(tmp_path, crawl):
    folder = tmp_path / "drop"
    folder.mkdir()
    for name in ("xhs_notes_2026-11-26.csv", "douyin_comments_20261127.csv",
                 "vendor_feed_20261127.jsonl"):  # fmt: skip
        drop(folder, name, timedelta(minutes=10))
    row = "id,text,created_at\n7310300000000000001,阿克米耳机到了,2026-11-27T11:59:00+08:00\n"
    drop(folder, "late.csv", timedelta(seconds=10), row.encode())  # still being written
    drop(folder, "xhs_notes_2026-11-27.csv.part", timedelta(hours=1), row.encode())
    drop(folder, "notes.txt", timedelta(hours=1), b"not an export")

    first = crawl(source(folder), brands=BRANDS, settings=clock(NOW))
    assert first.error is None, first.log
    got = by_id(first.mentions)
    assert sorted(got) == sorted([
        "6565a8f3000000003c01f2ab", "6565b0c2000000003c0288f1",  # xhs csv (UTF-8 BOM)
        "7310245518036421939", "7310251940321167642",  # douyin csv (GBK)
        "6566001a000000003c00c0de", "7310299911122233344",  # jsonl
    ])  # fmt: skip
    note = got["6565a8f3000000003c01f2ab"]
    assert note.source == "xiaohongshu" and note.source_name == "test-export_drop"
    assert note.text.startswith("阿克米降噪耳机二代开箱｜续航真的能到 40 小时吗？\n实测通勤一周")
    assert note.author == "小鹿爱测评" and note.author_reach == 12840
    assert note.created_at == datetime(2026, 11, 26, 13, 14, 5, tzinfo=UTC)
    assert note.url == "https://www.xiaohongshu.com/explore/6565a8f3000000003c01f2ab"
    assert note.language == "zh" and note.brands == ["Acme"]
    comment = got["7310245518036421939"]
    assert comment.source == "douyin"  # the source's platform: the file has no column
    assert comment.author == "喆喆爱数码" and comment.author_reach == 5230
    assert got["7310251940321167642"].author_reach is None
    assert got["6566001a000000003c00c0de"].created_at == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert sorted(got["7310299911122233344"].brands) == ["Acme", "Globex"]

    assert faults(first) == {"bad_row": 4}
    bad = [line for line in first.log.splitlines() if " skipped: " in line]
    assert [line.split("'test-export_drop': ")[1] for line in bad] == [
        "douyin_comments_20261127.csv:4 skipped: missing id",
        "vendor_feed_20261127.jsonl:2 skipped: not JSON: Unterminated string starting at: "
        "line 1 column 72 (char 71)",
        "xhs_notes_2026-11-26.csv:5 skipped: created_at '2026-11-26 23:59' has no time zone "
        "(write e.g. +08:00)",
        "xhs_notes_2026-11-26.csv:6 skipped: reach '约1万' is not a whole number",
    ]  # files in name order
    assert first.stats["pages"] == 3 and first.stats["dropped"]["not_settled"] == 1

    # Nothing new: nothing is read again (also not a re-dropped copy under a new name).
    shutil.copyfile(folder / "xhs_notes_2026-11-26.csv", folder / "xhs_notes_copy.csv")
    os.utime(folder / "xhs_notes_copy.csv", (NOW.timestamp() - 600,) * 2)
    second = crawl(source(folder), brands=BRANDS, settings=clock(NOW))
    assert second.error is None, second.log
    assert second.mentions == [] and not faults(second)
    assert second.stats["dropped"]["file_seen"] == 4

    # Five minutes later the late file has settled and is read.
    third = crawl(source(folder), brands=BRANDS, settings=clock(NOW + timedelta(minutes=5)))
    assert [m.source_id for m in third.mentions] == ["7310300000000000001"]
    assert third.mentions[0].source == "douyin"


def test_files_are_read_again_when_their_mentions_were_not_committed(tmp_path, crawl):
    folder = tmp_path / "drop"
    folder.mkdir()
    drop(folder, "vendor_feed_20261127.jsonl", timedelta(minutes=10))
    lost = crawl(source(folder), brands=BRANDS, settings=clock(NOW), commit=False)
    assert len(lost.mentions) == 2
    again = crawl(source(folder), brands=BRANDS, settings=clock(NOW))
    assert len(again.mentions) == 2


def test_a_missing_folder_skips_the_source(tmp_path, crawl):
    result = crawl(source(tmp_path / "nowhere"), brands=BRANDS, settings=clock(NOW))
    assert result.mentions == []
    assert "does not exist" in result.stats["skipped"]


def test_encodings_and_rows_read_without_a_crawl():
    assert decode_export("\ufeffid,text\n1,阿克米\n".encode(), None) == "id,text\n1,阿克米\n"
    assert decode_export("id,text\n1,喆\n".encode("gbk"), None) == "id,text\n1,喆\n"
    assert decode_export("id\n喆".encode("gbk") + b"\xff1\n", None) == "id\n喆\ufffd1\n"
    rows = list(read_rows("a.csv", 'id,text\n1,"two\nlines"\n2,x,extra\n\n3,y\n'))
    assert rows[0] == (2, {"id": "1", "text": "two\nlines"})
    assert rows[1][0] == 4 and "3 fields, the header has 2" in str(rows[1][1])
    assert rows[2] == (6, {"id": "3", "text": "y"})
