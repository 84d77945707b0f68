"""crawlers.pipelines: in-run duplicates dropped, reposts and near-copies marked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scrapy.exceptions import DropItem
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from brandpulse.mention import Mention
from crawlers.pipelines import DuplicatePipeline, normalise_for_hash, simhash

LONG = "Acme Cloud has been down for two hours and support is not answering any tickets at all"


def mention(source_id: str, text: str) -> Mention:
    return Mention(source="reddit", source_id=source_id, source_name="r", text=text,
                   created_at=datetime(2024, 1, 2, tzinfo=UTC))  # fmt: skip


def pipeline(tmp_path) -> DuplicatePipeline:
    crawler = get_crawler()
    crawler.stats = MemoryStatsCollector(crawler)
    pipe = DuplicatePipeline(crawler, tmp_path / "r.hashes.json")
    pipe.open_spider()
    return pipe


def test_same_id_twice_in_a_run_is_dropped(tmp_path):
    pipe = pipeline(tmp_path)
    pipe.process_item(mention("1", LONG))
    with pytest.raises(DropItem, match="duplicate_in_run"):
        pipe.process_item(mention("1", LONG))


def test_repost_and_near_copy_point_to_the_first(tmp_path):
    pipe = pipeline(tmp_path)
    first = pipe.process_item(mention("1", LONG))
    repost = pipe.process_item(mention("2", LONG.upper() + "!!! https://t.co/x"))
    near = pipe.process_item(mention("3", LONG.replace("two hours", "2 hours")))
    other = pipe.process_item(
        mention("4", "Globex shipped a new storage tier with lower prices for archives today")
    )
    assert first.duplicate_of is None
    assert repost.duplicate_of == first.id
    assert near.duplicate_of == first.id
    assert other.duplicate_of is None


def test_short_texts_are_never_called_reposts(tmp_path):
    pipe = pipeline(tmp_path)
    pipe.process_item(mention("1", "acme lol"))
    assert pipe.process_item(mention("2", "acme lol")).duplicate_of is None


def test_reposts_are_recognised_across_runs_but_not_against_themselves(tmp_path):
    pipe = pipeline(tmp_path)
    original = pipe.process_item(mention("1", LONG))
    pipe.close_spider()
    later = pipeline(tmp_path)
    assert later.process_item(mention("1", LONG)).duplicate_of is None  # a re-fetch
    assert later.process_item(mention("9", LONG)).duplicate_of == original.id


def test_simhash_distance_reflects_edits():
    a = simhash(normalise_for_hash(LONG).split())
    b = simhash(normalise_for_hash(LONG.replace("two hours", "2 hours")).split())
    c = simhash(
        normalise_for_hash(
            "completely different words about storage pricing and archive tiers"
        ).split()
    )
    assert (a ^ b).bit_count() <= 5 < 15 <= (a ^ c).bit_count()
