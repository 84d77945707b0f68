"""YouTube commentThreads spider, through the real Scrapy engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from crawlers.spiders.youtube import YouTubeSpider
from tests.crawlers.conftest import Reply
from tests.crawlers.sources_helpers import (
    BRANDS,
    LOOKBACK,
    by_id,
    configure,
    faults,
    log_lines,
    warnings_of,
)

PATH = "/commentThreads"
VIDEO = "dQw4w9WgXcQ"
CHANNEL = "UCacmeOfficial0000000000"


def source(**extra):
    return {"type": "youtube", "api_key": "AIza-test-key", "lookback": LOOKBACK, **extra}


def test_video_and_channel_threads_paging_and_incremental_cursor(api_server, crawl):
    api_server.add(
        PATH,
        Reply.fixture("youtube", "threads_video_page2.json"),
        when={"videoId": VIDEO, "pageToken": "QURTSl9pMzB2U0dfX1Bhc3QtMS1wYWdl"},
    )
    # First crawl gets page 1 (ASCII-escaped JSON), the second crawl the newer page.
    api_server.add(
        PATH,
        Reply.fixture("youtube", "threads_video_page1.json"),
        Reply.fixture("youtube", "threads_video_run2.json"),
        when={"videoId": VIDEO, "pageToken": None},
    )
    api_server.add(
        PATH,
        Reply.fixture("youtube", "threads_channel.json"),
        when={"allThreadsRelatedToChannelId": CHANNEL},
    )

    first = crawl(source(video_ids=[VIDEO], channel_ids=[CHANNEL]), brands=BRANDS)
    assert first.error is None, first.log
    got = by_id(first.mentions)
    assert sorted(got) == [
        "UgzChannel000000000000007",
        "UgzChinese000000000000002",
        "UgzNewest0000000000000001",
        "UgzQuoted0000000000000004",
    ]

    battery = got["UgzNewest0000000000000001"]
    assert battery.text == "Acme Rocket 3 battery is insane 🔋🚀 two days & counting"
    assert battery.created_at == datetime(2026, 11, 26, 17, 42, 10, tzinfo=UTC)
    assert battery.author == "@RocketFan"
    assert battery.author_reach is None  # comments carry no subscriber count
    assert battery.url == f"https://www.youtube.com/watch?v={VIDEO}&lc=UgzNewest0000000000000001"
    assert (battery.engagement.likes, battery.engagement.replies) == (154, 12)
    assert battery.brands == ["Acme"]

    assert got["UgzChinese000000000000002"].text == "阿克米这次的充电器真的会发烫，\n小心使用！"
    # textOriginal is plain text: angle brackets in it are words, not markup.
    assert (
        got["UgzQuoted0000000000000004"].text == 'The "Acme" charger <recall> was overdue. See 2:31'
    )
    assert got["UgzChannel000000000000007"].brands == ["Acme", "Globex"]
    assert got["UgzChannel000000000000007"].url.startswith(
        "https://www.youtube.com/watch?v=vid2Example&lc="
    )
    assert first.stats["dropped"].get("no_brand") == 1  # "first"

    video_hits = [h for h in api_server.hits(PATH) if h.param("videoId")]
    assert [h.param("pageToken") for h in video_hits] == [None, "QURTSl9pMzB2U0dfX1Bhc3QtMS1wYWdl"]
    hit = video_hits[0]
    assert (hit.param("part"), hit.param("order"), hit.param("maxResults")) == (
        "snippet",
        "time",
        "100",
    )
    # The key goes in a header, so URLs in logs and fault lines never carry it.
    assert hit.headers["x-goog-api-key"] == "AIza-test-key"
    assert hit.param("key") is None

    second = crawl(source(video_ids=[VIDEO], channel_ids=[CHANNEL]), brands=BRANDS)
    assert second.error is None, second.log
    assert [m.source_id for m in second.mentions] == ["UgzRun2New000000000000006"]


def test_missing_api_key_or_nothing_to_read_is_skipped_with_one_warning(caplog, tmp_path):
    with caplog.at_level(logging.INFO):
        spider = configure(YouTubeSpider, source(api_key=None, video_ids=[VIDEO]), tmp_path)
    assert spider.skip_reason == "api_key is not set (YouTube Data API v3 needs an API key)"
    assert warnings_of(caplog) == [f"source 's' (youtube) skipped: {spider.skip_reason}"]
    idle = configure(YouTubeSpider, source(), tmp_path)
    assert (
        idle.skip_reason == "neither video_ids nor channel_ids is configured: no comments to read"
    )


def test_disabled_comments_missing_video_and_html_are_faults(api_server, crawl):
    api_server.add(
        PATH,
        Reply.fixture("youtube", "error_comments_disabled.json", status=403),
        when={"videoId": "vidDisabled"},
    )
    api_server.add(
        PATH,
        Reply.fixture("youtube", "error_video_not_found.json", status=404),
        when={"videoId": "vidMissing"},
    )
    api_server.add(PATH, Reply.html(status=200), when={"videoId": "vidHtml"})
    api_server.add(PATH, Reply.fixture("youtube", "threads_channel.json"))
    result = crawl(
        source(video_ids=["vidDisabled", "vidMissing", "vidHtml", "vidFine"]),
        brands=BRANDS,
        settings={"LOG_LEVEL": "WARNING"},
    )
    assert result.error is None
    # One video's trouble costs only that video.
    assert [m.source_id for m in result.mentions] == ["UgzChannel000000000000007"]
    assert {"http_403", "http_404", "html_instead_of_json"} <= set(faults(result))
    line = log_lines(result.log, "had faults")
    assert len(line) == 1
    assert "commentsDisabled" in line[0] and "videoNotFound" in line[0]


def test_quota_exceeded_stops_the_source_for_the_day(api_server, crawl):
    api_server.add(PATH, Reply.fixture("youtube", "error_quota.json", status=403))
    result = crawl(
        source(video_ids=["v1", "v2", "v3"], concurrency=1),
        brands=BRANDS,
        settings={"LOG_LEVEL": "WARNING"},
    )
    assert result.error is None and result.mentions == []
    assert len(api_server.hits(PATH)) == 1  # no quota burnt on calls that must fail
    failed = faults(result)
    assert failed.get("http_403") == 1 and failed.get("rate_limited") == 2
    assert "quotaExceeded" in log_lines(result.log, "had faults")[0]


def test_quota_resets_at_midnight_pacific():
    from crawlers.spiders.youtube import seconds_to_quota_reset

    # 07:00 UTC on a winter day is 23:00 PST: one hour to go.
    assert seconds_to_quota_reset(datetime(2026, 11, 27, 7, 0, tzinfo=UTC)) == 3600
    # 06:00 UTC in summer is 23:00 PDT.
    assert seconds_to_quota_reset(datetime(2026, 7, 1, 6, 0, tzinfo=UTC)) == 3600


# A real order=time answer (fixtures/README.md: recorded, split into two pages): the
# video's pinned thread (2024-05-24, 21,518 likes) comes first, the newest after it.
RECORDED_VIDEO = "axepn8QqxRk"
RECORDED_NEXT = (
    "Z2V0X25ld2VzdF9maXJzdC0tQ2dnSWdBUVZGN2ZST0JJRkNJa2dHQUFTQlFpSUlCZ0FFZ1VJaHlBWUFCSUZDS2dn"
    "R0FBU0JRaWRJQmdCR0FBaURnb01DUFRYOGJVR0VNajE3Y0FE"
)


def test_recorded_page_an_old_pinned_first_thread_does_not_end_the_paging(api_server, crawl):
    """Only a page's last (oldest) thread may end the paging: the pinned thread before the
    window sits first on page 1, and the brand's comment is on page 2."""
    api_server.add(
        PATH,
        Reply.fixture("youtube", "recorded_order_time_page2.json"),
        when={"videoId": RECORDED_VIDEO, "pageToken": RECORDED_NEXT},
    )
    api_server.add(
        PATH,
        Reply.fixture("youtube", "recorded_order_time_page1.json"),
        when={"videoId": RECORDED_VIDEO, "pageToken": None},
    )
    # The window opens on 2024-07-01: after the pinned thread, before all the others.
    window = f"{(datetime.now(UTC) - datetime(2024, 7, 1, tzinfo=UTC)).days}d"
    brands = [{"name": "Darshan Raval", "query": '"darshan raval"'}]
    result = crawl(source(video_ids=[RECORDED_VIDEO], lookback=window), brands=brands)
    assert result.error is None, result.log
    assert [h.param("pageToken") for h in api_server.hits(PATH)] == [None, RECORDED_NEXT]
    (mention,) = result.mentions
    assert mention.source_id == "UgzJ0E3Fo_VmA8Ju5Z54AaABAg"
    assert mention.text == "Darshan raval ❤️"
    assert mention.author == "@Nikhillllllllll_"
    assert mention.created_at == datetime(2024, 8, 14, 18, 10, 14, tzinfo=UTC)
    assert mention.url == (
        f"https://www.youtube.com/watch?v={RECORDED_VIDEO}&lc=UgzJ0E3Fo_VmA8Ju5Z54AaABAg"
    )
    assert (mention.engagement.likes, mention.engagement.replies) == (0, 0)
    assert mention.title is None and mention.author_reach is None  # nothing says them
    assert mention.brands == ["Darshan Raval"]
    assert result.stats["dropped"]["before_cursor"] == 1  # the pinned thread
    assert result.stats["dropped"]["no_brand"] == 6

    # The next crawl starts at the newest thread seen (2024-08-14 19:51:36): page 1's
    # last thread is older, so page 2 is not asked for again.
    again = crawl(source(video_ids=[RECORDED_VIDEO], lookback=window), brands=brands)
    assert again.error is None and again.mentions == []
    assert [h.param("pageToken") for h in api_server.hits(PATH)][2:] == [None]
