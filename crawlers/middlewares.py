"""Downloader/spider middlewares: rate limits and fault accounting.

Each crawl is one source in its own process, so the limiter's state is the
source's state: `requests_per_minute` from the config (or the spider's default)
spaces requests out, and any pause the server asks for -- `Retry-After` on
429/503, Reddit's `X-Ratelimit-Remaining`/`X-Ratelimit-Reset`, Stack Exchange's
`backoff` body field (via `spider.backoff_from_response`) -- holds every later
request of the source until it has passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task
from twisted.internet.defer import DeferredSemaphore

from crawlers.faults import record_fault
from crawlers.spiders.base import STATS_PREFIX, RateLimited

logger = logging.getLogger(__name__)


def parse_retry_after(value: bytes | str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _header_float(response: Response, name: str) -> float | None:
    raw = response.headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw.decode("latin-1").strip())
    except ValueError:
        return None


def _reactor() -> Any:
    """The running crawl's reactor, looked up at call time.

    Importing `twisted.internet.reactor` at module level would install Twisted's
    default reactor as a side effect of importing this module: the crawl fork server
    (`crawlers.forkserver`) imports it before any reactor exists, and Scrapy must
    install its own (`TWISTED_REACTOR`) in each crawl child."""
    from twisted.internet import reactor

    return reactor


# Seconds after a request left the downloader by which the middleware chain has
# surely handled its response; a request still held then is released.
_LEAK_GRACE = 1.0


class RateLimitMiddleware:
    """Per-source request pacing that obeys the server's own rate-limit signals."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.max_wait = crawler.settings.getfloat("BRANDPULSE_MAX_RETRY_AFTER", 120.0)
        self.interval = 0.0
        self.next_allowed = 0.0
        self.blocked_until = 0.0
        self.gave_up: str | None = None
        # End of the crawl (CLOSESPIDER_TIMEOUT): a pause reaching past it is
        # pointless, and a request sleeping here would hold up the spider's close.
        self.deadline = float("inf")
        # Requests past the limiter and not yet answered. Holding the source's
        # concurrency here (not only in Scrapy's download slot) means a request
        # cannot slip out while a response asking for a pause is still on its way
        # through the middlewares.
        self.gate = DeferredSemaphore(1)
        self.in_flight: dict[int, Request] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RateLimitMiddleware:
        if not crawler.settings.getbool("BRANDPULSE_RATELIMIT_ENABLED", True):
            raise NotConfigured("BRANDPULSE_RATELIMIT_ENABLED is off")
        mw = cls(crawler)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.request_left_downloader, signal=signals.request_left_downloader)
        return mw

    def spider_opened(self, spider: Any) -> None:
        rpm = getattr(spider, "requests_per_minute", None) or crawler_rpm(self.crawler)
        self.interval = 60.0 / rpm if rpm else 0.0
        limit = self.crawler.settings.getfloat("CLOSESPIDER_TIMEOUT", 0.0)
        if limit > 0:
            self.deadline = time.monotonic() + limit
        concurrency = self.crawler.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 1)
        self.gate = DeferredSemaphore(max(1, concurrency))

    async def process_request(self, request: Request) -> None:
        if self.gave_up:
            raise RateLimited(self.gave_up)
        await maybe_deferred_to_future(self.gate.acquire())
        self.in_flight[id(request)] = request
        try:
            await self._pace(request)
        except BaseException:
            self._release(request)
            raise
        return None

    def _release(self, request: Request) -> None:
        if self.in_flight.pop(id(request), None) is not None:
            self.gate.release()

    def request_left_downloader(self, request: Request, spider: Any) -> None:
        # Normally process_response/process_exception release the request. A
        # middleware nearer the downloader that answers with a new Request (a
        # redirect, a meta refresh) ends the chain before us; without this the
        # source's concurrency would leak one slot per redirect and stall.
        if id(request) in self.in_flight:
            _reactor().callLater(_LEAK_GRACE, self._release, request)

    async def _pace(self, request: Request) -> None:
        if self.gave_up:
            raise RateLimited(self.gave_up)
        now = time.monotonic()
        start = max(now, self.next_allowed, self.blocked_until)
        self.next_allowed = start + self.interval
        delay = start - now
        if delay > 0.001 and start > self.deadline:
            raise RateLimited(
                f"a pause of {delay:.0f}s would outlast the crawl's CLOSESPIDER_TIMEOUT; "
                "request dropped for this crawl"
            )
        if delay > 0.001:
            self.stats.inc_value(f"{STATS_PREFIX}/ratelimit/wait_seconds", round(delay, 3))
            await maybe_deferred_to_future(task.deferLater(_reactor(), delay, lambda: None))
            # The server may have asked for a longer pause while we slept.
            if self.gave_up:
                raise RateLimited(self.gave_up)
            if self.blocked_until > time.monotonic() + 0.001:
                await self._pace(request)

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._release(request)
        return None

    def process_response(self, request: Request, response: Response) -> Response:
        try:
            self._observe(response)
        finally:
            self._release(request)
        return response

    def _observe(self, response: Response) -> None:
        pause: float | None = None
        why = ""
        if response.status in (429, 503):
            pause = parse_retry_after(response.headers.get("Retry-After"))
            why = f"Retry-After on {response.status}"
            if pause is None and response.status == 429:
                # 429 without a hint: back off a little instead of hammering.
                pause, why = max(2.0 * self.interval, 1.0), "429 without Retry-After"
            self.stats.inc_value(f"{STATS_PREFIX}/ratelimit/responses_{response.status}")
        remaining = _header_float(response, "X-Ratelimit-Remaining")
        reset = _header_float(response, "X-Ratelimit-Reset")
        if remaining is not None and reset is not None:
            if remaining < 1:
                if pause is None or reset > pause:
                    pause, why = reset, "X-Ratelimit-Remaining is 0"
            else:
                # Spread what is left of the window over the time until it resets.
                self.next_allowed = max(self.next_allowed, time.monotonic() + reset / remaining)
        spider = self.crawler.spider
        hook = getattr(spider, "backoff_from_response", None)
        if hook is not None:
            backoff = hook(response)
            if backoff and (pause is None or backoff > pause):
                pause, why = backoff, "backoff field"
        if pause:
            self.block(pause, why)

    def block(self, seconds: float, why: str) -> None:
        self.stats.inc_value(f"{STATS_PREFIX}/ratelimit/pauses")
        if seconds > self.max_wait:
            if not self.gave_up:
                self.gave_up = (
                    f"server asked to pause {seconds:.0f}s ({why}), more than "
                    f"BRANDPULSE_MAX_RETRY_AFTER={self.max_wait:.0f}s; giving up for this crawl"
                )
                logger.info(self.gave_up)
            return
        self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


