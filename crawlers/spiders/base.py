"""`MentionSpider`: the base of every BrandPulse spider.

THE CONTRACT (read this before writing a spider)
================================================

One crawl = one configured source (an entry of `sources:` in config.yaml) = one
spider instance, given one `crawlers.job.CrawlJob` (the source, its brands, the
state and output locations) in the `BRANDPULSE_CRAWL_JOB` setting. Run it with::

    python -m crawlers.run --config config.yaml --source <source name> [-s NAME=VALUE]

or programmatically with `crawlers.runner.run_crawl(CrawlJob.from_config(...))`
(what the daemon does, from the configuration it holds in memory).

1. Declare the source type (class attributes)
   - ``name``: the Scrapy spider name; MUST equal ``source_type`` (the runner finds
     the spider for a source by its config ``type``).
   - ``source_type``: the config ``type`` and ``Mention.source`` ("reddit", ...).
   - ``source_model``: the pydantic model of the source's options in
     `brandpulse.config` (``RedditSource``...). The instance is ``self.source``.
   - ``default_base_url``: the real API root. ``self.base_url`` is the config's
     ``base_url`` when set (a mirror or the local test server), else this. ALWAYS
     build URLs from ``self.base_url`` (or ``self.url(path, **params)``).
   - ``default_requests_per_minute``: the polite rate when the config sets none
     (override ``default_rate()`` when it depends on credentials, as Reddit's does).
   - ``configure_settings(settings)``: a hook to set Scrapy settings for this
     source before they freeze (e.g. Reddit's User-Agent); ``self.source`` is
     already loaded. Per-source concurrency/timeout are applied by the base.
   - ``expects_json`` (True): responses are decoded to ``data`` by the base with
     fault detection; set False for HTML/XML sources (``data`` is then None and you
     read ``response`` yourself).
   - ``obey_robots`` (False): API spiders skip robots.txt because they call a
     documented programmatic API under its own terms and rate limits (robots.txt
     governs crawling of web pages; reddit's even disallows the API paths to
     generic bots while its API terms allow them). HTML scrapers MUST set True.
   - ``newest_first`` (True): pages come newest first, so paging stops after a page
     whose last (oldest) post is older than the crawl window. An older post earlier
     on a page (a pinned thread) does not stop it.

2. Check credentials: override ``check_credentials() -> str | None``; return a
   reason (e.g. "api_key is not set") to SKIP the source. The base logs exactly
   one WARNING line, records ``brandpulse/skipped`` and yields nothing: never raise.
   Optional login step: ``setup_request() -> Request | None`` (e.g. an OAuth token
   request) is sent first; its decoded JSON goes to ``handle_setup(response,
   data)``, which stores e.g. ``self.default_headers["Authorization"]``; raise
   ``SourceFault("auth", "...")`` there to fail the source. Searches start after.

3. Build requests
   - ``search_queries() -> list[SearchQuery]``: default is one query per brand of
     this source, ``text`` = the brand query's ``search_string(style=self.search_style)``.
     Override to fan out (per subreddit, per search term, per tag...) with
     ``self.make_query(key, brand, text, **params)``, or set ``search_style =
     "terms"`` for one query per search term (sources without OR in their search).
     ``key`` must be stable across runs (it keys the cursor). ``query.since`` is where this crawl starts (the
     cursor, or now - lookback on a first crawl); ``query.token`` is whatever the
     previous run stored for this key via ``Page.cursor_token``.
   - ``build_request(query, page_token) -> Request``: the request for one page;
     ``page_token`` is None for the first page, else the ``Page.next_page`` you
     returned. Do not set callback/errback: the base does (and adds
     ``self.default_headers``, ``Accept`` and bookkeeping meta).

4. Parse a response into mentions
   - ``parse_page(response, query, data) -> Page(items, next_page, cursor_token)``:
     pick the raw posts and the next page token (None = last page). ``Page.follow``
     may name further queries the page leads to (a forum list's threads, each made
     with ``make_query``): they are requested, paged and cursored like the others. Raise
     ``SourceFault(kind, detail)`` for an API-level error in a 200 response.
   - ``post_to_mention(raw, query) -> Mention | None``: one raw post -> a Mention
     built with ``self.make_mention(...)`` (fills source/source_name, cleans text
     and HTML, parses times to UTC). Return None to skip a non-post. Exceptions
     here (KeyError, ValueError, ValidationError...) are counted as ``bad_item``
     and only that post is lost.
   - The base then drops posts at or before the cursor (``before_cursor``) and
     pages on until ``max_pages``. Brand matching is not the spider's business:
     `crawlers.pipelines.BrandFilterPipeline` sets ``brands`` (the brand query
     filter on title+text, url, author, language) and drops posts matching none
     (``no_brand``).

5. Cursor: automatic. Per query key the base stores the newest ``created_at`` seen
   and the ids at that instant, plus ``Page.cursor_token`` from the first page.
   With ``cursor_overlap`` (search indexes that lag) the next crawl starts that
   much earlier and skips the ids it saw there, so late-indexed posts are still
   found. A query's cursor advances only if all its pages were fetched without a
   fault (otherwise the next crawl re-fetches). ``cursor_data()`` is what it
   advances to; `crawlers.extensions.CursorWriter` writes it at close as
   *pending*, committed by the runner once the mentions are safe (see
   `crawlers.cursors`), or by itself only when they went to the job's ``output``.

6. Faults: never raise out of a callback. Call ``self.fault(kind, detail)``; HTTP
   errors (after bounded retries), timeouts, connection errors, HTML-instead-of-JSON
   and malformed JSON are classified by the base already. Kinds are short
   snake_case words: ``http_500``, ``http_429``, ``timeout``, ``connection``,
   ``bad_json``, ``html_instead_of_json``, ``bad_item``, ``parse_error``,
   ``api_error``, ``rate_limited``, ``auth``, ``egress_refused``, and the refusals
   ``blocked`` / ``captcha`` / ``login_required`` / ``rate_limited``
   (`crawlers.faults.REFUSAL_KINDS` and its constants: raised as a SourceFault out
   of ``parse_page``, the page is not counted as read). Each is counted
   in stats by `crawlers.faults.record_fault` (``brandpulse/failed/<kind>``, the
   first example kept with credentials masked) and logged ONCE per source at
   close by the `crawlers.faults.FaultLog` extension. ``describe_error(response)``
   may extract the API's own error text from an error body for that log line.

7. Rate limits: ``backoff_from_response(response) -> float | None`` lets a source
   report a server-requested pause found in its body (Stack Exchange ``backoff``);
   ``Retry-After`` and ``X-Ratelimit-*`` headers are handled by
   `crawlers.middlewares.RateLimitMiddleware` for every spider.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import scrapy
from pydantic import ValidationError
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import (
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from brandpulse.config import BrandConfig, SourceBase
from brandpulse.mention import Engagement, Mention
from crawlers.cursors import CursorStore
from crawlers.egress import EgressRefused, resolver_refusal
from crawlers.faults import REFUSAL_KINDS, STATS_PREFIX, record_fault, recorded_faults
from crawlers.job import CrawlJob
from crawlers.text import clean_field, clean_text, decode_body, html_to_text, parse_time

__all__ = ["MentionSpider", "Page", "RateLimited", "SearchQuery", "SourceFault"]


class SourceFault(Exception):
    """A fault of the source (not of our code) found while handling a response."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class RateLimited(IgnoreRequest):
    """Raised by the rate-limit middleware when the server asks for a longer pause
    than this crawl may wait; the request is abandoned and counted as `rate_limited`."""


