"""Fault accounting and the brand filter, each alone (no crawl)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector

from brandpulse.mention import Mention
from brandpulse.query import compile_query
from crawlers.faults import fault_line, mask_url_secrets, record_fault, recorded_faults
from crawlers.pipelines import BrandFilterPipeline


def stats() -> MemoryStatsCollector:
    return MemoryStatsCollector(Crawler(Spider, Settings()))


def test_faults_are_counted_with_their_first_example_masked():
    s = stats()
    record_fault(s, "http_500", "GET https://api.stackexchange.com/2.3/search?key=SECRETKEY&q=acme -> 500")
    record_fault(s, "http_500", "GET https://api.stackexchange.com/2.3/search?page=2 -> 500")
    record_fault(s, "timeout", "GET https://user:pa55@feeds.example/rss: no response")
    found = recorded_faults(s)
    assert found == {
        "http_500": (2, "GET https://api.stackexchange.com/2.3/search?key=***&q=acme -> 500"),
        "timeout": (1, "GET https://***@feeds.example/rss: no response"),
    }
    assert fault_line(found).startswith("http_500 x2 (first: GET https://api.stackexchange.com")
    assert "SECRETKEY" not in repr(s.get_stats()) and "pa55" not in repr(s.get_stats())


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://x.example/a?access_token=abc&b=1", "https://x.example/a?access_token=***&b=1"),
        ("https://www.googleapis.com/youtube/v3/x?part=s&key=AIzaXX", "https://www.googleapis.com/youtube/v3/x?part=s&key=***"),
        ("https://x.example/a?monkey=1", "https://x.example/a?monkey=1"),
    ],
)
def test_url_secrets_are_masked(text, masked):
    assert mask_url_secrets(text) == masked


def mention(text: str) -> Mention:
    return Mention(
        source="rss", source_id=text[:8], source_name="n", text=text,
        created_at=datetime(2026, 11, 30, tzinfo=UTC),
    )  # fmt: skip


def test_the_brand_filter_sets_brands_and_drops_posts_naming_none():
    pipeline = BrandFilterPipeline(
        brand_queries=[("Acme", compile_query('"acme"')), ("AT&T", compile_query('"AT&T"'))]
    )
    kept = pipeline.process_item(mention("AT&T and acme"))
    assert kept.brands == ["Acme", "AT&T"]
    with pytest.raises(DropItem, match="no_brand"):
        pipeline.process_item(mention("nothing to see"))