def crawler_rpm(crawler: Crawler) -> float | None:
    value = crawler.settings.getfloat("BRANDPULSE_REQUESTS_PER_MINUTE", 0.0)
    return value or None


class FaultAccountingMiddleware:
    """Turns an exception escaping a spider callback into a counted fault.

    A bug or an unforeseen response shape in one callback must cost only that
    response, be counted like any other fault and be logged once at close, rather
    than print a traceback per page.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FaultAccountingMiddleware:
        if not crawler.settings.getbool("BRANDPULSE_FAULT_ACCOUNTING_ENABLED", True):
            raise NotConfigured("BRANDPULSE_FAULT_ACCOUNTING_ENABLED is off")
        return cls(crawler)

    def process_spider_exception(
        self, response: Response, exception: Exception
    ) -> Iterable[Any] | None:
        from scrapy.spidermiddlewares.httperror import HttpError

        if isinstance(exception, HttpError):
            return None  # HttpErrorMiddleware's business (no errback was set)
        logger.debug("callback error on %s", response.url, exc_info=exception)
        record_fault(
            self.crawler.stats,
            f"spider_error_{type(exception).__name__}",
            f"{response.url}: {type(exception).__name__}: {exception}",
        )
        query_failed = getattr(self.crawler.spider, "query_failed", None)
        if query_failed is not None:
            query_failed(response.meta.get("brandpulse_query"))
        return []