@dataclass(frozen=True)
class SearchQuery:
    """One search a spider runs (and pages through) during a crawl."""

    key: str  # stable across runs: keys the cursor
    brand: str | None  # the brand it searches for (None: several/all)
    text: str  # what is sent to the source
    since: datetime  # posts at or before this were seen by an earlier crawl
    token: Any = None  # what the previous crawl stored via Page.cursor_token
    params: Mapping[str, Any] = field(default_factory=dict)  # spider-specific (subreddit...)


@dataclass
class Page:
    """What `parse_page` found in one response."""

    items: Sequence[Any]
    next_page: Any = None  # token for build_request; None: no further page
    cursor_token: Any = None  # stored for the next crawl (first page's value wins)
    # Queries this page leads to (a forum list's threads, made with make_query): each is
    # requested from its first page and then paged and cursored like any query.
    follow: Sequence[SearchQuery] = ()


@dataclass
class _QueryState:
    query: SearchQuery
    stored_since: datetime | None  # newest post time earlier crawls saw (None: first crawl)
    seen_ids: frozenset[str]  # ids earlier crawls saw at/after query.since
    old_recent: dict[str, float]  # id -> epoch of those, to carry the window forward
    pages: int = 0
    complete: bool = False
    failed: bool = False
    truncated: bool = False
    newest: datetime | None = None
    posts: dict[str, datetime] = field(default_factory=dict)  # seen this crawl, in window
    token: Any = None


