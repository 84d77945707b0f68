"""crawlers.middlewares: Retry-After parsing and the limiter's decisions."""

from __future__ import annotations

import time
from email.utils import formatdate

from scrapy.http import Request, Response
from scrapy.utils.test import get_crawler

from crawlers.middlewares import RateLimitMiddleware, parse_retry_after


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after(b"120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    now = time.time()
    assert 59 <= parse_retry_after(formatdate(now + 60, usegmt=True), now=now) <= 61
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after(b"soon") is None and parse_retry_after(None) is None


def limiter(**settings) -> RateLimitMiddleware:
    crawler = get_crawler(settings_dict=settings)
    crawler.spider = None
    mw = RateLimitMiddleware(crawler)
    mw.stats = crawler.stats = _Stats()
    return mw


class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def inc_value(self, key: str, count: float = 1, start: float = 0) -> None:
        self.values[key] = self.values.get(key, start) + count


def answer(status: int, headers: dict[str, str]) -> tuple[Request, Response]:
    request = Request("http://api.test/x")
    return request, Response(request.url, status=status, headers=headers, request=request)


def test_retry_after_blocks_and_a_huge_one_gives_up():
    mw = limiter(BRANDPULSE_MAX_RETRY_AFTER=30)
    mw.process_response(*answer(429, {"Retry-After": "5"}))
    assert 4 < mw.blocked_until - time.monotonic() <= 5 and mw.gave_up is None
    mw.process_response(*answer(503, {"Retry-After": "3600"}))
    assert mw.gave_up is not None and "3600s" in mw.gave_up


def test_reddit_headers_pause_at_zero_and_spread_otherwise():
    mw = limiter()
    mw.process_response(*answer(200, {"X-Ratelimit-Remaining": "10", "X-Ratelimit-Reset": "20"}))
    assert 1.5 < mw.next_allowed - time.monotonic() <= 2.0  # 20 s / 10 requests left
    assert mw.blocked_until == 0.0
    mw.process_response(*answer(200, {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "7"}))
    assert 6 < mw.blocked_until - time.monotonic() <= 7


def test_429_without_retry_after_still_backs_off():
    mw = limiter()
    mw.process_response(*answer(429, {}))
    assert mw.blocked_until > time.monotonic()