_MAX_RECENT_IDS = 5000


_NOT_JSON = object()


class MentionSpider(scrapy.Spider):
    """Base of all API spiders; see the module docstring for the contract."""

    source_type: ClassVar[str] = ""
    source_model: ClassVar[type[SourceBase]] = SourceBase
    default_base_url: ClassVar[str] = ""
    default_requests_per_minute: ClassVar[float] = 30.0
    expects_json: ClassVar[bool] = True
    obey_robots: ClassVar[bool] = False
    newest_first: ClassVar[bool] = True
    search_style: ClassVar[str] = "boolean"
    # Search indexes lag: a post created just before the newest one seen may only
    # show up in the next crawl. The next crawl therefore starts this much before
    # the cursor and skips what it saw there by id. 0 = start at the cursor.
    cursor_overlap: ClassVar[timedelta] = timedelta(0)

    job: CrawlJob  # the crawl's one input (crawlers.job), from the crawler settings
    source: Any  # job.source: an instance of source_model
    base_url: str
    requests_per_minute: float
    skip_reason: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_headers: dict[str, str] = {}
        self.skip_reason = None
        self._queries: dict[str, _QueryState] = {}
        self._old_cursor: dict[str, Any] = {}
        self._now: datetime | None = None

    # ------------------------------------------------------------------ setup

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> MentionSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider._configure(crawler)
        return spider

    def _configure(self, crawler: Crawler) -> None:
        settings = crawler.settings
        # The one input of a crawl (crawlers.job): no config file is read here.
        self.job = CrawlJob.from_crawler(crawler)
        if self.job.source.type != self.source_type:
            raise ValueError(
                f"source {self.job.source_name!r} has type {self.job.source.type!r}, but "
                f"spider {self.name!r} crawls type {self.source_type!r}"
            )
        self.source = self.job.source
        self.base_url = (self.source.base_url or self.default_base_url).rstrip("/")
        self.requests_per_minute = float(self.source.requests_per_minute or self.default_rate())
        fixed = settings.get("BRANDPULSE_NOW")  # an ISO time: the injected clock (tests)
        self._now = parse_time(fixed) if fixed else None
        self.cursor_store = CursorStore(self.job.state_dir)

        self.brand_configs: list[BrandConfig] = list(self.job.brands)
        from brandpulse.query import compile_query

        self.brand_queries = [
            (b.name, compile_query(b.effective_query())) for b in self.brand_configs
        ]

        # Per-source knobs become settings before the crawler freezes them; a
        # command-line/runner override (higher priority) still wins, which is how
        # tests shrink timeouts.
        timeout = self.source.timeout.total_seconds()
        settings.set("CONCURRENT_REQUESTS_PER_DOMAIN", self.source.concurrency, priority="spider")
        settings.set(
            "AUTOTHROTTLE_TARGET_CONCURRENCY", float(self.source.concurrency), priority="spider"
        )
        settings.set("DOWNLOAD_TIMEOUT", timeout, priority="spider")
        settings.set("ROBOTSTXT_OBEY", self.obey_robots, priority="spider")
        self.configure_settings(settings)

        if not self.source.enabled:
            self.skip_reason = "disabled in the configuration"
        else:
            self.skip_reason = self.check_credentials()
        self._configure_egress(settings)
        if self.skip_reason:
            self.logger.warning(
                "source %r (%s) skipped: %s", self.source.name, self.source_type, self.skip_reason
            )
            # `crawler.stats` only exists once the crawl starts (Scrapy >= 2.13 raises
            # here), so the skip is recorded in stats by start().

    def _configure_egress(self, settings: Any) -> None:
        # The egress policy (crawlers.egress) reads these when the engine builds
        # it, right after this: the source's own origins, the hosts it opted in to,
        # and the crawl section's address allowances. Command-line settings win.
        crawl = self.job.crawl
        settings.set("BRANDPULSE_EGRESS_ORIGINS", self.egress_urls(), priority="spider")
        settings.set(
            "BRANDPULSE_EGRESS_EXTRA_HOSTS", list(self.source.allowed_hosts), priority="spider"
        )
        settings.set(
            "BRANDPULSE_EGRESS_ALLOW_PRIVATE", crawl.allow_private_addresses, priority="spider"
        )
        settings.set(
            "BRANDPULSE_EGRESS_ALLOWED_ENDPOINTS",
            list(crawl.allowed_private_endpoints),
            priority="spider",
        )

    # ------------------------------------------------------------- hooks

    def configure_settings(self, settings: Any) -> None:
        """Adjust crawler settings for this source (called before they freeze)."""

    def check_credentials(self) -> str | None:
        """Reason to skip this source (missing credentials), or None to crawl it."""
        return None

    def setup_request(self) -> Request | None:
        """A request to send before any search (login/token); None for none."""
        return None

    def handle_setup(self, response: Response, data: Any) -> None:
        """Digest the setup response (store auth headers); raise SourceFault to fail."""

    def search_queries(self) -> list[SearchQuery]:
        if self.search_style == "terms":
            return self.per_term_queries()
        return [
            self.make_query(f"brand:{name}", name, query.search_string(style=self.search_style))
            for name, query in self.brand_queries
        ]

    def per_term_queries(self) -> list[SearchQuery]:
        """One query per positive search term of each brand (for sources whose search
        has no OR); phrases stay quoted, single words lose the quotes."""
        queries = []
        for name, query in self.brand_queries:
            for term in query.search_terms():
                bare = term.strip('"')
                text = term if " " in bare else bare
                queries.append(self.make_query(f"brand:{name}|term:{bare.lower()}", name, text))
        return queries

    def egress_urls(self) -> list[str]:
        """The source's own URLs: requests may go to their host:port, and credentials
        to their origin only (crawlers.egress). Default: `base_url`; a spider whose
        configuration names other URLs (feeds, start pages, a token host) adds them."""
        return [self.base_url] if self.base_url else []

    def default_rate(self) -> float:
        """Requests per minute when the config sets none (may depend on credentials)."""
        return self.default_requests_per_minute

    def build_request(self, query: SearchQuery, page_token: Any) -> Request:
        raise NotImplementedError(f"{type(self).__name__} must implement build_request")

    def parse_page(self, response: Response, query: SearchQuery, data: Any) -> Page:
        raise NotImplementedError(f"{type(self).__name__} must implement parse_page")

    def post_to_mention(self, raw: Any, query: SearchQuery) -> Mention | None:
        raise NotImplementedError(f"{type(self).__name__} must implement post_to_mention")

    def describe_error(self, response: Response) -> str | None:
        """The API's own words about an error response, for the fault log line."""
        return None

    def backoff_from_response(self, response: Response) -> float | None:
        """Seconds the server asks us to pause, when it says so in the body."""
        return None

    # ------------------------------------------------------------- helpers

    def url(self, path: str, **params: Any) -> str:
        """`base_url` + path + query string (None values left out)."""
        query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        return f"{self.base_url}{path}" + (f"?{query}" if query else "")

    def make_query(self, key: str, brand: str | None, text: str, **params: Any) -> SearchQuery:
        entry = self._old_cursor.get("queries", {}).get(key) or {}
        stored: datetime | None = None
        if entry.get("since"):
            try:
                stored = parse_time(entry["since"])
            except ValueError:
                stored = None
        if stored is None:
            since = datetime.now(UTC) - self.source.lookback
            seen: set[str] = set()
            recent: dict[str, float] = {}
        else:
            since = stored - self.cursor_overlap
            recent = {
                str(item[0]): float(item[1])
                for item in entry.get("recent") or []
                if isinstance(item, list) and len(item) == 2
            }
            seen = {str(i) for i in entry.get("ids") or []} | set(recent)
        query = SearchQuery(key, brand, text, since, entry.get("token"), params)
        self._queries[key] = _QueryState(query, stored, frozenset(seen), recent)
        return query

    def make_mention(
        self,
        *,
        source_id: str | int,
        created_at: Any,
        text: str | None = "",
        html: bool = False,
        title: str | None = None,
        url: str | None = None,
        author: str | None = None,
        author_reach: int | None = None,
        language: str | None = None,
        likes: int | None = None,
        replies: int | None = None,
        shares: int | None = None,
        score: int | None = None,
    ) -> Mention:
        """A Mention of this source with text cleaned and time parsed to UTC."""

        def count(value: Any) -> int | None:
            # Sources occasionally send -1 or null for "hidden"; that is "unknown".
            return int(value) if isinstance(value, int | float) and value >= 0 else None

        # Every string is cleaned (surrogates, control characters): one bad
        # character must never cost the post.
        return Mention(
            source=self.source_type,
            source_id=clean_field(str(source_id)) or "",
            source_name=self.source.name,
            url=clean_field(url) if url else None,
            author=clean_text(author) or None if author else None,
            author_reach=count(author_reach),
            title=clean_text(title) or None if title else None,
            text=html_to_text(text) if html else clean_text(text),
            language=clean_field(language) if language else None,
            created_at=parse_time(created_at),
            engagement=Engagement(
                likes=count(likes),
                replies=count(replies),
                shares=count(shares),
                score=int(score) if isinstance(score, int | float) else None,
            ),
        )

    def fault(self, kind: str, detail: str) -> None:
        """Count a fault of this source (`crawlers.faults`); `FaultLog` logs it at close."""
        record_fault(self.crawler.stats, kind, detail)
        self.logger.debug("source %r fault %s", self.source.name, kind)

    def now(self) -> datetime:
        """The crawl's clock: `BRANDPULSE_NOW` (an ISO time) when set, else the real time.
        Relative times on pages ("3 天前") and file ages are read against it."""
        return self._now or datetime.now(UTC)

    def drop(self, reason: str, count: int = 1) -> None:
        self.crawler.stats.inc_value(f"{STATS_PREFIX}/dropped/{reason}", count)

    def query_failed(self, key: str | None) -> None:
        """A page of query `key` was lost: its cursor must not advance this crawl."""
        if key in self._queries:
            self._queries[key].failed = True

    # ------------------------------------------------------------- engine side

    async def start(self) -> AsyncIterator[Any]:
        if self.skip_reason:
            self.crawler.stats.set_value(f"{STATS_PREFIX}/skipped", self.skip_reason)
            return
        self._old_cursor = self.cursor_store.load(self.source.name)
        setup = self.setup_request()
        if setup is not None:
            yield self._decorate(setup, callback=self._on_setup, meta={})
            return
        for request in self._first_requests():
            yield request

    def _first_requests(self) -> Iterator[Request]:
        for query in self.search_queries():
            yield self._page_request(query, None, 1)

    def _page_request(self, query: SearchQuery, token: Any, page: int) -> Request:
        request = self.build_request(query, token)
        meta = {"brandpulse_query": query.key, "brandpulse_page": page}
        return self._decorate(request, callback=self._on_page, meta=meta)

    def _decorate(self, request: Request, *, callback: Any, meta: dict[str, Any]) -> Request:
        headers = dict(self.default_headers)
        if self.expects_json:
            headers.setdefault("Accept", "application/json")
        for key, value in request.headers.items():
            headers[key.decode("latin-1")] = b",".join(value).decode("latin-1")
        return request.replace(
            callback=callback,
            errback=self._on_error,
            headers=headers,
            meta={**request.meta, **meta, "dont_obey_robotstxt": not self.obey_robots},
        )

    def decode_json(self, response: Response) -> Any:
        """The response's JSON, or `_NOT_JSON` after recording why it is not JSON."""
        body = response.body
        ctype = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        if "html" in ctype or body.lstrip()[:1] == b"<":
            self.fault(
                "html_instead_of_json",
                f"{response.url} answered {ctype or 'no content type'}: {_snippet(body)}",
            )
            return _NOT_JSON
        try:
            return json.loads(body)
        except UnicodeDecodeError:
            # Invalid UTF-8 inside an otherwise good body: decode leniently rather
            # than lose the page (decode_body keeps the valid parts intact).
            text = decode_body(body, _charset(ctype))
        except ValueError as exc:
            self.fault("bad_json", f"{response.url}: {exc} in {_snippet(body)}")
            return _NOT_JSON
        try:
            return json.loads(text)
        except ValueError as exc:
            self.fault("bad_json", f"{response.url}: {exc} in {_snippet(body)}")
            return _NOT_JSON

    def _on_setup(self, response: Response) -> Iterator[Request]:
        data = self.decode_json(response) if self.expects_json else None
        if data is _NOT_JSON:
            self.fault("auth", f"setup request {response.url} did not answer JSON")
            return
        try:
            self.handle_setup(response, data)
        except SourceFault as exc:
            self.fault(exc.kind, exc.detail)
            return
        except (KeyError, TypeError, ValueError) as exc:
            self.fault("auth", f"unexpected setup response from {response.url}: {exc!r}")
            return
        yield from self._first_requests()

    def _on_page(self, response: Response) -> Iterator[Any]:
        state = self._queries[response.meta["brandpulse_query"]]
        query = state.query
        state.pages += 1
        self.crawler.stats.inc_value(f"{STATS_PREFIX}/pages")
        data = None
        if self.expects_json:
            data = self.decode_json(response)
            if data is _NOT_JSON:
                state.failed = True
                return
        try:
            page = self.parse_page(response, query, data)
        except SourceFault as exc:
            self.fault(exc.kind, exc.detail)
            state.failed = True
            if exc.kind in REFUSAL_KINDS:
                # A login wall or captcha is not a page of the source: a crawl that
                # only met refusals read nothing (and the health notice hears of it).
                self.crawler.stats.inc_value(f"{STATS_PREFIX}/pages", -1)
            return
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.fault("parse_error", f"{response.url}: unexpected response shape: {exc!r}")
            state.failed = True
            return
        if state.pages == 1 and page.cursor_token is not None:
            state.token = page.cursor_token

        # The verdict on the page's last post: on a newest-first page it is the oldest,
        # and only it says whether older pages can hold anything new. An earlier post
        # older than the window (YouTube lists a pinned, old thread first) ends nothing.
        last_verdict: str | None = None
        for raw in page.items:
            try:
                mention = self.post_to_mention(raw, query)
            except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
                self.fault("bad_item", f"{response.url}: {_short(exc)}")
                continue
            if mention is None:
                self.drop("not_a_post")
                continue
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/posts_seen")
            verdict = self._seen_before(state, mention)
            last_verdict = verdict
            if verdict is not None:
                self.drop("before_cursor")
                continue
            self._track(state, mention)
            # Seen (the cursor moves past it); whether it names a brand is the
            # business of crawlers.pipelines.BrandFilterPipeline.
            yield mention

        for further in page.follow:
            yield self._page_request(further, None, 1)

        # Only a last post older than the window ends the paging: one seen inside the
        # overlap may be followed by late-indexed unseen ones.
        reached_old = last_verdict == "old"
        if page.next_page is None or (reached_old and self.newest_first):
            state.complete = True
        elif state.pages >= self.source.max_pages:
            # Bounded on purpose; the cursor still advances (a gap beats an
            # ever-growing backlog), and the stats say it happened.
            state.complete = True
            state.truncated = True
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/truncated_queries")
        else:
            yield self._page_request(query, page.next_page, state.pages + 1)

    @staticmethod
    def _track(state: _QueryState, mention: Mention) -> None:
        state.posts[mention.source_id] = mention.created_at
        if state.newest is None or mention.created_at > state.newest:
            state.newest = mention.created_at

    @staticmethod
    def _seen_before(state: _QueryState, mention: Mention) -> str | None:
        """ "old" (before this crawl's window), "seen" (by an earlier crawl) or None."""
        if mention.created_at < state.query.since:
            return "old"
        if mention.source_id in state.seen_ids:
            return "seen"
        return None

    def _on_error(self, failure: Failure) -> None:
        request: Request = failure.request  # type: ignore[attr-defined]
        kind, detail = self.classify_failure(failure)
        self.fault(kind, detail)
        self.query_failed(request.meta.get("brandpulse_query"))

    def classify_failure(self, failure: Failure) -> tuple[str, str]:
        request: Request = failure.request  # type: ignore[attr-defined]
        exc = failure.value
        where = f"{request.method} {request.url}"
        if isinstance(exc, HttpError):
            response = exc.response
            said = self.describe_error(response) or _snippet(response.body)
            return f"http_{response.status}", f"{where} -> {response.status}: {said}"
        if isinstance(exc, RateLimited):
            return "rate_limited", f"{where}: {exc}"
        if isinstance(exc, EgressRefused):
            return "egress_refused", f"{where}: {exc.reason}"
        if isinstance(exc, DNSLookupError | CannotResolveHostError):
            refused = resolver_refusal(urlparse_cached(request).hostname)
            if refused:
                return "egress_refused", f"{where}: {refused}"
        if isinstance(exc, TimeoutError | TCPTimedOutError | DownloadTimeoutError):
            return "timeout", f"{where}: no response within the download timeout"
        if isinstance(
            exc,
            ConnectionRefusedError
            | DNSLookupError
            | ConnectionLost
            | ResponseFailed
            | ResponseNeverReceived
            | DownloadConnectionRefusedError
            | CannotResolveHostError
            | DownloadFailedError
            | ResponseDataLossError,
        ):
            return "connection", f"{where}: {_short(exc)}"
        if isinstance(exc, IgnoreRequest):
            return "ignored", f"{where}: {_short(exc)}"
        return f"error_{type(exc).__name__}", f"{where}: {_short(exc)}"

    # ------------------------------------------------------------- close

    def cursor_data(self) -> dict[str, Any] | None:
        """The cursor this crawl advances to (None when the source was skipped).

        Written by `crawlers.extensions.CursorWriter` at close. A query's entry only
        moves when all its pages were read without a fault.
        """
        if self.skip_reason:
            return None
        old_queries: dict[str, Any] = dict(self._old_cursor.get("queries") or {})
        queries = dict(old_queries)
        for key, state in self._queries.items():
            if not state.complete or state.failed:
                continue  # re-fetch next time rather than risk skipping
            entry = dict(old_queries.get(key) or {})
            candidates = [t for t in (state.stored_since, state.newest) if t is not None]
            if candidates:
                since = max(candidates)
                # Ids at exactly the cursor instant: ties are not yielded again.
                ids = {i for i, t in state.posts.items() if t == since}
                if since == state.stored_since:
                    ids |= {str(i) for i in entry.get("ids") or []}
                entry["since"] = since.isoformat()
                entry["ids"] = sorted(ids)
                if self.cursor_overlap:
                    start = (since - self.cursor_overlap).timestamp()
                    recent = dict(state.old_recent)
                    recent.update({i: t.timestamp() for i, t in state.posts.items()})
                    kept = sorted(
                        ([i, t] for i, t in recent.items() if t >= start), key=lambda it: -it[1]
                    )
                    entry["recent"] = kept[:_MAX_RECENT_IDS]
            if state.token is not None:
                entry["token"] = state.token
            if entry:
                queries[key] = entry
        return {
            "source": self.source.name,
            "type": self.source_type,
            "updated_at": datetime.now(UTC).isoformat(),
            "queries": queries,
        }

    def summary(self) -> dict[str, Any]:
        """Per-source outcome for the stats extension."""
        states = self._queries.values()
        faults = recorded_faults(self.crawler.stats)
        return {
            "source": self.source.name if hasattr(self, "source") else None,
            "type": self.source_type,
            "skipped": self.skip_reason,
            "queries": len(self._queries),
            "queries_complete": sum(1 for s in states if s.complete and not s.failed),
            "queries_truncated": sum(1 for s in states if s.truncated),
            "dropped": {},  # from the stats (crawlers.extensions.SourceStats)
            "failed": {kind: n for kind, (n, _) in faults.items()},
            "fault_examples": {kind: detail for kind, (_, detail) in faults.items()},
        }


def _snippet(body: bytes, limit: int = 120) -> str:
    text = decode_body(body[: limit * 4])
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _short(exc: BaseException, limit: int = 200) -> str:
    text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text[:limit]


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "charset" and value:
            return value.strip("\"'")
    return None


def iter_items(value: Any) -> Iterable[Any]:
    """A list from a JSON field that may be missing or null."""
    return value if isinstance(value, list) else []
